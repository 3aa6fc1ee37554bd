// Assignment algorithm tk-v1 (Test Kitchen compatible), see DESIGN.md:
//   subject_id = sha256_hex(String(identifier) + name)
//   h = int(subject_id[0:6], 16) / 2**24; scaled = h * max(1, groups.length)
//   in sample when scaled - floor(scaled) < rate; group = groups[floor(scaled)]
// The arithmetic below is the same in integers: value * count is scaled * 2**24 exactly.

const SPACE = 2 ** 24;

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** sha256 of UTF-8 text, lower-case hex (WebCrypto). */
export async function sha256Hex(text) {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return hex(digest);
}

/** The per-experiment pseudonym of a unit. */
export function subjectId(identifier, experimentName) {
  return sha256Hex(String(identifier) + experimentName);
}

/** The rate in force on `site`: a site listed under a rate key, else `default`. */
export function rateFor(sampleRate, site) {
  if (typeof sampleRate === "number") return sampleRate;
  if (site != null) {
    for (const [key, sites] of Object.entries(sampleRate)) {
      if (key !== "default" && Array.isArray(sites) && sites.includes(site)) return Number(key);
    }
  }
  return sampleRate.default;
}

/**
 * Assign one unit: resolves to {subject_id, in_sample, group} (group null when out of sample).
 */
export async function assign(identifier, experimentName, groups, sampleRate, site = null) {
  const subject = await subjectId(identifier, experimentName);
  const value = parseInt(subject.slice(0, 6), 16);
  const count = Math.max(1, groups.length);
  const product = value * count; // < 2**32: exact
  const index = Math.floor(product / SPACE);
  const inSample = product % SPACE < rateFor(sampleRate, site) * SPACE;
  return { subject_id: subject, in_sample: inSample, group: inSample ? groups[index] : null };
}
