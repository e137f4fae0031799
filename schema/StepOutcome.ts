// How a step ends, in one shape for the model port, the driver's decisions, the run commands and the run events:
// a completion (its result, the tokens and money its call used, the router's choice) or a failure (why, and retry).
import { Schema } from "effect"

/** Why a budget refused a reservation or a run: the cap, what it allows, and what was already spent and held. */
export const BudgetRefusal = Schema.Struct({
  /** `tenant` or `agent:<name>`. */
  scope: Schema.String,
  /** The cap's field name in the budget body, e.g. `maxCostUsdPerDay`. */
  cap: Schema.String,
  limit: Schema.Number,
  spent: Schema.Number,
  reserved: Schema.Number,
  /** What this call or run would have added. */
  requested: Schema.Number,
  reason: Schema.String
})
export type BudgetRefusal = typeof BudgetRefusal.Type

export const ErrorInfo = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  /** Set when a budget's hard cap stopped the step (code `budget_exceeded`). */
  budget: Schema.optionalKey(BudgetRefusal)
})
export type ErrorInfo = typeof ErrorInfo.Type

/** One candidate model the router tried that did not answer. */
export const RouteAttempt = Schema.Struct({
  provider: Schema.String,
  model: Schema.String,
  /** `rate_limited`, `provider_unavailable`, `timeout`, `provider_error` or `circuit_open`. */
  code: Schema.String,
  message: Schema.String,
  durationMs: Schema.Number
})
export type RouteAttempt = typeof RouteAttempt.Type

/** How the router answered a model step: the alias asked for, the model that answered and why, what failed first. */
export const Route = Schema.Struct({
  alias: Schema.String,
  strategy: Schema.String,
  /** `provider/model` that answered; null when every candidate failed. */
  chosen: Schema.NullOr(Schema.String),
  reason: Schema.String,
  /** True when the answer came from the exact-match response cache (no provider call, no cost). */
  cached: Schema.Boolean,
  attempts: Schema.Array(RouteAttempt)
})
export type Route = typeof Route.Type

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

export const ModelStepResult = Schema.TaggedStruct("model", { answer: ModelAnswer })
export const ToolStepResult = Schema.TaggedStruct("tool", { callId: Schema.String, output: Schema.String })
export const ApprovalStepResult = Schema.TaggedStruct("approval", {
  approved: Schema.Boolean,
  by: Schema.String,
  reason: Schema.String
})
/** What a workflow's `ctx.step` returned (JSON), or a value it drew (`ctx.now`, `ctx.random`, `ctx.uuid`). */
export const CodeStepResult = Schema.TaggedStruct("code", { value: Schema.Unknown })
export const StepResult = Schema.Union([ModelStepResult, ToolStepResult, ApprovalStepResult, CodeStepResult])
export type StepResult = typeof StepResult.Type

const spent = {
  /** Every prompt token, cached ones included. */
  tokensIn: Schema.Int,
  /** Every output token, reasoning ones included. */
  tokensOut: Schema.Int,
  costUsd: Schema.Number
}
const split = {
  /** Of `tokensIn`, prompt tokens read from the provider's cache. */
  cachedTokensIn: Schema.optionalKey(Schema.Int),
  /** Of `tokensOut`, hidden reasoning tokens. */
  reasoningTokens: Schema.optionalKey(Schema.Int)
}

/** What a model or tool call used: tokens and cost, as a provider reports them and a step journals them. */
export const Usage = Schema.Struct({ ...spent, ...split })
export type Usage = typeof Usage.Type

/**
 * A step's completion: its result, what its call used, how long the step took and, for a model step, the router's
 * choice. The fields keep the order journals have always listed them in: decoded events list them in this order.
 */
export const StepCompletion = Schema.Struct({
  result: StepResult,
  ...spent,
  durationMs: Schema.Number,
  ...split,
  /** The router's choice for a model step. */
  route: Schema.optionalKey(Route)
})
export type StepCompletion = typeof StepCompletion.Type

/** What a call produced, before its step's duration is known: a completion less its `durationMs`. */
export type Performed = Omit<StepCompletion, "durationMs">

/** A step's failure: why, whether another attempt may follow and not before when, and the router's failed candidates. */
export const StepFailure = Schema.Struct({
  error: ErrorInfo,
  retryable: Schema.Boolean,
  /** Epoch ms before which the next attempt must not start (the retry policy's backoff, jitter included). */
  retryAt: Schema.optionalKey(Schema.Number),
  /** The router's failed candidates for a model step. */
  route: Schema.optionalKey(Route)
})
export type StepFailure = typeof StepFailure.Type

/** How a step ended: completed or failed. */
export const StepOutcome = Schema.Union([StepCompletion, StepFailure])
export type StepOutcome = typeof StepOutcome.Type
