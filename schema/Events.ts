// The events of agents and runs: the only facts the system stores. Each event type carries a schema version;
// a stored event is decoded against the schema of its (type, version) and an unknown pair fails loudly.
import { Schema } from "effect"
import { ResolvedSpec } from "./AgentSpec.ts"
import { BudgetLimits } from "./Budget.ts"
import * as Eval from "./Eval.ts"
import * as Experiment from "./Experiment.ts"
import * as Channel from "./Channel.ts"
import * as QueueFlow from "./QueueFlow.ts"
import * as Sensor from "./Sensor.ts"
import * as Schedule from "./Schedule.ts"
import { ErrorInfo, StepCompletion, StepFailure, ToolCall } from "./StepOutcome.ts"
import * as Task from "./Task.ts"
import * as Workload from "./Workload.ts"

// the parts of a step's outcome, where they have always been imported from
export {
  ApprovalStepResult,
  BudgetRefusal,
  CodeStepResult,
  ErrorInfo,
  ModelAnswer,
  ModelStepResult,
  Route,
  RouteAttempt,
  StepResult,
  ToolCall,
  ToolStepResult
} from "./StepOutcome.ts"

// ---- agent ----
export const AgentCreated = Schema.TaggedStruct("AgentCreated", {
  name: Schema.String,
  description: Schema.String,
  version: Schema.Int,
  digest: Schema.String,
  spec: ResolvedSpec
})
export const AgentVersionPublished = Schema.TaggedStruct("AgentVersionPublished", {
  name: Schema.String,
  description: Schema.String,
  version: Schema.Int,
  digest: Schema.String,
  spec: ResolvedSpec
})
// A/B experiments on the agent (ADR 0058): the split its unpinned runs follow, and its conclusion
export const AgentEvent = Schema.Union([
  AgentCreated,
  AgentVersionPublished,
  Experiment.ExperimentStarted,
  Experiment.ExperimentConcluded
])
export type AgentEvent = typeof AgentEvent.Type

// ---- run ----
/** A run's own Ed25519 identity (actors/identity/Identity.ts): the public key its tokens verify under. */
export const RunIdentity = Schema.Struct({
  /** The raw 32-byte Ed25519 public key, base64url without padding. */
  publicKey: Schema.String,
  /** First 16 hex of SHA-256 of the raw public key: the `kid` of the run's tokens. */
  keyId: Schema.String
})
export type RunIdentity = typeof RunIdentity.Type

/** A code-first workflow at one version of its code (actors/workflow/Registry.ts, ADR 0041). */
export const WorkflowRef = Schema.Struct({ name: Schema.String, digest: Schema.String })
export type WorkflowRef = typeof WorkflowRef.Type

export const RunStarted = Schema.TaggedStruct("RunStarted", {
  runId: Schema.String,
  agentName: Schema.String,
  agentVersion: Schema.Int,
  agentDigest: Schema.String,
  spec: ResolvedSpec,
  input: Schema.Unknown,
  /** Digest of the request that started the run, to tell an idempotent retry from a reused key. */
  requestDigest: Schema.String,
  /** Set on a child run: the parent step that started it, and how deep the child is (1 = a direct child). */
  parent: Schema.optionalKey(
    Schema.Struct({ tenant: Schema.String, runId: Schema.String, stepId: Schema.String, depth: Schema.Int })
  ),
  /** The run's identity, minted at start; absent on runs started before identities existed. */
  identity: Schema.optionalKey(RunIdentity),
  /** Set on a code-first workflow's run: the workflow and the digest of the code version it is pinned to. */
  workflow: Schema.optionalKey(WorkflowRef),
  /** Set when an A/B experiment chose the version of this unpinned run: the experiment and its arm (ADR 0058). */
  experiment: Schema.optionalKey(Experiment.Assignment),
  /** Set on a case of an eval run: eval traffic, left out of production usage figures unless asked for. */
  evalRunId: Schema.optionalKey(Schema.String)
})

