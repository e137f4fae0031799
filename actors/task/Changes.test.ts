// Wake-ups of idle workers: a change after the version a worker looked at wakes it at once, even when the change
// came before it began to wait; a change while it waits wakes it; listeners see each task change.
import { Effect, Fiber } from "effect"
import { describe, expect, it } from "vitest"
import { Changes } from "./Changes.ts"
import type { TaskChange } from "./Queue.ts"

const change = { task: { id: "tsk_x", tenant: "t", status: "pending" }, previous: null } as unknown as TaskChange

/** A wait far longer than the test's own bound: it can only end by a change. */
const LONG = 600_000

describe("Changes", () => {
  it("a change between a worker's look and its wait is not lost: the wait returns at once", async () => {
    await Effect.runPromise(Effect.gen(function*() {
      const changes = yield* Changes.make
      const looked = changes.version
      changes.wake()
      yield* changes.wait(LONG, looked).pipe(Effect.timeout("5 seconds"))
    }))
  })

  it("a change while a worker waits wakes it; listeners see the change; with no change it keeps waiting", async () => {
    const seen: Array<TaskChange> = []
    await Effect.runPromise(Effect.gen(function*() {
      const changes = yield* Changes.make
      const stop = changes.onChange((c) => seen.push(c))
      const waiting = yield* Effect.forkChild(changes.wait(LONG, changes.version))
      yield* Effect.yieldNow
      expect(waiting.pollUnsafe()).toBeUndefined()
      changes.publish(change)
      yield* Fiber.join(waiting).pipe(Effect.timeout("5 seconds"))
      expect(changes.version).toBe(1)
      stop()
      changes.publish(change)
      expect(seen).toEqual([change])
    }))
  })
})
