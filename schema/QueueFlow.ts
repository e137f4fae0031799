// Workflows on the operator queue (issue 16, ADR 0056): templates of phases, each phase a task submitted through the
// TaskQueue, one instance per (template, instanceKey) in a tenant, journaled on lantern.queueflow.<tenant>.<qfw id>.
// Queue snapshots (`snp_`) are journaled on the same stream. No I/O.
import { Schema } from "effect"
import { AdapterSpec, Priority, RetryPolicy } from "./Task.ts"
import { AgentName } from "./Ids.ts"

export const TEMPLATES = ["goal-loop", "pr-lifecycle"] as const
export const TemplateName = Schema.Literals(TEMPLATES)
export type TemplateName = typeof TemplateName.Type

export const QueueFlowId = Schema.String.check(
  Schema.isPattern(/^qfw_[0-9a-z]{26}$/u, { message: "Expected a queue workflow id like qfw_01j…" })
)
export const SnapshotId = Schema.String.check(
  Schema.isPattern(/^snp_[0-9a-z]{26}$/u, { message: "Expected a snapshot id like snp_01j…" })
)

/** What a workflow instance is named by: anything visible, 1-200 characters (an issue number, a PR URL…). */
export const InstanceKey = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e][\x20-\x7e]{0,199}$/u, { message: "Expected 1-200 printable ASCII characters" })
)

/** How a phase's task is carried out: the submission fields a workflow passes on to each phase task. */
export const PhaseRunner = Schema.Struct({
  agentName: Schema.optionalKey(AgentName),
  adapter: Schema.optionalKey(Schema.Union([AdapterSpec, Schema.Array(AdapterSpec).check(Schema.isMinLength(1))])),
  priority: Schema.optionalKey(Priority),
  maxAttempts: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }))),
  description: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(20_000))),
  retry: Schema.optionalKey(RetryPolicy)
})
export type PhaseRunner = typeof PhaseRunner.Type

export const PHASE_NAMES = ["plan", "execute", "verify", "open", "review", "revise", "merge"] as const
export const PhaseName = Schema.Literals(PHASE_NAMES)
export type PhaseName = typeof PhaseName.Type

/** A name for the artifacts: `plans/<base>-plan.md`… Lowercase letters, digits, '-', '_' and '.'. */
export const Base = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9._-]{0,79}$/u, {
    message: "Expected 1-80 lowercase letters, digits, '.', '-' or '_'"
  })
)

export const MAX_ITERATIONS_DEFAULT = 3

/** `POST /v1/queue-workflows` (and a sensor event's `proposedWorkflow`). */
export const QueueFlowRequest = Schema.Struct({
  template: TemplateName,
  instanceKey: InstanceKey,
  /** Handed to every phase task in its payload. */
  context: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  /** goal-loop: how many execute → verify iterations at most (3 by default). */
  maxIterations: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 50 }))),
  /** The artifacts' name (derived from instanceKey when absent). */
  base: Schema.optionalKey(Base),
  /** How every phase task runs (agentName or adapter, priority…). */
  task: Schema.optionalKey(PhaseRunner),
  /** Per phase, over `task` (a phase's agentName or adapter replaces the task's). */
  phases: Schema.optionalKey(Schema.Struct({
    plan: Schema.optionalKey(PhaseRunner),
    execute: Schema.optionalKey(PhaseRunner),
    verify: Schema.optionalKey(PhaseRunner),
    open: Schema.optionalKey(PhaseRunner),
    review: Schema.optionalKey(PhaseRunner),
    merge: Schema.optionalKey(PhaseRunner)
  }))
})
export type QueueFlowRequest = typeof QueueFlowRequest.Type

export const FLOW_STATUSES = ["running", "stalled", "complete", "failed"] as const
export const FlowStatus = Schema.Literals(FLOW_STATUSES)
export type FlowStatus = typeof FlowStatus.Type

// ---- events ----

