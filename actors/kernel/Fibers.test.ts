// Fibers.deep and Actor.provider leave what a fiber sees as it was: every service of the caller, and the services an
// actor effect needs, whether or not the fiber already had them.
import { Context, Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Journal } from "../../bus/Journal.ts"
import * as Snapshots from "../../bus/Snapshots.ts"
import * as Actor from "./Actor.ts"
import * as Fibers from "./Fibers.ts"
import { Ids } from "./Ids.ts"

/** Services that are only told apart (nothing is called on them). */
const tokens = (name: string) => ({
  journal: { name } as unknown as Journal["Service"],
  ids: { name } as unknown as Ids["Service"],
  snapshots: { name } as unknown as Snapshots.Snapshots["Service"]
})

const Level = Array.from({ length: 40 }, (_, i) => Context.Service<number>(`lantern/test/Level${i}`))

/** Adds Level[i] = i for i < n, one at a time, then reads every one back. */
const nested = (n: number): Effect.Effect<ReadonlyArray<number>> => {
  let read: Effect.Effect<ReadonlyArray<number>, never, any> = Effect.forEach(
    Level.slice(0, n),
    (l) => Effect.map(Effect.context<never>(), (c) => Context.getUnsafe(c, l))
  )
  for (let i = 0; i < n; i++) read = Effect.provideService(read, Level[i]!, i)
  return read as Effect.Effect<ReadonlyArray<number>>
}

describe("Fibers.deep", () => {
  it("runs an effect with every service of its caller and gives the caller its own context back", async () => {
    const outer = Context.Service<string>("lantern/test/Outer")
    const [seen, levels, same] = await Effect.gen(function*() {
      const before = yield* Effect.context<never>()
      const inside = yield* Fibers.deep(Effect.gen(function*() {
        return [yield* outer, yield* nested(Fibers.DEPTH + 5)] as const
      }))
      return [inside[0], inside[1], (yield* Effect.context<never>()) === before] as const
    }).pipe(Effect.provideService(outer, "from the caller"), Effect.runPromise)
    expect(seen).toBe("from the caller")
    // more services than the rebase depth, each read back after the last was added
    expect(levels).toEqual(Array.from({ length: Fibers.DEPTH + 5 }, (_, i) => i))
    expect(same).toBe(true)
  })
})

describe("Actor.provider", () => {
  const captured = tokens("captured")
  const provideCaptured = <A, E, R>(e: Effect.Effect<A, E, R>) =>
    e.pipe(
      Effect.provideService(Journal, captured.journal),
      Effect.provideService(Ids, captured.ids),
      Effect.provideService(Snapshots.Snapshots, captured.snapshots)
    )
  const services = Effect.gen(function*() {
    return { journal: yield* Journal, ids: yield* Ids, snapshots: yield* Snapshots.Snapshots }
  })

  it("leaves the context of a fiber that has the captured services as it is", async () => {
    const [before, during] = await provideCaptured(Effect.gen(function*() {
      const provide = yield* Actor.provider
      return [yield* Effect.context<never>(), yield* provide(Effect.context<never>())] as const
    })).pipe(Effect.runPromise)
    expect(during).toBe(before)
  })

  it("provides the captured services to a fiber without them, or with others in their place", async () => {
    const provide = await provideCaptured(Actor.provider).pipe(Effect.runPromise)
    expect(await provide(services).pipe(Effect.runPromise)).toEqual(captured)
    const other = tokens("other")
    const overridden = await provide(services).pipe(
      Effect.provideService(Journal, other.journal),
      Effect.provideService(Ids, other.ids),
      Effect.provideService(Snapshots.Snapshots, other.snapshots),
      Effect.runPromise
    )
    expect(overridden.journal).toBe(captured.journal)
    expect(overridden.ids).toBe(captured.ids)
    expect(overridden.snapshots).toBe(captured.snapshots)
  })
})
