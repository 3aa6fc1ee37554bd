// Assignment algorithm sl-v2 (weighted groups, per-site traffic split, layers, holdouts,
// targeting), see DESIGN.md "Assignment, algorithm sl-v2". A row carries it inline:
//   {algorithm: "sl-v2", groups, traffic_split: {site | "default": {group: percent}},
//    layer?: {name, range: [lo, hi]}, holdouts?: [{name, percent}], targeting?: condition}
// Order: holdout, layer, targeting, then the slot. Every product below stays under 2**53.
import { evalCondition } from "./targeting.js";
import { sha256Hex, subjectId } from "./tk-v1.js";

const SPACE = 2 ** 24;
const BINS = 100000;
const MAX_SHARES = 10000;

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** A percent as thousandths (an integer); throws unless in [0, 100] with at most 3 decimals. */
function thousandths(percent, where) {
  const scaled = Math.round(percent * 1000);
  if (typeof percent !== "number" || !(percent >= 0 && percent <= 100) ||
      Math.abs(percent * 1000 - scaled) > 1e-6) {
    throw new RangeError(`${where}: must be a percent in [0, 100] with at most 3 decimals`);
  }
  return scaled;
}

/**
 * The split in force on `site` (its own entry, else `default`; null when neither): each group's
 * reduced shares in group order, the number of slots and the rate. Throws on a row the
 * algorithm refuses (more than 10000 shares, over 100 %, a bad percent).
 */
export function splitFor(trafficSplit, groups, site) {
  const entry = site != null && Object.hasOwn(trafficSplit, site) ? trafficSplit[site]
    : trafficSplit.default;
  if (entry == null) return null;
  const weights = groups.map((g) => (Object.hasOwn(entry, g) ? thousandths(entry[g], g) : 0));
  const total = weights.reduce((a, b) => a + b, 0);
  if (total > BINS) throw new RangeError("percents sum to more than 100");
  const divisor = weights.filter((w) => w > 0).reduce(gcd, 0) || 1;
  const shares = weights.map((w) => w / divisor);
  const slots = shares.reduce((a, b) => a + b, 0);
  if (slots > MAX_SHARES) throw new RangeError("ratios must reduce to at most 10000 shares");
  return { shares, slots, rate: total / BINS };
}

async function bin(identifier, kind, name) {
  const head = parseInt((await sha256Hex(String(identifier) + kind + name)).slice(0, 8), 16);
  return Math.floor((head * BINS) / 2 ** 32);
}

async function gate(identifier, row, attributes) {
  for (const holdout of row.holdouts ?? []) {
    if (await bin(identifier, ":holdout:", holdout.name) < thousandths(holdout.percent, "holdout")) {
      return "holdout";
    }
  }
  if (row.layer) {
    const [low, high] = row.layer.range;
    const at = await bin(identifier, ":layer:", row.layer.name);
    if (at < low || at >= high) return "layer";
  }
  if (row.targeting && !evalCondition(attributes ?? {}, row.targeting)) return "targeting";
  return null;
}

/**
 * Evaluate an sl-v2 row for one unit on `site` with `attributes`: resolves to
 * {group, reason, subject_id} with reason "assigned", "not_sampled", "holdout", "layer" or
 * "targeting" (group null unless assigned).
 */
export async function resolveSlV2(identifier, row, site = null, attributes = {}) {
  const subject = await subjectId(identifier, row.name);
  const out = (reason, group = null) => ({ group, reason, subject_id: subject });
  const excluded = await gate(identifier, row, attributes);
  if (excluded) return out(excluded);
  const split = splitFor(row.traffic_split, row.groups, site);
  if (split === null || split.slots === 0) return out("not_sampled");
  const product = parseInt(subject.slice(0, 6), 16) * split.slots;
  if (!(product % SPACE < split.rate * SPACE)) return out("not_sampled");
  let slot = Math.floor(product / SPACE);
  for (let g = 0; g < row.groups.length; g++) {
    if (slot < split.shares[g]) return out("assigned", row.groups[g]);
    slot -= split.shares[g];
  }
  throw new Error("a slot without a group");
}
