// The language of evals (ADR 0047): suites of cases with assertions, eval runs that run each case as a real run of a
// candidate agent version and score it, and baselines per branch that a gate compares against. No I/O.
import { Schema } from "effect"
import { AgentName } from "./Ids.ts"

// ---- assertions: each an object with exactly one key naming its kind ----

const Text = Schema.String.check(Schema.isMaxLength(10_000))
const Positive = Schema.Finite.check(Schema.isGreaterThan(0))

export const Equals = Schema.Struct({ equals: Schema.Unknown })
export const Contains = Schema.Struct({ contains: Text })
export const NotContains = Schema.Struct({ notContains: Text })
export const Regex = Schema.Struct({ regex: Text })
export const JsonSchemaAssertion = Schema.Struct({ jsonSchema: Schema.Record(Schema.String, Schema.Unknown) })
export const ToolCalled = Schema.Struct({
  toolCalled: Schema.Struct({
    name: Schema.String.check(Schema.isBetweenLength(1, 200)),
    argsContains: Schema.optionalKey(Text)
  })
})
export const CostUnder = Schema.Struct({ costUnder: Schema.Struct({ usd: Positive }) })
export const LatencyUnder = Schema.Struct({ latencyUnder: Schema.Struct({ ms: Positive }) })
export const StepsUnder = Schema.Struct({
  stepsUnder: Schema.Struct({ n: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) })
})
export const Grounded = Schema.Struct({ grounded: Schema.Literal(true) })
export const Judge = Schema.Struct({
  judge: Schema.Struct({
    rubric: Schema.String.check(Schema.isBetweenLength(1, 10_000)),
    model: Schema.String.check(Schema.isBetweenLength(1, 200)),
    passScore: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
  })
})

export const Assertion = Schema.Union([
  Equals,
  Contains,
  NotContains,
  Regex,
  JsonSchemaAssertion,
  ToolCalled,
  CostUnder,
  LatencyUnder,
  StepsUnder,
  Grounded,
  Judge
])
export type Assertion = typeof Assertion.Type

/** The kinds an assertion may be, in the order the docs list them. */
export const KINDS = [
  "equals",
  "contains",
  "notContains",
  "regex",
  "jsonSchema",
  "toolCalled",
  "costUnder",
  "latencyUnder",
  "stepsUnder",
  "grounded",
  "judge"
] as const
export type Kind = typeof KINDS[number]

export const kindOf = (a: Assertion): Kind => Object.keys(a)[0] as Kind

/** Each kind's schema, to decode an assertion by the one key it has. */
export const members: Readonly<Record<Kind, Schema.Top>> = {
  equals: Equals,
  contains: Contains,
  notContains: NotContains,
  regex: Regex,
  jsonSchema: JsonSchemaAssertion,
  toolCalled: ToolCalled,
  costUnder: CostUnder,
  latencyUnder: LatencyUnder,
  stepsUnder: StepsUnder,
  grounded: Grounded,
  judge: Judge
}

// ---- suites ----

const CaseName = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e][\x20-\x7e]{0,199}$/u, {
    message: "Expected 1-200 printable ASCII characters, not starting with a space"
  })
)
export const SuiteName = CaseName

export const Case = Schema.Struct({
  name: CaseName,
  input: Schema.Unknown,
  /** What a right answer is: `equals`-free cases may still use it as a judge's reference. */
  expected: Schema.optionalKey(Schema.Unknown),
  assert: Schema.Array(Assertion).check(Schema.isMaxLength(50)),
  weight: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThan(0), Schema.isLessThanOrEqualTo(1000)))
})
export type Case = typeof Case.Type

const suiteFields = {
  agentName: AgentName,
  name: SuiteName,
  description: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(2000))),
  /** How far below its baseline an eval run may score before it counts as regressed (default 0.01). */
  tolerance: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })))
}

/** The body of `POST /v1/eval-suites`: upserted by agent + name. */
export const SuiteRequest = Schema.Struct({
  ...suiteFields,
  cases: Schema.Array(Case).check(Schema.isMinLength(1), Schema.isMaxLength(1000))
})
export type SuiteRequest = typeof SuiteRequest.Type

