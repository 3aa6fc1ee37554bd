// The PHP 8 behaviours Test Kitchen's exposure_version depends on (see exposure-version.js):
// json_decode's reading of JSON text, json_encode's output (JSON_UNESCAPED_SLASHES |
// JSON_UNESCAPED_UNICODE, serialize_precision -1), `<=>` on two strings and sort()'s exact order.
// The Python core's splitlab.core.exposure is the other implementation; both pass the same
// vectors.

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;
const ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
const SHORT = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
  "\t": "\\t", "\u2028": "\\u2028", "\u2029": "\\u2029" };
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u2028\u2029]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NUMERIC = /^[+-]?(?:(\d+)(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const PHP_SPACE = " \t\n\r\v\f";

/**
 * Parse JSON as PHP's json_decode reads it: objects become Maps (keys in text order), integer
 * literals BigInts, other numbers Numbers. Throws SyntaxError on anything that is not JSON.
 */
export function parseJson(text) {
  let at = 0;
  const fail = (what) => { throw new SyntaxError(`JSON: ${what} at ${at}`); };
  const skip = () => { WHITESPACE.lastIndex = at; WHITESPACE.exec(text); at = WHITESPACE.lastIndex; };
  const string = () => {
    let out = "";
    at += 1;
    for (;;) {
      const c = text[at++];
      if (c === undefined || c < " ") fail("bad string");
      if (c === '"') break;
      if (c !== "\\") { out += c; continue; }
      const e = text[at++];
      if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(at, at + 4))) {
        out += String.fromCharCode(parseInt(text.slice(at, at + 4), 16));
        at += 4;
      } else if (e in ESCAPES) out += ESCAPES[e];
      else fail("bad escape");
    }
    if (LONE_SURROGATE.test(out)) fail("unpaired surrogate");
    return out;
  };
  const value = () => {
    skip();
    const c = text[at];
    if (c === "{") {
      const map = new Map();
      at += 1; skip();
      if (text[at] === "}") { at += 1; return map; }
      for (;;) {
        skip();
        if (text[at] !== '"') fail("expected a key");
        const key = string();
        skip();
        if (text[at++] !== ":") fail("expected ':'");
        map.set(key, value());
        skip();
        const next = text[at++];
        if (next === "}") return map;
        if (next !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      const list = [];
      at += 1; skip();
      if (text[at] === "]") { at += 1; return list; }
      for (;;) {
        list.push(value());
        skip();
        const next = text[at++];
        if (next === "]") return list;
        if (next !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, result] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, at)) { at += word.length; return result; }
    }
    NUMBER.lastIndex = at;
    const found = NUMBER.exec(text);
    if (!found) fail("unexpected character");
    at = NUMBER.lastIndex;
    return found[1] === undefined && found[2] === undefined ? BigInt(found[0]) : Number(found[0]);
  };
  const result = value();
  skip();
  if (at !== text.length) fail("trailing text");
  return result;
}

/** A double as PHP's json_encode writes it with serialize_precision -1. */
export function phpDouble(x) {
  if (!Number.isFinite(x)) throw new RangeError(`${x} is not a JSON number`);
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  if (x === 0) return `${sign}0`;
  const [mantissa, exponent] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const point = Number(exponent) + 1;
  if (point < -3 || point > 17) {
    const e = point - 1;
    return `${sign}${digits[0]}.${digits.slice(1) || "0"}e${e < 0 ? "-" : "+"}${Math.abs(e)}`;
  }
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  const fraction = digits.slice(point);
  return sign + digits.slice(0, point).padEnd(point, "0") + (fraction ? `.${fraction}` : "");
}

function phpString(text) {
  if (LONE_SURROGATE.test(text)) throw new TypeError("not valid Unicode text");
  return `"${text.replace(NEEDS_ESCAPE,
    (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`;
}

/** json_encode(value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) of a decoded value. */
export function phpJson(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "bigint") {
    return value >= LONG_MIN && value <= LONG_MAX ? String(value) : phpDouble(Number(value));
  }
  if (typeof value === "number") return phpDouble(value);
  if (typeof value === "string") return phpString(value);
  if (Array.isArray(value)) return `[${value.map(phpJson).join(",")}]`;
  if (typeof value !== "object") throw new TypeError(`${typeof value} is not a JSON value`);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  if (entries.every(([key], index) => key === String(index))) {
    return `[${entries.map(([, item]) => phpJson(item)).join(",")}]`;
  }
  return `{${entries.map(([key, item]) => `${phpString(key)}:${phpJson(item)}`).join(",")}}`;
}

function numeric(text) {
  const body = text.replace(/^[ \t\n\r\v\f]+/, "");
  let end = body.length;
  while (end > 0 && PHP_SPACE.includes(body[end - 1])) end -= 1;
  const trimmed = body.slice(0, end);
  const found = NUMERIC.exec(trimmed);
  if (!found) return null;
  if (found[1] !== undefined && found[2] === undefined && found[3] === undefined) {
    if (found[1].replace(/^0+/, "").length < 20) {
      const n = BigInt(trimmed);
      if (n >= LONG_MIN && n <= LONG_MAX) return { value: n, overflow: 0 };
    }
    return { value: Number(trimmed), overflow: trimmed.startsWith("-") ? -1 : 1 };
  }
  return { value: Number(trimmed), overflow: 0 };
}

