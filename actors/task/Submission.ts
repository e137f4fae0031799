// A task's submission as the shell resolves it before the decider sees it (ADR 0054): its scheduling fields checked
// (a refusal names the field), its adapter chain and retry policy (task over kind over default), and its id when it
// carries a dedupe key.
import { createHash } from "node:crypto"
import { resolve } from "node:path"
import { Config, Schema } from "effect"
import { type AdapterSpec, type ResolvedRetry, RetryPolicy, type TaskSubmission } from "../../schema/Task.ts"
import { TaskRefused } from "./Queue.ts"

export const DEFAULT_MAX_ATTEMPTS = 3

/** A task's id from its dedupe key: the same key in the same tenant is the same journal, whichever host submits. */
export const idOfDedupeKey = (tenant: string, dedupeKey: string) =>
  `tsk_${createHash("sha256").update(`${tenant}\n${dedupeKey}`).digest("hex").slice(0, 26)}`

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/u

export interface Settings {
  readonly defaultRetry: ResolvedRetry
  /** Per kind, over the default, under the task's own. */
  readonly kindRetry: Readonly<Record<string, typeof RetryPolicy.Type>>
  /** Rate-limit reschedules a task gets before a hinted failure spends an attempt. */
  readonly hintCap: number
  /** Where tasks' artifact roots live on this host. */
  readonly home: string
}

const KindPolicies = Schema.fromJsonString(Schema.Record(Schema.String, RetryPolicy))

export const settingsConfig = Config.all({
  base: Config.Number("LANTERN_TASK_RETRY_BASE_SECONDS").pipe(Config.withDefault(5)),
  max: Config.Number("LANTERN_TASK_RETRY_MAX_SECONDS").pipe(Config.withDefault(600)),
  jitter: Config.Number("LANTERN_TASK_RETRY_JITTER").pipe(Config.withDefault(0.2)),
  kinds: Config.String("LANTERN_TASK_RETRY_POLICIES").pipe(Config.withDefault("{}")),
  hintCap: Config.Int("LANTERN_TASK_HINT_CAP").pipe(Config.withDefault(5)),
  home: Config.String("LANTERN_HOME").pipe(Config.withDefault(".lantern"))
}).pipe(
  Config.map((c): Settings => ({
    defaultRetry: { baseSeconds: c.base, maxSeconds: c.max, jitter: Math.min(1, Math.max(0, c.jitter)) },
    kindRetry: (() => {
      try {
        return Schema.decodeUnknownSync(KindPolicies)(c.kinds)
      } catch {
        return {}
      }
    })(),
    hintCap: c.hintCap,
    home: resolve(c.home)
  }))
)

/** Decodes the submission's scheduling fields; a refusal names the field. */
export const resolveSubmission = (
  submission: TaskSubmission,
  now: number,
  settings: Settings
): { adapters: ReadonlyArray<AdapterSpec>; availableAt: number; retry: ResolvedRetry } => {
  if (submission.availableAt !== undefined && submission.delayMinutes !== undefined) {
    throw new TaskRefused("delayMinutes", "give availableAt or delayMinutes, not both")
  }
  let availableAt = now
  if (submission.availableAt !== undefined) {
    const t = Date.parse(submission.availableAt)
    if (!ISO_WITH_ZONE.test(submission.availableAt) || Number.isNaN(t)) {
      throw new TaskRefused(
        "availableAt",
        "Expected an ISO 8601 date and time with a zone, such as 2026-12-03T10:05:00Z"
      )
    }
    availableAt = Math.max(0, t)
  }
  if (submission.delayMinutes !== undefined) availableAt = now + Math.round(submission.delayMinutes * 60_000)
  if (submission.agentName !== undefined && submission.adapter !== undefined) {
    throw new TaskRefused("agentName", "give agentName or adapter, not both")
  }
  const adapters: ReadonlyArray<AdapterSpec> = submission.agentName !== undefined
    ? [{ type: "agent", agentName: submission.agentName }]
    : submission.adapter === undefined
    ? []
    : Array.isArray(submission.adapter)
    ? submission.adapter as ReadonlyArray<AdapterSpec>
    : [submission.adapter as AdapterSpec]
  if (adapters.length === 0) {
    throw new TaskRefused("adapter", "give an adapter (or a chain of them), or agentName for an agent adapter")
  }
  const kind = settings.kindRetry[submission.kind] ?? {}
  const own = submission.retry ?? {}
  const retry: ResolvedRetry = {
    baseSeconds: own.baseSeconds ?? kind.baseSeconds ?? settings.defaultRetry.baseSeconds,
    maxSeconds: own.maxSeconds ?? kind.maxSeconds ?? settings.defaultRetry.maxSeconds,
    jitter: own.jitter ?? kind.jitter ?? settings.defaultRetry.jitter
  }
  return { adapters, availableAt, retry }
}
