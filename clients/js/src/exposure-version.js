// Test Kitchen's config digest `exposure_version`, as its MediaWiki extension computes it in PHP
// (DESIGN.md, config digest): the first 16 hex digits of sha256 over PHP's json_encode
// (slashes and Unicode unescaped, serialize_precision -1) of name, user_identifier_type, groups
// in PHP sort() order, sample_rate as served, stream_name, schema_id (default: the base schema)
// and contextual_attributes (default []). Checked against tests/vectors/exposure-version.json,
// which Test Kitchen's own PHP produced.
//
// PHP reads the served JSON text, so two things a plain JSON.parse loses matter: the order of
// object keys that look like array indexes ("0", "1": a per-site rate of 0 or 1), and whether a
// number was written as an integer. Pass the row's JSON text, or a value from parseJson(), to keep
// both; a plain object is read as JSON.parse left it.
import { parseJson, phpCompare, phpJson, phpSort } from "./php.js";
import { sha256Hex } from "./tk-v1.js";

export const DEFAULT_SCHEMA = "/analytics/product_metrics/web/base/2.1.0";

/** The text Test Kitchen hashes for a served row (JSON text, a parseJson value or an object). */
export function exposureMaterial(row) {
  const parsed = typeof row === "string" ? parseJson(row) : row;
  const get = (key) => (parsed instanceof Map ? parsed.get(key) : parsed?.[key]) ?? null;
  const semantic = new Map([
    ["name", get("name")],
    ["user_identifier_type", get("user_identifier_type")],
    ["groups", phpSort(get("groups") ?? [], phpCompare)],
    ["sample_rate", get("sample_rate") ?? []],
    ["stream_name", get("stream_name")],
    ["schema_id", get("schema_id") ?? DEFAULT_SCHEMA],
    ["contextual_attributes", get("contextual_attributes") ?? []],
  ]);
  return phpJson(semantic);
}

/** Test Kitchen's `exposure_version` of a served row: resolves to 16 lower-case hex digits. */
export async function exposureVersion(row) {
  return (await sha256Hex(exposureMaterial(row))).slice(0, 16);
}
