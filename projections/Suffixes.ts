// The run row updates of a projector batch, folded in memory: per run, one row for each suffix of its events in
// the batch, so the database picks by the run's `last_seq` the one suffix the per-event guard would apply, with
// no sort or aggregate in SQL. Costs are summed exactly as `numeric` does, as decimals.

/** A run event of the batch as it changes the run's row. */
export interface Change {
  readonly tenant: string
  readonly id: string
  readonly seq: number
  readonly at: string
  /** A StepCompleted: one more step, and its tokens and cost; a StepsCompleted: one of those per step (ADR 0067). */
  readonly completed?: ReadonlyArray<
    { readonly tokensIn: number; readonly tokensOut: number; readonly costUsd: number }
  >
  /** A RunSucceeded, RunFailed or RunCanceled. */
  readonly ended?: { readonly status: string; readonly output: unknown; readonly error: unknown }
}

/**
 * The changes from one event of a run to its last in the batch, folded: applied to the run's row when its
 * `last_seq` is at least `after` (the event before it, 0 for the first) and below `from` (its own), which is
 * when the per-event guard applies exactly these events.
 */
export interface Suffix {
  readonly tenant: string
  readonly id: string
  readonly after: number
  readonly from: number
  readonly steps: number
  readonly tokensIn: number
  readonly tokensOut: number
  /** The exact decimal sum, as text for `::numeric`. */
  readonly costUsd: string
  readonly lastSeq: number
  readonly at: string
  /** The latest ending among the suffix's events, absent when none ends the run. */
  readonly status?: string
  readonly output?: unknown
  readonly error?: unknown
  readonly finishedAt?: string
}

/** A decimal as an integer and a scale (value = int / 10^scale), from a number's shortest round-trip text. */
const decimalOf = (x: number): { int: bigint; scale: number } => {
  const [mantissa, exponent] = x.toExponential().split("e") as [string, string]
  const negative = mantissa.startsWith("-")
  const digits = mantissa.replace(/^-/, "").replace(".", "")
  const power = Number(exponent) - (digits.length - 1)
  const int = BigInt(digits) * (power > 0 ? 10n ** BigInt(power) : 1n)
  return { int: negative ? -int : int, scale: power < 0 ? -power : 0 }
}

/** An exact running sum of decimals, printed with the largest scale of its terms, as `numeric` addition does. */
class DecimalSum {
  private int = 0n
  private scale = 0
  add(x: number): void {
    const d = decimalOf(x)
    if (d.scale > this.scale) {
      this.int *= 10n ** BigInt(d.scale - this.scale)
      this.scale = d.scale
    }
    this.int += d.int * 10n ** BigInt(this.scale - d.scale)
  }
  toString(): string {
    const negative = this.int < 0n
    const digits = (negative ? -this.int : this.int).toString().padStart(this.scale + 1, "0")
    const whole = digits.slice(0, digits.length - this.scale)
    const fraction = digits.slice(digits.length - this.scale)
    return `${negative ? "-" : ""}${whole}${fraction === "" ? "" : `.${fraction}`}`
  }
}

/** The exact sum of numbers read as the decimals they print as, in the text `numeric` would print for it. */
export const decimalSum = (xs: ReadonlyArray<number>): string => {
  const sum = new DecimalSum()
  for (const x of xs) sum.add(x)
  return sum.toString()
}

/** Every suffix of every run's changes; `changes` in stream order. */
export const of = (changes: ReadonlyArray<Change>): ReadonlyArray<Suffix> => {
  const byRun = new Map<string, Array<Change>>()
  for (const c of changes) {
    const key = JSON.stringify([c.tenant, c.id])
    const run = byRun.get(key)
    if (run === undefined) byRun.set(key, [c])
    else run.push(c)
  }
  const out: Array<Suffix> = []
  for (const run of byRun.values()) {
    const last = run[run.length - 1]!
    const cost = new DecimalSum()
    let steps = 0
    let tokensIn = 0
    let tokensOut = 0
    let ended: Change | undefined
    const suffixes: Array<Suffix> = []
    for (let i = run.length - 1; i >= 0; i--) {
      const c = run[i]!
      for (const step of c.completed ?? []) {
        steps++
        tokensIn += step.tokensIn
        tokensOut += step.tokensOut
        cost.add(step.costUsd)
      }
      // walking back from the last event, the first ending met is the latest of every suffix from here
      if (ended === undefined && c.ended !== undefined) ended = c
      suffixes.push({
        tenant: c.tenant,
        id: c.id,
        after: i === 0 ? 0 : run[i - 1]!.seq,
        from: c.seq,
        steps,
        tokensIn,
        tokensOut,
        costUsd: cost.toString(),
        lastSeq: last.seq,
        at: last.at,
        ...(ended?.ended === undefined ? {} : { ...ended.ended, finishedAt: ended.at })
      })
    }
    out.push(...suffixes.reverse())
  }
  return out
}