export const ModelStepRequest = Schema.TaggedStruct("model", { model: Schema.String, turn: Schema.Int })
export const ToolStepRequest = Schema.TaggedStruct("tool", { call: ToolCall })
/** A durable timer: the `sleep` tool. */
export const SleepStepRequest = Schema.TaggedStruct("sleep", { call: ToolCall, seconds: Schema.Number })
/** A human decision about a tool call, made through the approvals route. */
export const ApprovalStepRequest = Schema.TaggedStruct("approval", { call: ToolCall })
/** A child run of another agent, answering a tool call. */
export const AgentStepRequest = Schema.TaggedStruct("agent", {
  call: ToolCall,
  agentName: Schema.String,
  childRunId: Schema.String
})
/**
 * A workflow's `ctx.step` (or a drawn value): performed by the workflow's code, journaled once when it returns; or a
 * signal sent to the run (`signal`, journaled by the edge as `signal:<name>:<n>`) and a wait that received one.
 */
export const CodeStepRequest = Schema.TaggedStruct("code", {
  kind: Schema.Literals(["step", "now", "random", "uuid", "signal", "wait"])
})
/** A workflow's `ctx.sleep`: a durable timer. */
export const TimerStepRequest = Schema.TaggedStruct("timer", { ms: Schema.Number })
export const StepRequest = Schema.Union([
  ModelStepRequest,
  ToolStepRequest,
  SleepStepRequest,
  ApprovalStepRequest,
  AgentStepRequest,
  CodeStepRequest,
  TimerStepRequest
])
export type StepRequest = typeof StepRequest.Type

export const StepStarted = Schema.TaggedStruct("StepStarted", {
  stepId: Schema.String,
  attempt: Schema.Int,
  request: StepRequest,
  /** Epoch ms when a waiting step is due: a timer's fire time or an approval's expiry. */
  wakeAt: Schema.optionalKey(Schema.Number)
})

const completionFields = { stepId: Schema.String, attempt: Schema.Int, ...StepCompletion.fields }

export const StepCompleted = Schema.TaggedStruct("StepCompleted", {
  ...completionFields,
  /**
   * The step's request, on a step journaled as this one event: its effect is local and deterministic (a built-in
   * tool), so it is performed first and written once, never started separately (a crash before the write runs it
   * again, to the same result).
   */
  request: Schema.optionalKey(StepRequest)
})

/**
 * Steps completed together and journaled as one event (ADR 0067): the built-in tool calls of one model turn that
 * were ready at once, each carrying its request (performed before anything was written), led by the completion of
 * the model step that asked for them, which has no request (it was started before its call, ADR 0075). It stands
 * for its steps' StepCompleted events, in order: every reader sees it through `expand`, and the run decider folds
 * it exactly as that sequence.
 */
export const StepsCompleted = Schema.TaggedStruct("StepsCompleted", {
  steps: Schema.Array(Schema.Struct({ ...completionFields, request: Schema.optionalKey(StepRequest) }))
})

export const StepFailed = Schema.TaggedStruct("StepFailed", {
  stepId: Schema.String,
  attempt: Schema.Int,
  ...StepFailure.fields
})

/**
 * The run's output. `steps`: the completion of the model step whose answer ended the run, journaled with its end
 * (ADR 0077); it stands for that StepCompleted, before the end: every reader sees it through `expand`.
 */
export const RunSucceeded = Schema.TaggedStruct("RunSucceeded", {
  output: Schema.Unknown,
  steps: Schema.optionalKey(Schema.Array(Schema.Struct(completionFields)))
})
export const RunFailed = Schema.TaggedStruct("RunFailed", { error: ErrorInfo })
export const RunCanceled = Schema.TaggedStruct("RunCanceled", { reason: Schema.String, by: Schema.String })
/**
 * A loop agent's run did its iteration (ADR 0055): journaled before RunSucceeded, it makes a re-drive (a host that
 * died before the run's end was journaled) succeed with this output without another step.
 */
export const LoopCompleted = Schema.TaggedStruct("LoopCompleted", { output: Schema.Unknown })

export const RunEvent = Schema.Union([
  RunStarted,
  StepStarted,
  StepCompleted,
  StepsCompleted,
  StepFailed,
  RunSucceeded,
  RunFailed,
  RunCanceled,
  LoopCompleted
])
export type RunEvent = typeof RunEvent.Type

export type RunStarted = typeof RunStarted.Type
export type StepStarted = typeof StepStarted.Type
export type StepCompleted = typeof StepCompleted.Type
export type StepsCompleted = typeof StepsCompleted.Type
export type StepFailed = typeof StepFailed.Type
export type RunSucceeded = typeof RunSucceeded.Type

