// splitlab browser SDK: reads the unit's signed client payload from the page (or evaluates
// remotely over OFREP), exposes the unit's groups, and sends experiment events to the intake.
// No runtime dependencies; WebCrypto for hashing and Ed25519 verification.
import { evalCondition } from "./targeting.js";
import { sha256Hex } from "./tk-v1.js";
import { verifyEnvelope } from "./verify.js";

export { assign, rateFor, subjectId } from "./tk-v1.js";
export { DEFAULT_SCHEMA, exposureMaterial, exposureVersion } from "./exposure-version.js";
export { parseJson } from "./php.js";
export { resolveSlV2, splitFor } from "./sl-v2.js";
export { evalCondition } from "./targeting.js";
export { SignatureError, verifyEnvelope } from "./verify.js";

export const EXPOSURE_ACTION = "experiment_exposure";
export const BOOTSTRAP_ELEMENT_ID = "splitlab-config";
const TEXT_PLAIN = "text/plain;charset=UTF-8";
// The browser value of the web base schema's closed `client_platform` enum (the schema
// requires `agent`; the Python SDK sends the server-side value).
const AGENT = Object.freeze({ client_platform: "mediawiki_js" });
const NAME_KEY_LENGTH = 16;
const LOOSE_NAME = /^[^\s:;=]+$/;
const EXPOSED_PREFIX = "splitlab-exposed:";
const OFREP_CACHE_PREFIX = "splitlab-ofrep:";

/**
 * QA overrides from the `mpo` query parameter, `exp:group;exp2:group2`. One malformed entry
 * invalidates them all (as the server does).
 */
export function parseOverrides(search) {
  const overrides = new Map();
  const text = new URLSearchParams(search || "").get("mpo");
  if (!text) return overrides;
  for (const raw of text.split(";")) {
    const entry = raw.trim();
    if (!entry) continue;
    const at = entry.indexOf(":");
    const name = at < 0 ? "" : entry.slice(0, at).trim();
    const group = at < 0 ? "" : entry.slice(at + 1).trim();
    if (!LOOSE_NAME.test(name) || !LOOSE_NAME.test(group)) return new Map();
    overrides.set(name, group);
  }
  return overrides;
}

function safeStorage(storage) {
  return {
    get(key) {
      try { return storage ? storage.getItem(key) : null; } catch { return null; }
    },
    set(key, value) {
      try { if (storage) storage.setItem(key, value); } catch { /* full or disabled */ }
    },
  };
}

/**
 * What the page sees of a payload entry: `{entry, reason}` with `entry` null unless enrolled.
 * An entry with `targeting` is enrolled only when its condition holds for the entry's server
 * attributes merged over the page's (`pageAttributes`): the server's values win.
 */
function decide(entry, pageAttributes) {
  if (!entry) return { entry: null, reason: null };
  if (!entry.targeting) return { entry, reason: "assigned" };
  try {
    const attributes = { ...pageAttributes, ...(entry.attributes ?? {}) };
    return evalCondition(attributes, entry.targeting)
      ? { entry, reason: "assigned" } : { entry: null, reason: "targeting" };
  } catch {
    return { entry: null, reason: "error" }; // the page must never break on a condition
  }
}

/** One experiment as this page sees it. */
export class Experiment {
  constructor(client, name, decided, override) {
    this.name = name;
    this._client = client;
    this._entry = decided.entry;
    this._override = override ?? null;
    this.reason = this._override === null ? decided.reason : "override";
  }

  /** The unit's group, the forced group under an `mpo` override, or null when not enrolled. */
  getAssignedGroup() {
    return this._override ?? this._entry?.group ?? null;
  }

  /** Whether the unit's group is one of `groups`. */
  isAssignedGroup(...groups) {
    const group = this.getAssignedGroup();
    return group !== null && groups.includes(group);
  }

  /** Whether events are sent for this experiment (enrolled, not overridden, cookies on). */
  get canSend() {
    return this._entry !== null && this._override === null && this._client.cookiesEnabled;
  }

  /** Send an event with `action`; returns whether it was handed to the transport. */
  send(action, interactionData = {}) {
    if (!this.canSend) return false;
    const entry = this._entry;
    this._client._deliver({
      ...interactionData,
      $schema: entry.schema_id,
      meta: { stream: entry.stream_name, domain: this._client.domain },
      agent: { ...AGENT },
      dt: new Date(this._client.now()).toISOString(),
      action,
      experiment: {
        enrolled: this.name,
        assigned: entry.group,
        subject_id: entry.subject_id,
        sampling_unit: entry.sampling_unit,
        coordinator: "default",
        exposure_version: entry.exposure_version,
      },
    });
    return true;
  }

  /** Send the exposure event once per page and once per browser session. */
  sendExposure(interactionData = {}) {
    if (!this.canSend) return false;
    const entry = this._entry;
    const key = `${EXPOSED_PREFIX}${this.name}:${entry.subject_id}:${entry.exposure_version}`;
    if (this._client._exposed.has(key) || this._client._storage.get(key)) return false;
    this._client._exposed.add(key);
    this._client._storage.set(key, "1");
    return this.send(EXPOSURE_ACTION, interactionData);
  }
}

/** The SDK for one page. Build it with createClient(). */
export class SplitlabClient {
  constructor(entries, options, error) {
    const env = options.env;
    this.source = options.source;
    this.error = error ?? null;
    this._entries = entries;
    this._overrides = parseOverrides(env.location?.search);
    this._navigator = env.navigator;
    this._fetch = env.fetch;
    this._storage = safeStorage(env.sessionStorage);
    this._exposed = new Set();
    this.intakeUrl = options.intakeUrl ?? "/v1/events";
    this.domain = env.location?.hostname ?? "";
    this.now = options.now ?? (() => Date.now());
    this.cookiesEnabled = env.navigator?.cookieEnabled !== false;
    this._attributes = Object.create(null); // page data cannot reach Object.prototype
    this.setAttributes(options.attributes);
  }

