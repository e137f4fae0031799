import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { QueueFlowEvent } from "../../schema/QueueFlow.ts"
import type { TaskStatus } from "../../schema/Task.ts"
import { fold } from "../kernel/Decider.ts"
import { given } from "../kernel/given.ts"
import { type Command, current, decider, type Flow } from "./Decider.ts"
import * as Templates from "./Templates.ts"

const created = (
  template: string,
  maxIterations = 3
): Omit<Extract<QueueFlowEvent, { _tag: "QueueFlowCreated" }>, "_tag"> => ({
  workflowId: "qfw_00000000000000000000000000",
  template,
  instanceKey: "Fix login #12",
  base: "fix-login-12",
  context: { goal: "fix login" },
  maxIterations,
  task: null,
  phases: null,
  sensorEventId: null
})

const changed = (
  taskId: string,
  status: TaskStatus,
  machineStatus: string | null = null,
  reason: string | null = null
): Command => ({ _tag: "TaskChanged", taskId, status, machineStatus, reason, artifacts: [] })

/** Runs commands one after another, as the shell would, and returns every event and the final state. */
const play = (commands: ReadonlyArray<Command>, from: ReadonlyArray<QueueFlowEvent> = []) => {
  const events: Array<QueueFlowEvent> = [...from]
  for (const c of commands) {
    const decided = decider.decide(c, fold(decider, events))
    if (Result.isFailure(decided)) throw new Error("refused")
    events.push(...decided.success)
  }
  return { events, state: fold(decider, events) as Flow }
}

/** Submits whatever phase is due as task `t<n>` and completes it with `machineStatus`. */
const runPhase = (events: ReadonlyArray<QueueFlowEvent>, taskId: string, machineStatus: string) => {
  const at = current(fold(decider, events))!
  return play([
    { _tag: "RecordSubmitted", phase: at.phase, iteration: at.iteration, taskId },
    changed(taskId, "running"),
    changed(taskId, "completed", machineStatus)
  ], events).events
}

