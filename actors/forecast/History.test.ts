// The history's statistics on their own: Student's t, and the cost read off a version's runs, which the forecast's
// coverage and its estimate must agree on.
import { describe, expect, it } from "vitest"
import * as History from "./History.ts"

const runs: ReadonlyArray<History.Sample> = [200, 400, 800, 1600, 3200, 300, 600, 1200].map((baseline, i) => ({
  baseline,
  tokensIn: 3 * baseline,
  tokensOut: 100 + 10 * i,
  costUsd: 1e-6 * baseline * (1 + (i % 3) / 10)
}))

describe("History", () => {
  it("approximates Student's t quantile", () => {
    expect(History.t90(1)).toBeCloseTo(3.078, 0)
    expect(Math.abs(History.t90(3) - 1.638)).toBeLessThan(0.01)
    expect(Math.abs(History.t90(10) - 1.372)).toBeLessThan(0.002)
    expect(Math.abs(History.t90(1000) - 1.2824)).toBeLessThan(0.001)
  })

  it("given runs whose cost grows with the prompt, then the cost is read off them the same either way, ordered", () => {
    for (const scaling of ["fitted", "ratio", "absolute"] as const) {
      const { estimate } = History.fromHistory(1000, runs, { scaling })
      expect(History.costAt(1000, runs, { scaling })).toEqual(estimate.costUsd)
      expect(estimate.costUsd.p10).toBeLessThanOrEqual(estimate.costUsd.p50)
      expect(estimate.costUsd.p50).toBeLessThanOrEqual(estimate.costUsd.p90)
    }
    const { slope } = History.fromHistory(1000, runs)
    expect(slope).toBeGreaterThan(0.8)
    expect(slope).toBeLessThan(1.2)
  })

  it("given only zero-cost runs, then the cost is zero at every quantile", () =>
    expect(History.costAt(500, runs.map((r) => ({ ...r, costUsd: 0 })), History.defaults)).toEqual({
      p10: 0,
      p50: 0,
      p90: 0
    }))
})
