// Retries of bus calls that are paid for only when an attempt fails: the run path wraps every journal write and
// budget call in one, and nearly all of them succeed at the first attempt.
import { Effect, type Schedule } from "effect"

export interface Options<E, Out> {
  /** The delays between attempts, as `Effect.retry` takes them. */
  readonly schedule: Schedule.Schedule<Out, NoInfer<E>>
  /** Retries at most (attempts = times + 1); unbounded when absent. */
  readonly times?: number
  /** Which failures are retried; any other ends the effect at once. */
  readonly while: (e: NoInfer<E>) => boolean
}

/**
 * `Effect.retry(effect, options)`, with the schedule set up only once the first attempt has failed with a failure
 * `while` accepts. Delays and the number of retries are those of `Effect.retry`: the retry loop starts from the
 * failure already seen, as though it were its own first attempt. `Effect.retry` sets up its schedule before the
 * first attempt, about 2 µs and a dozen objects per call that a successful call never uses.
 */
export const afterFailure = <A, E, R, Out>(effect: Effect.Effect<A, E, R>, options: Options<E, Out>) =>
  Effect.catchIf(effect, options.while, (first) => {
    let replay = true
    const again = Effect.suspend(() => {
      if (!replay) return effect
      replay = false
      return Effect.fail(first)
    })
    return Effect.retry(again, options)
  })
