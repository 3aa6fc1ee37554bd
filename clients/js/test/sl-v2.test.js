// The SDK's own sl-v2 and condition language against the shared vectors
// (tests/vectors/sl-v2.json, written by an independent generator; the Python core passes them
// too) and GrowthBook's published evalCondition cases (read in place from the reference data).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { evalCondition, resolveSlV2, splitFor } from "../src/index.js";

const vectors = JSON.parse(readFileSync(
  new URL("../../../tests/vectors/sl-v2.json", import.meta.url), "utf8"));
const refdata = process.env.SPLITLAB_REFDATA ??
  new URL("../../../../shared/refdata", import.meta.url).pathname;

function rowOf(input) {
  const { identifier, site, attributes, experiment, tk_v1: _, ...rest } = input;
  return { name: experiment, algorithm: "sl-v2", ...rest };
}

test("every vector case gives the expected subject id, group and reason", async () => {
  assert.equal(vectors.algorithm, "sl-v2");
  assert.ok(vectors.cases.length > 500);
  for (const { id, input, expected } of vectors.cases) {
    const got = await resolveSlV2(input.identifier, rowOf(input), input.site, input.attributes);
    assert.deepEqual(got, { group: expected.group, reason: expected.reason,
      subject_id: expected.subject_id }, id);
  }
});

test("rows the algorithm refuses throw", () => {
  assert.ok(vectors.invalid.length >= 4);
  for (const { id, input } of vectors.invalid) {
    assert.throws(() => splitFor(input.traffic_split, input.groups, null), RangeError, id);
  }
  const limit = splitFor({ default: { a: 0.001, b: 9.999 } }, ["a", "b"], null);
  assert.deepEqual([limit.slots, limit.shares], [10000, [1, 9999]]);
});

test("every published GrowthBook evalCondition case passes", (t) => {
  const file = `${refdata}/growthbook-cases.json`;
  if (!existsSync(file)) {
    if (process.env.SPLITLAB_REQUIRE_SERVICES === "1") assert.fail(`${file} is absent`);
    t.skip(`reference data ${file} is absent (set SPLITLAB_REFDATA)`);
    return;
  }
  const cases = JSON.parse(readFileSync(file, "utf8")).evalCondition;
  assert.equal(cases.length, 248);
  const failed = cases.filter(([, condition, attributes, expected, groups]) =>
    evalCondition(attributes, condition, groups) !== expected).map(([name]) => name);
  assert.deepEqual(failed, []);
});
