// Canonical JSON (RFC 8785 style: sorted keys, no insignificant whitespace) so that digests of agent specs
// and, later, receipts over journals do not depend on key order or formatting.

/** Printable ASCII without `"` and `\\`: quoted as it is, which JSON.stringify would also do. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

const quote = (s: string) => (PLAIN.test(s) ? `"${s}"` : JSON.stringify(s))

/** Objects with more keys than this are sorted by Array.prototype.sort; fewer, in place by insertion. */
const INSERTION_SORT_MAX = 24

/**
 * `keys` sorted in place by UTF-16 code units, as `sort()` does: the objects of an event have a handful of keys, and
 * `sort()` allocates a work array per call (5% of everything a run allocated, sampled, when receipts hashed with it).
 */
const sortKeys = (keys: Array<string>): Array<string> => {
  if (keys.length > INSERTION_SORT_MAX) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!
    let j = i - 1
    for (; j >= 0 && keys[j]! > k; j--) keys[j + 1] = keys[j]!
    keys[j + 1] = k
  }
  return keys
}

/**
 * Serialises a JSON value canonically. Throws on values JSON cannot represent (NaN, Infinity, functions). Built
 * by concatenation in one pass over each object's sorted keys: a receipt hashes every line of a run's journal
 * with it, about eight times the cost of JSON.stringify when written with filter, map and join.
 */
export const stringify = (value: unknown): string => {
  if (value === null) return "null"
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false"
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot encode ${value}`)
      // what JSON.stringify gives a finite number (-0 included: "0")
      return String(value)
    case "string":
      return quote(value)
    case "object": {
      if (Array.isArray(value)) {
        let out = "["
        for (let i = 0; i < value.length; i++) {
          const v: unknown = value[i]
          out += (i === 0 ? "" : ",") + stringify(v === undefined ? null : v)
        }
        return out + "]"
      }
      const record = value as Record<string, unknown>
      const keys = sortKeys(Object.keys(record))
      let out = "{"
      let first = true
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!
        const v = record[k]
        if (v === undefined) continue
        out += (first ? "" : ",") + quote(k) + ":" + stringify(v)
        first = false
      }
      return out + "}"
    }
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value}`)
  }
}
