// The task index's claim order (ADR 0063) with no bus: priority first, then availability, then submission; nothing
// before its `availableAt`; a task that leaves the claimable statuses is never offered; a taken task is not offered
// again until released; and, over any sequence of changes, `take` agrees with a scan of every entry.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { TaskStatus } from "../../schema/Task.ts"
import * as Decider from "./Decider.ts"
import * as fixtures from "./fixtures.ts"
import { claimsBefore, type Entry, Index } from "./Index.ts"

const submittedState = Decider.evolve(Decider.initialState, fixtures.submitted)

const stateOf = (priority: number, availableAt: number, status: TaskStatus = "pending"): Decider.State => ({
  ...submittedState,
  priority,
  availableAt,
  status
})

const never = () => false

/** Takes every task claimable at `now`, in the order the index offers them. */
const drain = (index: Index, now: number, paused: (tenant: string) => boolean = never) => {
  const out: Array<string> = []
  for (let e = index.take(now, paused); e !== null; e = index.take(now, paused)) out.push(e.id)
  return out
}

describe("claim order", () => {
  it("priorities 2, 9, 9 and a far-future 9 are offered 9, 9, 2, the future one never", () => {
    const index = new Index()
    index.put("t", "low", stateOf(2, 0), 1, 1)
    index.put("t", "nine-a", stateOf(9, 0), 2, 2)
    index.put("t", "nine-b", stateOf(9, 0), 3, 3)
    index.put("t", "future", stateOf(9, 10_000_000), 4, 4)
    expect(drain(index, 1_000)).toEqual(["nine-a", "nine-b", "low"])
    expect(index.nextAvailable(1_000, never)).toBe(10_000_000)
  })

  it("within a priority: earlier availability first, then earlier submission", () => {
    const index = new Index()
    index.put("t", "late-submitted-early-due", stateOf(5, 10), 9, 9)
    index.put("t", "first", stateOf(5, 20), 1, 1)
    index.put("t", "second", stateOf(5, 20), 2, 2)
    expect(drain(index, 100)).toEqual(["late-submitted-early-due", "first", "second"])
  })

  it("a delayed task moves in when its instant comes, and takes its place by priority", () => {
    const index = new Index()
    index.put("t", "delayed-high", stateOf(8, 500), 1, 1)
    index.put("t", "now-low", stateOf(1, 0), 2, 2)
    index.put("t", "now-mid", stateOf(4, 0), 3, 3)
    expect(index.take(100, never)?.id).toBe("now-mid")
    expect(index.nextAvailable(100, never)).toBe(500)
    expect(index.take(500, never)?.id).toBe("delayed-high")
    expect(index.take(500, never)?.id).toBe("now-low")
    expect(index.take(500, never)).toBeNull()
    expect(index.nextAvailable(500, never)).toBeNull()
  })

  it("across tenants the best task wins; a paused tenant's tasks are passed over and its instants ignored", () => {
    const index = new Index()
    index.put("a", "a5", stateOf(5, 0), 1, 1)
    index.put("b", "b7", stateOf(7, 0), 2, 2)
    index.put("b", "b-later", stateOf(9, 300), 3, 3)
    const pausedB = (t: string) => t === "b"
    expect(index.nextAvailable(0, pausedB)).toBeNull()
    expect(index.take(0, pausedB)?.id).toBe("a5")
    expect(index.take(0, pausedB)).toBeNull()
    // resumed: b's tasks were kept, in their order
    expect(drain(index, 300)).toEqual(["b-later", "b7"])
  })
})

