import { Effect, Layer } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import * as Prices from "../model/Prices.ts"
import * as Quote from "../model/Quote.ts"
import * as Tokenizer from "../model/Tokenizer.ts"
import * as Forecast from "./Forecast.ts"

const mini = { model: "openai/gpt-4o-mini", input: 0.15e-6, output: 0.6e-6 }
const big = { model: "openai/gpt-4o", input: 2.5e-6, output: 10e-6 }

const priorInput = (over: Partial<Forecast.PriorInput> = {}): Forecast.PriorInput => ({
  baseline: 500,
  maxTurns: 8,
  maxTokens: 1000,
  hasTools: true,
  rates: [mini],
  ...over
})

/** A seeded PRNG (mulberry32) and a log-normal draw, for reproducible histories. */
const rng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())

/** A run whose cost is `perToken` × baseline^exponent, times log-normal noise of `sigma`. */
const sampleOf = (r: () => number, perToken: number, sigma: number, exponent = 1): Forecast.Sample => {
  const baseline = Math.round(200 + 2000 * r())
  const noise = Math.exp(sigma * normal(r))
  const costUsd = perToken * baseline ** exponent * noise
  return { baseline, tokensIn: Math.round(3 * baseline * noise), tokensOut: Math.round(200 * noise), costUsd }
}

const spread = (f: Forecast.Forecast) => f.estimate.costUsd.p90 / f.estimate.costUsd.p10

describe("the prior", () => {
  it("prices one cheap call at p10, a typical run at p50 and the spec's worst case at p90", () => {
    const p = Forecast.prior(priorInput())
    // p10: 85% of the prompt and a 16-token answer
    expect(p.costUsd.p10).toBeCloseTo(0.85 * 500 * mini.input + 16 * mini.output, 12)
    // p50: two turns of 256-token answers; the second prompt holds the first answer and a tool result as long
    expect(p.tokensIn.p50).toBe(500 + (500 + 2 * 256))
    expect(p.tokensOut.p50).toBe(2 * 256)
    // p90: eight turns at maxTokens, each prompt 2 × maxTokens longer than the one before
    expect(p.tokensIn.p90).toBe(8 * 500 + 2 * 1000 * 28)
    expect(p.tokensOut.p90).toBe(8 * 1000)
    expect(p.costUsd.p90).toBeCloseTo(p.tokensIn.p90 * mini.input + p.tokensOut.p90 * mini.output, 12)
    expect(p.tokens.p90).toBe(p.tokensIn.p90 + p.tokensOut.p90)
  })

  it("without tools a run is one call, and its worst case is the quote's", () => {
    const tools: ReadonlyArray<ToolSpec> = []
    const request = {
      model: "gpt-4o",
      messages: [{ role: "system" as const, content: "You summarise." }, {
        role: "user" as const,
        content: "a long document"
      }],
      tools,
      idempotencyKey: "k",
      maxTokens: 700
    }
    const quote = Quote.of(Prices.defaults, request, [{ provider: "openai", model: "gpt-4o" }])
    const p = Forecast.prior({
      baseline: quote.promptTokens,
      maxTurns: 8,
      maxTokens: quote.maxTokens,
      hasTools: false,
      rates: Forecast.ratesOf(Prices.defaults, quote.models)
    })
    expect(p.costUsd.p90).toBeCloseTo(quote.worstCaseUsd, 12)
    expect(p.tokensOut.p50).toBe(256) // min(typical, maxTokens / 2)
    expect(p.tokensOut.p90).toBe(700)
  })

  it("takes the cheapest candidate at p10, the first at p50 and the dearest at p90", () => {
    const both = Forecast.prior(priorInput({ rates: [mini, big] }))
    const cheap = Forecast.prior(priorInput({ rates: [mini] }))
    const dear = Forecast.prior(priorInput({ rates: [big] }))
    expect(both.costUsd.p10).toBe(cheap.costUsd.p10)
    expect(both.costUsd.p50).toBe(cheap.costUsd.p50)
    expect(both.costUsd.p90).toBe(dear.costUsd.p90)
  })

  it("is free when no candidate is priced (the offline provider)", () => {
    const p = Forecast.prior(priorInput({ rates: Forecast.ratesOf(Prices.defaults, ["offline/offline-echo-1"]) }))
    expect(p.costUsd).toEqual({ p10: 0, p50: 0, p90: 0 })
    expect(Forecast.make(priorInput({ rates: [] }), []).estimate.costUsd.p90).toBe(0)
  })
})

