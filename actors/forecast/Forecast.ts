// What a run of an agent version will probably cost before it starts: the input's prompt counted with the real
// tokenizer, scaled by what that version's completed runs cost, with an 80% interval. Pure, plus the budget port.
import { Context, Effect, Layer } from "effect"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { BudgetRefusal } from "../../schema/Events.ts"
import { Budgets } from "../budget/Budgets.ts"
import type { ReadError } from "../kernel/Actor.ts"
import * as Prices from "../model/Prices.ts"
import * as Tokenizer from "../model/Tokenizer.ts"
import { inputText } from "../run/Plan.ts"

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

export interface Quantiles {
  readonly p10: number
  readonly p50: number
  readonly p90: number
}

/** Tokens and cost of one run, at three quantiles each. */
export interface Estimate {
  readonly tokensIn: Quantiles
  readonly tokensOut: Quantiles
  /** Prompt and output tokens together, what a per-run token cap counts. */
  readonly tokens: Quantiles
  readonly costUsd: Quantiles
}

/** USD per token of one model. */
export interface Rates {
  readonly model: string
  readonly input: number
  readonly output: number
}

/** One completed run of the version: the prompt its input made (`baseline`) and what it took. */
export interface Sample {
  readonly baseline: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
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

// ---- history: what the version's completed runs say ----

/** How a quantity's log is predicted from the log of the prompt: fitted slope, fixed at 1 (ratio) or at 0 (ignored). */
export type Scaling = "fitted" | "ratio" | "absolute"

export interface Options {
  readonly scaling: Scaling
}

export const defaults: Options = { scaling: "fitted" }

/** The one-sided 90% quantile of Student's t with `df` degrees of freedom (Cornish-Fisher; within 4% at df 1). */
export const t90 = (df: number): number => {
  const z = 1.2815515655
  const z3 = z ** 3
  const z5 = z ** 5
  const z7 = z ** 7
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) +
    (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3)
}

/** Linear-interpolation quantile of an ascending array. */
const quantile = (sorted: ReadonlyArray<number>, p: number): number => {
  const h = (sorted.length - 1) * p
  const lo = Math.floor(h)
  return sorted[lo]! + (h - lo) * ((sorted[Math.min(lo + 1, sorted.length - 1)] ?? sorted[lo]!) - sorted[lo]!)
}

/** Dispersion assumed before any run is seen (log units: a factor of e^0.6 ≈ 1.8 per standard deviation) ... */
const PRIOR_SD = 0.6
/** ... worth this many runs. */
const PRIOR_WEIGHT = 2
/** How strongly a fitted slope is pulled towards 1, in units of the log-prompt's sum of squares. */
const SLOPE_PULL = 1
/** Runs from which the interval is read off the residuals themselves rather than a t interval. */
const EMPIRICAL_FROM = 20

/**
 * Zero-cost runs (the offline provider, answers from the response cache) are kept finite in log space by
 * raising them to this share of the positive values' median; a forecast that lands near it reads as 0.
 */
const ZERO_FLOOR = 0.01
/** Smaller amounts are taken for zero (5e-324 USD is no cost, and its logarithm's arithmetic overflows). */
const MIN_POSITIVE = 1e-12
/** A forecast under this multiple of the floor is the floor's own (zero-cost runs at that quantile): 0. */
const ZERO_BAND = 1.5

interface Fit {
  readonly slope: number
  readonly at: (logBaseline: number) => Quantiles
}

/**
 * Regresses log(quantity) on log(prompt) over the samples (slope pulled towards 1, or fixed) and reads an 80%
 * prediction interval off the residuals: a t interval with the prior dispersion pooled in while runs are few,
 * joined by the residuals' order statistics from 9 runs, those order statistics alone from EMPIRICAL_FROM.
 */
