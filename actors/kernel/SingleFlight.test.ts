// One effect under way per key: callers of a key under way (with the same tag) share its run and its outcome.
import { Deferred, Effect, Exit, Fiber } from "effect"
import { describe, expect, it } from "vitest"
import * as SingleFlight from "./SingleFlight.ts"

/** An effect that counts its runs and ends with `gate`'s outcome. */
const gated = <A, E>(gate: Deferred.Deferred<A, E>) => {
  const runs = { n: 0 }
  const effect = Effect.andThen(Effect.sync(() => runs.n++), Deferred.await(gate))
  return { runs, effect }
}

describe("SingleFlight", () => {
  it("given callers of one key while its run is under way, then they share one run and its value", async () => {
    const program = Effect.gen(function*() {
      const flight = SingleFlight.make<string, number, string>()
      const gate = yield* Deferred.make<number, string>()
      const { runs, effect } = gated(gate)
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.forkChild(flight("a", effect)))
      yield* Effect.yieldNow
      const other = yield* Effect.forkChild(flight("b", effect))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gate, 7)
      const values = yield* Fiber.joinAll([...fibers, other])
      return { values, runs: runs.n }
    })
    expect(await Effect.runPromise(program)).toEqual({ values: [7, 7, 7, 7, 7, 7], runs: 2 })
  })

  it("given a caller with another tag, then it starts a run of its own, and later callers join the newest", async () => {
    const program = Effect.gen(function*() {
      const flight = SingleFlight.make<string, number, never>()
      const first = yield* Deferred.make<number>()
      const second = yield* Deferred.make<number>()
      const a = yield* Effect.forkChild(flight("k", Deferred.await(first), 1))
      yield* Effect.yieldNow
      const b = yield* Effect.forkChild(flight("k", Deferred.await(second), 2))
      yield* Effect.yieldNow
      // joins tag 2's run: its own effect never runs
      const c = yield* Effect.forkChild(flight("k", Effect.succeed(99), 2))
      yield* Effect.yieldNow
      yield* Deferred.succeed(first, 1)
      yield* Deferred.succeed(second, 2)
      return yield* Fiber.joinAll([a, b, c])
    })
    expect(await Effect.runPromise(program)).toEqual([1, 2, 2])
  })

  it("given the caller that started a run interrupted, then the run goes on for those who wait", async () => {
    const program = Effect.gen(function*() {
      const flight = SingleFlight.make<string, string, never>()
      const gate = yield* Deferred.make<string>()
      const { runs, effect } = gated(gate)
      const starter = yield* Effect.forkChild(flight("k", effect))
      yield* Effect.yieldNow
      const waiter = yield* Effect.forkChild(flight("k", effect))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(starter)
      yield* Deferred.succeed(gate, "done")
      return { value: yield* Fiber.join(waiter), runs: runs.n }
    })
    expect(await Effect.runPromise(program)).toEqual({ value: "done", runs: 1 })
  })

  it("given a run that fails, then every waiter gets the failure and the next caller runs again", async () => {
    const program = Effect.gen(function*() {
      const flight = SingleFlight.make<string, number, string>()
      const gate = yield* Deferred.make<number, string>()
      const { runs, effect } = gated(gate)
      const fibers = yield* Effect.forEach([1, 2], () => Effect.forkChild(Effect.exit(flight("k", effect))))
      yield* Effect.yieldNow
      yield* Deferred.fail(gate, "unreachable")
      const exits = yield* Fiber.joinAll(fibers)
      const again = yield* flight("k", Effect.succeed(3))
      return { failed: exits.every((e) => Exit.isFailure(e)), again, runs: runs.n }
    })
    expect(await Effect.runPromise(program)).toEqual({ failed: true, again: 3, runs: 1 })
  })
})
