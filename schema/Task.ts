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

// ---- the task actor's journal: lantern.task.<tenant>.<taskId> (and lantern.task.<tenant>.dispatch) ----
// Times are epoch milliseconds, stamped by the shell's clock into each event (the decider stays pure).

export const TaskOriginSchema = Schema.Struct({
  scheduleId: Schema.optionalKey(Schema.String),
  sensorEventId: Schema.optionalKey(Schema.String),
  workflowId: Schema.optionalKey(Schema.String),
  phase: Schema.optionalKey(Schema.String),
  parentTaskId: Schema.optionalKey(Schema.String)
})

/** A retry policy with every field resolved (the task's own over its kind's over the deployment's). */
export const ResolvedRetry = Schema.Struct({
  baseSeconds: Schema.Finite,
  maxSeconds: Schema.Finite,
  jitter: Schema.Finite
})
export type ResolvedRetry = typeof ResolvedRetry.Type

export const TaskSubmitted = Schema.TaggedStruct("TaskSubmitted", {
  taskId: Schema.String,
  kind: Schema.String,
  source: Schema.String,
  payload: Schema.Unknown,
  subject: Schema.NullOr(Schema.String),
  description: Schema.NullOr(Schema.String),
  priority: Schema.Int,
  /** The adapter chain, in the order probed. */
  adapters: Schema.Array(AdapterSpec),
  maxAttempts: Schema.Int,
  availableAt: Schema.Finite,
  dedupeKey: Schema.NullOr(Schema.String),
  retry: ResolvedRetry,
  origin: TaskOriginSchema,
  artifactRoot: Schema.String,
  at: Schema.Finite
})

/** A worker took the task: appended expecting the task's last sequence, so exactly one claim of a state wins. */
export const TaskClaimed = Schema.TaggedStruct("TaskClaimed", {
  attempt: Schema.Int,
  worker: Schema.String,
  /** The worker's host as a lease holder (bus/Hosts.ts): probed dead, its attempt is reclaimed. */
  holder: Schema.String,
  at: Schema.Finite
})

export const AdapterProbe = Schema.Struct({
  type: Schema.String,
  ok: Schema.Boolean,
  reason: Schema.NullOr(Schema.String)
})

/** The adapter chain probed in order for an attempt, and the adapter that carries it (null: none passed). */
export const TaskAdapterChosen = Schema.TaggedStruct("TaskAdapterChosen", {
  attempt: Schema.Int,
  probes: Schema.Array(AdapterProbe),
  chosen: Schema.NullOr(Schema.String),
  at: Schema.Finite
})

export const CLOSINGS = [
  "completed",
  "failed",
  "rate_limited",
  "reclaimed",
  "canceled",
  "blocked",
  "unverified",
  "no_adapter"
] as const
export const Closing = Schema.Literals(CLOSINGS)
export type Closing = typeof Closing.Type

/** An attempt ended, and where that leaves the task. */
export const TaskAttemptClosed = Schema.TaggedStruct("TaskAttemptClosed", {
  attempt: Schema.Int,
  closing: Closing,
  /** The task's status after it. */
  status: TaskStatus,
  /** When it may be claimed again (retryable_failure, pending), else null. */
  availableAt: Schema.NullOr(Schema.Finite),
  /** Whether the attempt is spent against maxAttempts (a rate-limit hint within its cap is not). */
  counted: Schema.Boolean,
  outcome: Schema.NullOr(Outcome),
  reason: Schema.NullOr(Schema.String),
  /** sha256 of the canonical bundle of what the adapter saw (actors/task/Bundle.ts), when there is one. */
  bundleHash: Schema.NullOr(Schema.String),
  retryAfterSeconds: Schema.NullOr(Schema.Finite),
  costUsd: Schema.Finite,
  tokens: Schema.Finite,
  runId: Schema.NullOr(Schema.String),
  workloadId: Schema.NullOr(Schema.String),
  /** Artifacts stored for the attempt, relative to the task's artifact root. */
  artifacts: Schema.Array(Schema.String),
  at: Schema.Finite
})

/** An operator asked for more attempts (`retry`) or a fresh start (`requeue`): the task is pending again. */
export const TaskRetried = Schema.TaggedStruct("TaskRetried", {
  by: Schema.String,
  requeue: Schema.Boolean,
  maxAttempts: Schema.Int,
  previous: TaskStatus,
  at: Schema.Finite
})

export const TaskCanceled = Schema.TaggedStruct("TaskCanceled", {
  by: Schema.String,
  reason: Schema.NullOr(Schema.String),
  previous: TaskStatus,
  /** The running attempt this cancel closed (its adapter is interrupted), if it was running. */
  attempt: Schema.NullOr(Schema.Int),
  at: Schema.Finite
})