/**
 * The same body with each assertion left as an object, decoded by its one key afterwards, so that an unknown kind is
 * one issue naming the assertion rather than one per kind it is not.
 */
export const SuiteRequestLoose = Schema.Struct({
  ...suiteFields,
  cases: Schema.Array(
    Schema.Struct({
      ...Case.fields,
      assert: Schema.Array(Schema.Record(Schema.String, Schema.Unknown)).check(Schema.isMaxLength(50))
    })
  ).check(Schema.isMinLength(1), Schema.isMaxLength(1000))
})

export const DEFAULT_TOLERANCE = 0.01

export const SuiteRef = Schema.Struct({ id: Schema.String, version: Schema.Int })
export type SuiteRef = typeof SuiteRef.Type

export const SuiteView = Schema.Struct({
  id: Schema.String,
  agentName: Schema.String,
  name: Schema.String,
  version: Schema.Int,
  description: Schema.String,
  tolerance: Schema.Finite,
  cases: Schema.Array(Case),
  digest: Schema.String,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type SuiteView = typeof SuiteView.Type

export const SuiteId = Schema.String.check(
  Schema.isPattern(/^evs_[0-9a-f]{26}$/u, { message: "Expected a suite id like evs_0a1b…" })
)
export const EvalRunId = Schema.String.check(
  Schema.isPattern(/^evr_[0-9a-z]{26}$/u, { message: "Expected an eval run id like evr_01j…" })
)

export const SuiteListQuery = Schema.Struct({ agentName: Schema.optionalKey(AgentName) })

// ---- eval runs ----

const Branch = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/u, { message: "Expected a git branch name" })
)
/** A window back from now: `7d`, `24h`, `30m`. */
export const Window = Schema.String.check(
  Schema.isPattern(/^[1-9]\d{0,3}[dhm]$/u, { message: "Expected a window like 7d, 24h or 30m" })
)
export const windowMs = (w: string): number =>
  Number(w.slice(0, -1)) * ({ d: 86_400_000, h: 3_600_000, m: 60_000 } as const)[w.slice(-1) as "d" | "h" | "m"]

export const EvalRunRequest = Schema.Struct({
  /** The suite to run; or `rehearsal`, the agent's recent failures and low-scored runs (exactly one of the two). */
  suiteId: Schema.optionalKey(SuiteId),
  rehearsal: Schema.optionalKey(Schema.Struct({ agentName: AgentName, window: Window })),
  /** The candidate version; the agent's latest when absent. */
  agentVersion: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  branch: Schema.optionalKey(Branch),
  commitSha: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[0-9a-f]{7,64}$/u))),
  concurrency: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 64 })))
}).check(Schema.makeFilter((r) => {
  if (r.suiteId === undefined && r.rehearsal === undefined) {
    return { path: ["suiteId"], issue: "suiteId or rehearsal is required" }
  }
  if (r.suiteId !== undefined && r.rehearsal !== undefined) {
    return { path: ["rehearsal"], issue: "give suiteId or rehearsal, not both" }
  }
  return undefined
}))
export type EvalRunRequest = typeof EvalRunRequest.Type

export const EvalRunStatus = Schema.Literals(["running", "finished"])

export const CaseResult = Schema.Struct({
  name: Schema.String,
  passed: Schema.Boolean,
  /** The case could not be judged (a judge's provider failed, the run could not start): not passed, score 0. */
  errored: Schema.Boolean,
  score: Schema.Finite,
  weight: Schema.Finite,
  runId: Schema.NullOr(Schema.String),
  actual: Schema.Unknown,
  failures: Schema.Array(Schema.String),
  costUsd: Schema.Finite,
  /** The judges' verdicts, one per judge assertion. */
  verdicts: Schema.Array(Schema.Struct({ score: Schema.Finite, reasoning: Schema.String, costUsd: Schema.Finite }))
})
export type CaseResult = typeof CaseResult.Type

