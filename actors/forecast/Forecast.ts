// What a run of an agent version will probably cost before it starts: the input's prompt counted with the real
// tokenizer, scaled by what that version's completed runs cost (History.ts), with an 80% interval. Pure, plus the
// budget port.
import { Context, Effect, Layer } from "effect"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { BudgetRefusal } from "../../schema/Events.ts"
import { Budgets } from "../budget/Budgets.ts"
import type { ReadError } from "../kernel/Actor.ts"
import * as Prices from "../model/Prices.ts"
import * as Tokenizer from "../model/Tokenizer.ts"
import { inputText } from "../run/Plan.ts"
import { defaults, type Estimate, type Options, type Quantiles, type Sample } from "./History.ts"
import * as History from "./History.ts"

// what the history is made of, where forecasts have always been read from
export { defaults, type Estimate, type Options, type Quantiles, type Sample, type Scaling } from "./History.ts"

/** Completed runs of a version below which the forecast leans on the prior (and confidence stays low). */
export const MIN_HISTORY = 5
/** The most recent completed runs a forecast reads. */
export const MAX_HISTORY = 200
/** The prior's cheap run: one call answering in this many tokens (fewer when maxTokens is lower) ... */
export const SMALL_OUTPUT = 16
/**
 * ... on a prompt this much smaller than Lantern's count, which runs a few per cent high for OpenAI (tool
 * definitions are rendered more compactly) and differs either way for other vendors' tokenizers.
 */
export const LOW_PROMPT_FACTOR = 0.85
/** The prior's typical run: answers of this many tokens (half of maxTokens when that is lower) ... */
export const TYPICAL_OUTPUT = 256
/** ... over this many turns when the agent has tools (one turn without). */
export const TYPICAL_TURNS = 2

/** USD per token of one model. */
export interface Rates {
  readonly model: string
  readonly input: number
  readonly output: number
}

/** What the prior knows: the input's prompt, the spec's bounds and the candidate models' prices (best first). */
export interface PriorInput {
  readonly baseline: number
  readonly maxTurns: number
  readonly maxTokens: number
  readonly hasTools: boolean
  readonly rates: ReadonlyArray<Rates>
}

export type Method = "prior" | "blend" | "history"
export type Confidence = "low" | "medium" | "high"

export interface Forecast {
  readonly estimate: Estimate
  readonly method: Method
  readonly runs: number
  /** How often the cost's p10–p90 interval held: measured on the version's runs, the prior's figure without them. */
  readonly confidence: number
  readonly confidenceLabel: Confidence
  /** How the history's cost grows with the prompt: cost ∝ prompt^exponent (1 for pure scaling). */
  readonly exponent: number | null
}

// ---- counting ----

/**
 * Past inputs longer than this many characters are counted on a prefix and scaled (within a few per cent): a
 * forecast reads up to 200 of them, and the tokenizer takes about 1.3 ms per 1,000 characters.
 */
export const EXACT_CHARS = 4_000

/** Tokens of a run input as the user message carries it (exact up to EXACT_CHARS characters, then extrapolated). */
export const inputTokens = (input: unknown): number => {
  const text = inputText(input) ?? ""
  if (text.length <= EXACT_CHARS) return Tokenizer.count(text)
  return Math.round(Tokenizer.count(text.slice(0, EXACT_CHARS)) * (text.length / EXACT_CHARS))
}

/** The prompt of a version's first model call for `input`: the system prompt, the input and the tool definitions. */
export const baselineOf = (
  spec: { readonly systemPrompt: string; readonly tools: ReadonlyArray<ToolSpec> },
  input: unknown
): number =>
  Tokenizer.estimatePrompt(
    [{ role: "system", content: spec.systemPrompt }, { role: "user", content: "" }],
    spec.tools
  ) + inputTokens(input)

/** Per-token rates of `provider/model` names from the price table; an unpriced model costs 0, as its steps do. */
export const ratesOf = (table: Prices.Table, models: ReadonlyArray<string>): ReadonlyArray<Rates> =>
  models.map((name) => {
    const model = name.includes("/") ? name.slice(name.indexOf("/") + 1) : name
    const price = Prices.priceOf(table, model)?.price
    return { model: name, input: (price?.inputPerMTok ?? 0) / 1e6, output: (price?.outputPerMTok ?? 0) / 1e6 }
  })

// ---- the prior: what the spec and the prices alone say ----

