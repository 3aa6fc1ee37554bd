// The SDK's own tk-v1 against the shared vectors (tests/vectors/tk-v1.json), which an
// independent generator produced and the Python core is checked against too.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { assign, rateFor } from "../src/index.js";

const vectors = JSON.parse(readFileSync(
  new URL("../../../tests/vectors/tk-v1.json", import.meta.url), "utf8"));

test("every vector case gives the expected subject id, sample decision and group", async () => {
  assert.equal(vectors.algorithm, "tk-v1");
  assert.ok(vectors.cases.length > 100);
  for (const { id, input, expected } of vectors.cases) {
    const got = await assign(input.identifier, input.experiment, input.groups, input.sample_rate,
      input.site);
    assert.deepEqual(got, expected, id);
  }
});

test("a site listed under a rate uses that rate, others the default", () => {
  const rate = { default: 0.1, "0.5": ["enwiki"], "0": ["frwiki"] };
  assert.equal(rateFor(rate, "enwiki"), 0.5);
  assert.equal(rateFor(rate, "frwiki"), 0);
  assert.equal(rateFor(rate, "dewiki"), 0.1);
  assert.equal(rateFor(rate, null), 0.1);
});