export const EvalRunView = Schema.Struct({
  id: Schema.String,
  suiteId: Schema.String,
  suiteVersion: Schema.Int,
  agentName: Schema.String,
  agentVersion: Schema.Int,
  branch: Schema.NullOr(Schema.String),
  commitSha: Schema.NullOr(Schema.String),
  status: EvalRunStatus,
  score: Schema.NullOr(Schema.Finite),
  passed: Schema.NullOr(Schema.Boolean),
  casesTotal: Schema.Int,
  casesPassed: Schema.Int,
  casesDone: Schema.Int,
  cases: Schema.Array(CaseResult),
  baselineScore: Schema.NullOr(Schema.Finite),
  baselineRunId: Schema.NullOr(Schema.String),
  regressed: Schema.Boolean,
  costUsd: Schema.Finite,
  createdAt: Schema.String,
  finishedAt: Schema.NullOr(Schema.String)
})
export type EvalRunView = typeof EvalRunView.Type

export const EvalRunQuery = Schema.Struct({
  gate: Schema.optionalKey(Schema.Literals(["true", "false"]))
})

/** A case of a regressed run against the same case of its baseline run. */
export const CaseDifference = Schema.Struct({
  name: Schema.String,
  score: Schema.Finite,
  baselineScore: Schema.NullOr(Schema.Finite),
  passed: Schema.Boolean,
  baselinePassed: Schema.NullOr(Schema.Boolean),
  failures: Schema.Array(Schema.String)
})
export type CaseDifference = typeof CaseDifference.Type

// ---- baselines ----

export const BaselineRequest = Schema.Struct({
  agentName: AgentName,
  suiteId: SuiteId,
  branch: Branch,
  evalRunId: EvalRunId
})
export type BaselineRequest = typeof BaselineRequest.Type

export const BaselineView = Schema.Struct({
  agentName: Schema.String,
  suiteId: Schema.String,
  branch: Schema.String,
  evalRunId: Schema.String,
  score: Schema.Finite,
  setAt: Schema.String
})
export type BaselineView = typeof BaselineView.Type

export const BaselineQuery = Schema.Struct({ agentName: AgentName, branch: Schema.optionalKey(Branch) })

// ---- feedback and rehearsals ----

export const FeedbackRequest = Schema.Struct({
  score: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 5 })),
  comment: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(4000))),
  /** What the run should have answered: a rehearsal scores a replay against it. */
  preferredOutput: Schema.optionalKey(Schema.Unknown),
  source: Schema.optionalKey(Schema.String.check(Schema.isBetweenLength(1, 100)))
})
export type FeedbackRequest = typeof FeedbackRequest.Type

export const FeedbackView = Schema.Struct({
  runId: Schema.String,
  agentName: Schema.String,
  score: Schema.Int,
  comment: Schema.NullOr(Schema.String),
  preferredOutput: Schema.optionalKey(Schema.Unknown),
  source: Schema.String,
  at: Schema.String
})
export type FeedbackView = typeof FeedbackView.Type

export const AgentFeedbackView = Schema.Struct({
  agentName: Schema.String,
  count: Schema.Int,
  mean: Schema.NullOr(Schema.Finite),
  /** Scores of 4 or 5. */
  thumbsUp: Schema.Int,
  /** Scores of 1 or 2. */
  thumbsDown: Schema.Int,
  last7DaysMean: Schema.NullOr(Schema.Finite)
})

export const RehearseRequest = Schema.Struct({
  agentName: AgentName,
  window: Window,
  includeFailures: Schema.optionalKey(Schema.Boolean),
  includeLowScore: Schema.optionalKey(Schema.Boolean),
  limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })))
})
export type RehearseRequest = typeof RehearseRequest.Type

export const RehearsalItem = Schema.Struct({
  runId: Schema.String,
  reason: Schema.Literals(["failed", "lowScore"]),
  input: Schema.Unknown,
  agentVersion: Schema.Int,
  status: Schema.String,
  costUsd: Schema.Finite,
  createdAt: Schema.String,
  feedbackScore: Schema.NullOr(Schema.Int),
  preferredOutput: Schema.optionalKey(Schema.Unknown)
})
export type RehearsalItem = typeof RehearsalItem.Type

// ---- events: an agent's eval book (suites, baselines) and each eval run, on the eval stream ----

