// Verification of a signed client payload envelope:
//   {alg: "EdDSA", kid, payload: "<canonical JSON text>", sig: "<base64url Ed25519 signature>"}
// The signature covers the UTF-8 bytes of `payload` exactly; it is parsed only once verified.

/** Base64url (no padding) to bytes; throws on malformed input. */
export function base64urlDecode(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export class SignatureError extends Error {
  constructor(message) {
    super(message);
    this.name = "SignatureError";
  }
}

/**
 * The payload of `envelope` once its Ed25519 signature verifies against a key of the JWK set
 * `jwks` with the same `kid`, and it has not expired at `nowSeconds`. Rejects with
 * SignatureError otherwise.
 */
export async function verifyEnvelope(envelope, jwks, nowSeconds) {
  if (!envelope || typeof envelope.payload !== "string" || typeof envelope.sig !== "string") {
    throw new SignatureError("envelope needs string 'payload' and 'sig'");
  }
  const jwk = (jwks?.keys ?? []).find((k) => k && k.kid === envelope.kid);
  if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519") {
    throw new SignatureError(`no Ed25519 key with kid ${envelope.kid}`);
  }
  const subtle = globalThis.crypto.subtle;
  const key = await subtle.importKey(
    "jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
  let signature;
  try {
    signature = base64urlDecode(envelope.sig);
  } catch {
    throw new SignatureError("signature is not base64url");
  }
  const data = new TextEncoder().encode(envelope.payload);
  if (!(await subtle.verify({ name: "Ed25519" }, key, signature, data))) {
    throw new SignatureError("signature does not match the payload");
  }
  const payload = JSON.parse(envelope.payload);
  if (typeof payload.exp !== "number" || nowSeconds >= payload.exp) {
    throw new SignatureError("payload has expired");
  }
  return payload;
}
