import { describe, expect, it } from "vitest"
import * as Split from "./Split.ts"

describe("Split (FNV-1a)", () => {
  it("is FNV-1a 32-bit: the published test vectors", () => {
    expect(Split.fnv1a("")).toBe(0x811c9dc5)
    expect(Split.fnv1a("a")).toBe(0xe40c292c)
    expect(Split.fnv1a("foobar")).toBe(0xbf9cf968)
  })

  it("assigns the same key the same arm, and about half of 200 keys to each arm at 50%", () => {
    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`)
    const arms = keys.map((k) => Split.armOf("exp_1", 50, k))
    expect(keys.map((k) => Split.armOf("exp_1", 50, k))).toEqual(arms)
    const variant = arms.filter((a) => a === "variant").length
    expect(variant).toBeGreaterThan(70)
    expect(variant).toBeLessThan(130)
  })

  it("sends nothing to the variant at 0% and everything at 100%", () => {
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
    expect(keys.every((k) => Split.armOf("exp_2", 0, k) === "control")).toBe(true)
    expect(keys.every((k) => Split.armOf("exp_2", 100, k) === "variant")).toBe(true)
  })

  it("splits independently per experiment", () => {
    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`)
    const a = keys.map((k) => Split.armOf("exp_a", 50, k))
    const b = keys.map((k) => Split.armOf("exp_b", 50, k))
    expect(a).not.toEqual(b)
  })
})