/**
 * The StepCompleted events a StepsCompleted stands for (ADR 0067), or those a RunSucceeded carries before its end
 * (ADR 0077), in journal order.
 */
export const completionsOf = (e: StepsCompleted | RunSucceeded): ReadonlyArray<StepCompleted> =>
  (e.steps ?? []).map((step) => ({ _tag: "StepCompleted", ...step }))

/**
 * An event as the events it stands for: a StepsCompleted as its steps' StepCompleted events in order; a RunSucceeded
 * with steps as their StepCompleted events, then the RunSucceeded without them (ADR 0077); any other event as itself.
 * Every reader of step completions reads through this (ADR 0067).
 */
export const expand = <E extends { readonly _tag: string }>(
  e: E
): ReadonlyArray<Exclude<E, StepsCompleted> | StepCompleted> => {
  if (e._tag === "StepsCompleted") return completionsOf(e as unknown as StepsCompleted)
  if (e._tag === "RunSucceeded" && (e as unknown as RunSucceeded).steps !== undefined) {
    const { steps: _steps, ...end } = e as unknown as RunSucceeded
    return [...completionsOf(e as unknown as RunSucceeded), end as unknown as Exclude<E, StepsCompleted>]
  }
  return [e as Exclude<E, StepsCompleted>]
}

// ---- budget (one journal per scope: the tenant, or one agent of it) ----
/** The caps of the scope were set (replacing the previous ones whole). */
/** Spend and runs of one UTC day that happened before the scope's journal counted them (from the projections). */
export const BudgetSeed = Schema.Struct({
  day: Schema.String,
  spentUsd: Schema.Number,
  tokens: Schema.Int,
  runs: Schema.Int
})
export type BudgetSeed = typeof BudgetSeed.Type
export const BudgetSet = Schema.TaggedStruct("BudgetSet", {
  /** `tenant` or `agent:<name>`. */
  scope: Schema.String,
  limits: BudgetLimits,
  by: Schema.String,
  /**
   * Added to the day's totals: what the day had spent and run before the journal counted it, so a day cap set
   * mid-day counts the whole day. Optional, so journals from before it replay unchanged (ADR 0011).
   */
  seed: Schema.optionalKey(BudgetSeed)
})
/** A model call holds `amountUsd` (its worst case) until it is settled, released, or `expiresAt` passes. */
export const BudgetReserved = Schema.TaggedStruct("BudgetReserved", {
  /** `runId:stepId:attempt`: a restarted attempt finds its reservation again instead of holding twice. */
  reservationId: Schema.String,
  runId: Schema.String,
  /** UTC day (YYYY-MM-DD) the spend counts in. */
  day: Schema.String,
  amountUsd: Schema.Number,
  tokens: Schema.Int,
  host: Schema.String,
  expiresAt: Schema.Number
})
/** The call ended: its actual cost replaces the reservation (0 when the call failed without billing). */
export const BudgetSettled = Schema.TaggedStruct("BudgetSettled", {
  reservationId: Schema.String,
  runId: Schema.String,
  day: Schema.String,
  costUsd: Schema.Number,
  tokens: Schema.Int
})
/** A reservation whose host never settled it (it died) was let go after its expiry. */
export const BudgetReleased = Schema.TaggedStruct("BudgetReleased", {
  reservationId: Schema.String,
  reason: Schema.String
})
/** A run started in the scope and counts against `maxRunsPerDay`. */
export const BudgetRunCounted = Schema.TaggedStruct("BudgetRunCounted", { runId: Schema.String, day: Schema.String })
/** A soft cap (hardFail false) was passed: journaled once per cap and day. */
export const BudgetAlerted = Schema.TaggedStruct("BudgetAlerted", {
  day: Schema.String,
  cap: Schema.String,
  limit: Schema.Number,
  value: Schema.Number,
  runId: Schema.String
})
export const BudgetEvent = Schema.Union([
  BudgetSet,
  BudgetReserved,
  BudgetSettled,
  BudgetReleased,
  BudgetRunCounted,
  BudgetAlerted
])
export type BudgetEvent = typeof BudgetEvent.Type

