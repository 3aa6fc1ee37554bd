// An independent implementation of assignment tk-v1 (DESIGN.md), in JavaScript, that writes
// tests/vectors/tk-v1.json. It shares no code with the Python package: the Python tests check
// the package against what this program computed.
//
// Usage: node tests/vectors/generate/tk-v1.mjs [path/to/testkitchen-upstream-fixtures.json]
// The optional fixtures file (Test Kitchen's own PHPUnit cases, read in place) contributes its
// inputs, so the vectors cover them; their expected values are computed here, and a Python test
// checks that both agree with the values Test Kitchen's PHP produced.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function rateFor(sampleRate, site) {
  if (typeof sampleRate === "number") return sampleRate;
  for (const [key, sites] of Object.entries(sampleRate)) {
    if (key !== "default" && site !== null && sites.includes(site)) return Number(key);
  }
  return sampleRate.default;
}

function assign(identifier, name, groups, sampleRate, site) {
  const subjectId = createHash("sha256").update(String(identifier) + name, "utf8").digest("hex");
  const h = parseInt(subjectId.slice(0, 6), 16) / 2 ** 24;
  const scaled = h * Math.max(1, groups.length);
  const index = Math.floor(scaled);
  const inSample = scaled - index < rateFor(sampleRate, site);
  return { subject_id: subjectId, in_sample: inSample, group: inSample ? groups[index] : null };
}

function fraction(identifier, name, count) {
  const hex = createHash("sha256").update(String(identifier) + name, "utf8").digest("hex");
  const scaled = (parseInt(hex.slice(0, 6), 16) / 2 ** 24) * count;
  return { scaled, frac: scaled - Math.floor(scaled) };
}

const cases = [];
function add(id, identifier, name, groups, sampleRate, site = null) {
  cases.push({
    id,
    input: { identifier, experiment: name, groups, sample_rate: sampleRate, site },
    expected: assign(identifier, name, groups, sampleRate, site),
  });
}

const groupSets = [
  ["only"],
  ["control", "treatment"],
  ["control", "b", "c"],
  ["control", "b", "c", "d"],
  ["control", "b", "c", "d", "e"],
];
const rates = [0, 1e-6, 0.5, 1];
const identifiers = [0, 1, 2, 42, 123456789, 9007199254740991, "1", "abc", "edge-unique-7f3a",
  "Ünïcödé", "用户名", "emoji-🎉", ""];
for (const groups of groupSets) {
  for (const rate of rates) {
    for (const identifier of identifiers) {
      const name = `vector-exp-${groups.length}-groups`;
      add(`g${groups.length}-r${rate}-${JSON.stringify(identifier)}`, identifier, name, groups,
        { default: rate });
    }
  }
}

// Per-site rates: the listed site uses its own rate, others the default.
const perSite = { default: 0.01, "0.9": ["enwiki", "dewiki"], "0": ["frwiki"] };
for (let i = 0; i < 40; i++) {
  for (const site of [null, "enwiki", "frwiki", "eswiki"]) {
    add(`site-${site}-${i}`, i, "per-site-rates-exp", ["control", "treatment"], perSite, site);
  }
}

// Boundary cases: units whose fraction lies just below or just above the sampling rate, and
// units just on either side of a group boundary (found by scanning identifiers).
for (const [count, rate] of [[2, 0.5], [3, 0.25], [5, 0.1]]) {
  const name = `boundary-exp-${count}`;
  const groups = groupSets[count - 1];
  let below = null, above = null, edgeLow = null, edgeHigh = null;
  for (let i = 0; i < 300000; i++) {
    const { scaled, frac } = fraction(i, name, count);
    if (frac < rate && (below === null || frac > below.frac)) below = { i, frac };
    if (frac >= rate && (above === null || frac < above.frac)) above = { i, frac };
    if (scaled >= 1 && frac < 1e-4 && edgeHigh === null) edgeHigh = i;
    if (scaled < count && frac > 1 - 1e-4 && edgeLow === null) edgeLow = i;
  }
  if ([below, above, edgeLow, edgeHigh].includes(null)) throw new Error(`no boundary unit for ${name}`);
  add(`boundary-${count}-just-below-rate`, below.i, name, groups, { default: rate });
  add(`boundary-${count}-just-above-rate`, above.i, name, groups, { default: rate });
  add(`boundary-${count}-just-after-group-edge`, edgeHigh, name, groups, { default: rate });
  add(`boundary-${count}-just-before-group-edge`, edgeLow, name, groups, { default: 1 });
}

const fixtures = process.argv[2];
if (fixtures) {
  for (const c of JSON.parse(readFileSync(fixtures, "utf8")).cases) {
    add(`testkitchen-${c.id}`, c.identifier, c.experiment, c.groups, { default: c.sample_rate });
  }
}

const out = join(here, "..", "tk-v1.json");
writeFileSync(out, JSON.stringify({
  algorithm: "tk-v1",
  generator: "tests/vectors/generate/tk-v1.mjs (independent JavaScript implementation)",
  cases,
}, null, 1) + "\n");
console.log(`wrote ${cases.length} cases to ${out}`);
