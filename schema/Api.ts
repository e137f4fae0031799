// Bodies of the HTTP API (/v1): what SDKs, the CLI and bridges send and receive. Decoded at the edge; the
// OpenAPI document is generated from these schemas.
import { Schema } from "effect"
import { BudgetRefusal } from "./Events.ts"
import { AgentName, DecimalInt } from "./Ids.ts"
import { RunStatus, RunView } from "./Run.ts"

// the agent and run actors' own shapes, sent and received as they are
export {
  AgentUpdate as UpdateAgentRequest,
  AgentVersionView as AgentVersionResponse,
  AgentView as AgentResponse,
  NewAgent as CreateAgentRequest
} from "./Agent.ts"
export {
  ApprovalDecision as ApprovalRequest,
  NewRun as CreateRunRequest,
  RunStatus,
  RunView as RunResponse,
  SignalRequest,
  SignalView as SignalResponse,
  Waiting
} from "./Run.ts"

/** The `Idempotency-Key` header of `POST /v1/runs`. */
export const IdempotencyKey = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e]{1,255}$/u, { message: "Expected 1-255 visible ASCII characters" })
)

/** The `Last-Event-ID` header of a run's stream: the journal sequence to resume after. */
export const LastEventId = DecimalInt({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

/**
 * The agent `lantern doctor` creates once per tenant and runs to check a deployment end to end. Its runs are
 * probes: `GET /v1/runs` leaves them out unless asked for with `agentName=lantern-doctor-probe`.
 */
export const PROBE_AGENT = "lantern-doctor-probe"

/**
 * Where a page of `GET /v1/runs` continues: the previous page's `nextCursor`, to be passed back as it is (it
 * encodes the last run's creation time and id). A bare run id, the cursor before issue 10, is still accepted.
 */
export const RunCursor = Schema.String.check(
  Schema.isPattern(/^(?:[0-9]{1,17}\.)?run_[0-9a-z]{26}$/u, { message: "Expected the nextCursor of a previous page" })
)

export const RunListQuery = Schema.Struct({
  status: Schema.optionalKey(RunStatus),
  agentName: Schema.optionalKey(AgentName),
  limit: Schema.optionalKey(DecimalInt({ minimum: 1, maximum: 200 })),
  cursor: Schema.optionalKey(RunCursor)
})
export type RunListQuery = typeof RunListQuery.Type

export const RunListResponse = Schema.Struct({
  items: Schema.Array(RunView),
  nextCursor: Schema.NullOr(Schema.String)
})

export const CancelRunRequest = Schema.Struct({
  reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(2000)))
})
export type CancelRunRequest = typeof CancelRunRequest.Type

export const EventResponse = Schema.Struct({
  /** The event's place in its run's journal, 1…N: the SSE id, and what Last-Event-ID resumes after. */
  position: Schema.optionalKey(Schema.Int),
  /** The bus's stream-global sequence: orders events across runs, but is no position within one. */
  seq: Schema.Int,
  eventId: Schema.String,
  type: Schema.String,
  version: Schema.Int,
  at: Schema.String,
  causationId: Schema.NullOr(Schema.String),
  correlationId: Schema.String,
  /** W3C trace context of the span that wrote the event: one trace per run, from the API call on. */
  traceparent: Schema.optionalKey(Schema.NullOr(Schema.String)),
  payload: Schema.Unknown
})
export type EventResponse = typeof EventResponse.Type

/**
 * One frame of the tenant-wide stream `GET /v1/stream`: a run's event, reduced to what a list of runs needs to know
 * that a row changed (its SSE `id` is `seq`, the bus's stream-global sequence, and `event` is `type`). The event
 * itself is read from the run (`/v1/runs/{id}`, `/events`); the frame never carries a payload.
 */
export const RunActivity = Schema.Struct({
  seq: Schema.Int,
  runId: Schema.String,
  type: Schema.String,
  at: Schema.String,
  /** The run's status after this event: "running" until its terminal event. */
  status: RunStatus,
  /** The step the event is about (StepStarted, StepCompleted, StepFailed). */
  stepId: Schema.NullOr(Schema.String)
})
export type RunActivity = typeof RunActivity.Type

export const ErrorResponse = Schema.Struct({
  error: Schema.Struct({
    code: Schema.String,
    message: Schema.String,
    issues: Schema.optionalKey(Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String }))),
    /** On a 402: the cap that refused, its limit, what is spent and reserved, and why. */
    budget: Schema.optionalKey(BudgetRefusal)
  })
})
export type ErrorResponse = typeof ErrorResponse.Type
