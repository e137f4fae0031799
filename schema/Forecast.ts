// Bodies of `POST /v1/runs/forecast`: what a run of an agent would probably cost, asked with the same body
// that would start it. Decoded at the edge; the OpenAPI document is generated from these schemas.
import { Schema } from "effect"
import { BudgetRefusal } from "./Events.ts"
import { AgentName } from "./Ids.ts"

/** The body of `POST /v1/runs`: the forecast is of exactly the run this body would start. */
export const ForecastRequest = Schema.Struct({
  agentName: AgentName,
  input: Schema.Unknown,
  /** The version to forecast; the latest when absent. */
  agentVersion: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
})
export type ForecastRequest = typeof ForecastRequest.Type

export const ForecastMethod = Schema.Literals(["prior", "blend", "history"])

/** Where the figures come from, so a client can judge them. */
export const ForecastBasis = Schema.Struct({
  /**
   * `prior`: no completed run of the version yet, figures from the spec's bounds and the prices alone;
   * `blend`: a few runs (under 5) blended with the prior; `history`: the version's completed runs.
   */
  method: ForecastMethod,
  /** Succeeded runs of this version the forecast learned from (the latest 200 at most). */
  runs: Schema.Int,
  agentVersion: Schema.Int,
  /** The input's first prompt in tokens (system prompt, input and tool definitions; o200k_base). */
  promptTokens: Schema.Int,
  /** How the history's cost grows with the prompt: cost ∝ promptTokens^exponent; null without history. */
  exponent: Schema.NullOr(Schema.Finite),
  /** The models the run may use, best first, as `provider/model`: what the prior is priced at. */
  models: Schema.Array(Schema.String),
  /** The price table's version (LANTERN_PRICES_FILE or the built-in one). */
  pricesVersion: Schema.String,
  description: Schema.String
})
export type ForecastBasis = typeof ForecastBasis.Type

export const ForecastResponse = Schema.Struct({
  /** The median run's prompt tokens over all its model calls. */
  estimatedTokensIn: Schema.Int,
  estimatedTokensOut: Schema.Int,
  /** The median run's cost in USD: the same as `p50`. */
  estimatedCostUsd: Schema.Finite,
  /** An 80% interval of the run's cost in USD: 1 run in 10 is expected below `p10`, 1 in 10 above `p90`. */
  p10: Schema.Finite,
  p50: Schema.Finite,
  p90: Schema.Finite,
  /**
   * How often the p10–p90 interval holds the cost, 0 to 1: measured on this version's runs, each forecast again
   * from the others (the latest 50), with the prior's figure (0.95) pooled in as two runs; the prior's alone
   * without runs.
   */
  confidence: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)),
  /** `low` without enough history (under 5 runs) or with a loose interval (p90 over 10 × p10). */
  confidenceLabel: Schema.Literals(["low", "medium", "high"]),
  basis: ForecastBasis,
  /** Whether a run costing `p90` would break a hard budget cap; answered with HTTP 402 when true. */
  wouldExceedBudget: Schema.Boolean,
  /** The cap it would break, when `wouldExceedBudget`. */
  budget: Schema.optionalKey(BudgetRefusal)
})
export type ForecastResponse = typeof ForecastResponse.Type