export const EvalSuiteSaved = Schema.TaggedStruct("EvalSuiteSaved", {
  suiteId: Schema.String,
  agentName: Schema.String,
  name: Schema.String,
  version: Schema.Int,
  description: Schema.String,
  tolerance: Schema.Finite,
  cases: Schema.Array(Case),
  digest: Schema.String
})
export const EvalSuiteDeleted = Schema.TaggedStruct("EvalSuiteDeleted", { suiteId: Schema.String })
export const EvalBaselineSet = Schema.TaggedStruct("EvalBaselineSet", {
  suiteId: Schema.String,
  branch: Schema.String,
  evalRunId: Schema.String,
  score: Schema.Finite
})
/** Feedback on a run of the book's agent. */
export const RunFeedbackGiven = Schema.TaggedStruct("RunFeedbackGiven", {
  runId: Schema.String,
  score: Schema.Int,
  comment: Schema.NullOr(Schema.String),
  preferredOutput: Schema.optionalKey(Schema.Unknown),
  source: Schema.String
})
export const EvalRunStarted = Schema.TaggedStruct("EvalRunStarted", {
  evalRunId: Schema.String,
  suiteId: Schema.String,
  suiteVersion: Schema.Int,
  agentName: Schema.String,
  agentVersion: Schema.Int,
  branch: Schema.NullOr(Schema.String),
  commitSha: Schema.NullOr(Schema.String),
  concurrency: Schema.Int,
  tolerance: Schema.Finite,
  cases: Schema.Array(Case),
  /** Set on a rehearsal: its cases are the agent's recent failures, and any failing case fails the gate. */
  rehearsal: Schema.optionalKey(Schema.Struct({ agentName: Schema.String, window: Schema.String })),
  /** The baseline this run is compared with, fixed at its start (its branch's, else main's). */
  baseline: Schema.NullOr(Schema.Struct({ evalRunId: Schema.String, score: Schema.Finite, branch: Schema.String }))
})
export const EvalCaseFinished = Schema.TaggedStruct("EvalCaseFinished", {
  index: Schema.Int,
  result: CaseResult
})
export const EvalRunFinished = Schema.TaggedStruct("EvalRunFinished", {
  score: Schema.Finite,
  passed: Schema.Boolean,
  regressed: Schema.Boolean,
  costUsd: Schema.Finite
})

export const EvalEvent = Schema.Union([
  EvalSuiteSaved,
  EvalSuiteDeleted,
  EvalBaselineSet,
  RunFeedbackGiven,
  EvalRunStarted,
  EvalCaseFinished,
  EvalRunFinished
])
export type EvalEvent = typeof EvalEvent.Type
export type EvalSuiteSaved = typeof EvalSuiteSaved.Type
export type EvalRunStarted = typeof EvalRunStarted.Type

// ---- errors ----

export class EvalSuiteNotFound extends Schema.TaggedError<EvalSuiteNotFound>()("EvalSuiteNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no eval suite '${this.id}'`
  }
}

export class EvalRunNotFound extends Schema.TaggedError<EvalRunNotFound>()("EvalRunNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no eval run '${this.id}'`
  }
}

/** `?gate=true` on a finished run that scored below its baseline by more than the suite's tolerance. */
export class EvalRegressed extends Schema.TaggedError<EvalRegressed>()("EvalRegressed", {
  id: Schema.String,
  score: Schema.Finite,
  /** Null for a rehearsal, which has no baseline: any replayed case that fails fails it. */
  baselineScore: Schema.NullOr(Schema.Finite),
  baselineRunId: Schema.NullOr(Schema.String),
  tolerance: Schema.Finite,
  differences: Schema.Array(CaseDifference)
}) {
  override get message() {
    return this.baselineScore === null
      ? `rehearsal ${this.id}: replayed runs still fail (score ${this.score.toFixed(3)})`
      : `eval run ${this.id} scored ${this.score.toFixed(3)}, below its baseline ${
        this.baselineScore.toFixed(3)
      } by more than ${this.tolerance}`
  }
}

/** A baseline names an eval run that is not finished, or is of another suite or agent. */
export class EvalBaselineRefused extends Schema.TaggedError<EvalBaselineRefused>()("EvalBaselineRefused", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}
