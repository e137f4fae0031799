// The caps of a budget, as users of Lantern's SDK already write them: per run (cost, tokens, tool calls) and
// per UTC day (cost, runs). `hardFail` true blocks what would break a cap (HTTP 402); false lets it through and
// journals an alert. A cap left out is not enforced.
import { Schema } from "effect"
import { DecimalInt } from "./Ids.ts"

const Usd = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1e9))
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1e12))

export const BudgetLimits = Schema.Struct({
  maxCostUsdPerRun: Schema.optionalKey(Usd),
  maxCostUsdPerDay: Schema.optionalKey(Usd),
  maxRunsPerDay: Schema.optionalKey(Count),
  maxTokensPerRun: Schema.optionalKey(Count),
  maxToolCallsPerRun: Schema.optionalKey(Count),
  hardFail: Schema.Boolean
})
export type BudgetLimits = typeof BudgetLimits.Type

/** The caps, by field name, in the order they are checked. */
export const CAPS = [
  "maxCostUsdPerRun",
  "maxCostUsdPerDay",
  "maxRunsPerDay",
  "maxTokensPerRun",
  "maxToolCallsPerRun"
] as const
export type Cap = typeof CAPS[number]

/** `PUT /v1/agents/{name}/budget` and `PUT /v1/budget`: the caps, replacing the scope's previous ones whole. */
export const SetBudgetRequest = BudgetLimits
export type SetBudgetRequest = BudgetLimits

export const BudgetResponse = Schema.Struct({
  /** `tenant` or `agent:<name>`. */
  scope: Schema.String,
  /** Null while no budget was ever set for the scope: nothing is enforced. */
  limits: Schema.NullOr(BudgetLimits),
  updatedBy: Schema.NullOr(Schema.String),
  today: Schema.Struct({
    day: Schema.String,
    spentUsd: Schema.Finite,
    reservedUsd: Schema.Finite,
    runs: Schema.Int,
    tokens: Schema.Int
  }),
  /** Soft caps passed today. */
  alerts: Schema.Array(Schema.String),
  openReservations: Schema.Int
})
export type BudgetResponse = typeof BudgetResponse.Type

export const UsageQuery = Schema.Struct({
  /** How many UTC days back, today included: 1 to 366, 30 when absent. */
  days: Schema.optionalKey(DecimalInt({ minimum: 1, maximum: 366 })),
  /** true: count eval runs' cases too (eval traffic is left out of production usage by default). */
  includeEval: Schema.optionalKey(Schema.Literals(["true", "false"]))
})

export const UsageDay = Schema.Struct({
  day: Schema.String,
  runs: Schema.Int,
  modelCalls: Schema.Int,
  tokensIn: Schema.Int,
  tokensOut: Schema.Int,
  costUsd: Schema.Finite
})

export const UsageResponse = Schema.Struct({
  agentName: Schema.String,
  /** Days with runs or spend, oldest first, from the projections (a few hundred ms behind the journal). */
  days: Schema.Array(UsageDay),
  totalCostUsd: Schema.Finite,
  /** Held right now by model calls in flight, from the agent's budget journal (0 when it has no budget). */
  reservedUsd: Schema.Finite
})
export type UsageResponse = typeof UsageResponse.Type
