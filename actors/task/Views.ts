// What the index's entries look like outside: the API's task view and the TaskQueue port's summary (actors/task/
// Index.ts holds the entries). Artifact roots are journaled relative and resolved under each host's LANTERN_HOME.
import { resolve } from "node:path"
import type { TaskView } from "../../schema/Task.ts"
import type { Entry } from "./Index.ts"
import type { TaskSummary } from "./Queue.ts"

const iso = (ms: number) => new Date(ms).toISOString()
const isoOrNull = (ms: number | null) => ms === null ? null : iso(ms)

/** The relative artifact root journaled with a task; each host resolves it under its own LANTERN_HOME. */
export const artifactRootOf = (tenant: string, id: string) => `tasks/${tenant}/${id}`

/** The fields the view and the summary share. */
const common = (e: Entry, home: string) => {
  const s = e.state
  const sub = s.submitted!
  return {
    id: e.id,
    kind: sub.kind,
    source: sub.source,
    status: s.status,
    priority: s.priority,
    outcome: s.outcome,
    reason: s.reason,
    artifactRoot: resolve(home, sub.artifactRoot),
    artifacts: s.artifacts,
    costUsd: s.costUsd,
    createdAt: iso(sub.at),
    updatedAt: iso(s.updatedAt),
    finishedAt: isoOrNull(s.finishedAt)
  }
}

export const viewOf = (e: Entry, home: string): TaskView => {
  const s = e.state
  const sub = s.submitted!
  return {
    ...common(e, home),
    subject: sub.subject,
    description: sub.description,
    payload: sub.payload,
    adapters: sub.adapters,
    attemptsUsed: s.spent,
    maxAttempts: s.maxAttempts,
    hintedReschedules: s.hinted,
    availableAt: iso(s.availableAt),
    dedupeKey: sub.dedupeKey,
    origin: sub.origin,
    startedAt: isoOrNull(s.startedAt),
    attempts: s.attempts.map((a) => ({
      attempt: a.attempt,
      worker: a.worker,
      holder: a.holder,
      claimedAt: iso(a.claimedAt),
      adapter: a.adapter,
      probes: a.probes,
      closing: a.closed?.closing ?? null,
      closedAt: a.closed === null ? null : iso(a.closed.at),
      counted: a.closed?.counted ?? false,
      reason: a.closed?.reason ?? null,
      outcome: a.closed?.outcome ?? null,
      bundleHash: a.closed?.bundleHash ?? null,
      retryAfterSeconds: a.closed?.retryAfterSeconds ?? null,
      runId: a.closed?.runId ?? null,
      workloadId: a.closed?.workloadId ?? null,
      costUsd: a.closed?.costUsd ?? 0
    }))
  }
}

export const summaryOf = (e: Entry, home: string): TaskSummary => ({
  ...common(e, home),
  tenant: e.tenant,
  attempts: e.state.spent,
  origin: e.state.submitted!.origin
})
