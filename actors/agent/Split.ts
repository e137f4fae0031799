// Which arm of an A/B experiment a run falls in (ADR 0058): FNV-1a (32-bit) over the UTF-8 bytes of
// `<experimentId>:<key>`, where the key is the caller's Idempotency-Key or else the run's id. Deterministic (the same
// key always gets the same arm, on any host, after any restart) and independent between experiments.

const OFFSET = 0x811c9dc5
const PRIME = 0x01000193

/** FNV-1a, 32-bit, of a string's UTF-8 bytes. */
export const fnv1a = (text: string): number => {
  let hash = OFFSET
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte
    hash = Math.imul(hash, PRIME) >>> 0
  }
  return hash >>> 0
}

/** The key's bucket in 0..9999: basis points, so a split of 12.5% is as exact as one of 50%. */
export const bucketOf = (experimentId: string, key: string): number => fnv1a(`${experimentId}:${key}`) % 10_000

/** The arm a key falls in under a split giving the variant `trafficPercent` (0..100) of the runs. */
export const armOf = (experimentId: string, trafficPercent: number, key: string): "control" | "variant" =>
  bucketOf(experimentId, key) < Math.round(trafficPercent * 100) ? "variant" : "control"