export const QueueFlowCreated = Schema.TaggedStruct("QueueFlowCreated", {
  workflowId: Schema.String,
  template: Schema.String,
  instanceKey: Schema.String,
  base: Schema.String,
  context: Schema.Record(Schema.String, Schema.Unknown),
  maxIterations: Schema.Int,
  task: Schema.NullOr(PhaseRunner),
  phases: Schema.NullOr(Schema.Record(Schema.String, PhaseRunner)),
  sensorEventId: Schema.NullOr(Schema.String)
})
/** A phase is to run: its task is submitted next (with the dedupe key `qfw:<id>:<phase>:<iteration>`). */
export const QueueFlowPhaseDue = Schema.TaggedStruct("QueueFlowPhaseDue", {
  phase: Schema.String,
  iteration: Schema.Int,
  artifactPath: Schema.String
})
export const QueueFlowPhaseSubmitted = Schema.TaggedStruct("QueueFlowPhaseSubmitted", {
  phase: Schema.String,
  iteration: Schema.Int,
  taskId: Schema.String
})
export const QueueFlowPhaseFinished = Schema.TaggedStruct("QueueFlowPhaseFinished", {
  phase: Schema.String,
  iteration: Schema.Int,
  taskId: Schema.String,
  machineStatus: Schema.String,
  /** The artifacts the phase task stored, relative to its artifact root. */
  artifacts: Schema.Array(Schema.String)
})
export const QueueFlowStalled = Schema.TaggedStruct("QueueFlowStalled", {
  phase: Schema.String,
  iteration: Schema.Int,
  taskId: Schema.String,
  taskStatus: Schema.String,
  reason: Schema.String
})
export const QueueFlowResumed = Schema.TaggedStruct("QueueFlowResumed", {
  phase: Schema.String,
  iteration: Schema.Int,
  taskId: Schema.String,
  taskStatus: Schema.String
})
export const QueueFlowEnded = Schema.TaggedStruct("QueueFlowEnded", {
  status: Schema.Literals(["complete", "failed"]),
  /** `done`, `merged`, `closed`, `max_iterations`, the verify's machineStatus… */
  result: Schema.String,
  reason: Schema.NullOr(Schema.String)
})

export const SnapshotCounts = Schema.Struct({
  total: Schema.Int,
  byStatus: Schema.Record(Schema.String, Schema.Int),
  costUsd: Schema.Number,
  artifacts: Schema.Int
})
export const SnapshotFlow = Schema.Struct({
  id: Schema.String,
  template: Schema.String,
  instanceKey: Schema.String,
  status: Schema.String,
  phase: Schema.NullOr(Schema.String),
  iteration: Schema.Int
})
/** Queue and workflow state at one moment (`POST /v1/snapshots`), journaled on lantern.queueflow.<tenant>.<snp id>. */
export const QueueSnapshotTaken = Schema.TaggedStruct("QueueSnapshotTaken", {
  snapshotId: Schema.String,
  label: Schema.String,
  takenAt: Schema.String,
  tasks: SnapshotCounts,
  workflows: Schema.Array(SnapshotFlow)
})

export const QueueFlowEvent = Schema.Union([
  QueueFlowCreated,
  QueueFlowPhaseDue,
  QueueFlowPhaseSubmitted,
  QueueFlowPhaseFinished,
  QueueFlowStalled,
  QueueFlowResumed,
  QueueFlowEnded,
  QueueSnapshotTaken
])
export type QueueFlowEvent = typeof QueueFlowEvent.Type

// ---- views ----

export const PhaseView = Schema.Struct({
  phase: Schema.String,
  iteration: Schema.Int,
  taskId: Schema.NullOr(Schema.String),
  /** due (task not yet submitted), running, stalled, finished. */
  status: Schema.Literals(["due", "running", "stalled", "finished"]),
  machineStatus: Schema.NullOr(Schema.String),
  artifactPath: Schema.String,
  artifacts: Schema.Array(Schema.String)
})

