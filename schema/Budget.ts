// The caps of a budget, as users of Lantern's SDK already write them: per run (cost, tokens, tool calls) and
// per UTC day (cost, runs). `hardFail` true blocks what would break a cap (HTTP 402); false lets it through and
// journals an alert. A cap left out is not enforced.
import { Schema } from "effect"

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
export const CAPS = ["maxCostUsdPerRun", "maxCostUsdPerDay", "maxRunsPerDay", "maxTokensPerRun", "maxToolCallsPerRun"] as const
export type Cap = typeof CAPS[number]