  /**
   * Merge `attributes` (what the page knows: viewport, page state, ...) into those targeting
   * conditions that travel in the payload see. Experiments asked for afterwards use them.
   */
  setAttributes(attributes) {
    if (attributes && typeof attributes === "object") Object.assign(this._attributes, attributes);
    return this;
  }

  /**
   * The experiment named `name` (never throws; unknown experiments are "not enrolled"), with
   * its condition, if the payload left one to the page, decided now on the client's attributes
   * and `attributes` over them.
   */
  getExperiment(name, attributes) {
    const decided = decide(this._entries.get(name), { ...this._attributes, ...attributes });
    return new Experiment(this, name, decided, this._overrides.get(name));
  }

  /**
   * The names of the experiments the unit is enrolled in, conditions decided on the client's
   * attributes (plain names only).
   */
  get enrolled() {
    return [...this._entries.entries()]
      .filter(([, entry]) => decide(entry, this._attributes).entry !== null)
      .map(([name]) => name);
  }

  // The body goes as text/plain (a CORS-safelisted type: the intake parses it as JSON), so a
  // beacon or fetch to an intake on another origin needs no preflight.
  _deliver(event) {
    const body = JSON.stringify([event]);
    const nav = this._navigator;
    try {
      if (nav?.sendBeacon?.(this.intakeUrl, new Blob([body], { type: TEXT_PLAIN }))) return;
    } catch { /* fall back to fetch */ }
    try {
      Promise.resolve(this._fetch?.(this.intakeUrl, {
        method: "POST", body, keepalive: true, credentials: "same-origin",
        headers: { "content-type": TEXT_PLAIN },
      })).catch(() => {});
    } catch { /* the page must never break on analytics */ }
  }
}

async function resolveNames(experiments, salt, names) {
  const entries = new Map();
  if (!salt) {
    for (const [name, entry] of Object.entries(experiments)) entries.set(name, entry);
    return entries;
  }
  for (const name of names ?? []) {
    const key = (await sha256Hex(salt + name)).slice(0, NAME_KEY_LENGTH);
    if (experiments[key]) entries.set(name, experiments[key]);
  }
  return entries;
}

async function fetchJson(fetchFn, url, init) {
  const response = await fetchFn(url, init);
  if (!response.ok && response.status !== 304) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

async function bootstrapEntries(options, env) {
  let envelope = options.envelope;
  if (!envelope) {
    const element = env.document?.getElementById(options.elementId ?? BOOTSTRAP_ELEMENT_ID);
    if (!element) return new Map();
    envelope = JSON.parse(element.textContent);
  }
  const keys = options.keys ?? await (await fetchJson(
    env.fetch, options.keysUrl ?? "/.well-known/splitlab-keys.json", { credentials: "omit" })).json();
  const now = (options.now ?? Date.now)();
  const payload = await verifyEnvelope(envelope, keys, Math.floor(now / 1000));
  return resolveNames(payload.experiments ?? {}, payload.salt, options.names);
}

async function ofrepEntries(ofrep, env) {
  const storage = safeStorage(env.sessionStorage);
  const cacheKey = OFREP_CACHE_PREFIX + ofrep.targetingKey;
  const cached = JSON.parse(storage.get(cacheKey) ?? "null");
  const headers = { "content-type": "application/json", ...(ofrep.headers ?? {}) };
  if (cached?.etag) headers["if-none-match"] = cached.etag;
  const response = await fetchJson(env.fetch, ofrep.url ?? "/ofrep/v1/evaluate/flags", {
    method: "POST", headers, body: JSON.stringify({ context: { targetingKey: ofrep.targetingKey } }),
  });
  let flags = cached?.flags ?? [];
  if (response.status !== 304) {
    flags = (await response.json()).flags ?? [];
    storage.set(cacheKey, JSON.stringify({ etag: response.headers.get("etag"), flags }));
  }
  const entries = new Map();
  for (const flag of flags) {
    const meta = flag.metadata ?? {};
    if (flag.reason !== "SPLIT" || meta.enrolled !== true) continue;
    entries.set(flag.key, { group: flag.value, subject_id: meta.subject_id,
      exposure_version: meta.exposure_version, sampling_unit: meta.sampling_unit,
      stream_name: meta.stream_name, schema_id: meta.schema_id });
  }
  return entries;
}

/**
 * Build the SDK for this page. Never rejects: on any failure (no payload, a payload that does
 * not verify, a failed request) the client has no experiments and `client.error` says why.
 * Remote evaluation over OFREP when `options.ofrep` is given, else the page's bootstrap block.
 */
export async function createClient(options = {}) {
  const env = {
    document: options.document ?? globalThis.document,
    location: options.location ?? globalThis.location,
    navigator: options.navigator ?? globalThis.navigator,
    sessionStorage: options.sessionStorage ?? globalThis.sessionStorage,
    fetch: options.fetch ?? globalThis.fetch?.bind(globalThis),
  };
  const source = options.ofrep ? "ofrep" : "bootstrap";
  const settings = { env, source, intakeUrl: options.intakeUrl, now: options.now,
    attributes: options.attributes };
  try {
    const entries = options.ofrep
      ? await ofrepEntries(options.ofrep, env)
      : await bootstrapEntries(options, env);
    return new SplitlabClient(entries, settings);
  } catch (error) {
    (options.onError ?? console.warn)(`splitlab: no experiments applied: ${error.message}`);
    return new SplitlabClient(new Map(), settings, String(error.message ?? error));
  }
}