export const QueueFlowView = Schema.Struct({
  id: Schema.String,
  template: Schema.String,
  instanceKey: Schema.String,
  base: Schema.String,
  status: FlowStatus,
  /** The phase running now, or the last one. */
  phase: Schema.NullOr(Schema.String),
  /** pr-lifecycle: opened, reviewed, merged or closed; goal-loop: the phase. */
  stage: Schema.NullOr(Schema.String),
  iteration: Schema.Int,
  maxIterations: Schema.Int,
  result: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  currentTaskId: Schema.NullOr(Schema.String),
  context: Schema.Record(Schema.String, Schema.Unknown),
  sensorEventId: Schema.NullOr(Schema.String),
  phases: Schema.Array(PhaseView),
  /** The artifact path each phase was asked for, in order. */
  artifactPaths: Schema.Array(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  endedAt: Schema.NullOr(Schema.String)
})
export type QueueFlowView = typeof QueueFlowView.Type

export const QueueFlowListQuery = Schema.Struct({
  status: Schema.optionalKey(FlowStatus),
  template: Schema.optionalKey(TemplateName)
})

// ---- snapshots and reports ----

export const SnapshotRequest = Schema.Struct({
  label: Schema.String.check(Schema.isBetweenLength(1, 200))
})
export const SnapshotView = Schema.Struct({
  id: Schema.String,
  label: Schema.String,
  takenAt: Schema.String,
  tasks: SnapshotCounts,
  workflows: Schema.Array(SnapshotFlow)
})
export type SnapshotView = typeof SnapshotView.Type

/** ISO-8601 instant with its offset, or a snapshot id (its time). */
export const ReportBound = Schema.String.check(
  Schema.isPattern(
    /^(snp_[0-9a-z]{26}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))$/u,
    { message: "Expected an ISO-8601 time with its offset (2026-12-03T08:00:00Z) or a snapshot id" }
  )
)
export const ReportRequest = Schema.Struct({
  from: ReportBound,
  /** Now when absent. */
  to: Schema.optionalKey(ReportBound),
  /** Answer Markdown (text/markdown) instead of JSON. */
  markdown: Schema.optionalKey(Schema.Boolean)
})

export const ReportTask = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  status: Schema.String,
  reason: Schema.NullOr(Schema.String),
  costUsd: Schema.Number,
  finishedAt: Schema.NullOr(Schema.String)
})
export const ReportArtifact = Schema.Struct({ taskId: Schema.String, path: Schema.String })
export const ReportFlow = Schema.Struct({
  id: Schema.String,
  template: Schema.String,
  instanceKey: Schema.String,
  status: Schema.String,
  result: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String)
})
export const Report = Schema.Struct({
  from: Schema.String,
  to: Schema.String,
  /** The snapshot the window starts at, when it was named by one (or `latest` found one). */
  fromSnapshot: Schema.NullOr(Schema.String),
  counts: Schema.Struct({
    created: Schema.Int,
    completed: Schema.Int,
    blocked: Schema.Int,
    failed: Schema.Int,
    canceled: Schema.Int
  }),
  completed: Schema.Array(ReportTask),
  blocked: Schema.Array(ReportTask),
  failed: Schema.Array(ReportTask),
  newArtifacts: Schema.Array(ReportArtifact),
  costUsd: Schema.Number,
  /** Queue depth now by status, and the change since the starting snapshot (when there is one). */
  queue: Schema.Struct({
    byStatus: Schema.Record(Schema.String, Schema.Int),
    delta: Schema.NullOr(Schema.Record(Schema.String, Schema.Int))
  }),
  workflows: Schema.Struct({
    created: Schema.Array(ReportFlow),
    ended: Schema.Array(ReportFlow),
    stalled: Schema.Array(ReportFlow)
  }),
  markdown: Schema.String
})
export type Report = typeof Report.Type