describe("forecasting from history", () => {
  it("with no history is the prior, with low confidence", () => {
    const f = Forecast.make(priorInput(), [])
    expect(f).toMatchObject({
      method: "prior",
      runs: 0,
      confidence: Forecast.PRIOR_COVERAGE,
      confidenceLabel: "low",
      exponent: null
    })
    expect(f.estimate).toEqual(Forecast.prior(priorInput()))
  })

  it("blends under MIN_HISTORY runs, then follows the history; the interval narrows as runs come in", () => {
    const r = rng(7)
    const samples = Array.from({ length: 60 }, () => sampleOf(r, 2e-6, 0.2))
    const at = (n: number) => Forecast.make(priorInput({ baseline: 1000 }), samples.slice(0, n))
    expect(at(1).method).toBe("blend")
    expect(at(4).method).toBe("blend")
    expect(at(4).confidenceLabel).toBe("low")
    expect(at(5).method).toBe("history")
    // 0 -> 2 -> 5 -> 12 runs: from the prior's bounds to a t interval; past 20 the residuals' own percentiles
    const spreads = [0, 2, 5, 12].map((n) => spread(at(n)))
    for (let i = 1; i < spreads.length; i++) expect(spreads[i]).toBeLessThan(spreads[i - 1]!)
    expect(spread(at(60))).toBeLessThan(spreads[2]!)
    expect(spread(at(60))).toBeLessThan(2.2) // noise of sigma 0.2: the true 80% interval is e^(2 × 1.28 × 0.2) = 1.67
    expect(at(60).confidenceLabel).toBe("high")
    // the median lands on the history's cost per prompt token
    expect(at(60).estimate.costUsd.p50 / (2e-6 * 1000)).toBeGreaterThan(0.9)
    expect(at(60).estimate.costUsd.p50 / (2e-6 * 1000)).toBeLessThan(1.1)
  })

  it("scales with the input's prompt: proportional history gives a slope of 1 and the exact cost", () => {
    const samples = [300, 600, 1200, 2400, 4800, 9600].map((b) => ({
      baseline: b,
      tokensIn: 3 * b,
      tokensOut: 100,
      costUsd: 1e-6 * b
    }))
    const f = Forecast.make(priorInput({ baseline: 2000 }), samples)
    expect(f.exponent).toBeCloseTo(1, 3)
    expect(f.estimate.costUsd.p50).toBeCloseTo(2e-3, 9)
    expect(f.estimate.tokensIn.p50).toBeCloseTo(6000, 0)
    // a constant output: its slope is pulled a little towards 1 with only six runs
    expect(f.estimate.tokensOut.p50).toBeGreaterThan(99)
    expect(f.estimate.tokensOut.p50).toBeLessThan(105)
  })

  it("learns a cost that does not grow with the prompt (slope near 0) once the prompts vary enough", () => {
    const r = rng(11)
    const samples = Array.from(
      { length: 100 },
      () => ({ ...sampleOf(r, 0, 0.1), costUsd: 1e-3 * Math.exp(0.1 * normal(r)) })
    )
    const f = Forecast.make(priorInput({ baseline: 50_000 }), samples)
    expect(f.exponent!).toBeLessThan(0.2)
    expect(f.estimate.costUsd.p50).toBeGreaterThan(0.8e-3)
    expect(f.estimate.costUsd.p50).toBeLessThan(1.6e-3)
  })

  it("holds about 80% of new runs between p10 and p90, at every history size", () => {
    for (const n of [5, 10, 30, 150]) {
      let inside = 0
      const trials = 400
      for (let t = 0; t < trials; t++) {
        const r = rng(1000 * n + t)
        const history = Array.from({ length: n }, () => sampleOf(r, 1e-6, 0.4))
        const next = sampleOf(r, 1e-6, 0.4)
        const q = Forecast.make(priorInput({ baseline: next.baseline }), history).estimate.costUsd
        if (q.p10 <= next.costUsd && next.costUsd <= q.p90) inside++
      }
      expect(inside / trials, `history of ${n}`).toBeGreaterThan(0.74)
      expect(inside / trials, `history of ${n}`).toBeLessThan(0.95)
    }
  })

  it("measures confidence as the interval's coverage of the version's own runs (leave one out), in 0..1", () => {
    const r = rng(21)
    const steady = Array.from({ length: 150 }, () => sampleOf(r, 1e-6, 0.3))
    const c = Forecast.make(priorInput(), steady).confidence
    // an honest 80% interval covers about 80% of runs it did not learn from
    expect(c).toBeGreaterThan(0.65)
    expect(c).toBeLessThan(0.95)
    // a version whose latest runs jumped far from what came before is covered poorly
    const jumped = [
      ...steady.slice(0, 100),
      ...Array.from({ length: 50 }, () => ({ ...sampleOf(r, 1e-6, 0.05), costUsd: 1 }))
    ]
    expect(Forecast.make(priorInput(), jumped).confidence).toBeLessThan(c)
    // one run: the prior's figure, pulled towards the run's own outcome
    const one = Forecast.make(priorInput(), steady.slice(0, 1)).confidence
    expect(one).toBeGreaterThanOrEqual(0)
    expect(one).toBeLessThanOrEqual(1)
    for (const n of [0, 1, 3, 5, 30]) {
      const f = Forecast.make(priorInput(), steady.slice(0, n))
      expect(f.confidence, `${n} runs`).toBeGreaterThanOrEqual(0)
      expect(f.confidence, `${n} runs`).toBeLessThanOrEqual(1)
    }
  })

  it("is medium with a few runs and low when the runs disagree wildly", () => {
    const r = rng(3)
    expect(Forecast.make(priorInput(), Array.from({ length: 8 }, () => sampleOf(r, 1e-6, 0.2))).confidenceLabel).toBe(
      "medium"
    )
    expect(Forecast.make(priorInput(), Array.from({ length: 50 }, () => sampleOf(r, 1e-6, 1.5))).confidenceLabel).toBe(
      "low"
    )
  })

  it("keeps runs that cost nothing (cached answers) from swamping the rest", () => {
    const r = rng(5)
    const samples = Array.from(
      { length: 40 },
      (_, i) => (i % 10 === 0 ? { ...sampleOf(r, 1e-6, 0.2), costUsd: 0 } : sampleOf(r, 1e-6, 0.2))
    )
    const q = Forecast.make(priorInput({ baseline: 1000 }), samples).estimate.costUsd
    expect(q.p50).toBeGreaterThan(0.8e-3)
    expect(q.p50).toBeLessThan(1.25e-3)
    expect(q.p90).toBeLessThan(2e-3)
  })

  it("forecasts free runs as free", () => {
    const samples = Array.from(
      { length: 10 },
      (_, i) => ({ baseline: 100 + i, tokensIn: 300, tokensOut: 20, costUsd: 0 })
    )
    const f = Forecast.make(priorInput({ rates: [] }), samples)
    expect(f.estimate.costUsd).toEqual({ p10: 0, p50: 0, p90: 0 })
    expect(f.estimate.tokensIn.p50).toBeGreaterThan(0)
  })

  it("takes a vanishing cost (5e-324 USD, found by the property below) for zero, not for a logarithm to overflow", () => {
    const e = Forecast.make(priorInput({ baseline: 1 }), [
      { baseline: 1, tokensIn: 0, tokensOut: 0, costUsd: 5e-324 },
      { baseline: 1, tokensIn: 0, tokensOut: 0, costUsd: 0 }
    ]).estimate
    for (const v of [e.costUsd.p10, e.costUsd.p50, e.costUsd.p90]) expect(Number.isFinite(v)).toBe(true)
  })

  it("gives finite, ordered, non-negative quantiles for any history", () => {
    const sample = fc.record({
      baseline: fc.integer({ min: 1, max: 200_000 }),
      tokensIn: fc.integer({ min: 0, max: 10_000_000 }),
      tokensOut: fc.integer({ min: 0, max: 1_000_000 }),
      costUsd: fc.double({ min: 0, max: 100, noNaN: true })
    })
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 40 }), fc.integer({ min: 1, max: 200_000 }), (samples, baseline) => {
        const e = Forecast.make(priorInput({ baseline }), samples).estimate
        for (const q of [e.costUsd, e.tokensIn, e.tokensOut, e.tokens]) {
          expect(Number.isFinite(q.p10) && Number.isFinite(q.p90)).toBe(true)
          expect(q.p10).toBeGreaterThanOrEqual(0)
          expect(q.p10).toBeLessThanOrEqual(q.p50 * (1 + 1e-12))
          expect(q.p50).toBeLessThanOrEqual(q.p90 * (1 + 1e-12))
        }
      })
    )
  })
})

