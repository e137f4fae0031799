import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Canonical from "./Canonical.ts"

/** JSON cannot tell -0 from 0: compare modulo that quirk. */
const withoutNegativeZero = (v: unknown): unknown => {
  if (typeof v === "number") return Object.is(v, -0) ? 0 : v
  if (Array.isArray(v)) return v.map(withoutNegativeZero)
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v))
      Object.defineProperty(out, k, {
        value: withoutNegativeZero(x),
        enumerable: true,
        writable: true,
        configurable: true
      })
    return out
  }
  return v
}

/** The same value with every object's keys inserted in reverse order. */
const reversedKeys = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(reversedKeys)
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v).reverse())
      Object.defineProperty(out, k, { value: reversedKeys(x), enumerable: true, writable: true, configurable: true })
    return out
  }
  return v
}

describe("Canonical.stringify", () => {
  it("does not depend on key order, at any depth", () => {
    const a = Canonical.stringify({ b: 1, a: { d: [1, 2], c: "x" } })
    const b = Canonical.stringify({ a: { c: "x", d: [1, 2] }, b: 1 })
    expect(a).toBe(b)
    expect(a).toBe("{\"a\":{\"c\":\"x\",\"d\":[1,2]},\"b\":1}")
  })

  it("keeps array order and canonicalises objects nested in arrays", () => {
    expect(Canonical.stringify([[3, [2, { z: 1, a: [] }]], [], [{}], 1])).toBe("[[3,[2,{\"a\":[],\"z\":1}]],[],[{}],1]")
  })

  it("sorts keys by UTF-16 code units (RFC 8785)", () => {
    const value = { "\uFB01": 1, "\u{1F600}": 2, "é": 3, z: 4, a: 5, A: 6, "10": 7, "9": 8 }
    // note: integer-like keys come first in JS property order; they must still sort as strings
    expect(Canonical.stringify(value)).toBe(
      "{\"10\":7,\"9\":8,\"A\":6,\"a\":5,\"z\":4,\"é\":3,\"\u{1F600}\":2,\"\uFB01\":1}"
    )
  })

  it("sorts the keys of small and large objects alike", () => {
    // either side of the size where the sort changes method (24 keys), in every insertion order fast-check makes
    const keys = fc.uniqueArray(fc.string({ unit: "binary" }), { minLength: 0, maxLength: 60 })
    fc.assert(
      fc.property(keys, (ks) => {
        const value: Record<string, number> = {}
        ks.forEach((k, i) => Object.defineProperty(value, k, { value: i, enumerable: true }))
        const expected = `{${[...ks].sort().map((k) => `${JSON.stringify(k)}:${ks.indexOf(k)}`).join(",")}}`
        expect(Canonical.stringify(value)).toBe(expected)
      }),
      { numRuns: 500 }
    )
  })

  it("writes scalars like JSON, with no insignificant whitespace", () => {
    expect(Canonical.stringify(null)).toBe("null")
    expect(Canonical.stringify(true)).toBe("true")
    expect(Canonical.stringify(false)).toBe("false")
    expect(Canonical.stringify(1.5e-7)).toBe("1.5e-7")
    expect(Canonical.stringify(1e21)).toBe("1e+21")
    expect(Canonical.stringify(-0)).toBe("0")
    expect(Canonical.stringify("a \"q\"\n\u0001")).toBe("\"a \\\"q\\\"\\n\\u0001\"")
    expect(Canonical.stringify({ a: [1, { b: null }] })).toBe("{\"a\":[1,{\"b\":null}]}")
  })

  it("drops undefined object fields and writes undefined array items as null, like JSON.stringify", () => {
    expect(Canonical.stringify({ a: undefined, b: 1 })).toBe("{\"b\":1}")
    expect(Canonical.stringify([undefined, 1])).toBe("[null,1]")
  })

  it.each([
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity],
    ["NaN nested in an array in an object", { a: [1, NaN] }],
    ["a bigint", 1n],
    ["a function", () => 1],
    ["a symbol", Symbol("s")],
    ["undefined", undefined]
  ])("rejects %s", (_, value) => {
    expect(() => Canonical.stringify(value)).toThrow(TypeError)
  })

  it("writes any string, as a value or a key, and any finite number exactly as JSON.stringify does", () => {
    // every UTF-16 code unit: quotes, backslashes, control characters, lone surrogates, the rest of Unicode
    const strings = fc.oneof(fc.string({ unit: "binary" }), fc.string({ unit: "binary-ascii" }), fc.string())
    fc.assert(
      fc.property(strings, (s) => {
        expect(Canonical.stringify(s)).toBe(JSON.stringify(s))
        expect(Canonical.stringify({ [s]: s })).toBe(`{${JSON.stringify(s)}:${JSON.stringify(s)}}`)
      }),
      { numRuns: 1000 }
    )
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        expect(Canonical.stringify(n)).toBe(JSON.stringify(n))
      }),
      { numRuns: 1000 }
    )
    for (const s of ["\"", "\\", "\u007f", "\ud800", "a\udfffb", "\u2028", "~", " ", ""])
      expect(Canonical.stringify(s)).toBe(JSON.stringify(s))
  })

  it("round-trips through JSON.parse for any JSON value (modulo -0)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (x) => {
        expect(JSON.parse(Canonical.stringify(x))).toEqual(withoutNegativeZero(x))
      }),
      { numRuns: 500 }
    )
  })

  it("is idempotent over a parse round-trip", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (x) => {
        const once = Canonical.stringify(x)
        expect(Canonical.stringify(JSON.parse(once))).toBe(once)
      }),
      { numRuns: 500 }
    )
  })

  it("is independent of key insertion order for any JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (x) => {
        expect(Canonical.stringify(reversedKeys(x))).toBe(Canonical.stringify(x))
      }),
      { numRuns: 500 }
    )
  })

  it("agrees with JSON.parse on the value of any JSON text", () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const value: unknown = JSON.parse(text)
        expect(JSON.parse(Canonical.stringify(value))).toEqual(withoutNegativeZero(value))
      }),
      { numRuns: 300 }
    )
  })
})