describe("queue workflow decider", () => {
  it("is created once, at plan, with the plan's artifact path", () => {
    given(decider).when({ _tag: "Create", event: created("goal-loop") }).then([
      { _tag: "QueueFlowCreated", ...created("goal-loop") },
      { _tag: "QueueFlowPhaseDue", phase: "plan", iteration: 1, artifactPath: "plans/fix-login-12-plan.md" }
    ])
    const { events } = play([{ _tag: "Create", event: created("goal-loop") }])
    given(decider, events).when({ _tag: "Create", event: created("goal-loop") }).then([])
  })

  it("records a phase's task once, and only for the phase that is due", () => {
    const { events } = play([{ _tag: "Create", event: created("goal-loop") }])
    given(decider, events).when({ _tag: "RecordSubmitted", phase: "execute", iteration: 1, taskId: "t1" }).then([])
    const submitted = play([{ _tag: "RecordSubmitted", phase: "plan", iteration: 1, taskId: "t1" }], events).events
    given(decider, submitted).when({ _tag: "RecordSubmitted", phase: "plan", iteration: 1, taskId: "t2" }).then([])
  })

  it("goes plan → execute 1 → verify 1 → execute 2 → verify 2 → complete, a new task and artifact path each iteration", () => {
    let events = play([{ _tag: "Create", event: created("goal-loop") }]).events
    events = runPhase(events, "t-plan", "ok")
    events = runPhase(events, "t-exec-1", "ok")
    events = runPhase(events, "t-verify-1", "continue")
    const at = current(fold(decider, events))!
    expect(at).toMatchObject({
      phase: "execute",
      iteration: 2,
      taskId: null,
      artifactPath: "reports/fix-login-12-execute-2.md"
    })
    events = runPhase(events, "t-exec-2", "ok")
    events = runPhase(events, "t-verify-2", "done")
    const flow = fold(decider, events)
    expect(flow.status).toBe("complete")
    expect(flow.result).toBe("done")
    expect(flow.phases.map((p) => [p.phase, p.iteration, p.taskId, p.artifactPath])).toEqual([
      ["plan", 1, "t-plan", "plans/fix-login-12-plan.md"],
      ["execute", 1, "t-exec-1", "reports/fix-login-12-execute-1.md"],
      ["verify", 1, "t-verify-1", "reports/fix-login-12-verify-1.md"],
      ["execute", 2, "t-exec-2", "reports/fix-login-12-execute-2.md"],
      ["verify", 2, "t-verify-2", "reports/fix-login-12-verify-2.md"]
    ])
  })

  // seed bug: an execute phase that never re-runs in iteration two
  it("regression: verify's continue makes a NEW execute phase due, and the old execute task's changes are ignored", () => {
    let events = play([{ _tag: "Create", event: created("goal-loop") }]).events
    events = runPhase(events, "t-plan", "ok")
    events = runPhase(events, "t-exec-1", "ok")
    events = runPhase(events, "t-verify-1", "continue")
    const due = events[events.length - 1]!
    expect(due).toEqual({
      _tag: "QueueFlowPhaseDue",
      phase: "execute",
      iteration: 2,
      artifactPath: "reports/fix-login-12-execute-2.md"
    })
    // a late change of iteration one's execute task (already completed) neither finishes nor stalls iteration two
    given(decider, events).when(changed("t-exec-1", "completed", "ok")).then([])
    given(decider, events).when(changed("t-exec-1", "canceled")).then([])
    given(decider, events).when({ _tag: "RecordSubmitted", phase: "execute", iteration: 2, taskId: "t-exec-2" }).then([
      { _tag: "QueueFlowPhaseSubmitted", phase: "execute", iteration: 2, taskId: "t-exec-2" }
    ])
  })

  // seed bug: a verify loop with no bound
  it("regression: verify's continue at maxIterations fails the workflow instead of looping", () => {
    let events = play([{ _tag: "Create", event: created("goal-loop", 2) }]).events
    events = runPhase(events, "p", "ok")
    for (const n of [1, 2]) {
      events = runPhase(events, `e${n}`, "ok")
      events = runPhase(events, `v${n}`, "continue")
    }
    const flow = fold(decider, events)
    expect(flow.status).toBe("failed")
    expect(flow.result).toBe("max_iterations")
    expect(flow.reason).toContain("iteration 2 of 2")
    expect(flow.phases.filter((p) => p.phase === "execute")).toHaveLength(2)
    expect(current(flow)).toBeNull()
    // nothing moves an ended workflow
    given(decider, events).when(changed("v2", "running")).then([])
    given(decider, events).when({ _tag: "RecordSubmitted", phase: "execute", iteration: 3, taskId: "e3" }).then([])
  })

  it("the default bound is 3 iterations", () => {
    let events = play([{ _tag: "Create", event: { ...created("goal-loop"), maxIterations: 3 } }]).events
    events = runPhase(events, "p", "ok")
    for (const n of [1, 2, 3]) {
      events = runPhase(events, `e${n}`, "ok")
      events = runPhase(events, `v${n}`, "continue")
    }
    expect(fold(decider, events).status).toBe("failed")
    expect(Templates.goalLoop.next("verify", 3, "continue", 3)).toMatchObject({ _tag: "End", result: "max_iterations" })
    expect(Templates.goalLoop.next("verify", 2, "continue", 3)).toEqual({
      _tag: "Phase",
      phase: "execute",
      iteration: 3
    })
  })

  // seed bug: a blocked state that nothing can leave
  it("regression: a blocked phase task stalls the workflow with the reason, and the task running again resumes it", () => {
    let events = play([{ _tag: "Create", event: created("goal-loop") }]).events
    events = runPhase(events, "t-plan", "ok")
    events = play([
      { _tag: "RecordSubmitted", phase: "execute", iteration: 1, taskId: "t-exec-1" },
      changed("t-exec-1", "running"),
      changed("t-exec-1", "blocked", null, "outcome_verification_failed")
    ], events).events
    let flow = fold(decider, events)
    expect(flow.status).toBe("stalled")
    expect(flow.reason).toBe("execute 1 task t-exec-1 is blocked: outcome_verification_failed")
    // a second stalling change adds nothing
    given(decider, events).when(changed("t-exec-1", "blocked")).then([])
    // the operator retries it: pending, then running
    given(decider, events).when(changed("t-exec-1", "pending")).then([
      { _tag: "QueueFlowResumed", phase: "execute", iteration: 1, taskId: "t-exec-1", taskStatus: "pending" }
    ])
    events = play([changed("t-exec-1", "running"), changed("t-exec-1", "completed", "ok")], events).events
    flow = fold(decider, events)
    expect(flow.status).toBe("running")
    expect(flow.reason).toBeNull()
    expect(current(flow)).toMatchObject({ phase: "verify", iteration: 1 })
  })

  it("a canceled or permanently failed phase task stalls too; a retried task that completes before its running is seen resumes and advances", () => {
    let events = play([{ _tag: "Create", event: created("goal-loop") }]).events
    events = play([
      { _tag: "RecordSubmitted", phase: "plan", iteration: 1, taskId: "t" },
      changed("t", "permanent_failure", null, "exit 3")
    ], events).events
    expect(fold(decider, events).status).toBe("stalled")
    const after = play([changed("t", "completed", "ok")], events).events
    expect(after.slice(events.length).map((e) => e._tag)).toEqual([
      "QueueFlowResumed",
      "QueueFlowPhaseFinished",
      "QueueFlowPhaseDue"
    ])
    const canceled = play([
      { _tag: "Create", event: created("goal-loop") },
      { _tag: "RecordSubmitted", phase: "plan", iteration: 1, taskId: "t" },
      changed("t", "canceled", null, "by operator")
    ]).state
    expect(canceled.status).toBe("stalled")
    expect(canceled.reason).toContain("canceled: by operator")
  })

  it("retryable failures keep the workflow running", () => {
    const { events } = play([
      { _tag: "Create", event: created("goal-loop") },
      { _tag: "RecordSubmitted", phase: "plan", iteration: 1, taskId: "t" },
      changed("t", "running")
    ])
    given(decider, events).when(changed("t", "retryable_failure")).then([])
  })

  it("pr-lifecycle: opened → reviewed → merged, or closed on a rejecting review", () => {
    let events = play([{ _tag: "Create", event: created("pr-lifecycle") }]).events
    expect(current(fold(decider, events))).toMatchObject({
      phase: "open",
      artifactPath: "reports/fix-login-12-open.md"
    })
    events = runPhase(events, "o", "opened")
    expect(Templates.prLifecycle.stage("open", "review", null)).toBe("opened")
    const rejected = runPhase(events, "r", "rejected")
    expect(fold(decider, rejected)).toMatchObject({ status: "complete", result: "closed" })
    events = runPhase(events, "r", "approved")
    expect(Templates.prLifecycle.stage("review", "merge", null)).toBe("reviewed")
    events = runPhase(events, "m", "ok")
    expect(fold(decider, events)).toMatchObject({ status: "complete", result: "merged" })
  })

  it("pr-lifecycle: a review that requests changes starts a new revise task, then reviews again, up to maxIterations", () => {
    let events = play([{ _tag: "Create", event: created("pr-lifecycle", 2) }]).events
    events = runPhase(events, "o", "opened")
    events = runPhase(events, "r1", "changes_requested")
    const due = (at: ReadonlyArray<QueueFlowEvent>) => {
      const c = current(fold(decider, at))
      return c && [c.phase, c.iteration, c.taskId, c.artifactPath]
    }
    expect(due(events)).toEqual(["revise", 1, null, "reports/fix-login-12-revise-1.md"])
    expect(Templates.prLifecycle.stage("review", "revise", null)).toBe("changes_requested")
    events = runPhase(events, "v1", "ok")
    expect(due(events)).toEqual(["review", 2, null, "reports/fix-login-12-review-2.md"])
    expect(Templates.prLifecycle.stage("revise", "review", null)).toBe("revised")
    // the second review may approve: merged
    const approved = runPhase(runPhase(events, "r2", "approved"), "m", "ok")
    expect(fold(decider, approved)).toMatchObject({ status: "complete", result: "merged" })
    expect((fold(decider, approved) as Flow).phases.map((p) => [p.phase, p.iteration, p.taskId])).toEqual([
      ["open", 1, "o"],
      ["review", 1, "r1"],
      ["revise", 1, "v1"],
      ["review", 2, "r2"],
      ["merge", 1, "m"]
    ])
    // or ask for changes again: the bound (2 reviews) ends it failed, naming it, with no third review
    const bounded = runPhase(events, "r2", "changes_requested")
    expect(fold(decider, bounded)).toMatchObject({ status: "failed", result: "max_iterations" })
    expect(fold(decider, bounded).reason).toContain("2 of 2 reviews")
    expect(due(bounded)).toBeNull()
    // a failed revise fails the workflow
    const failed = runPhase(
      runPhase(
        runPhase(play([{ _tag: "Create", event: created("pr-lifecycle", 3) }]).events, "o", "ok"),
        "r1",
        "changes"
      ),
      "v1",
      "abandoned"
    )
    expect(fold(decider, failed)).toMatchObject({ status: "failed", result: "abandoned" })
  })

  it("an unknown verify status fails the workflow naming it", () => {
    let events = play([{ _tag: "Create", event: created("goal-loop") }]).events
    events = runPhase(events, "p", "ok")
    events = runPhase(events, "e", "ok")
    events = runPhase(events, "v", "maybe")
    expect(fold(decider, events)).toMatchObject({ status: "failed", result: "unknown_status" })
    expect(fold(decider, events).reason).toContain("'maybe'")
  })

  it("derives artifact bases from instance keys", () => {
    expect(Templates.baseOf("Fix login #12")).toBe("fix-login-12")
    expect(Templates.baseOf("https://github.com/a/b/pull/7")).toBe("https-github.com-a-b-pull-7")
    expect(Templates.baseOf("###")).toBe("workflow")
  })
})
