// The operator queue's language (issue 16): a task as operators and sensors submit it, the adapters that carry it
// out, and the normalized outcome an adapter reports and the queue verifies. No I/O. The task actor's events
// (lantern.task.<tenant>.<taskId>) are declared below the submission by the code that journals them.
import { Schema } from "effect"
import { SecretRef } from "./AgentSpec.ts"
import { AgentName } from "./Ids.ts"
import { Tier } from "./Workload.ts"

/** A task id: `tsk_` followed by 26 base32 characters (time-ordered). */
export const TaskId = Schema.String.check(
  Schema.isPattern(/^tsk_[0-9a-z]{26}$/u, { message: "Expected a task id like tsk_01j…" })
)
export type TaskId = typeof TaskId.Type

/** A task's kind or source: what it is and where it came from (`kind` picks a retry policy). */
export const Label = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_.:-]{0,62}$/u, {
    message: "Expected lowercase letters, digits, '.', ':', '-' or '_', 1-63 characters"
  })
)

export const STATUSES = [
  "pending",
  "running",
  "completed",
  "retryable_failure",
  "blocked",
  "permanent_failure",
  "canceled"
] as const
export const TaskStatus = Schema.Literals(STATUSES)
export type TaskStatus = typeof TaskStatus.Type

/** Priority 0–9: higher is claimed first, FIFO within a priority. */
export const Priority = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 9 }))
export const DEFAULT_PRIORITY = 5

const EnvName = Schema.String.check(
  Schema.isPattern(/^[A-Z_][A-Z0-9_]{0,127}$/u, { message: "Expected an environment variable name" })
)
const Seconds = (maximum: number) => Schema.Int.check(Schema.isBetween({ minimum: 1, maximum }))

/** Runs a Lantern agent (declarative or code-first) with the task as its input. */
export const AgentAdapter = Schema.Struct({
  type: Schema.Literal("agent"),
  agentName: AgentName,
  agentVersion: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
})
/** A command run in a sandbox tier through the spawner; its stdout's last JSON line is its outcome. */
export const ScriptAdapter = Schema.Struct({
  type: Schema.Literal("script"),
  command: Schema.Array(Schema.String.check(Schema.isBetweenLength(1, 4096))).check(Schema.isMinLength(1)),
  args: Schema.optionalKey(Schema.Array(Schema.String.check(Schema.isMaxLength(4096)))),
  env: Schema.optionalKey(Schema.Record(EnvName, Schema.String.check(Schema.isMaxLength(4096)))),
  secrets: Schema.optionalKey(Schema.Array(Schema.Struct({ envName: EnvName, secretRef: SecretRef }))),
  timeoutSeconds: Schema.optionalKey(Seconds(86_400)),
  isolation: Schema.optionalKey(Tier)
})
/** A model behind an OpenAI-compatible endpoint (Ollama), called through the router. */
export const OllamaAdapter = Schema.Struct({
  type: Schema.Literal("ollama"),
  model: Schema.String.check(Schema.isBetweenLength(1, 200)),
  timeoutSeconds: Schema.optionalKey(Seconds(3_600))
})
/** A coding-agent CLI (codex, claude-code) run inside a sandbox workload; its output contract is parsed. */
export const AgentCliAdapter = Schema.Struct({
  type: Schema.Literal("agent-cli"),
  driver: Schema.Literals(["codex", "claude-code"]),
  /** The CLI's executable (the driver's usual name when absent). */
  command: Schema.optionalKey(Schema.String.check(Schema.isBetweenLength(1, 4096))),
  env: Schema.optionalKey(Schema.Record(EnvName, Schema.String.check(Schema.isMaxLength(4096)))),
  secrets: Schema.optionalKey(Schema.Array(Schema.Struct({ envName: EnvName, secretRef: SecretRef }))),
  timeoutSeconds: Schema.optionalKey(Seconds(86_400)),
  isolation: Schema.optionalKey(Tier)
})
export const AdapterSpec = Schema.Union([AgentAdapter, ScriptAdapter, OllamaAdapter, AgentCliAdapter])
export type AdapterSpec = typeof AdapterSpec.Type

/** Backoff between attempts: `baseSeconds · 2^(attempt-1)`, capped, with ±`jitter` spread. */
export const RetryPolicy = Schema.Struct({
  baseSeconds: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 86_400 }))),
  maxSeconds: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 604_800 }))),
  jitter: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })))
})
export type RetryPolicy = typeof RetryPolicy.Type

/** What `POST /v1/tasks` takes (and what schedules, sensors and queue workflows submit). */
export const TaskSubmission = Schema.Struct({
  kind: Label,
  source: Label,
  payload: Schema.Unknown,
  subject: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(500))),
  description: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(20_000))),
  priority: Schema.optionalKey(Priority),
  /** Shorthand for `adapter: {type: "agent", agentName}`. */
  agentName: Schema.optionalKey(AgentName),
  /** One adapter, or a fallback chain: the first whose probe passes carries the attempt. */
  adapter: Schema.optionalKey(Schema.Union([AdapterSpec, Schema.Array(AdapterSpec).check(Schema.isMinLength(1))])),
  maxAttempts: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }))),
  /** ISO 8601 with a zone; never claimed before it. */
  availableAt: Schema.optionalKey(Schema.String),
  delayMinutes: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 525_600 }))),
  dedupeKey: Schema.optionalKey(Schema.String.check(Schema.isBetweenLength(1, 200))),
  retry: Schema.optionalKey(RetryPolicy)
})
export type TaskSubmission = typeof TaskSubmission.Type

/** What started a task, when it was not an operator's POST: kept on the task so its owner can follow it. */
export interface TaskOrigin {
  readonly scheduleId?: string
  readonly sensorEventId?: string
  readonly workflowId?: string
  readonly phase?: string
  readonly parentTaskId?: string
}

// ---- outcomes: what an adapter reports, normalized, then verified against the artifact root ----

export const FileChange = Schema.Struct({
  path: Schema.String.check(Schema.isBetweenLength(1, 1024)),
  change: Schema.Literals(["created", "modified", "deleted"])
})
export const ExternalMessage = Schema.Struct({
  channel: Schema.String.check(Schema.isMaxLength(200)),
  to: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(500))),
  text: Schema.String.check(Schema.isMaxLength(20_000))
})

export const OUTCOME_STATUSES = ["completed", "failed", "blocked", "needs_retry"] as const
export const Outcome = Schema.Struct({
  status: Schema.Literals(OUTCOME_STATUSES),
  operatorSummary: Schema.String.check(Schema.isMaxLength(20_000)),
  /** A short machine-readable word or code (`ok`, `tests_failed`, `continue`, `done`…). */
  machineStatus: Schema.String.check(Schema.isMaxLength(200)),
  fileChanges: Schema.Array(FileChange),
  /** Paths relative to the task's artifact root. */
  artifactPaths: Schema.Array(Schema.String.check(Schema.isBetweenLength(1, 1024))),
  followUpTasks: Schema.Array(TaskSubmission),
  externalMessages: Schema.Array(ExternalMessage)
})
export type Outcome = typeof Outcome.Type