// ---- audit (one journal subject per entry: lantern.audit.<tenant>.<auditId>; ADR 0019) ----
/**
 * A security-relevant fact (actors/audit/Audit.ts): who did what to which target, and how it ended. Never a
 * secret or a token: the recorder redacts anything that looks like one before it is journaled.
 */
export const AuditRecorded = Schema.TaggedStruct("AuditRecorded", {
  /** An `AuditAction` (`auth.failed`, `receipt.issued`, …); a string, so new actions keep the version. */
  action: Schema.String,
  actor: Schema.String,
  target: Schema.String,
  outcome: Schema.Literals(["allowed", "denied", "failed"]),
  detail: Schema.Record(Schema.String, Schema.String)
})
export type AuditRecorded = typeof AuditRecorded.Type
export const AuditEvent = Schema.Union([AuditRecorded])
export type AuditEvent = typeof AuditEvent.Type

export const Event = Schema.Union([
  AgentEvent,
  RunEvent,
  BudgetEvent,
  AuditEvent,
  Workload.WorkloadEvent,
  Eval.EvalEvent,
  Channel.ChannelEvent,
  Channel.SessionEvent,
  Task.TaskEvent,
  Sensor.SensorEvent,
  QueueFlow.QueueFlowEvent,
  Schedule.ScheduleEvent
])
export type Event = typeof Event.Type
export type EventType = Event["_tag"]

export const TERMINAL_RUN_EVENTS: ReadonlySet<string> = new Set(["RunSucceeded", "RunFailed", "RunCanceled"])
export const isTerminal = (e: { readonly _tag: string }): boolean => TERMINAL_RUN_EVENTS.has(e._tag)

/**
 * The schema of every (type, version) this code can read. Additive changes (a new optional field, a new
 * union member) keep the version, since every recorded event still decodes (tests/replay.test.ts proves it
 * against recorded journals); any other change adds a new version here with an upcast to the newest, never
 * an edit of an existing one (ADR 0011).
 */
