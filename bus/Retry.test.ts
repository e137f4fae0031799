// afterFailure against Effect.retry on a test clock: the same attempts at the same instants, whatever the outcome.
import { Clock, Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import * as Retry from "./Retry.ts"

class Away {
  readonly _tag = "Away"
  constructor(readonly n: number) {}
}
class Refused {
  readonly _tag = "Refused"
  constructor(readonly n: number) {}
}

const schedule = Schedule.min([Schedule.exponential("100 millis", 1.5), Schedule.spaced("300 millis")])
const retryable = (e: Away | Refused) => e._tag === "Away"

/**
 * The instants (test-clock ms) at which an effect failing with `outcomes[i]` at its i-th attempt (succeeding past
 * the end) was attempted, and how it ended, under `wrap`.
 */
const attempts = (
  outcomes: ReadonlyArray<"away" | "refused">,
  wrap: (e: Effect.Effect<string, Away | Refused>) => Effect.Effect<string, Away | Refused>
) =>
  Effect.gen(function*() {
    const at: Array<number> = []
    const attempt: Effect.Effect<string, Away | Refused> = Effect.gen(function*() {
      const n = at.length
      at.push(yield* Clock.currentTimeMillis)
      const o = outcomes[n]
      if (o === "away") return yield* Effect.fail(new Away(n))
      if (o === "refused") return yield* Effect.fail(new Refused(n))
      return `ok at ${n}`
    })
    const fiber = yield* Effect.forkChild(Effect.result(wrap(attempt)))
    // far past every delay of the schedule
    for (let i = 0; i < 50; i++) yield* TestClock.adjust("100 millis")
    const result = yield* Fiber.join(fiber)
    return { at, result: result._tag === "Success" ? result.success : `failed ${JSON.stringify(result.failure)}` }
  }).pipe(Effect.provide(TestClock.layer()), Effect.runPromise)

const cases: ReadonlyArray<[string, ReadonlyArray<"away" | "refused">, number | undefined]> = [
  ["succeeds at once", [], 5],
  ["succeeds after retryable failures", ["away", "away", "away"], 5],
  ["gives up after `times` retries", ["away", "away", "away", "away", "away"], 3],
  ["stops at a failure `while` refuses, first", ["refused"], 5],
  ["stops at a failure `while` refuses, later", ["away", "away", "refused"], 5],
  ["retries without bound when `times` is absent", ["away", "away", "away", "away"], undefined]
]

describe("Retry.afterFailure", () => {
  it.each(cases)("%s, as Effect.retry does", async (_name, outcomes, times) => {
    const options = { schedule, while: retryable, ...(times === undefined ? {} : { times }) }
    const theirs = await attempts(outcomes, (e) => Effect.retry(e, options))
    const ours = await attempts(outcomes, (e) => Retry.afterFailure(e, options))
    expect(ours).toEqual(theirs)
    // and the case is what its name says
    expect(theirs.at.length).toBe(Math.min(outcomes.length + 1, (times ?? Infinity) + 1, stopAt(outcomes)))
  })

  it("waits the schedule's delays between attempts", async () => {
    const { at } = await attempts(
      ["away", "away", "away", "away"],
      (e) => Retry.afterFailure(e, { schedule, while: retryable })
    )
    // 100, 150, 225 ms (1.5 times the last), then 300 ms (the cap) between attempts
    expect(at).toEqual([0, 100, 250, 475, 775])
  })
})

/** Attempts up to and including the first refused one. */
const stopAt = (outcomes: ReadonlyArray<"away" | "refused">) => {
  const i = outcomes.indexOf("refused")
  return i === -1 ? Infinity : i + 1
}
