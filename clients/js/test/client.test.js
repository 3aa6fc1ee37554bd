// The browser SDK over a payload signed by the Python side (test/fixtures/signed.json),
// with in-memory stand-ins for the page (document, location, navigator, sessionStorage).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { assign, createClient, parseOverrides } from "../src/index.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/signed.json", import.meta.url)));
const NOW = Date.UTC(2026, 10, 22, 12, 30);

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(key) { return this.items.has(key) ? this.items.get(key) : null; }
  setItem(key, value) { this.items.set(key, String(value)); }
}

function page({ envelope = fixture.plain, search = "", cookieEnabled = true, beacon = true,
  storage = new MemoryStorage() } = {}) {
  const sent = [];
  const element = { textContent: JSON.stringify(envelope) };
  const options = {
    document: { getElementById: (id) => (id === "splitlab-config" ? element : null) },
    location: { search, hostname: "wiki.example" },
    navigator: {
      cookieEnabled,
      sendBeacon: beacon ? (url, blob) => { sent.push({ via: "beacon", url, blob }); return true; }
        : undefined,
    },
    sessionStorage: storage,
    fetch: async (url, init) => { sent.push({ via: "fetch", url, init }); return { ok: true }; },
    keys: fixture.keys,
    now: () => NOW,
    onError: () => {},
  };
  return { options, sent, storage };
}

async function events(sent) {
  const out = [];
  for (const item of sent) {
    const text = item.via === "beacon" ? await item.blob.text() : item.init.body;
    out.push(...JSON.parse(text));
  }
  return out;
}

test("a verified bootstrap gives the groups that tk-v1 computes for the unit", async () => {
  const { options } = page();
  const client = await createClient(options);
  assert.equal(client.error, null);
  for (const name of ["sticky-header-exp", "dark-mode-exp-1"]) {
    const expected = await assign("reader-42", name, name === "sticky-header-exp"
      ? ["control", "treatment"] : ["control", "dark"], 1);
    const experiment = client.getExperiment(name);
    assert.equal(experiment.getAssignedGroup(), expected.group);
    assert.ok(experiment.isAssignedGroup("nope", expected.group));
    assert.equal(experiment.isAssignedGroup("nope"), false);
  }
  assert.equal(client.getExperiment("unknown-exp-x").getAssignedGroup(), null);
  assert.equal(client.getExperiment("unknown-exp-x").sendExposure(), false);
});

test("a payload with one byte changed is rejected and no group is applied", async () => {
  const text = fixture.plain.payload;
  const at = text.indexOf("treatment");
  const tampered = [
    { ...fixture.plain, payload: text.slice(0, at) + "control" + text.slice(at + 9) },
    { ...fixture.plain, payload: text.slice(0, at) + "u" + text.slice(at + 1) },
    { ...fixture.plain, sig: (fixture.plain.sig[0] === "A" ? "B" : "A") + fixture.plain.sig.slice(1) },
  ];
  for (const envelope of tampered) {
    const { options, sent } = page({ envelope });
    const client = await createClient(options);
    assert.match(client.error, /does not match/);
    assert.equal(client.getExperiment("sticky-header-exp").getAssignedGroup(), null);
    assert.equal(client.getExperiment("sticky-header-exp").sendExposure(), false);
    assert.equal(sent.length, 0);
  }
});

test("an expired payload or an unknown key is rejected", async () => {
  const { options } = page();
  const late = await createClient({ ...options, now: () => NOW + 2 * 86_400_000 });
  assert.match(late.error, /expired/);
  const other = await createClient({ ...options, keys: { keys: [] } });
  assert.match(other.error, /no Ed25519 key/);
  assert.equal(other.getExperiment("sticky-header-exp").getAssignedGroup(), null);
});

test("the exposure is sent once per page and once per session, in the event shape", async () => {
  const storage = new MemoryStorage();
  const first = page({ storage });
  const client = await createClient(first.options);
  const experiment = client.getExperiment("sticky-header-exp");
  assert.equal(experiment.sendExposure(), true);
  assert.equal(experiment.sendExposure(), false);
  const second = page({ storage });
  const again = await createClient(second.options);
  assert.equal(again.getExperiment("sticky-header-exp").sendExposure(), false);
  assert.equal(second.sent.length, 0);
  const [event] = await events(first.sent);
  const payload = JSON.parse(fixture.plain.payload).experiments["sticky-header-exp"];
  assert.deepEqual(event, {
    $schema: "/analytics/product_metrics/web/base/2.1.0",
    meta: { stream: "product_metrics.web_base", domain: "wiki.example" },
    agent: { client_platform: "mediawiki_js" },
    dt: new Date(NOW).toISOString(),
    action: "experiment_exposure",
    experiment: {
      enrolled: "sticky-header-exp", assigned: "treatment", subject_id: payload.subject_id,
      sampling_unit: "edge-unique", coordinator: "default", exposure_version: payload.exposure_version,
    },
  });
  assert.equal(first.sent[0].url, "/v1/events");
  // CORS-safelisted, so a beacon to an intake on another origin needs no preflight
  assert.equal(first.sent[0].blob.type, "text/plain;charset=utf-8");
});

