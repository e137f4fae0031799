// Commands: what callers ask actors to do. A command may be refused; only the events it produces are stored.
import { Schema } from "effect"
import { AgentSpec, ResolvedSpec } from "./AgentSpec.ts"
import { RunIdentity, RunSucceeded, StepRequest, StepsCompleted, WorkflowRef } from "./Events.ts"
import { Arm, Assignment, Metric } from "./Experiment.ts"
import { ErrorInfo, StepCompletion, StepFailure } from "./StepOutcome.ts"

// ---- agent ----
export const CreateAgent = Schema.TaggedStruct("CreateAgent", {
  name: Schema.String,
  description: Schema.String,
  spec: AgentSpec,
  digest: Schema.String
})
export const PublishAgentVersion = Schema.TaggedStruct("PublishAgentVersion", {
  name: Schema.String,
  description: Schema.optionalKey(Schema.String),
  spec: AgentSpec,
  digest: Schema.String
})
/** Starts an A/B experiment between two of the agent's versions (ADR 0058); refused while another one runs. */
export const StartExperiment = Schema.TaggedStruct("StartExperiment", {
  experimentId: Schema.String,
  name: Schema.String,
  control: Schema.Int,
  variant: Schema.Int,
  trafficPercent: Schema.Number,
  metric: Metric,
  suiteId: Schema.NullOr(Schema.String),
  autoPromote: Schema.Boolean,
  minRuns: Schema.Int,
  minLift: Schema.Number,
  by: Schema.String
})
/** Ends an experiment: the winner's version becomes the agent's current version. A second conclusion changes nothing. */
export const ConcludeExperiment = Schema.TaggedStruct("ConcludeExperiment", {
  experimentId: Schema.String,
  winner: Arm,
  by: Schema.String,
  reason: Schema.String
})
export const AgentCommand = Schema.Union([CreateAgent, PublishAgentVersion, StartExperiment, ConcludeExperiment])
export type AgentCommand = typeof AgentCommand.Type

// ---- run ----
export const StartRun = Schema.TaggedStruct("StartRun", {
  runId: Schema.String,
  agentName: Schema.String,
  agentVersion: Schema.Int,
  agentDigest: Schema.String,
  spec: ResolvedSpec,
  input: Schema.Unknown,
  requestDigest: Schema.String,
  parent: Schema.optionalKey(
    Schema.Struct({ tenant: Schema.String, runId: Schema.String, stepId: Schema.String, depth: Schema.Int })
  ),
  identity: Schema.optionalKey(RunIdentity),
  workflow: Schema.optionalKey(WorkflowRef),
  experiment: Schema.optionalKey(Assignment),
  evalRunId: Schema.optionalKey(Schema.String)
})
export const StartStep = Schema.TaggedStruct("StartStep", {
  stepId: Schema.String,
  request: StepRequest,
  wakeAt: Schema.optionalKey(Schema.Number)
})
export const CompleteStep = Schema.TaggedStruct("CompleteStep", {
  stepId: Schema.String,
  attempt: Schema.Int,
  ...StepCompletion.fields,
  /** A local step's request: it completes a step never started (journaled as one StepCompleted). */
  request: Schema.optionalKey(StepRequest)
})
/**
 * Local steps performed together, none of them started before, each completing as a CompleteStep carrying its
 * request would, and led by the completion of the started step that asked for them, if any (no request, ADR 0075):
 * journaled as one StepsCompleted (ADR 0067).
 */
export const CompleteSteps = Schema.TaggedStruct("CompleteSteps", { steps: StepsCompleted.fields.steps })
export const FailStep = Schema.TaggedStruct("FailStep", {
  stepId: Schema.String,
  attempt: Schema.Int,
  ...StepFailure.fields
})
/** A human's answer to a tool call waiting for approval. */
export const DecideApproval = Schema.TaggedStruct("DecideApproval", {
  stepId: Schema.String,
  approved: Schema.Boolean,
  by: Schema.String,
  reason: Schema.String,
  durationMs: Schema.Number
})
/** The run's output; with `steps`, the completion of the step in flight whose answer ended it (ADR 0077). */
export const SucceedRun = Schema.TaggedStruct("SucceedRun", {
  output: Schema.Unknown,
  steps: RunSucceeded.fields.steps
})
export const FailRun = Schema.TaggedStruct("FailRun", { error: ErrorInfo })
export const CancelRun = Schema.TaggedStruct("CancelRun", { reason: Schema.String, by: Schema.String })
/** A loop agent's run marks its iteration done (ADR 0055), before it succeeds. */
export const CompleteLoop = Schema.TaggedStruct("CompleteLoop", { output: Schema.Unknown })
export const RunCommand = Schema.Union([
  StartRun,
  StartStep,
  CompleteStep,
  CompleteSteps,
  FailStep,
  DecideApproval,
  SucceedRun,
  FailRun,
  CancelRun,
  CompleteLoop
])
export type RunCommand = typeof RunCommand.Type
export type StartRun = typeof StartRun.Type
