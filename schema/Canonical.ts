// Canonical JSON (RFC 8785 style: sorted keys, no insignificant whitespace) so that digests of agent specs
// and, later, receipts over journals do not depend on key order or formatting.

/** Serialises a JSON value canonically. Throws on values JSON cannot represent (NaN, Infinity, functions). */
export const stringify = (value: unknown): string => {
  if (value === null) return "null"
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false"
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot encode ${value}`)
      return JSON.stringify(value)
    case "string":
      return JSON.stringify(value)
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v) => stringify(v === undefined ? null : v)).join(",")}]`
      const entries = Object.keys(value as object)
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${stringify((value as Record<string, unknown>)[k])}`)
      return `{${entries.join(",")}}`
    }
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value}`)
  }
}
