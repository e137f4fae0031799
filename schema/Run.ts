// A run as the run actor takes and gives it: a run to start, a human's decision on a step, and the run as read
// back from its journal. The HTTP API sends these as its bodies (schema/Api.ts, under its own names).
import { Schema } from "effect"
import { ErrorInfo } from "./Events.ts"
import { Assignment } from "./Experiment.ts"
import { AgentName } from "./Ids.ts"

/** A run to start. */
export const NewRun = Schema.Struct({
  /** The agent to run; or `workflow`, a code-first workflow (exactly one of the two). */
  agentName: Schema.optionalKey(AgentName),
  workflow: Schema.optionalKey(AgentName),
  input: Schema.Unknown,
  /** Pin a specific version of the agent; the latest when absent. */
  agentVersion: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
}).check(Schema.makeFilter((r) => {
  if (r.agentName === undefined && r.workflow === undefined) {
    return { path: ["agentName"], issue: "agentName or workflow is required" }
  }
  if (r.agentName !== undefined && r.workflow !== undefined) {
    return { path: ["workflow"], issue: "give agentName or workflow, not both" }
  }
  if (r.workflow !== undefined && r.agentVersion !== undefined) {
    return { path: ["agentVersion"], issue: "a workflow run starts on the workflow's current code" }
  }
  return undefined
}))
export type NewRun = typeof NewRun.Type

/** A human's decision on a step waiting for approval. */
export const ApprovalDecision = Schema.Struct({
  approved: Schema.Boolean,
  by: Schema.String.check(Schema.isBetweenLength(1, 200)),
  reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(2000)))
})
export type ApprovalDecision = typeof ApprovalDecision.Type

export const RunStatus = Schema.Literals(["running", "succeeded", "failed", "canceled"])
export type RunStatus = typeof RunStatus.Type

/** What a running run waits for, if anything: a timer, a human decision, a child run or a failed step's retry. */
export const Waiting = Schema.Struct({
  stepId: Schema.String,
  kind: Schema.Literals(["sleep", "approval", "agent", "retry"]),
  /**
   * When the timer fires, the approval expires or a failed step's next attempt is due (ISO 8601); null while a
   * child run has no deadline.
   */
  until: Schema.NullOr(Schema.String)
})
export type Waiting = typeof Waiting.Type

/** A run as read back: where it stands, what it cost, and what it waits for. */
export const RunView = Schema.Struct({
  id: Schema.String,
  status: RunStatus,
  agentName: Schema.String,
  agentVersion: Schema.Int,
  input: Schema.Unknown,
  output: Schema.Unknown,
  error: Schema.NullOr(ErrorInfo),
  steps: Schema.Int,
  tokensIn: Schema.Int,
  tokensOut: Schema.Int,
  costUsd: Schema.Finite,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  finishedAt: Schema.NullOr(Schema.String),
  /** Always sent by this server; optional so clients also read older servers. */
  waiting: Schema.optionalKey(Schema.NullOr(Waiting)),
  /** The A/B experiment and arm that chose this run's version (ADR 0058); null when none did. */
  experiment: Schema.optionalKey(Schema.NullOr(Assignment)),
  /** The eval run this run is a case of: eval traffic, left out of production usage unless asked for. */
  evalRunId: Schema.optionalKey(Schema.NullOr(Schema.String))
})
export type RunView = typeof RunView.Type

/** A signal to a workflow's run (POST /v1/runs/{id}/signals/{name}): what its `ctx.waitForEvent(name)` receives. */
export const SignalRequest = Schema.Struct({ value: Schema.Unknown })
export type SignalRequest = typeof SignalRequest.Type

/** A signal journaled: the n-th of its name in the run (`seq`), as the code's n-th wait for it receives it. */
export const SignalView = Schema.Struct({ runId: Schema.String, name: Schema.String, seq: Schema.Int })
export type SignalView = typeof SignalView.Type
