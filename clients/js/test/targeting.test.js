// Payload entries whose targeting condition the page decides. Fixture: test/fixtures/targeted.json
// (make_targeted.py: built and signed by the Python side, server attributes platform "desktop"
// and is_logged_in false). GrowthBook's published evalCondition cases are the oracle of the
// answers, through payloads signed here with a WebCrypto Ed25519 key.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { createClient, evalCondition } from "../src/index.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/targeted.json", import.meta.url)));
const NOW = Date.UTC(2026, 10, 22, 12, 30);
const VIEWPORT = "viewport-exp";
const refdata = process.env.SPLITLAB_REFDATA ??
  new URL("../../../../shared/refdata", import.meta.url).pathname;

function page({ envelope = fixture.plain, keys = fixture.keys, search = "", ...rest } = {}) {
  const sent = [];
  const element = { textContent: JSON.stringify(envelope) };
  const options = {
    document: { getElementById: (id) => (id === "splitlab-config" ? element : null) },
    location: { search, hostname: "wiki.example" },
    navigator: { cookieEnabled: true, sendBeacon: (url, blob) => { sent.push(blob); return true; } },
    sessionStorage: null,
    fetch: async () => ({ ok: true }),
    keys,
    now: () => NOW,
    onError: (message) => { throw new Error(message); },
    ...rest,
  };
  return { options, sent };
}

const serverEntry = (envelope, key) => JSON.parse(envelope.payload).experiments[key];

test("the Python payload carries the condition and only the attributes it reads", () => {
  const entry = serverEntry(fixture.plain, VIEWPORT);
  assert.deepEqual(entry.attributes, { is_logged_in: false, platform: "desktop" });
  assert.ok(entry.targeting.$or);
  assert.equal(serverEntry(fixture.plain, "plain-v2-exp").targeting, undefined);
  for (const absent of ["enwiki", "vector-2022", "edit_count"]) {
    assert.ok(!fixture.plain.payload.includes(absent), absent);
  }
});

test("a page attribute that satisfies the condition enrolls, with one exposure", async () => {
  const { options, sent } = page({ attributes: { viewport: 1280 } });
  const client = await createClient(options);
  const experiment = client.getExperiment(VIEWPORT);
  assert.equal(experiment.getAssignedGroup(), serverEntry(fixture.plain, VIEWPORT).group);
  assert.equal(experiment.reason, "assigned");
  assert.deepEqual(client.enrolled.sort(), ["plain-v2-exp", VIEWPORT]);
  assert.equal(experiment.sendExposure(), true);
  const [event] = JSON.parse(await sent[0].text());
  assert.equal(event.experiment.enrolled, VIEWPORT);
  assert.equal(event.experiment.subject_id, serverEntry(fixture.plain, VIEWPORT).subject_id);
});

test("a condition that fails is not enrolled (reason targeting) and sends nothing", async () => {
  const { options, sent } = page({ attributes: { viewport: 800 } });
  const client = await createClient(options);
  const experiment = client.getExperiment(VIEWPORT);
  assert.equal(experiment.getAssignedGroup(), null);
  assert.equal(experiment.reason, "targeting");
  assert.equal(experiment.canSend, false);
  assert.equal(experiment.sendExposure(), false);
  assert.equal(experiment.send("click"), false);
  assert.deepEqual(client.enrolled, ["plain-v2-exp"]);
  assert.equal(client.getExperiment("plain-v2-exp").reason, "assigned");  // no condition: as before
  assert.equal(client.getExperiment("unknown-exp-x").reason, null);
  assert.equal(sent.length, 0);
});

test("without page attributes a missing attribute is null to the condition", async () => {
  const client = await createClient(page().options);
  assert.equal(client.getExperiment(VIEWPORT).reason, "targeting");
});

test("the server's attributes win over the page's for the same name", async () => {
  const { options } = page({ attributes: { viewport: 800, platform: "mobile", is_logged_in: true } });
  const client = await createClient(options);
  // platform stays "desktop" (no $or branch holds), is_logged_in stays false (the rest holds)
  assert.equal(client.getExperiment(VIEWPORT).reason, "targeting");
  assert.equal(client.getExperiment(VIEWPORT, { viewport: 1000 }).reason, "assigned");
});

test("setAttributes and per-call attributes decide experiments asked for afterwards", async () => {
  const client = await createClient(page().options);
  const before = client.getExperiment(VIEWPORT);
  assert.equal(client.setAttributes({ viewport: 1400 }), client);
  assert.equal(before.getAssignedGroup(), null);  // an Experiment keeps the answer it was given
  assert.equal(client.getExperiment(VIEWPORT).reason, "assigned");
  assert.equal(client.getExperiment(VIEWPORT, { viewport: 10 }).reason, "targeting");
  client.setAttributes(JSON.parse('{"__proto__": {"viewport": 5000}, "theme": "dark"}'));
  assert.equal({}.viewport, undefined);  // page data never reaches Object.prototype
  assert.equal(client.getExperiment(VIEWPORT).reason, "assigned");
});

