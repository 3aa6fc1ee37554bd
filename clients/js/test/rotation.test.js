// Key rotation: the service publishes its current and next signing keys (and, after a rotation,
// the previous one). Payloads signed on either side of a rotation must verify with the key set a
// browser fetched on the other side. Fixture: test/fixtures/rotation.json (make_rotation.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { createClient } from "../src/index.js";
import { verifyEnvelope } from "../src/verify.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/rotation.json", import.meta.url)));
const NOW_SECONDS = Date.UTC(2026, 10, 22, 12, 30) / 1000;

function client(envelope, keys) {
  const element = { textContent: JSON.stringify(envelope) };
  return createClient({
    document: { getElementById: (id) => (id === "splitlab-config" ? element : null) },
    location: { search: "", hostname: "wiki.example" },
    navigator: { cookieEnabled: true, sendBeacon: () => true },
    sessionStorage: null,
    fetch: async () => ({ ok: true }),
    keys,
    now: () => NOW_SECONDS * 1000,
    onError: () => {},
  });
}

test("the key set lists the signing key and the next one, which signs after the rotation", () => {
  const before = fixture.keys_before.keys.map((k) => k.kid);
  const after = fixture.keys_after.keys.map((k) => k.kid);
  assert.equal(before.length, 2);
  assert.equal(fixture.signed_before.kid, before[0]);
  assert.equal(fixture.signed_after.kid, before[1]);
  assert.equal(after[0], before[1]);
  assert.ok(after.includes(before[0]), "the retired key stays published for one rotation");
});

test("a payload signed after the rotation verifies with the key set cached before it", async () => {
  const payload = await verifyEnvelope(fixture.signed_after, fixture.keys_before, NOW_SECONDS);
  assert.equal(payload.experiments["sticky-header-exp"].subject_id.length, 64);
  const page = await client(fixture.signed_after, fixture.keys_before);
  assert.equal(page.error, null);
  assert.notEqual(page.getExperiment("sticky-header-exp").getAssignedGroup(), null);
});

test("a payload signed before the rotation verifies with the key set fetched after it", async () => {
  const page = await client(fixture.signed_before, fixture.keys_after);
  assert.equal(page.error, null);
  assert.notEqual(page.getExperiment("sticky-header-exp").getAssignedGroup(), null);
});

test("without the next key in the cached set, the rotated payload would be refused", async () => {
  const onlyCurrent = { keys: [fixture.keys_before.keys[0]] };
  await assert.rejects(verifyEnvelope(fixture.signed_after, onlyCurrent, NOW_SECONDS),
    /no Ed25519 key/);
  const page = await client(fixture.signed_after, onlyCurrent);
  assert.match(page.error, /no Ed25519 key/);
  assert.equal(page.getExperiment("sticky-header-exp").getAssignedGroup(), null);
});

test("the key is chosen by kid: another key's signature does not verify", async () => {
  const [first, second] = fixture.keys_before.keys;
  const swapped = { keys: [{ ...first, kid: second.kid }, { ...second, kid: first.kid }] };
  await assert.rejects(verifyEnvelope(fixture.signed_after, swapped, NOW_SECONDS),
    /does not match/);
});
