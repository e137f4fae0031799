// The task decider's rules, given(events).when(command).then(events): claims only of claimable, due tasks; backoff and
// exhaustion; rate-limit hints within their cap; reclaims of the running attempt only; cancel and retry by status.
import { describe, expect, it } from "vitest"
import type { Outcome, TaskEvent } from "../../schema/Task.ts"
import { fold } from "../kernel/Decider.ts"
import { given } from "../kernel/given.ts"
import * as Decider from "./Decider.ts"
import { submitted } from "./fixtures.ts"

const claimed = (attempt: number, at = 2_000): TaskEvent => ({
  _tag: "TaskClaimed",
  attempt,
  worker: "h/w1",
  holder: "h/1-a",
  at
})
const failed = (attempt: number, retryAfterSeconds: number | null = null) =>
  ({
    _tag: "Finish",
    attempt,
    result: { _tag: "Failed", message: "boom", retryable: true, retryAfterSeconds },
    usage: Decider.NO_USAGE,
    hintCap: 1,
    random: 0.5,
    at: 3_000
  }) as const
const ok: Outcome = {
  status: "completed",
  operatorSummary: "done",
  machineStatus: "ok",
  fileChanges: [],
  artifactPaths: [],
  followUpTasks: [],
  externalMessages: []
}
const stateOf = (events: ReadonlyArray<TaskEvent>) => fold(Decider.decider, events)
const decided = (events: ReadonlyArray<TaskEvent>, command: Decider.Command) => {
  const r = Decider.decide(command, stateOf(events))
  if (r._tag === "Failure") throw new Error(`refused: ${JSON.stringify(r.failure)}`)
  return r.success as ReadonlyArray<Extract<TaskEvent, { _tag: "TaskAttemptClosed" }>>
}

describe("the task decider", () => {
  it("claims a pending task only once it is due, and only once", () => {
    given(Decider.decider, [submitted]).when({ _tag: "Claim", attempt: 1, worker: "w", holder: "h", at: 999 })
      .thenFails("NotClaimable")
    given(Decider.decider, [submitted]).when({ _tag: "Claim", attempt: 1, worker: "w", holder: "h", at: 1_000 })
      .then([{ _tag: "TaskClaimed", attempt: 1, worker: "w", holder: "h", at: 1_000 }])
    given(Decider.decider, [submitted, claimed(1)]).when({
      _tag: "Claim",
      attempt: 2,
      worker: "w",
      holder: "h",
      at: 5_000
    })
      .thenFails("NotClaimable")
  })

  it("backs off exponentially, then blocks when the attempts are spent", () => {
    const [first] = decided([submitted, claimed(1)], failed(1))
    expect(first).toMatchObject({ status: "retryable_failure", counted: true, availableAt: 3_000 + 10_000 })
    const [second] = decided([submitted, claimed(1), first!, claimed(2, 14_000)], failed(2))
    expect(second).toMatchObject({ status: "blocked", counted: true, availableAt: null })
    expect(second!.reason).toMatch(/attempts exhausted \(2 of 2\)/)
    expect(Decider.backoffMs({ baseSeconds: 10, maxSeconds: 100, jitter: 0 }, 3, 0.9)).toBe(40_000)
    expect(Decider.backoffMs({ baseSeconds: 10, maxSeconds: 100, jitter: 0 }, 9, 0.9)).toBe(100_000)
    expect(Decider.backoffMs({ baseSeconds: 10, maxSeconds: 100, jitter: 0.5 }, 1, 0)).toBe(5_000)
  })

  it("reschedules on a rate-limit hint without spending an attempt, up to the cap", () => {
    const [hinted] = decided([submitted, claimed(1)], failed(1, 20))
    expect(hinted).toMatchObject({
      closing: "rate_limited",
      counted: false,
      availableAt: 23_000,
      retryAfterSeconds: 20
    })
    const [over] = decided([submitted, claimed(1), hinted!, claimed(2, 24_000)], failed(2, 20))
    expect(over).toMatchObject({ closing: "failed", counted: true, status: "retryable_failure" })
  })

  it("blocks a completed outcome whose evidence fails, completes a clean one", () => {
    const report = (issues: ReadonlyArray<string>) =>
      ({ ...failed(1), result: { _tag: "Reported", outcome: ok, issues } }) as const
    expect(decided([submitted, claimed(1)], report([]))[0]).toMatchObject({ status: "completed", closing: "completed" })
    const [blocked] = decided([submitted, claimed(1)], report(["missing file a.txt"]))
    expect(blocked).toMatchObject({ status: "blocked", closing: "unverified" })
    expect(blocked!.reason).toBe("outcome_verification_failed: missing file a.txt")
  })

  it("reclaims only the running attempt of the holder that died, and a late finish changes nothing", () => {
    const [reclaimed] = decided([submitted, claimed(1)], { _tag: "Reclaim", attempt: 1, holder: "h/1-a", at: 9_000 })
    expect(reclaimed).toMatchObject({ closing: "reclaimed", status: "pending", availableAt: 9_000, counted: true })
    given(Decider.decider, [submitted, claimed(1)]).when({ _tag: "Reclaim", attempt: 1, holder: "other", at: 9_000 })
      .then([])
    given(Decider.decider, [submitted, claimed(1), reclaimed!]).when(failed(1)).then([])
  })

  it("cancels pending, running and blocked tasks once; retry and requeue leave blocked", () => {
    const cancel = { _tag: "Cancel", id: "tsk_x", by: "me", reason: null, at: 4_000 } as const
    given(Decider.decider, [submitted]).when(cancel).then([
      { _tag: "TaskCanceled", by: "me", reason: null, previous: "pending", attempt: null, at: 4_000 }
    ])
    given(Decider.decider, [submitted, claimed(1)]).when(cancel).then([
      { _tag: "TaskCanceled", by: "me", reason: null, previous: "running", attempt: 1, at: 4_000 }
    ])
    const canceled = decided([submitted], cancel) as unknown as ReadonlyArray<TaskEvent>
    given(Decider.decider, [submitted, ...canceled]).when(cancel).thenFails("TaskConflict")
    const [first] = decided([submitted, claimed(1)], failed(1))
    const [second] = decided([submitted, claimed(1), first!, claimed(2, 14_000)], failed(2))
    const blocked = [submitted, claimed(1), first!, claimed(2, 14_000), second!]
    expect(stateOf(blocked).status).toBe("blocked")
    const retry = { _tag: "Retry", id: "tsk_x", by: "me", requeue: false, extraAttempts: 2, at: 20_000 } as const
    given(Decider.decider, blocked).when(retry).then([
      { _tag: "TaskRetried", by: "me", requeue: false, maxAttempts: 4, previous: "blocked", at: 20_000 }
    ])
    const requeued = fold(Decider.decider, [{
      _tag: "TaskRetried",
      by: "me",
      requeue: true,
      maxAttempts: 2,
      previous: "blocked",
      at: 20_000
    }], stateOf(blocked))
    expect(requeued).toMatchObject({ status: "pending", spent: 0, availableAt: 20_000 })
    given(Decider.decider, [submitted]).when(retry).thenFails("TaskConflict")
  })
})