test("hashed names: the condition travels under the hashed key", async () => {
  assert.ok(!fixture.hashed.payload.includes(VIEWPORT));
  const { options } = page({ envelope: fixture.hashed, names: [VIEWPORT] });
  const wide = await createClient({ ...options, attributes: { viewport: 1200 } });
  assert.equal(wide.getExperiment(VIEWPORT).getAssignedGroup(),
    serverEntry(fixture.plain, VIEWPORT).group);
  const narrow = await createClient({ ...options, attributes: { viewport: 600 } });
  assert.equal(narrow.getExperiment(VIEWPORT).reason, "targeting");
});

test("an mpo override wins over a failing condition and sends nothing", async () => {
  const { options, sent } = page({ search: `?mpo=${VIEWPORT}:treatment` });
  const experiment = (await createClient(options)).getExperiment(VIEWPORT);
  assert.deepEqual([experiment.getAssignedGroup(), experiment.reason], ["treatment", "override"]);
  assert.equal(experiment.sendExposure(), false);
  assert.equal(sent.length, 0);
});

test("a tampered condition is rejected with the whole payload", async () => {
  const text = fixture.plain.payload;
  const envelope = { ...fixture.plain, payload: text.replace('"$gte":1000', '"$gte":100') };
  assert.notEqual(envelope.payload, text);
  const { options } = page({ envelope, onError: () => {}, attributes: { viewport: 500 } });
  const client = await createClient(options);
  assert.match(client.error, /does not match/);
  assert.equal(client.getExperiment(VIEWPORT).getAssignedGroup(), null);
});

function b64url(bytes) {
  return Buffer.from(bytes).toString("base64url");
}

async function signer() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const { x } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const keys = { keys: [{ kty: "OKP", crv: "Ed25519", x, kid: "node-test" }] };
  const sign = async (payload) => {
    const text = JSON.stringify(payload);
    const sig = await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey,
      new TextEncoder().encode(text));
    return { alg: "EdDSA", kid: "node-test", payload: text, sig: b64url(new Uint8Array(sig)) };
  };
  return { keys, sign };
}

function topLevel(condition, found = new Set()) {
  for (const [key, value] of Object.entries(condition)) {
    if (["$or", "$nor", "$and"].includes(key)) (value ?? []).forEach((c) => topLevel(c, found));
    else if (key === "$not") topLevel(value, found);
    else found.add(key.split(".")[0]);
  }
  return found;
}

test("GrowthBook's evalCondition cases decide entries as published, server values first",
  async (t) => {
    const file = `${refdata}/growthbook-cases.json`;
    if (!existsSync(file)) {
      if (process.env.SPLITLAB_REQUIRE_SERVICES === "1") assert.fail(`${file} is absent`);
      t.skip(`reference data ${file} is absent (set SPLITLAB_REFDATA)`);
      return;
    }
    const cases = JSON.parse(readFileSync(file, "utf8")).evalCondition.filter(
      ([, condition, attributes, , groups]) => !groups && attributes !== null
        && typeof attributes === "object" && !Array.isArray(attributes));
    assert.ok(cases.length > 200);
    const experiments = {};
    const pages = {};
    cases.forEach(([, condition, attributes], index) => {
      // the server knows half of the attributes the condition reads (by sorted name); the
      // page gives the rest, plus a wrong value for each server one, which must lose
      const names = [...topLevel(condition)].filter((n) => Object.hasOwn(attributes, n)).sort();
      const server = Object.fromEntries(
        names.slice(0, names.length >> 1).map((n) => [n, attributes[n]]));
      const page = Object.fromEntries(Object.entries(attributes).map(
        ([n, v]) => [n, Object.hasOwn(server, n) ? { wrong: [v] } : v]));
      experiments[`gb-${index}`] = { group: "treatment", subject_id: "s", exposure_version: "e",
        sampling_unit: "edge-unique", stream_name: "st", schema_id: "/sc",
        targeting: condition, attributes: server };
      pages[`gb-${index}`] = page;
    });
    const { keys, sign } = await signer();
    const issued = Math.floor(NOW / 1000);
    const envelope = await sign({ v: 1, iat: issued, exp: issued + 3600, experiments });
    const client = await createClient(page({ envelope, keys }).options);
    const wrong = cases.filter(([, , , expected], index) =>
      (client.getExperiment(`gb-${index}`, pages[`gb-${index}`]).reason === "assigned")
        !== expected).map(([name]) => name);
    assert.deepEqual(wrong, []);
  });
