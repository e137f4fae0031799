import { describe, expect, it } from "vitest"
import type { QueueFlowView, SnapshotView } from "../../schema/QueueFlow.ts"
import type { TaskSummary } from "../task/Queue.ts"
import * as Reports from "./Reports.ts"

const task = (
  id: string,
  status: TaskSummary["status"],
  at: { created: string; finished?: string },
  extra: Partial<TaskSummary> = {}
): TaskSummary => ({
  id,
  tenant: "t",
  kind: "demo",
  source: "test",
  status,
  priority: 5,
  attempts: 1,
  origin: {},
  outcome: null,
  reason: null,
  artifactRoot: `tasks/t/${id}`,
  artifacts: [],
  costUsd: 0,
  createdAt: at.created,
  updatedAt: at.finished ?? at.created,
  finishedAt: at.finished ?? null,
  ...extra
})

const flow = (
  id: string,
  status: QueueFlowView["status"],
  createdAt: string,
  endedAt: string | null
): QueueFlowView => ({
  id,
  template: "goal-loop",
  instanceKey: id,
  base: id,
  status,
  phase: "verify",
  stage: "verify",
  iteration: 1,
  maxIterations: 3,
  result: status === "complete" ? "done" : null,
  reason: status === "stalled" ? "verify 1 task x is blocked" : null,
  currentTaskId: null,
  context: {},
  sensorEventId: null,
  phases: [],
  artifactPaths: [],
  createdAt,
  updatedAt: endedAt ?? createdAt,
  endedAt
})

const T = (h: number) => `2026-12-03T${String(h).padStart(2, "0")}:00:00.000Z`

describe("reports", () => {
  const tasks = [
    task("a", "completed", { created: T(8), finished: T(9) }, { costUsd: 0.25, artifacts: ["reports/x-execute-1.md"] }),
    task("b", "blocked", { created: T(8), finished: T(10) }, { reason: "outcome_verification_failed", costUsd: 0.5 }),
    task("c", "permanent_failure", { created: T(11), finished: T(11) }),
    task("d", "completed", { created: T(6), finished: T(7) }, { costUsd: 9, artifacts: ["old.md"] }),
    task("e", "pending", { created: T(10) })
  ]
  const flows = [flow("f1", "complete", T(8), T(10)), flow("f2", "stalled", T(6), null)]

  it("counts what finished in the window, its new artifacts and cost, and not what finished before", () => {
    const r = Reports.build(tasks, flows, { from: Date.parse(T(8)), to: Date.parse(T(12)), fromSnapshot: null })
    expect(r.counts).toEqual({ created: 4, completed: 1, blocked: 1, failed: 1, canceled: 0 })
    expect(r.completed.map((t) => t.id)).toEqual(["a"])
    expect(r.blocked[0]).toMatchObject({ id: "b", reason: "outcome_verification_failed" })
    expect(r.newArtifacts).toEqual([{ taskId: "a", path: "reports/x-execute-1.md" }])
    expect(r.costUsd).toBe(0.75)
    expect(r.queue.delta).toBeNull()
    expect(r.workflows.created.map((f) => f.id)).toEqual(["f1"])
    expect(r.workflows.ended.map((f) => f.id)).toEqual(["f1"])
    expect(r.workflows.stalled.map((f) => f.id)).toEqual(["f2"])
    expect(r.markdown).toContain("- completed: 1")
    expect(r.markdown).toContain("| b | demo | outcome_verification_failed | $0.5000 |")
    expect(r.markdown).toContain("reports/x-execute-1.md")
    expect(r.markdown).toContain("goal-loop `f2` (f2): stalled: verify 1 task x is blocked")
  })

  it("shows the queue's change since the snapshot it starts at", () => {
    const snapshot: SnapshotView = {
      id: "snp_00000000000000000000000000",
      label: "morning",
      takenAt: T(8),
      tasks: { total: 2, byStatus: { pending: 2 }, costUsd: 0, artifacts: 0 },
      workflows: []
    }
    const r = Reports.build(tasks, flows, { from: Date.parse(T(8)), to: Date.parse(T(12)), fromSnapshot: snapshot })
    expect(r.fromSnapshot).toBe(snapshot.id)
    expect(r.queue.byStatus).toEqual({ completed: 2, blocked: 1, permanent_failure: 1, pending: 1 })
    expect(r.queue.delta).toEqual({ pending: -1, completed: 2, blocked: 1, permanent_failure: 1 })
    expect(r.markdown).toContain("| pending | 1 | -1 |")
  })

  it("counts a snapshot's tasks", () => {
    expect(Reports.counts(tasks)).toEqual({
      total: 5,
      byStatus: { completed: 2, blocked: 1, permanent_failure: 1, pending: 1 },
      costUsd: 9.75,
      artifacts: 2
    })
  })
})
