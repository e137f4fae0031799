// A/B experiments on an agent (issue 17, ADR 0058): a split between two of its versions that decides the version of
// every new run of the agent without a pinned version, scored by feedback or by an eval suite, concluded by hand or
// by auto-promotion. Journaled on the agent's own journal, beside the versions it chooses between.
import { Schema } from "effect"
import { SuiteId } from "./Eval.ts"
import { AgentName } from "./Ids.ts"

export const ExperimentId = Schema.String.check(
  Schema.isPattern(/^exp_[0-9a-z]{26}$/u, { message: "Expected an experiment id like exp_01j…" })
)

export const Arm = Schema.Literals(["control", "variant"])
export type Arm = typeof Arm.Type

export const Metric = Schema.Literals(["feedback", "evalSuite"])
export type Metric = typeof Metric.Type

const Version = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** `POST /v1/experiments`. */
export const ExperimentRequest = Schema.Struct({
  agentName: AgentName,
  name: Schema.String.check(Schema.isBetweenLength(1, 100)),
  control: Version,
  variant: Version,
  /** The share of unpinned runs the variant gets, 0..100. */
  trafficPercent: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 100 })),
  metric: Metric,
  /** The suite that scores each arm when `metric` is `evalSuite`. */
  suiteId: Schema.optionalKey(SuiteId),
  autoPromote: Schema.Boolean,
  /** Runs each arm needs (scored ones, for `feedback`) before auto-promotion may decide. */
  minRuns: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 })),
  /** How far the variant's score (0..1) must exceed control's for auto-promotion. */
  minLift: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
}).check(Schema.makeFilter((r) => {
  if (r.control === r.variant) return { path: ["variant"], issue: "the variant must be another version than control" }
  if (r.metric === "evalSuite" && r.suiteId === undefined) {
    return { path: ["suiteId"], issue: "metric evalSuite needs a suiteId" }
  }
  if (r.metric === "feedback" && r.suiteId !== undefined) {
    return { path: ["suiteId"], issue: "suiteId is only for metric evalSuite" }
  }
  return undefined
}))
export type ExperimentRequest = typeof ExperimentRequest.Type

export const ConcludeRequest = Schema.Struct({
  /** The arm whose version becomes the agent's current version; the leading one (control on a tie) when absent. */
  winner: Schema.optionalKey(Arm),
  reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(1000)))
})
export type ConcludeRequest = typeof ConcludeRequest.Type

export const ExperimentListQuery = Schema.Struct({ agentName: Schema.optionalKey(AgentName) })

/** One arm's figures: its runs (eval traffic excluded), how they ended, what they cost, and its score. */
export const ArmResult = Schema.Struct({
  arm: Arm,
  version: Schema.Int,
  runs: Schema.Int,
  succeeded: Schema.Int,
  failed: Schema.Int,
  successRate: Schema.NullOr(Schema.Finite),
  costUsd: Schema.Finite,
  /** Runs of the arm with feedback (metric feedback), or the arm's eval runs of the suite (metric evalSuite). */
  scored: Schema.Int,
  /** Mean feedback mapped to 0..1 ((score - 1) / 4), or the arm's latest eval score of the suite. */
  score: Schema.NullOr(Schema.Finite),
  meanFeedback: Schema.NullOr(Schema.Finite)
})
export type ArmResult = typeof ArmResult.Type

export const ExperimentView = Schema.Struct({
  id: Schema.String,
  agentName: Schema.String,
  name: Schema.String,
  control: Schema.Int,
  variant: Schema.Int,
  trafficPercent: Schema.Finite,
  metric: Metric,
  suiteId: Schema.NullOr(Schema.String),
  autoPromote: Schema.Boolean,
  minRuns: Schema.Int,
  minLift: Schema.Finite,
  status: Schema.Literals(["running", "concluded"]),
  winner: Schema.NullOr(Arm),
  /** Whether the conclusion made the variant the agent's current version. */
  promoted: Schema.Boolean,
  concludedBy: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  startedAt: Schema.String,
  concludedAt: Schema.NullOr(Schema.String),
  results: Schema.optionalKey(Schema.Array(ArmResult)),
  /** variant's score minus control's, when both have one. */
  lift: Schema.optionalKey(Schema.NullOr(Schema.Finite))
})
export type ExperimentView = typeof ExperimentView.Type

/** A run's arm of an experiment, journaled on its RunStarted. */
export const Assignment = Schema.Struct({ id: Schema.String, arm: Arm })
export type Assignment = typeof Assignment.Type

// ---- events (on the agent's journal) ----
export const ExperimentStarted = Schema.TaggedStruct("ExperimentStarted", {
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
/** The experiment ended: the winner's version is the agent's current version from here on. */
export const ExperimentConcluded = Schema.TaggedStruct("ExperimentConcluded", {
  experimentId: Schema.String,
  winner: Arm,
  version: Schema.Int,
  by: Schema.String,
  reason: Schema.String
})
export type ExperimentStarted = typeof ExperimentStarted.Type
export type ExperimentConcluded = typeof ExperimentConcluded.Type

export class ExperimentNotFound extends Schema.TaggedError<ExperimentNotFound>()("ExperimentNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no experiment '${this.id}'`
  }
}

export class ExperimentRefused extends Schema.TaggedError<ExperimentRefused>()("ExperimentRefused", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}
