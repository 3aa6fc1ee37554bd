// An independent implementation of assignment sl-v2 (DESIGN.md, "Assignment, algorithm sl-v2"),
// in JavaScript, that writes tests/vectors/sl-v2.json. It shares no code with the Python package
// or the browser SDK: both are checked against what this program computed.
//
// Usage: node tests/vectors/generate/sl-v2.mjs
//
// Integer arithmetic uses BigInt wherever a product could leave the exact range of a double.
// Targeting cases use only a few operators ($eq literals, $gte, $in, $and, $or, $exists); the
// condition language itself is checked against GrowthBook's published cases elsewhere.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const sha = (text) => createHash("sha256").update(text, "utf8").digest("hex");

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

// The split of one site: weights in thousandths of a percent, in group order.
function split(trafficSplit, groups, site) {
  const entry = site !== null && site in trafficSplit ? trafficSplit[site] : trafficSplit.default;
  if (entry === undefined) return null;
  const weights = groups.map((g) => (g in entry ? Math.round(entry[g] * 1000) : 0));
  const d = weights.filter((w) => w > 0).reduce(gcd, 0) || 1;
  const shares = weights.map((w) => w / d);
  const total = shares.reduce((a, b) => a + b, 0);
  if (total > 10000) throw new Error("ratios must reduce to at most 10000 shares");
  return { shares, total, rate: weights.reduce((a, b) => a + b, 0) / 100000 };
}

function bin(identifier, kind, name) {
  const head = BigInt("0x" + sha(String(identifier) + kind + name).slice(0, 8));
  return Number((head * 100000n) >> 32n);
}

function matches(attributes, condition) {
  for (const [key, want] of Object.entries(condition)) {
    if (key === "$and") { if (!want.every((c) => matches(attributes, c))) return false; continue; }
    if (key === "$or") { if (want.length && !want.some((c) => matches(attributes, c))) return false; continue; }
    const have = key in attributes ? attributes[key] : null;
    if (want !== null && typeof want === "object" && !Array.isArray(want)) {
      for (const [op, arg] of Object.entries(want)) {
        if (op === "$gte" && !(have !== null && typeof have === typeof arg && have >= arg)) return false;
        if (op === "$in" && !arg.includes(have)) return false;
        if (op === "$exists" && (have !== null) !== arg) return false;
        if (!["$gte", "$in", "$exists"].includes(op)) throw new Error(`operator ${op} not used here`);
      }
    } else if (typeof want === "boolean") {
      if (!(have !== null && Boolean(have) === want)) return false;
    } else if (String(have) !== String(want)) return false;
  }
  return true;
}

function evaluate(input) {
  const { identifier, experiment, groups, traffic_split: ts, site } = input;
  const subjectId = sha(String(identifier) + experiment);
  const out = (reason, group = null) => ({ subject_id: subjectId, in_sample: group !== null, group, reason });
  for (const h of input.holdouts ?? []) {
    if (bin(identifier, ":holdout:", h.name) < Math.round(h.percent * 1000)) return out("holdout");
  }
  if (input.layer) {
    const b = bin(identifier, ":layer:", input.layer.name);
    if (!(input.layer.range[0] <= b && b < input.layer.range[1])) return out("layer");
  }
  if (input.targeting && !matches(input.attributes ?? {}, input.targeting)) return out("targeting");
  const s = split(ts, groups, site);
  if (s === null || s.total === 0) return out("not_sampled");
  const h = parseInt(subjectId.slice(0, 6), 16) / 2 ** 24;
  const scaled = h * s.total;
  const slot = Math.floor(scaled);
  if (!(scaled - slot < s.rate)) return out("not_sampled");
  let owner = slot;
  for (let g = 0; g < groups.length; g++) {
    if (owner < s.shares[g]) return out("assigned", groups[g]);
    owner -= s.shares[g];
  }
  throw new Error("slot without owner");
}

const cases = [];
function add(id, input) {
  cases.push({ id, input: { site: null, ...input }, expected: evaluate({ site: null, ...input }) });
}
const ids = [0, 1, 2, 42, 123456789, "abc", "edge-unique-7f3a", "Ünïcödé", "用户名", "emoji-🎉", ""];
const many = (n) => Array.from({ length: n }, (_, i) => i);
const unique = (...lists) => [...new Set(lists.flat())]; // ids and many(n) share 0, 1, 2

// Weighted splits, including a 0% group and splits that reduce (gcd) to few shares.
const weighted = [
  ["w-10-90", ["control", "treatment"], { default: { control: 10, treatment: 90 } }],
  ["w-1-2-3", ["control", "b", "c"], { default: { control: 5, b: 10, c: 15 } }],
  ["w-zero-group", ["control", "b", "c"], { default: { control: 20, b: 0, c: 20 } }],
  ["w-decimals", ["control", "treatment"], { default: { control: 0.125, treatment: 0.375 } }],
  ["w-full", ["control", "treatment", "c"], { default: { control: 50, treatment: 25, c: 25 } }],
  ["w-nothing", ["control", "treatment"], { default: { control: 0, treatment: 0 } }],
];
for (const [name, groups, ts] of weighted) {
  for (const identifier of unique(ids, many(30))) {
    add(`${name}-${JSON.stringify(identifier)}`, { identifier, experiment: `vector-${name}`, groups, traffic_split: ts });
  }
}