interface Shape {
  readonly tokensIn: number
  readonly tokensOut: number
}

/** `turns` calls answering `output` tokens each; every answer and a tool result as long enter the next prompt. */
const runShape = (baseline: number, turns: number, output: number): Shape => ({
  tokensIn: turns * baseline + 2 * output * (turns * (turns - 1)) / 2,
  tokensOut: turns * output
})

const priced = (s: Shape, r: Rates) => s.tokensIn * r.input + s.tokensOut * r.output

/**
 * p10: one call on LOW_PROMPT_FACTOR of the prompt answering SMALL_OUTPUT tokens, on the cheapest candidate.
 * p50: TYPICAL_TURNS turns (one without tools) answering TYPICAL_OUTPUT tokens, on the first candidate.
 * p90: the worst case the spec allows, on the dearest candidate: every turn (one without tools) answering
 * maxTokens, with tool results as long, so each prompt grows by twice maxTokens. Longer tool results and
 * child runs (`agent` tools) are not bounded by the spec and not in it.
 */
export const prior = (p: PriorInput): Estimate => {
  const low = runShape(LOW_PROMPT_FACTOR * p.baseline, 1, Math.min(p.maxTokens, SMALL_OUTPUT))
  const typical = runShape(
    p.baseline,
    p.hasTools ? Math.min(TYPICAL_TURNS, p.maxTurns) : 1,
    Math.min(p.maxTokens / 2, TYPICAL_OUTPUT)
  )
  const worst = runShape(p.baseline, p.hasTools ? p.maxTurns : 1, p.maxTokens)
  const rates = p.rates.length === 0 ? [{ model: "", input: 0, output: 0 }] : p.rates
  const costs = (s: Shape) => rates.map((r) => priced(s, r))
  const q = (f: (s: Shape) => number): Quantiles => ({ p10: f(low), p50: f(typical), p90: f(worst) })
  return {
    tokensIn: q((s) => s.tokensIn),
    tokensOut: q((s) => s.tokensOut),
    tokens: q((s) => s.tokensIn + s.tokensOut),
    costUsd: { p10: Math.min(...costs(low)), p50: costs(typical)[0]!, p90: Math.max(...costs(worst)) }
  }
}

// ---- the forecast ----

/** Geometric interpolation from `a` (weight 0) to `b` (weight 1); zero stays reachable. */
const towards = (
  a: number,
  b: number,
  w: number
) => (a <= 0 || b <= 0 ? (1 - w) * a + w * b : Math.exp((1 - w) * Math.log(a) + w * Math.log(b)))

/**
 * Below MIN_HISTORY runs the prior and the history are blended in log space: the median trusts the runs soon
 * (weight n/(n+1)), the interval's ends only slowly (n/MIN_HISTORY), since a handful of runs says little of the tails.
 */
const blendQuantiles = (a: Quantiles, b: Quantiles, n: number): Quantiles => {
  const p50 = towards(a.p50, b.p50, n / (n + 1))
  const tails = Math.min(1, n / MIN_HISTORY)
  return { p10: Math.min(p50, towards(a.p10, b.p10, tails)), p50, p90: Math.max(p50, towards(a.p90, b.p90, tails)) }
}

export const blend = (p: Estimate, h: Estimate, n: number): Estimate => {
  const q = (a: Quantiles, b: Quantiles): Quantiles => blendQuantiles(a, b, n)
  return {
    tokensIn: q(p.tokensIn, h.tokensIn),
    tokensOut: q(p.tokensOut, h.tokensOut),
    tokens: q(p.tokens, h.tokens),
    costUsd: q(p.costUsd, h.costUsd)
  }
}

/** Runs from which a tight interval counts as high confidence. */
export const HIGH_CONFIDENCE_RUNS = 20
/** p90 / p10 of the cost up to which the interval counts as tight (high confidence with enough runs) ... */
export const TIGHT_SPREAD = 3
/** ... and above which it counts as loose (low confidence whatever the runs). */
export const LOOSE_SPREAD = 10

/** The word for a forecast's interval: how many runs it rests on and how tight it is. */
export const confidenceOf = (method: Method, runs: number, cost: Quantiles): Confidence => {
  if (method !== "history") return "low"
  const spread = cost.p10 > 0 ? cost.p90 / cost.p10 : cost.p90 > 0 ? Infinity : 1
  if (spread > LOOSE_SPREAD) return "low"
  return runs >= HIGH_CONFIDENCE_RUNS && spread <= TIGHT_SPREAD ? "high" : "medium"
}

