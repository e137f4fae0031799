// The events of agents and runs: the only facts the system stores. Each event type carries a schema version;
// a stored event is decoded against the schema of its (type, version) and an unknown pair fails loudly.
import { Schema } from "effect"
import { ResolvedSpec } from "./AgentSpec.ts"

export const ErrorInfo = Schema.Struct({ code: Schema.String, message: Schema.String })
export type ErrorInfo = typeof ErrorInfo.Type

export const ToolCall = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.Unknown
})
export type ToolCall = typeof ToolCall.Type

/** What a model answered: text and/or tool calls. */
export const ModelAnswer = Schema.Struct({
  content: Schema.NullOr(Schema.String),
  toolCalls: Schema.Array(ToolCall),
  finishReason: Schema.String,
  provider: Schema.String,
  model: Schema.String
})
export type ModelAnswer = typeof ModelAnswer.Type

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
export const AgentEvent = Schema.Union([AgentCreated, AgentVersionPublished])
export type AgentEvent = typeof AgentEvent.Type

// ---- run ----
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
  parent: Schema.optionalKey(Schema.Struct({ tenant: Schema.String, runId: Schema.String, stepId: Schema.String, depth: Schema.Int }))
})

export const ModelStepRequest = Schema.TaggedStruct("model", { model: Schema.String, turn: Schema.Int })
export const ToolStepRequest = Schema.TaggedStruct("tool", { call: ToolCall })
/** A durable timer: the `sleep` tool. */
export const SleepStepRequest = Schema.TaggedStruct("sleep", { call: ToolCall, seconds: Schema.Number })
/** A human decision about a tool call, made through the approvals route. */
export const ApprovalStepRequest = Schema.TaggedStruct("approval", { call: ToolCall })
/** A child run of another agent, answering a tool call. */
export const AgentStepRequest = Schema.TaggedStruct("agent", { call: ToolCall, agentName: Schema.String, childRunId: Schema.String })
export const StepRequest = Schema.Union([ModelStepRequest, ToolStepRequest, SleepStepRequest, ApprovalStepRequest, AgentStepRequest])
export type StepRequest = typeof StepRequest.Type

export const StepStarted = Schema.TaggedStruct("StepStarted", {
  stepId: Schema.String,
  attempt: Schema.Int,
  request: StepRequest,
  /** Epoch ms when a waiting step is due: a timer's fire time or an approval's expiry. */
  wakeAt: Schema.optionalKey(Schema.Number)
})

export const ModelStepResult = Schema.TaggedStruct("model", { answer: ModelAnswer })
export const ToolStepResult = Schema.TaggedStruct("tool", { callId: Schema.String, output: Schema.String })
export const ApprovalStepResult = Schema.TaggedStruct("approval", {
  approved: Schema.Boolean,
  by: Schema.String,
  reason: Schema.String
})
export const StepResult = Schema.Union([ModelStepResult, ToolStepResult, ApprovalStepResult])
export type StepResult = typeof StepResult.Type

export const StepCompleted = Schema.TaggedStruct("StepCompleted", {
  stepId: Schema.String,
  attempt: Schema.Int,
  result: StepResult,
  tokensIn: Schema.Int,
  tokensOut: Schema.Int,
  costUsd: Schema.Number,
  durationMs: Schema.Number
})

export const StepFailed = Schema.TaggedStruct("StepFailed", {
  stepId: Schema.String,
  attempt: Schema.Int,
  error: ErrorInfo,
  retryable: Schema.Boolean,
  /** Epoch ms before which the next attempt must not start (the retry policy's backoff, jitter included). */
  retryAt: Schema.optionalKey(Schema.Number)
})

export const RunSucceeded = Schema.TaggedStruct("RunSucceeded", { output: Schema.Unknown })
export const RunFailed = Schema.TaggedStruct("RunFailed", { error: ErrorInfo })
export const RunCanceled = Schema.TaggedStruct("RunCanceled", { reason: Schema.String, by: Schema.String })

export const RunEvent = Schema.Union([
  RunStarted,
  StepStarted,
  StepCompleted,
  StepFailed,
  RunSucceeded,
  RunFailed,
  RunCanceled
])
export type RunEvent = typeof RunEvent.Type

export type RunStarted = typeof RunStarted.Type
export type StepStarted = typeof StepStarted.Type
export type StepCompleted = typeof StepCompleted.Type
export type StepFailed = typeof StepFailed.Type

export const Event = Schema.Union([AgentEvent, RunEvent])
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
  RunStarted: { 1: RunStarted as unknown as Schema.Codec<Event, unknown> },
  StepStarted: { 1: StepStarted as unknown as Schema.Codec<Event, unknown> },
  StepCompleted: { 1: StepCompleted as unknown as Schema.Codec<Event, unknown> },
  StepFailed: { 1: StepFailed as unknown as Schema.Codec<Event, unknown> },
  RunSucceeded: { 1: RunSucceeded as unknown as Schema.Codec<Event, unknown> },
  RunFailed: { 1: RunFailed as unknown as Schema.Codec<Event, unknown> },
  RunCanceled: { 1: RunCanceled as unknown as Schema.Codec<Event, unknown> }
}

/** The version new events of each type are written with. */
export const CURRENT_VERSION = 1