// Per-site splits: a site's own entry, else default; a site without either gets nobody.
const perSite = { default: { control: 1, treatment: 1 }, dewiki: { control: 10, treatment: 30 }, frwiki: { control: 0, treatment: 0 } };
const noDefault = { enwiki: { control: 30, treatment: 30 } };
for (const identifier of many(16)) {
  for (const site of [null, "dewiki", "frwiki", "eswiki"]) {
    add(`site-${site}-${identifier}`, { identifier, experiment: "vector-per-site", groups: ["control", "treatment"], traffic_split: perSite, site });
  }
  for (const site of ["enwiki", "eswiki", null]) {
    add(`no-default-${site}-${identifier}`, { identifier, experiment: "vector-no-default", groups: ["control", "treatment"], traffic_split: noDefault, site });
  }
}

// The share limit: 0.001 % against 9.999 % reduces to exactly 10000 shares. Units in the first
// slot (h < 1/10000) are rare: scan for some, in and out of sample.
const limit = { default: { control: 0.001, treatment: 9.999 } };
const found = { true: 0, false: 0 };
for (let i = 0; (found.true < 2 || found.false < 2) && i < 5_000_000; i++) {
  const scaled = (parseInt(sha(String(i) + "vector-share-limit").slice(0, 6), 16) / 2 ** 24) * 10000;
  const inSample = scaled - Math.floor(scaled) < 0.1;
  if (scaled < 1 && found[inSample] < 2) {
    add(`limit-first-slot-${inSample ? "in" : "out"}-${i}`, { identifier: i, experiment: "vector-share-limit", groups: ["control", "treatment"], traffic_split: limit });
    found[inSample]++;
  }
}
if (found.true < 2 || found.false < 2) throw new Error("too few units in the first of 10000 slots");
for (const identifier of many(20)) {
  add(`limit-${identifier}`, { identifier, experiment: "vector-share-limit", groups: ["control", "treatment"], traffic_split: limit });
}

// Layers at their boundaries: two units with layer bins b1 < b2; the range [b1, b2) holds the
// first (at lo) and not the second (at hi); [b1 + 1, b2 + 1) the reverse.
const layerName = "reading-layer";
const full = { default: { control: 50, treatment: 50 } };
const [unitA, unitB] = ["layer-unit-a", "layer-unit-b"];
const [b1, b2] = [bin(unitA, ":layer:", layerName), bin(unitB, ":layer:", layerName)].sort((x, y) => x - y);
const [low, high] = bin(unitA, ":layer:", layerName) === b1 ? [unitA, unitB] : [unitB, unitA];
for (const [tag, range] of [["lo-hi", [b1, b2]], ["shifted", [b1 + 1, b2 + 1]]]) {
  for (const identifier of [low, high]) {
    add(`layer-${tag}-${identifier}`, { identifier, experiment: `vector-layer-edge-${tag}`, groups: ["control", "treatment"], traffic_split: full, layer: { name: layerName, range } });
  }
}
// Two experiments splitting one layer: each unit is eligible for exactly one of them.
for (const identifier of unique(ids, many(20))) {
  for (const [tag, range] of [["left", [0, 50000]], ["right", [50000, 100000]]]) {
    add(`layer-${tag}-${JSON.stringify(identifier)}`, { identifier, experiment: `vector-layer-${tag}`, groups: ["control", "treatment"], traffic_split: full, layer: { name: "ünï-layer", range } });
  }
}

// Holdouts: a unit held out at the edge (its bin is the last held one) and just not held.
const edgeUnit = "holdout-edge-unit";
const edgeBin = bin(edgeUnit, ":holdout:", "global-2026");
for (const [tag, percent] of [["held", (edgeBin + 1) / 1000], ["free", edgeBin / 1000]]) {
  add(`holdout-edge-${tag}`, { identifier: edgeUnit, experiment: `vector-holdout-edge-${tag}`, groups: ["control", "treatment"], traffic_split: full, holdouts: [{ name: "global-2026", percent }] });
}
for (const identifier of unique(ids, many(30))) {
  add(`holdout-${JSON.stringify(identifier)}`, {
    identifier, experiment: "vector-holdout", groups: ["control", "treatment"], traffic_split: { default: { control: 40, treatment: 40 } },
    holdouts: [{ name: "global-2026", percent: 10 }, { name: "reading-q3", percent: 2.5 }],
    layer: { name: layerName, range: [20000, 90000] },
  });
}

