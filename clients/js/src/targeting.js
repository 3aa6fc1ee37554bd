// Targeting conditions in GrowthBook's condition language (MongoDB-like operators), as the
// Python core evaluates them; GrowthBook's published evalCondition cases are the oracle of both.
// A key is an attribute path ("a.b") or $or/$nor/$and/$not; a missing attribute is null; an
// unknown operator or a bad regular expression fails the condition.

function isOperators(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k.startsWith("$"));
}

function lookup(subject, path) {
  let here = subject;
  for (const part of path.split(".")) {
    if (here === null || typeof here !== "object" || !(part in here)) return null;
    here = here[part];
  }
  return here;
}

function typeName(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return ["string", "number", "boolean", "object"].includes(typeof value) ? typeof value : "unknown";
}

// Version strings that compare as text in version order: numeric parts padded to 5 places,
// a release (three parts) marked "~" so that it sorts after its pre-releases.
function versionKey(value) {
  let text = typeof value === "number" ? String(value) : value;
  if (typeof text !== "string" || text === "") text = "0";
  const parts = text.replace(/^v/, "").replace(/\+.*$/, "").split(/[-.]/);
  if (parts.length === 3) parts.push("~");
  return parts.map((p) => (/^[0-9]+$/.test(p) ? p.padStart(5, " ") : p)).join("-");
}

const fold = (value) => (typeof value === "string" ? value.toLowerCase() : value);

function contains(actual, options, caseless) {
  if (!Array.isArray(options)) return false;
  const wanted = caseless ? options.map(fold) : options;
  const values = Array.isArray(actual) ? actual : [actual];
  return values.some((v) => wanted.includes(caseless ? fold(v) : v));
}

function regex(pattern, flags) {
  try {
    return new RegExp(pattern, flags);
  } catch {
    return null;
  }
}

function matchesAll(actual, expected, groups, caseless) {
  if (!Array.isArray(expected) || !Array.isArray(actual)) return false;
  return expected.every((e) => actual.some((a) => valueMatches(e, a, groups, caseless)));
}

function versionOp(test) {
  return (a, e) => {
    const [x, y] = [versionKey(a), versionKey(e)];
    return test(x < y ? -1 : x > y ? 1 : 0);
  };
}

const SIMPLE = {
  $eq: (a, e) => a === e,
  $ne: (a, e) => a !== e,
  $lt: (a, e) => a < e,
  $lte: (a, e) => a <= e,
  $gt: (a, e) => a > e,
  $gte: (a, e) => a >= e,
  $veq: versionOp((c) => c === 0),
  $vne: versionOp((c) => c !== 0),
  $vgt: versionOp((c) => c > 0),
  $vgte: versionOp((c) => c >= 0),
  $vlt: versionOp((c) => c < 0),
  $vlte: versionOp((c) => c <= 0),
  $exists: (a, e) => (e ? a != null : a == null),
  $in: (a, e) => contains(a, e, false),
  $ini: (a, e) => contains(a, e, true),
  $nin: (a, e) => Array.isArray(e) && !contains(a, e, false),
  $nini: (a, e) => Array.isArray(e) && !contains(a, e, true),
  $type: (a, e) => typeName(a) === e,
  $regex: (a, e) => regex(e)?.test(a) ?? false,
  $regexi: (a, e) => regex(e, "i")?.test(a) ?? false,
};

function operatorMatches(op, actual, expected, groups) {
  if (op in SIMPLE) return SIMPLE[op](actual, expected);
  switch (op) {
    case "$inGroup":
      return contains(actual, groups[expected] || [], false);
    case "$notInGroup":
      return !contains(actual, groups[expected] || [], false);
    case "$not":
      return !valueMatches(expected, actual, groups, false);
    case "$size":
      return Array.isArray(actual) && valueMatches(expected, actual.length, groups, false);
    case "$elemMatch":
      if (!Array.isArray(actual)) return false;
      return actual.some((item) => item && (isOperators(expected)
        ? valueMatches(expected, item, groups, false) : matches(item, expected, groups)));
    case "$all":
    case "$alli":
      return matchesAll(actual, expected, groups, op === "$alli");
    default:
      return false;
  }
}

function valueMatches(expected, actual, groups, caseless) {
  if (typeof expected === "string") {
    return caseless ? String(actual).toLowerCase() === expected.toLowerCase()
      : String(actual) === expected;
  }
  if (typeof expected === "number") return Number(actual) === expected;
  if (typeof expected === "boolean") return actual !== null && Boolean(actual) === expected;
  if (expected === null) return actual === null;
  if (!isOperators(expected)) return JSON.stringify(actual) === JSON.stringify(expected);
  return Object.entries(expected).every(([op, e]) => operatorMatches(op, actual, e, groups));
}

function matches(subject, condition, groups) {
  for (const [key, value] of Object.entries(condition)) {
    const list = Array.isArray(value) ? value : [];
    if (key === "$or") {
      if (list.length && !list.some((c) => matches(subject, c, groups))) return false;
    } else if (key === "$nor") {
      if (list.length && list.some((c) => matches(subject, c, groups))) return false;
      if (!list.length) return false;
    } else if (key === "$and") {
      if (!list.every((c) => matches(subject, c, groups))) return false;
    } else if (key === "$not") {
      if (matches(subject, value, groups)) return false;
    } else if (!valueMatches(value, lookup(subject, key), groups, false)) {
      return false;
    }
  }
  return true;
}

/** Whether `attributes` satisfy `condition`; `savedGroups` maps group ids to member lists. */
export function evalCondition(attributes, condition, savedGroups = {}) {
  return matches(attributes, condition, savedGroups || {});
}
