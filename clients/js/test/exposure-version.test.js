// The SDK's exposure_version against Test Kitchen's own PHP: tests/vectors/exposure-version.json
// holds what its ConfigsFetcher computed (tests/vectors/generate/exposure-version.md). The file
// is read with the SDK's parseJson, as PHP reads a served body: key order and integers kept.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { exposureMaterial, exposureVersion, parseJson } from "../src/index.js";
import { phpCompare, phpJson, phpSort } from "../src/php.js";

const text = readFileSync(new URL("../../../tests/vectors/exposure-version.json", import.meta.url),
  "utf8");
const vectors = parseJson(text);

test("every vector gives Test Kitchen's exposure_version", async () => {
  assert.equal(vectors.get("function"), "exposure_version");
  const cases = vectors.get("cases");
  assert.ok(cases.length >= 200);
  for (const item of cases) {
    assert.equal(await exposureVersion(item.get("input")), item.get("expected"), item.get("id"));
  }
});

test("a row's JSON text gives the same version as its parsed value", async () => {
  const row = '{"name":"exp-1","groups":["b","a"],"user_identifier_type":"mw-user",'
    + '"sample_rate":{"default":0.1,"0":["frwiki"],"1":["enwiki"]},"stream_name":"s"}';
  assert.equal(await exposureVersion(row), await exposureVersion(parseJson(row)));
  // JSON.parse moves index-like keys first; PHP (and parseJson) keep the served order
  assert.match(exposureMaterial(row), /"sample_rate":\{"default":0\.1,"0":\["frwiki"\]/);
  assert.match(exposureMaterial(JSON.parse(row)), /"sample_rate":\{"0":\["frwiki"\]/);
});

test("PHP's number, string and list forms", () => {
  assert.equal(phpJson([1.0, 1e-5, 1e20, 1e17, 0.0001, -0]), "[1,1.0e-5,1.0e+20,1.0e+17,0.0001,-0]");
  assert.equal(phpJson(parseJson("[9223372036854775807, 9223372036854775808]")),
    "[9223372036854775807,9.223372036854776e+18]");
  assert.equal(phpJson(parseJson('{"0":"a","1":"b"}')), '["a","b"]');
  assert.equal(phpJson(new Map()), "[]");
  assert.equal(phpJson("\u2028/\u0001\""), '"\\u2028/\\u0001\\""');
  assert.equal(phpCompare("9", "10"), -1);
  assert.equal(phpCompare("1e1", "10"), 0);
  assert.deepEqual(phpSort(["10", "9", "2", "1"]), ["1", "2", "9", "10"]);
  assert.deepEqual(phpSort(["9", "10", "1a"]), ["9", "10", "1a"]);
});

test("what PHP's json_decode refuses is refused", () => {
  for (const bad of ['{"a":1', "[1,]", '"\\ud800"', "01", "NaN", "[1] x"]) {
    assert.throws(() => parseJson(bad), SyntaxError, bad);
  }
});