/**
 * How often the prior's p10–p90 held the cost: all 250 recorded runs of the forecast bench fell inside it (its
 * p90 is the spec's worst case), but child runs and tool results longer than maxTokens are outside that worst
 * case, so a little less is claimed.
 */
export const PRIOR_COVERAGE = 0.95
/** The prior's coverage counts as this many runs beside the measured ones, so one run does not swing it to 0 or 1. */
export const COVERAGE_PRIOR_RUNS = 2
/** The measured coverage reads the latest this many runs (each is forecast again from the others). */
export const COVERAGE_RUNS = 50

/** The cost's quantiles alone, as `make` would forecast them: the prior, blended, or the history. */
const costOf = (p: PriorInput, samples: ReadonlyArray<Sample>, options: Options): Quantiles => {
  const n = samples.length
  const fromPrior = prior(p).costUsd
  if (n === 0) return fromPrior
  const h = History.costAt(p.baseline, samples, options)
  return n < MIN_HISTORY ? blendQuantiles(fromPrior, h, n) : h
}

/**
 * The measured coverage of the p10–p90 interval on the version's own runs: each of the latest COVERAGE_RUNS is
 * forecast from the other runs (leave one out), at its own prompt, and counted when its cost fell inside; the
 * prior's coverage is pooled in as COVERAGE_PRIOR_RUNS runs. PRIOR_COVERAGE without runs. In 0..1.
 */
export const coverageOf = (
  priorInput: PriorInput,
  samples: ReadonlyArray<Sample>,
  options: Options = defaults
): number => {
  const n = samples.length
  const from = Math.max(0, n - COVERAGE_RUNS)
  let hits = 0
  for (let i = from; i < n; i++) {
    const s = samples[i]!
    const q = costOf({ ...priorInput, baseline: s.baseline }, samples.filter((_, j) => j !== i), options)
    // a relative tolerance: the interval's ends pass through exp and log
    if (q.p10 <= s.costUsd * (1 + 1e-9) && s.costUsd <= q.p90 * (1 + 1e-9)) hits++
  }
  return (hits + COVERAGE_PRIOR_RUNS * PRIOR_COVERAGE) / (n - from + COVERAGE_PRIOR_RUNS)
}

/** The forecast of one run: the prior alone without history, blended while history is short, the history after. */
export const make = (priorInput: PriorInput, samples: ReadonlyArray<Sample>, options: Options = defaults): Forecast => {
  const n = samples.length
  const p = prior(priorInput)
  if (n === 0)
    return { estimate: p, method: "prior", runs: 0, confidence: PRIOR_COVERAGE, confidenceLabel: "low", exponent: null }
  const h = History.fromHistory(priorInput.baseline, samples, options)
  const method: Method = n < MIN_HISTORY ? "blend" : "history"
  const estimate = method === "blend" ? blend(p, h.estimate, n) : h.estimate
  return {
    estimate,
    method,
    runs: n,
    confidence: coverageOf(priorInput, samples, options),
    confidenceLabel: confidenceOf(method, n, estimate.costUsd),
    exponent: h.slope
  }
}

// ---- the budget port ----

/**
 * Whether a run costing `p90Usd` (and `tokens`) would break a hard budget cap of the tenant or the agent; the
 * budget actor answers it. `none` answers null: no budgets.
 */
export class ForecastBudget extends Context.Service<ForecastBudget, {
  readonly wouldExceed: (
    tenant: string,
    agentName: string,
    p90Usd: number,
    tokens: number
  ) => Effect.Effect<BudgetRefusal | null, ReadError>
}>()("lantern/actors/ForecastBudget") {
  static readonly none = Layer.succeed(ForecastBudget, ForecastBudget.of({ wouldExceed: () => Effect.succeed(null) }))
  /** The budgets of the agent and its tenant, as the budget actor enforces them. */
  static readonly layer = Layer.effect(
    ForecastBudget,
    Effect.gen(function*() {
      const budgets = yield* Budgets
      return ForecastBudget.of({ wouldExceed: budgets.wouldExceed })
    })
  )
}

/** The refusal a run of this forecast would meet from a budget, or null. */
export const budgetCheck = (tenant: string, agentName: string, p90Usd: number, tokens: number) =>
  Effect.gen(function*() {
    return yield* (yield* ForecastBudget).wouldExceed(tenant, agentName, p90Usd, tokens)
  })