test("send() carries interaction data but cannot overwrite the experiment fields", async () => {
  const { options, sent } = page();
  const client = await createClient(options);
  client.getExperiment("dark-mode-exp-1").send("click", {
    action_source: "toolbar", experiment: { assigned: "forged" }, action: "forged" });
  const [event] = await events(sent);
  assert.equal(event.action, "click");
  assert.equal(event.action_source, "toolbar");
  assert.equal(event.experiment.assigned, "control");
});

test("without sendBeacon the event goes by fetch with keepalive", async () => {
  const { options, sent } = page({ beacon: false });
  const client = await createClient(options);
  assert.ok(client.getExperiment("sticky-header-exp").sendExposure());
  assert.equal(sent[0].via, "fetch");
  assert.equal(sent[0].init.keepalive, true);
  assert.equal(sent[0].init.method, "POST");
  assert.equal(sent[0].init.headers["content-type"], "text/plain;charset=UTF-8");
});

test("an mpo override forces the group and then nothing is sent", async () => {
  const { options, sent } = page({ search: "?mpo=sticky-header-exp:control;other-exp-9:b" });
  const client = await createClient(options);
  assert.equal(client.getExperiment("sticky-header-exp").getAssignedGroup(), "control");
  assert.equal(client.getExperiment("other-exp-9").getAssignedGroup(), "b");
  assert.equal(client.getExperiment("sticky-header-exp").sendExposure(), false);
  assert.equal(client.getExperiment("sticky-header-exp").send("click"), false);
  assert.equal(sent.length, 0);
  assert.equal(parseOverrides("?mpo=good-exp:a;bad").size, 0);
});

test("with cookies disabled no event is sent", async () => {
  const { options, sent } = page({ cookieEnabled: false });
  const client = await createClient(options);
  assert.equal(client.getExperiment("sticky-header-exp").getAssignedGroup(), "treatment");
  assert.equal(client.getExperiment("sticky-header-exp").sendExposure(), false);
  assert.equal(sent.length, 0);
});

test("hashed names resolve only for the names the page declares", async () => {
  const { options } = page({ envelope: fixture.hashed });
  assert.ok(!fixture.hashed.payload.includes("sticky-header-exp"));
  const client = await createClient({ ...options, names: ["sticky-header-exp"] });
  assert.equal(client.getExperiment("sticky-header-exp").getAssignedGroup(), "treatment");
  assert.equal(client.getExperiment("dark-mode-exp-1").getAssignedGroup(), null);
});

test("no bootstrap element: no experiments, no error", async () => {
  const { options } = page();
  const client = await createClient({ ...options, document: { getElementById: () => null } });
  assert.equal(client.error, null);
  assert.deepEqual(client.enrolled, []);
});

test("remote evaluation caches the bulk result and revalidates with its ETag", async () => {
  const storage = new MemoryStorage();
  const requests = [];
  const flags = [
    { key: "sticky-header-exp", value: "treatment", variant: "treatment", reason: "SPLIT",
      metadata: { enrolled: true, subject_id: "s1", exposure_version: "v1",
        sampling_unit: "edge-unique", stream_name: "st", schema_id: "/sc" } },
    { key: "idle-exp-1", value: "control", reason: "DEFAULT", metadata: { enrolled: false } },
  ];
  const server = async (url, init) => {
    requests.push({ url, init });
    const fresh = init.headers["if-none-match"] !== '"e1"';
    return { ok: fresh, status: fresh ? 200 : 304,
      headers: { get: (name) => (name === "etag" ? '"e1"' : null) },
      json: async () => ({ flags }) };
  };
  const base = { sessionStorage: storage, fetch: server, onError: () => {},
    ofrep: { targetingKey: "reader-42", headers: { "x-api-key": "k" } },
    navigator: { cookieEnabled: true }, location: { search: "", hostname: "h" } };
  const one = await createClient(base);
  const two = await createClient(base);
  for (const client of [one, two]) {
    assert.equal(client.error, null);
    assert.equal(client.getExperiment("sticky-header-exp").getAssignedGroup(), "treatment");
    assert.equal(client.getExperiment("idle-exp-1").getAssignedGroup(), null);
  }
  assert.equal(requests[0].url, "/ofrep/v1/evaluate/flags");
  assert.deepEqual(JSON.parse(requests[0].init.body), { context: { targetingKey: "reader-42" } });
  assert.equal(requests[0].init.headers["x-api-key"], "k");
  assert.equal(requests[1].init.headers["if-none-match"], '"e1"');
});
