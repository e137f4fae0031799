// Latency samples and their summary (median, p99, rate) for the benchmarks. Pure: no I/O, no timing of its
// own; the scenarios record `performance.now()` differences and hand them here.

export interface Summary {
  /** Number of measured operations. */
  readonly count: number
  readonly medianMs: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Wall-clock time of the measured phase. */
  readonly wallMs: number
  /** Operations per second over the measured phase. */
  readonly perSecond: number
}

/** Nearest-rank percentile of an ascending array; `p` in (0, 1]. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)))
  return sorted[rank - 1]!
}

/** Summarises latency samples (ms) of operations that ran within `wallMs`. */
export const summarize = (samplesMs: ReadonlyArray<number>, wallMs: number): Summary => {
  const sorted = Float64Array.from(samplesMs).sort()
  const asArray = Array.from(sorted)
  return {
    count: asArray.length,
    medianMs: percentile(asArray, 0.5),
    p99Ms: percentile(asArray, 0.99),
    maxMs: asArray.length === 0 ? Number.NaN : asArray[asArray.length - 1]!,
    wallMs,
    perSecond: wallMs > 0 ? (asArray.length * 1000) / wallMs : Number.NaN
  }
}

/** Splits `total` operations over `workers` as evenly as possible (every worker gets at least one). */
export const split = (total: number, workers: number): ReadonlyArray<number> => {
  const n = Math.max(total, workers)
  const base = Math.floor(n / workers)
  const extra = n % workers
  return Array.from({ length: workers }, (_, i) => base + (i < extra ? 1 : 0))
}