describe("removal and changes", () => {
  it("a task that is claimed, completed or canceled elsewhere is not offered; one retried is offered again", () => {
    const index = new Index()
    index.put("t", "x", stateOf(5, 0), 1, 1)
    index.put("t", "y", stateOf(6, 0), 2, 2)
    index.put("t", "y", stateOf(6, 0, "running"), 5, 2)
    index.put("t", "x", stateOf(5, 0, "canceled"), 6, 1)
    expect(index.take(0, never)).toBeNull()
    expect(index.running().map((e) => e.id)).toEqual(["y"])
    index.put("t", "y", stateOf(6, 50, "retryable_failure"), 7, 2)
    expect(index.running()).toEqual([])
    expect(index.take(10, never)).toBeNull()
    expect(index.take(50, never)?.id).toBe("y")
  })

  it("an older or equal sequence changes nothing, and the submission order is kept", () => {
    const index = new Index()
    expect(index.put("t", "x", stateOf(5, 0), 3, 3)).not.toBeNull()
    expect(index.put("t", "x", stateOf(5, 0, "running"), 3, 3)).toBeNull()
    expect(index.put("t", "x", stateOf(5, 0, "running"), 2, 2)).toBeNull()
    expect(index.put("t", "x", stateOf(5, 0, "retryable_failure"), 9, 9)?.entry.order).toBe(3)
    expect(index.put("t", "nothing", Decider.initialState, 10, 10)).toBeNull()
    expect(index.size).toBe(1)
  })

  it("a taken task is not offered again until released, then as it stands", () => {
    const index = new Index()
    index.put("t", "x", stateOf(5, 0), 1, 1)
    const taken = index.take(0, never)
    expect(taken?.seq).toBe(1)
    // the index folds a newer claimable state while the claim is out: still not offered
    index.put("t", "x", stateOf(5, 0, "retryable_failure"), 4, 1)
    expect(index.take(0, never)).toBeNull()
    index.release("t", "x")
    expect(index.take(0, never)?.seq).toBe(4)
    index.put("t", "x", stateOf(5, 0, "running"), 5, 1)
    index.release("t", "x")
    expect(index.take(0, never)).toBeNull()
    expect(index.claimable).toBe(0)
  })
})

describe("consistency", () => {
  /** What the index must offer: the best of the entries claimable at `now`, not taken, by a scan of them all. */
  const scan = (entries: Map<string, Entry>, taken: Set<string>, now: number) => {
    let best: Entry | null = null
    for (const [key, e] of entries) {
      if (taken.has(key) || !Decider.isClaimable(e.state) || e.state.availableAt > now) continue
      if (best === null || claimsBefore(e, best)) best = e
    }
    return best
  }

  const statuses: ReadonlyArray<TaskStatus> = ["pending", "retryable_failure", "running", "completed", "canceled"]
  const op = fc.oneof(
    fc.record({
      _tag: fc.constant("put" as const),
      task: fc.integer({ min: 0, max: 30 }),
      priority: fc.integer({ min: 0, max: 9 }),
      availableAt: fc.integer({ min: 0, max: 100 }),
      status: fc.constantFrom(...statuses)
    }),
    fc.record({ _tag: fc.constant("take" as const), now: fc.integer({ min: 0, max: 120 }) }),
    fc.record({ _tag: fc.constant("release" as const), task: fc.integer({ min: 0, max: 30 }) })
  )

  it("over any sequence of puts, takes and releases, take offers what a full scan picks", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const index = new Index()
        const model = new Map<string, Entry>()
        const taken = new Set<string>()
        let seq = 0
        let now = 0
        for (const o of ops) {
          if (o._tag === "put") {
            seq++
            const key = `t.${o.task}`
            const order = model.get(key)?.order ?? seq
            model.set(key, {
              tenant: "t",
              id: String(o.task),
              state: stateOf(o.priority, o.availableAt, o.status),
              seq,
              order
            })
            index.put("t", String(o.task), stateOf(o.priority, o.availableAt, o.status), seq, seq)
          } else if (o._tag === "release") {
            taken.delete(`t.${o.task}`)
            index.release("t", String(o.task))
          } else {
            now = Math.max(now, o.now)
            const expected = scan(model, taken, now)
            const got = index.take(now, never)
            expect(got === null ? null : `${got.id}@${got.seq}`).toBe(
              expected === null ? null : `${expected.id}@${expected.seq}`
            )
            if (got !== null) taken.add(`t.${got.id}`)
          }
        }
        expect(index.claimable).toBe(
          [...model].filter(([k, e]) => !taken.has(k) && Decider.isClaimable(e.state)).length
        )
      }),
      { numRuns: 300 }
    )
  })

  it("stale heap entries are compacted away: memory follows the live tasks, not the changes", () => {
    const index = new Index()
    // one task changed 50,000 times between claimable states, and 10,000 completed
    for (let i = 1; i <= 50_000; i++) index.put("t", "churn", stateOf(i % 10, i), i, 1)
    for (let i = 0; i < 10_000; i++) {
      index.put("t", `done-${i}`, stateOf(5, 0), 100_000 + 2 * i, 100_000 + 2 * i)
      index.put("t", `done-${i}`, stateOf(5, 0, "completed"), 100_001 + 2 * i, 100_000 + 2 * i)
    }
    expect(index.claimable).toBe(1)
    expect(index.heaped).toBeLessThanOrEqual(2 * index.claimable + 1_024 + 1)
    expect(drain(index, 1_000_000)).toEqual(["churn"])
  })
})
