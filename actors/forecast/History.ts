// What a version's completed runs say about its next run: each quantity's logarithm regressed on the logarithm of
// the prompt, with an 80% prediction interval read off the residuals. Pure statistics; Forecast.ts blends it in.

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

/** One completed run of the version: the prompt its input made (`baseline`) and what it took. */
export interface Sample {
  readonly baseline: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

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

/** The history's estimate for a prompt of `baseline` tokens; `samples` must not be empty. */
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

/** The cost's quantiles alone for a prompt of `baseline` tokens, as `fromHistory` reads them off `samples`. */
export const costAt = (baseline: number, samples: ReadonlyArray<Sample>, options: Options): Quantiles =>
  quantitiesAt(samples.map((s) => logPrompt(s.baseline)), logPrompt(baseline), samples.map((s) => s.costUsd), options).q