const sign = (n) => (n > 0) - (n < 0);
const utf8 = new TextEncoder();

function byteCompare(a, b) {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return sign(x[i] - y[i]);
  }
  return sign(x.length - y.length);
}

/** PHP 8's `$a <=> $b` for two strings: numeric strings compare as numbers, others by bytes. */
export function phpCompare(a, b) {
  const first = numeric(a);
  const second = numeric(b);
  if (first && second) {
    const [x, y] = [first.value, second.value];
    const sameOverflow = first.overflow !== 0 && first.overflow === second.overflow
      && Number(x) - Number(y) === 0;
    if (!sameOverflow) {
      if (typeof x === "bigint" && typeof y === "bigint") return x > y ? 1 : x < y ? -1 : 0;
      if (typeof x === "bigint" && second.overflow) return -second.overflow;
      if (typeof y === "bigint" && first.overflow) return first.overflow;
      if (!(x === y && !Number.isFinite(Number(x)))) return sign(Number(x) - Number(y));
    }
  }
  return byteCompare(a, b);
}


// PHP's zend_sort, step for step: the same comparisons in the same order, so a comparison that
// is not transitive ("10" < "1a" < "9" < "10") still gives PHP's order.
class ZendSort {
  constructor(items, after) {
    this.items = items;
    this.after = after;
  }

  gt(i, j) { return this.after(this.items[i], this.items[j]); }

  swap(i, j) { [this.items[i], this.items[j]] = [this.items[j], this.items[i]]; }

  // Fixed sorts of 2 to 5 positions: three by cases, then each further one sunk.
  network(at) {
    if (at.length === 2) {
      if (this.gt(at[0], at[1])) this.swap(at[0], at[1]);
      return;
    }
    const [a, b, c] = at;
    if (!this.gt(a, b)) {
      if (this.gt(b, c)) {
        this.swap(b, c);
        if (this.gt(a, b)) this.swap(a, b);
      }
    } else if (!this.gt(c, b)) {
      this.swap(a, c);
    } else {
      this.swap(a, b);
      if (this.gt(b, c)) this.swap(b, c);
    }
    for (let last = 3; last < at.length; last++) {
      for (let k = last; k > 0 && this.gt(at[k - 1], at[k]); k--) this.swap(at[k - 1], at[k]);
    }
  }

  // Insertion sort (16 items at most): networks up to five; from six, a linear search back for
  // the first six and a search by steps of two after them.
  insertion(lo, count) {
    if (count < 2) return;
    if (count <= 5) {
      this.network(Array.from({ length: count }, (_, k) => lo + k));
      return;
    }
    for (let i = lo + 1; i < lo + count; i++) {
      if (!this.gt(i - 1, i)) continue;
      const j = i < lo + 6 ? this.linearBack(lo, i) : this.pairwiseBack(lo, i);
      this.items.splice(j, 0, ...this.items.splice(i, 1));
    }
  }

  linearBack(lo, i) {
    let j = i - 1;
    while (j !== lo) {
      j -= 1;
      if (!this.gt(j, i)) return j + 1;
    }
    return j;
  }

  pairwiseBack(lo, i) {
    let j = i - 1;
    for (;;) {
      j -= 2;
      if (!this.gt(j, i)) return this.gt(j + 1, i) ? j + 1 : j + 2;
      if (j === lo) return j;
      if (j === lo + 1) return this.gt(i, lo) ? lo + 1 : lo;
    }
  }

  // Hoare partition around the item at lo + 1; returns the first index past it.
  partition(lo, end) {
    const pivot = lo + 1;
    let i = lo + 2;
    let j = end - 1;
    for (;;) {
      while (this.gt(pivot, i)) {
        i += 1;
        if (i === j) return i;
      }
      j -= 1;
      if (j === i) return i;
      while (this.gt(j, pivot)) {
        j -= 1;
        if (j === i) return i;
      }
      this.swap(i, j);
      i += 1;
      if (i === j) return i;
    }
  }

  sort(lo, count) {
    while (count > 16) {
      const end = lo + count;
      const middle = lo + (count >> 1);
      if (count >> 10) {
        const delta = count >> 2;
        this.network([lo, lo + delta, middle, middle + delta, end - 1]);
      } else {
        this.network([lo, middle, end - 1]);
      }
      this.swap(lo + 1, middle);
      const i = this.partition(lo, end);
      this.swap(lo + 1, i - 1);
      if (i - 1 - lo < end - i) {
        this.sort(lo, i - lo - 1);
        count = end - i;
        lo = i;
      } else {
        this.sort(i, end - i);
        count = i - lo - 1;
      }
    }
    this.insertion(lo, count);
  }
}

/** PHP 8's sort() of a list of strings (ties keep their order). */
export function phpSort(values, compare = phpCompare) {
  const items = [...values];
  for (const item of items) {
    if (typeof item !== "string") throw new TypeError(`every group must be a string: ${item}`);
  }
  const after = (a, b) => {
    const result = compare(items[a], items[b]);
    return result ? result > 0 : a > b;
  };
  const order = items.map((_, k) => k);
  new ZendSort(order, after).sort(0, order.length);
  return order.map((k) => items[k]);
}
