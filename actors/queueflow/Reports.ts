// Queue reports (ADR 0056): what changed between two moments, computed from the queue's tasks (TaskQueue.list:
// createdAt, finishedAt, status, cost, artifacts) and the tenant's workflows, as JSON and as Markdown; and the counts
// a snapshot keeps. Pure.
import type { Report, QueueFlowView, SnapshotView } from "../../schema/QueueFlow.ts"
import type { TaskSummary } from "../task/Queue.ts"

export interface Window {
  readonly from: number
  readonly to: number
  /** The snapshot the window starts at, when it starts at one. */
  readonly fromSnapshot: SnapshotView | null
}

/**
 * The artifacts of a task: those its attempts stored, and those its verified (completed) outcome names (the same
 * paths, once the store has them; the outcome's alone before).
 */
export const artifactsOf = (t: TaskSummary): ReadonlyArray<string> => [
  ...new Set([...t.artifacts, ...(t.status === "completed" ? t.outcome?.artifactPaths ?? [] : [])])
]

const within = (at: string | null, w: Window) => {
  if (at === null) return false
  const t = Date.parse(at)
  return t >= w.from && t < w.to
}

const round = (usd: number) => Math.round(usd * 1e6) / 1e6

/** Tasks by status, their total cost and artifacts: what a snapshot records of the queue. */
export const counts = (tasks: ReadonlyArray<TaskSummary>) => {
  const byStatus: Record<string, number> = {}
  let costUsd = 0
  let artifacts = 0
  for (const t of tasks) {
    byStatus[t.status] = (byStatus[t.status] ?? 0) + 1
    costUsd += t.costUsd
    artifacts += artifactsOf(t).length
  }
  return { total: tasks.length, byStatus, costUsd: round(costUsd), artifacts }
}

const taskLine = (t: TaskSummary) => ({
  id: t.id,
  kind: t.kind,
  status: t.status,
  reason: t.reason,
  costUsd: t.costUsd,
  finishedAt: t.finishedAt
})

const flowLine = (f: QueueFlowView) => ({
  id: f.id,
  template: f.template,
  instanceKey: f.instanceKey,
  status: f.status,
  result: f.result,
  reason: f.reason
})

/** The report of the window: finished tasks by how they ended, new artifacts, cost, queue depth, workflows. */
export const build = (
  tasks: ReadonlyArray<TaskSummary>,
  flows: ReadonlyArray<QueueFlowView>,
  w: Window
): Report => {
  const finished = tasks.filter((t) => within(t.finishedAt, w)).sort((a, b) =>
    (a.finishedAt ?? "") < (b.finishedAt ?? "") ? -1 : 1
  )
  const by = (status: string) => finished.filter((t) => t.status === status).map(taskLine)
  const completed = by("completed")
  const blocked = by("blocked")
  const failed = by("permanent_failure")
  const canceled = by("canceled")
  // a task's artifacts are new in the window when the task finished in it (artifacts are stored by its attempts)
  const newArtifacts = finished.flatMap((t) => artifactsOf(t).map((path) => ({ taskId: t.id, path })))
  // cost counts against the window the task last changed in
  const costUsd = round(tasks.filter((t) => within(t.updatedAt, w)).reduce((n, t) => n + t.costUsd, 0))
  const byStatus = counts(tasks).byStatus
  const delta = w.fromSnapshot === null ? null : (() => {
    const before = w.fromSnapshot.tasks.byStatus
    const out: Record<string, number> = {}
    for (const s of new Set([...Object.keys(before), ...Object.keys(byStatus)])) {
      const d = (byStatus[s] ?? 0) - (before[s] ?? 0)
      if (d !== 0) out[s] = d
    }
    return out
  })()
  const report: Omit<Report, "markdown"> = {
    from: new Date(w.from).toISOString(),
    to: new Date(w.to).toISOString(),
    fromSnapshot: w.fromSnapshot?.id ?? null,
    counts: {
      created: tasks.filter((t) => within(t.createdAt, w)).length,
      completed: completed.length,
      blocked: blocked.length,
      failed: failed.length,
      canceled: canceled.length
    },
    completed,
    blocked,
    failed,
    newArtifacts,
    costUsd,
    queue: { byStatus, delta },
    workflows: {
      created: flows.filter((f) => within(f.createdAt, w)).map(flowLine),
      ended: flows.filter((f) => within(f.endedAt, w)).map(flowLine),
      stalled: flows.filter((f) => f.status === "stalled").map(flowLine)
    }
  }
  return { ...report, markdown: markdown(report) }
}

const cell = (s: string | null) => (s ?? "").replace(/\|/g, "\\|").replace(/\s+/g, " ").slice(0, 300)

/** The report as Markdown: headline counts, then each list. */
export const markdown = (r: Omit<Report, "markdown">): string => {
  const lines: Array<string> = [
    `# Queue report ${r.from} → ${r.to}`,
    "",
    ...(r.fromSnapshot === null ? [] : [`Since snapshot \`${r.fromSnapshot}\`.`, ""]),
    `- created: ${r.counts.created}`,
    `- completed: ${r.counts.completed}`,
    `- blocked: ${r.counts.blocked}`,
    `- failed: ${r.counts.failed}`,
    `- canceled: ${r.counts.canceled}`,
    `- new artifacts: ${r.newArtifacts.length}`,
    `- cost: $${r.costUsd.toFixed(4)}`,
    ""
  ]
  const tasks = (
    title: string,
    xs: ReadonlyArray<{ id: string; kind: string; reason: string | null; costUsd: number }>
  ) => {
    if (xs.length === 0) return
    lines.push(`## ${title}`, "", "| task | kind | reason | cost |", "| --- | --- | --- | --- |")
    for (const t of xs) lines.push(`| ${t.id} | ${cell(t.kind)} | ${cell(t.reason)} | $${t.costUsd.toFixed(4)} |`)
    lines.push("")
  }
  tasks("Completed", r.completed)
  tasks("Blocked", r.blocked)
  tasks("Failed", r.failed)
  if (r.newArtifacts.length > 0) {
    lines.push("## New artifacts", "")
    for (const a of r.newArtifacts) lines.push(`- \`${a.taskId}\` ${cell(a.path)}`)
    lines.push("")
  }
  lines.push("## Queue", "", "| status | now | change |", "| --- | --- | --- |")
  for (const [status, n] of Object.entries(r.queue.byStatus).sort()) {
    const d = r.queue.delta?.[status]
    lines.push(`| ${status} | ${n} | ${d === undefined ? "" : d > 0 ? `+${d}` : String(d)} |`)
  }
  lines.push("")
  const flows = (title: string, xs: ReadonlyArray<Report["workflows"]["created"][number]>) => {
    if (xs.length === 0) return
    lines.push(`## ${title}`, "")
    for (const f of xs) {
      lines.push(
        `- ${f.template} \`${cell(f.instanceKey)}\` (${f.id}): ${f.status}${f.result === null ? "" : ` (${f.result})`}${
          f.reason === null ? "" : `: ${cell(f.reason)}`
        }`
      )
    }
    lines.push("")
  }
  flows("Workflows created", r.workflows.created)
  flows("Workflows ended", r.workflows.ended)
  flows("Workflows stalled", r.workflows.stalled)
  return lines.join("\n")
}
