/** One enrollment in a client payload. */
export interface PayloadEntry {
  group: string;
  subject_id: string;
  exposure_version: string;
  sampling_unit: string;
  stream_name: string;
  schema_id: string;
  /**
   * A targeting condition the server left to the page (it reads an attribute the server does
   * not know): the unit is enrolled only when it holds.
   */
  targeting?: Condition;
  /** The server's values of the attributes `targeting` reads (they win over the page's). */
  attributes?: Attributes;
}

/** Attributes a targeting condition sees (a missing one is null). */
export type Attributes = Record<string, unknown>;

/** A signed client payload, as the service or the Python SDK renders it. */
export interface Envelope {
  alg: "EdDSA";
  kid: string;
  payload: string;
  sig: string;
}

export interface JsonWebKeySet {
  keys: Array<{ kty: string; crv: string; x: string; kid: string; alg?: string; use?: string }>;
}

export interface AssignmentResult {
  subject_id: string;
  in_sample: boolean;
  group: string | null;
}

export type SampleRate = number | ({ default: number } & Record<string, number | string[]>);

export interface OfrepOptions {
  /** Bulk evaluation URL (default `/ofrep/v1/evaluate/flags`). */
  url?: string;
  /** The identifier of the unit (the experiments' sampling unit). */
  targetingKey: string;
  /** Extra request headers, for example `{ "x-api-key": "..." }`. */
  headers?: Record<string, string>;
}

export interface ClientOptions {
  /** Read the bootstrap from this element id (default `splitlab-config`). */
  elementId?: string;
  /** Use this envelope instead of reading the page. */
  envelope?: Envelope;
  /** Public keys; fetched from `keysUrl` when absent. */
  keys?: JsonWebKeySet;
  keysUrl?: string;
  /** Remote evaluation instead of the bootstrap. */
  ofrep?: OfrepOptions;
  /** Experiment names the page asks for, needed when the payload hashes names. */
  names?: string[];
  /** What the page knows for conditions that travel in the payload (see `setAttributes`). */
  attributes?: Attributes;
  /** Where events go (default `/v1/events`). */
  intakeUrl?: string;
  /** Milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  onError?: (message: string) => void;
  document?: Pick<Document, "getElementById">;
  location?: Pick<Location, "search" | "hostname">;
  navigator?: Partial<Pick<Navigator, "sendBeacon" | "cookieEnabled">>;
  sessionStorage?: Pick<Storage, "getItem" | "setItem">;
  fetch?: typeof fetch;
}

export declare class Experiment {
  readonly name: string;
  /**
   * Why the unit has its group or none: "assigned", "override" (an `mpo` override), "targeting"
   * (the payload's condition does not hold for the attributes), "error" (the condition could not
   * be evaluated), or null when the payload does not list the experiment (not enrolled).
   */
  readonly reason: "assigned" | "override" | "targeting" | "error" | null;
  getAssignedGroup(): string | null;
  isAssignedGroup(...groups: string[]): boolean;
  readonly canSend: boolean;
  send(action: string, interactionData?: Record<string, unknown>): boolean;
  sendExposure(interactionData?: Record<string, unknown>): boolean;
}

export declare class SplitlabClient {
  readonly source: "bootstrap" | "ofrep";
  readonly error: string | null;
  readonly intakeUrl: string;
  readonly cookiesEnabled: boolean;
  /** Enrolled experiments (plain names), conditions decided on the client's attributes. */
  readonly enrolled: string[];
  /** Merge page attributes for conditions that travel in the payload; returns the client. */
  setAttributes(attributes: Attributes): this;
  /**
   * The experiment `name`; a condition the payload carries is decided now, on the client's
   * attributes with `attributes` over them and the server's values over both.
   */
  getExperiment(name: string, attributes?: Attributes): Experiment;
}

export declare const EXPOSURE_ACTION: "experiment_exposure";
export declare const BOOTSTRAP_ELEMENT_ID: "splitlab-config";
export declare function createClient(options?: ClientOptions): Promise<SplitlabClient>;
export declare function parseOverrides(search: string | undefined): Map<string, string>;
export declare function assign(
  identifier: string | number, experimentName: string, groups: string[],
  sampleRate: SampleRate, site?: string | null): Promise<AssignmentResult>;
export declare function subjectId(identifier: string | number, experimentName: string): Promise<string>;
export declare function rateFor(sampleRate: SampleRate, site: string | null | undefined): number;
export type Condition = Record<string, unknown>;
export interface SlV2Row {
  name: string;
  groups: string[];
  traffic_split: Record<string, Record<string, number>>;
  layer?: { name: string; range: [number, number] };
  holdouts?: { name: string; percent: number }[];
  targeting?: Condition;
}
export interface Resolution {
  group: string | null;
  reason: "assigned" | "not_sampled" | "holdout" | "layer" | "targeting";
  subject_id: string;
}
export declare function resolveSlV2(
  identifier: string | number, row: SlV2Row, site?: string | null,
  attributes?: Record<string, unknown>): Promise<Resolution>;
export declare function splitFor(
  trafficSplit: SlV2Row["traffic_split"], groups: string[], site: string | null | undefined,
): { shares: number[]; slots: number; rate: number } | null;
export declare function evalCondition(
  attributes: Record<string, unknown>, condition: Condition,
  savedGroups?: Record<string, unknown[]>): boolean;
export declare class SignatureError extends Error {}
export declare function verifyEnvelope(
  envelope: Envelope, jwks: JsonWebKeySet, nowSeconds: number): Promise<Record<string, unknown>>;

/** A JSON value as PHP's json_decode reads it: objects keep their key order, integers stay exact. */
export type PhpJsonValue =
  | null | boolean | number | bigint | string | PhpJsonValue[] | Map<string, PhpJsonValue>;
/** Test Kitchen's base schema id, the `schema_id` of a row that names none. */
export declare const DEFAULT_SCHEMA: "/analytics/product_metrics/web/base/2.1.0";
/** Parse JSON text keeping what PHP sees: key order (Maps) and integer literals (BigInts). */
export declare function parseJson(text: string): PhpJsonValue;
/**
 * The text Test Kitchen hashes for a served experiment row: pass the row's JSON text or a
 * parseJson() value for an exact answer (a plain object loses index-like key order).
 */
export declare function exposureMaterial(row: string | PhpJsonValue | Record<string, unknown>): string;
/** Test Kitchen's `exposure_version` of a served experiment row (16 lower-case hex digits). */
export declare function exposureVersion(
  row: string | PhpJsonValue | Record<string, unknown>): Promise<string>;