export const registry: Readonly<Record<string, Readonly<Record<number, Schema.Codec<Event, unknown>>>>> = {
  AgentCreated: { 1: AgentCreated as unknown as Schema.Codec<Event, unknown> },
  AgentVersionPublished: { 1: AgentVersionPublished as unknown as Schema.Codec<Event, unknown> },
  ExperimentStarted: { 1: Experiment.ExperimentStarted as unknown as Schema.Codec<Event, unknown> },
  ExperimentConcluded: { 1: Experiment.ExperimentConcluded as unknown as Schema.Codec<Event, unknown> },
  RunStarted: { 1: RunStarted as unknown as Schema.Codec<Event, unknown> },
  StepStarted: { 1: StepStarted as unknown as Schema.Codec<Event, unknown> },
  StepCompleted: { 1: StepCompleted as unknown as Schema.Codec<Event, unknown> },
  StepsCompleted: { 1: StepsCompleted as unknown as Schema.Codec<Event, unknown> },
  StepFailed: { 1: StepFailed as unknown as Schema.Codec<Event, unknown> },
  // version 2: one that carries the completion of the answer that ended the run (ADR 0077)
  RunSucceeded: {
    1: RunSucceeded as unknown as Schema.Codec<Event, unknown>,
    2: RunSucceeded as unknown as Schema.Codec<Event, unknown>
  },
  RunFailed: { 1: RunFailed as unknown as Schema.Codec<Event, unknown> },
  RunCanceled: { 1: RunCanceled as unknown as Schema.Codec<Event, unknown> },
  LoopCompleted: { 1: LoopCompleted as unknown as Schema.Codec<Event, unknown> },
  BudgetSet: { 1: BudgetSet as unknown as Schema.Codec<Event, unknown> },
  BudgetReserved: { 1: BudgetReserved as unknown as Schema.Codec<Event, unknown> },
  BudgetSettled: { 1: BudgetSettled as unknown as Schema.Codec<Event, unknown> },
  BudgetReleased: { 1: BudgetReleased as unknown as Schema.Codec<Event, unknown> },
  BudgetRunCounted: { 1: BudgetRunCounted as unknown as Schema.Codec<Event, unknown> },
  BudgetAlerted: { 1: BudgetAlerted as unknown as Schema.Codec<Event, unknown> },
  AuditRecorded: { 1: AuditRecorded as unknown as Schema.Codec<Event, unknown> },
  WorkloadScheduled: { 1: Workload.WorkloadScheduled as unknown as Schema.Codec<Event, unknown> },
  WorkloadPlaced: { 1: Workload.WorkloadPlaced as unknown as Schema.Codec<Event, unknown> },
  WorkloadSpawned: { 1: Workload.WorkloadSpawned as unknown as Schema.Codec<Event, unknown> },
  WorkloadIdentityMinted: { 1: Workload.WorkloadIdentityMinted as unknown as Schema.Codec<Event, unknown> },
  WorkloadSecretVended: { 1: Workload.WorkloadSecretVended as unknown as Schema.Codec<Event, unknown> },
  WorkloadHeartbeat: { 1: Workload.WorkloadHeartbeat as unknown as Schema.Codec<Event, unknown> },
  WorkloadOutput: { 1: Workload.WorkloadOutput as unknown as Schema.Codec<Event, unknown> },
  WorkloadEgress: { 1: Workload.WorkloadEgress as unknown as Schema.Codec<Event, unknown> },
  WorkloadModelCalled: { 1: Workload.WorkloadModelCalled as unknown as Schema.Codec<Event, unknown> },
  WorkloadAdopted: { 1: Workload.WorkloadAdopted as unknown as Schema.Codec<Event, unknown> },
  WorkloadRestarted: { 1: Workload.WorkloadRestarted as unknown as Schema.Codec<Event, unknown> },
  WorkloadExited: { 1: Workload.WorkloadExited as unknown as Schema.Codec<Event, unknown> },
  WorkloadTerminated: { 1: Workload.WorkloadTerminated as unknown as Schema.Codec<Event, unknown> },
  WorkloadFailed: { 1: Workload.WorkloadFailed as unknown as Schema.Codec<Event, unknown> },
  EvalSuiteSaved: { 1: Eval.EvalSuiteSaved as unknown as Schema.Codec<Event, unknown> },
  EvalSuiteDeleted: { 1: Eval.EvalSuiteDeleted as unknown as Schema.Codec<Event, unknown> },
  EvalBaselineSet: { 1: Eval.EvalBaselineSet as unknown as Schema.Codec<Event, unknown> },
  RunFeedbackGiven: { 1: Eval.RunFeedbackGiven as unknown as Schema.Codec<Event, unknown> },
  EvalRunStarted: { 1: Eval.EvalRunStarted as unknown as Schema.Codec<Event, unknown> },
  EvalCaseFinished: { 1: Eval.EvalCaseFinished as unknown as Schema.Codec<Event, unknown> },
  EvalRunFinished: { 1: Eval.EvalRunFinished as unknown as Schema.Codec<Event, unknown> },
  // channels and their conversations (ADR 0050)
  ...Object.fromEntries(
    [...Channel.ChannelEvent.members, ...Channel.SessionEvent.members].map((
      codec
    ) => [codec.fields._tag.schema.literal, { 1: codec as unknown as Schema.Codec<Event, unknown> }])
  ),
  // the operator queue's tasks and dispatch (ADR 0054)
  ...Object.fromEntries(
    Task.TaskEvent.members.map((
      codec
    ) => [codec.fields._tag.schema.literal, { 1: codec as unknown as Schema.Codec<Event, unknown> }])
  ),
  // sensor events and queue workflows (ADR 0056)
  ...Object.fromEntries(
    [...Sensor.SensorEvent.members, ...QueueFlow.QueueFlowEvent.members].map((
      codec
    ) => [codec.fields._tag.schema.literal, { 1: codec as unknown as Schema.Codec<Event, unknown> }])
  ),
  // schedules (ADR 0055)
  ...Object.fromEntries(
    Schedule.ScheduleEvent.members.map((
      codec
    ) => [codec.fields._tag.schema.literal, { 1: codec as unknown as Schema.Codec<Event, unknown> }])
  )
}

/** The version new events of each type are written with. */
export const CURRENT_VERSION = 1

/**
 * The version `event` is written with: CURRENT_VERSION, but 2 for a RunSucceeded that carries a step's completion
 * (ADR 0077), so that a host too old to know that field refuses the event loudly instead of dropping the step.
 */
export const versionOf = (event: Event): number =>
  event._tag === "RunSucceeded" && event.steps !== undefined ? 2 : CURRENT_VERSION