/** Dispatch paused or resumed for the tenant: no worker claims its tasks while paused (lantern.task.<tenant>.dispatch). */
export const DispatchSet = Schema.TaggedStruct("DispatchSet", {
  paused: Schema.Boolean,
  reason: Schema.NullOr(Schema.String),
  by: Schema.String,
  at: Schema.Finite
})

export const TaskEvent = Schema.Union([
  TaskSubmitted,
  TaskClaimed,
  TaskAdapterChosen,
  TaskAttemptClosed,
  TaskRetried,
  TaskCanceled,
  DispatchSet
])
export type TaskEvent = typeof TaskEvent.Type

// ---- errors ----

export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", { id: Schema.String }) {
  override get message() {
    return `task '${this.id}' not found`
  }
}

/** The task's status does not allow the operation (a second cancel, a retry of a running task). */
export class TaskConflict extends Schema.TaggedError<TaskConflict>()("TaskConflict", {
  id: Schema.String,
  status: Schema.String,
  operation: Schema.String
}) {
  override get message() {
    return `task '${this.id}' is ${this.status}: it cannot be ${this.operation}`
  }
}

// ---- the API's views ----

const Iso = Schema.String

export const AttemptView = Schema.Struct({
  attempt: Schema.Int,
  worker: Schema.String,
  holder: Schema.String,
  claimedAt: Iso,
  adapter: Schema.NullOr(Schema.String),
  probes: Schema.Array(AdapterProbe),
  closing: Schema.NullOr(Closing),
  closedAt: Schema.NullOr(Iso),
  counted: Schema.Boolean,
  reason: Schema.NullOr(Schema.String),
  outcome: Schema.NullOr(Outcome),
  bundleHash: Schema.NullOr(Schema.String),
  retryAfterSeconds: Schema.NullOr(Schema.Finite),
  runId: Schema.NullOr(Schema.String),
  workloadId: Schema.NullOr(Schema.String),
  costUsd: Schema.Finite
})
export type AttemptView = typeof AttemptView.Type

export const TaskEventView = Schema.Struct({
  seq: Schema.Int,
  type: Schema.String,
  at: Iso,
  payload: Schema.Unknown
})

export const TaskView = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  source: Schema.String,
  subject: Schema.NullOr(Schema.String),
  description: Schema.NullOr(Schema.String),
  payload: Schema.Unknown,
  status: TaskStatus,
  priority: Schema.Int,
  adapters: Schema.Array(AdapterSpec),
  /** Attempts spent against maxAttempts. */
  attemptsUsed: Schema.Int,
  maxAttempts: Schema.Int,
  /** Rate-limit reschedules so far (not spent attempts). */
  hintedReschedules: Schema.Int,
  availableAt: Iso,
  dedupeKey: Schema.NullOr(Schema.String),
  origin: TaskOriginSchema,
  reason: Schema.NullOr(Schema.String),
  outcome: Schema.NullOr(Outcome),
  artifactRoot: Schema.String,
  artifacts: Schema.Array(Schema.String),
  costUsd: Schema.Finite,
  createdAt: Iso,
  updatedAt: Iso,
  startedAt: Schema.NullOr(Iso),
  finishedAt: Schema.NullOr(Iso),
  attempts: Schema.Array(AttemptView)
})
export type TaskView = typeof TaskView.Type

export const TaskDetail = Schema.Struct({
  ...TaskView.fields,
  events: Schema.Array(TaskEventView)
})
export type TaskDetail = typeof TaskDetail.Type

export const TaskListQuery = Schema.Struct({
  status: Schema.optionalKey(TaskStatus),
  kind: Schema.optionalKey(Label),
  source: Schema.optionalKey(Label)
})

export const RetryRequest = Schema.Struct({
  extraAttempts: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })))
})
export const CancelRequest = Schema.Struct({
  reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(500)))
})
export const DispatchRequest = Schema.Struct({
  paused: Schema.Boolean,
  reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(500)))
})

export const WorkerView = Schema.Struct({
  id: Schema.String,
  host: Schema.String,
  /** The task it runs now, if any. */
  taskId: Schema.NullOr(Schema.String),
  tenant: Schema.NullOr(Schema.String),
  since: Schema.NullOr(Iso)
})

export const DispatchView = Schema.Struct({
  paused: Schema.Boolean,
  reason: Schema.NullOr(Schema.String),
  changedAt: Schema.NullOr(Iso),
  changedBy: Schema.NullOr(Schema.String),
  /** Claimable now, per priority ("0"…"9"). */
  depth: Schema.Record(Schema.String, Schema.Int),
  /** Waiting for their availableAt. */
  delayed: Schema.Int,
  running: Schema.Int,
  blocked: Schema.Int,
  workers: Schema.Array(WorkerView)
})
export type DispatchView = typeof DispatchView.Type