describe("counting and prices", () => {
  it("counts the first prompt as the quote does", () => {
    const spec = {
      systemPrompt: "You compute.",
      tools: [{ name: "calculator", description: "arithmetic", parameters: { type: "object" } }]
    }
    for (const input of ["2+3", { question: "what is 2+3?", n: [1, 2] }]) {
      const text = typeof input === "string" ? input : JSON.stringify(input)
      const expected = Tokenizer.estimatePrompt([{ role: "system", content: spec.systemPrompt }, {
        role: "user",
        content: text
      }], spec.tools)
      expect(Forecast.baselineOf(spec, input)).toBe(expected)
    }
  })

  it("extrapolates inputs past EXACT_CHARS from a prefix, within a few per cent", () => {
    const words = "the quarterly report shows revenue growth in every region and a lower cost of delivery "
    const long = words.repeat(Math.ceil((3 * Forecast.EXACT_CHARS) / words.length))
    const exact = Tokenizer.count(long)
    expect(Math.abs(Forecast.inputTokens(long) - exact) / exact).toBeLessThan(0.03)
  })

  it("prices `provider/model` names from the table, unknown models at 0", () => {
    expect(Forecast.ratesOf(Prices.defaults, ["openai/gpt-4o-mini", "x/unknown"])).toEqual([
      { model: "openai/gpt-4o-mini", input: 0.15e-6, output: 0.6e-6 },
      { model: "x/unknown", input: 0, output: 0 }
    ])
  })
})

describe("the budget port", () => {
  it("answers null with no budgets, and whatever the provided budget says otherwise", async () => {
    expect(
      await Effect.runPromise(Forecast.budgetCheck("t", "a", 1, 10).pipe(Effect.provide(Forecast.ForecastBudget.none)))
    ).toBeNull()
    const refusal = {
      scope: "agent:a",
      cap: "maxCostUsdPerRun",
      limit: 0.5,
      spent: 0,
      reserved: 0,
      requested: 1,
      reason: "over"
    }
    const strict = Layer.succeed(
      Forecast.ForecastBudget,
      Forecast.ForecastBudget.of({
        wouldExceed: (_tenant, _agent, p90Usd) => Effect.succeed(p90Usd > refusal.limit ? refusal : null)
      })
    )
    expect(await Effect.runPromise(Forecast.budgetCheck("t", "a", 1, 10).pipe(Effect.provide(strict)))).toEqual(refusal)
    expect(await Effect.runPromise(Forecast.budgetCheck("t", "a", 0.1, 10).pipe(Effect.provide(strict)))).toBeNull()
  })
})