const fit = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>, options: Options): Fit => {
  const n = xs.length
  const mean = (v: ReadonlyArray<number>) => v.reduce((a, b) => a + b, 0) / v.length
  const mx = mean(xs)
  const my = mean(ys)
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2
    sxy += (xs[i]! - mx) * (ys[i]! - my)
  }
  const slope = options.scaling === "ratio"
    ? 1
    : options.scaling === "absolute"
    ? 0
    : Math.min(1.5, Math.max(0, (sxy + SLOPE_PULL) / (sxx + SLOPE_PULL)))
  const intercept = my - slope * mx
  const residuals = ys.map((y, i) => y - intercept - slope * xs[i]!).sort((a, b) => a - b)
  const mid = quantile(residuals, 0.5)
  const mr = mean(residuals)
  const sd2 = n < 2 ? 0 : residuals.reduce((a, r) => a + (r - mr) ** 2, 0) / (n - 1)
  const pooled = Math.sqrt((PRIOR_WEIGHT * PRIOR_SD ** 2 + (n - 1) * sd2) / (PRIOR_WEIGHT + n - 1))
  const half = t90(PRIOR_WEIGHT + n - 1) * pooled * Math.sqrt(1 + 1 / n)
  let lo = mid - half
  let hi = mid + half
  if (n >= 9) {
    // order statistics k and n+1-k with k = floor(0.1 (n+1)) cover a new exchangeable run at least 80% of the time
    const k = Math.floor(0.1 * (n + 1))
    const elo = residuals[k - 1]!
    const ehi = residuals[n - k]!
    lo = n >= EMPIRICAL_FROM ? elo : Math.min(lo, elo)
    hi = n >= EMPIRICAL_FROM ? ehi : Math.max(hi, ehi)
  }
  return {
    slope,
    at: (x) => {
      const c = intercept + slope * x
      return { p10: c + Math.min(lo, mid), p50: c + mid, p90: c + Math.max(hi, mid) }
    }
  }
}

const median = (values: ReadonlyArray<number>) => quantile([...values].sort((a, b) => a - b), 0.5)

/** The history's estimate for a prompt of `baseline` tokens; `samples` must not be empty. */
/** One quantity's quantiles at log prompt `x`, fitted over the samples' log prompts `xs` and their `values`. */
const quantitiesAt = (xs: ReadonlyArray<number>, x: number, values: ReadonlyArray<number>, options: Options) => {
  // amounts below a trillionth (of a dollar, or a token) count as nothing: their logarithms would not be finite
  const positive = values.filter((v) => v > MIN_POSITIVE)
  if (positive.length === 0) return { q: { p10: 0, p50: 0, p90: 0 }, slope: 0 }
  const floor = Math.max(MIN_POSITIVE, ZERO_FLOOR * median(positive))
  const f = fit(xs, values.map((v) => Math.log(Math.max(v, floor))), options)
  const q = f.at(x)
  const e = (v: number) => (Math.exp(v) <= floor * ZERO_BAND ? 0 : Math.exp(v))
  return { q: { p10: e(q.p10), p50: e(q.p50), p90: e(q.p90) }, slope: f.slope }
}

const logPrompt = (baseline: number) => Math.log(Math.max(1, baseline))

export const fromHistory = (
  baseline: number,
  samples: ReadonlyArray<Sample>,
  options: Options = defaults
): { readonly estimate: Estimate; readonly slope: number } => {
  const xs = samples.map((s) => logPrompt(s.baseline))
  const x = logPrompt(baseline)
  const one = (values: ReadonlyArray<number>) => quantitiesAt(xs, x, values, options)
  const cost = one(samples.map((s) => s.costUsd))
  return {
    estimate: {
      tokensIn: one(samples.map((s) => s.tokensIn)).q,
      tokensOut: one(samples.map((s) => s.tokensOut)).q,
      tokens: one(samples.map((s) => s.tokensIn + s.tokensOut)).q,
      costUsd: cost.q
    },
    slope: cost.slope
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
  const h = quantitiesAt(
    samples.map((s) => logPrompt(s.baseline)),
    logPrompt(p.baseline),
    samples.map((s) => s.costUsd),
    options
  ).q
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
  const h = fromHistory(priorInput.baseline, samples, options)
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