// Targeting, after holdouts and layers, before the slot.
const condition = { $and: [{ platform: { $in: ["mobile", "app"] } }, { edit_count: { $gte: 10 } }], is_logged_in: true };
const attributeSets = [
  { platform: "mobile", edit_count: 12, is_logged_in: true },
  { platform: "desktop", edit_count: 12, is_logged_in: true },
  { platform: "app", edit_count: 9, is_logged_in: true },
  { platform: "app", edit_count: 500, is_logged_in: false },
  {},
];
for (const identifier of many(12)) {
  attributeSets.forEach((attributes, k) => {
    add(`targeting-${k}-${identifier}`, { identifier, experiment: "vector-targeting", groups: ["control", "treatment"], traffic_split: full, targeting: condition, attributes, holdouts: [{ name: "global-2026", percent: 10 }] });
  });
}
for (const identifier of many(6)) {
  for (const [k, attributes] of [{ site: "dewiki" }, { site: "enwiki", registration: "2020" }, { registration: "2020" }].entries()) {
    add(`targeting-exists-${k}-${identifier}`, { identifier, experiment: "vector-targeting-exists", groups: ["control", "treatment"], traffic_split: full, targeting: { $or: [{ registration: { $exists: true } }, { site: "dewiki" }] }, attributes });
  }
}

// Equal weights are tk-v1: rate r over n groups equals 100·r/n percent each, whenever that has at
// most 3 decimals. The tk-v1 answer is computed here too, and must agree.
function tkv1(identifier, name, count, rate) {
  const scaled = (parseInt(sha(String(identifier) + name).slice(0, 6), 16) / 2 ** 24) * count;
  return scaled - Math.floor(scaled) < rate ? Math.floor(scaled) : null;
}
const equal = [[1, 0.5], [2, 0.5], [2, 1], [3, 0.3], [3, 0.15], [4, 1], [4, 0.1], [5, 0.05], [3, 0.00003], [2, 0.99998]];
for (const [n, rate] of equal) {
  const groups = ["control", "b", "c", "d", "e"].slice(0, n);
  const percent = (100 * rate) / n;
  if (Math.round(percent * 1000) / 1000 !== percent) throw new Error(`${percent} has more than 3 decimals`);
  const name = `vector-equal-${n}-${rate}`;
  for (const identifier of unique(ids, many(20))) {
    const input = { identifier, experiment: name, groups, traffic_split: { default: Object.fromEntries(groups.map((g) => [g, percent])) }, tk_v1: { sample_rate: { default: rate } } };
    add(`equal-${n}-${rate}-${JSON.stringify(identifier)}`, input);
    const expected = cases[cases.length - 1].expected;
    const index = tkv1(identifier, name, n, rate);
    if ((index === null ? null : groups[index]) !== expected.group) throw new Error(`tk-v1 and sl-v2 differ for ${identifier} in ${name}`);
  }
}

// Each experiment name stands for one config, so that a reader can load them all at once.
const configs = new Map();
for (const c of cases) {
  const { identifier, site, attributes, ...config } = c.input;
  const text = JSON.stringify(config);
  if ((configs.get(c.input.experiment) ?? text) !== text) throw new Error(`${c.input.experiment} has two configs`);
  configs.set(c.input.experiment, text);
}

// Rows the algorithm refuses, with the field the error names.
const invalid = [
  ["too-many-shares", { control: 33.333, treatment: 33.334 }, "traffic_split['default']", "ratios must reduce to at most 10000 shares"],
  ["four-decimals", { control: 0.0001, treatment: 10 }, "traffic_split['default']['control']", "more than 3 decimals"],
  ["over-100", { control: 60, treatment: 40.001 }, "traffic_split['default']", "more than 100"],
  ["negative", { control: -1, treatment: 10 }, "traffic_split['default']['control']", "[0, 100]"],
].map(([id, percents, field, reason]) => ({
  id, input: { experiment: `vector-invalid-${id}`, groups: ["control", "treatment"], traffic_split: { default: percents } },
  expected: { error: { field, reason } },
}));
for (const c of invalid) {
  let refused = false;
  try {
    const s = split(c.input.traffic_split, c.input.groups, null);
    const sum = Object.values(c.input.traffic_split.default).reduce((a, b) => a + b, 0);
    refused = Object.values(c.input.traffic_split.default).some((p) => p < 0 || Math.round(p * 1000) !== p * 1000) || sum > 100 || !s;
  } catch { refused = true; }
  if (!refused) throw new Error(`${c.id} should be refused`);
}

const seen = new Set();
for (const c of cases) {
  if (seen.has(c.id)) throw new Error(`case id ${c.id} is used twice`);
  seen.add(c.id);
}
const out = join(here, "..", "sl-v2.json");
writeFileSync(out, JSON.stringify({
  algorithm: "sl-v2",
  generator: "tests/vectors/generate/sl-v2.mjs (independent JavaScript implementation)",
  cases,
  invalid,
}, null, 1) + "\n");
console.log(`wrote ${cases.length} cases and ${invalid.length} invalid rows to ${out}`);
