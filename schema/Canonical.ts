// Canonical JSON (RFC 8785 style: sorted keys, no insignificant whitespace) so that digests of agent specs
// and, later, receipts over journals do not depend on key order or formatting.

/** Printable ASCII without `"` and `\\`: quoted as it is, which JSON.stringify would also do. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

const quote = (s: string) => (PLAIN.test(s) ? `"${s}"` : JSON.stringify(s))

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
      const keys = Object.keys(record).sort()
      let out = "{"
      let first = true
      for (const k of keys) {
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
