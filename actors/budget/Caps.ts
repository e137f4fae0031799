// What a budget cap refuses: the refusal of going past one cap (the day's, or a run's own), and the hard/soft
// policy over the budgets that apply to a run. Pure figures in, a `BudgetRefusal` (or null) out; no state.
import type { BudgetLimits } from "../../schema/Budget.ts"
import type { BudgetRefusal } from "../../schema/Events.ts"
import type { Quote } from "../model/ModelProvider.ts"

/** Rounds a figure to 1e-9, so sums of floats read as the user wrote them. */
export const round = (usd: number) => Math.round(usd * 1e9) / 1e9

/** A cap may be met exactly: float sums that land a hair over it still fit. */
const fits = (value: number, limit: number) => value <= limit + 1e-12

/** The refusal of `requested` more against the cap `limit` of `scope`, or null when it fits. */
export const over = (
  scope: string,
  cap: BudgetRefusal["cap"],
  limit: number | undefined,
  current: { readonly spent: number; readonly reserved: number },
  requested: number,
  unit: string
): BudgetRefusal | null => {
  if (limit === undefined || fits(current.spent + current.reserved + requested, limit)) return null
  return {
    scope,
    cap,
    limit,
    spent: round(current.spent),
    reserved: round(current.reserved),
    requested: round(requested),
    reason: `${cap} of ${scope} is ${limit}${unit}: ${round(current.spent)}${unit} spent and ${
      round(current.reserved)
    }${unit} reserved leave no room for ${round(requested)}${unit} more`
  }
}

/** What a run has used so far, for its per-run caps. */
export interface RunUsage {
  readonly costUsd: number
  readonly tokens: number
  readonly toolCalls: number
}

/** Nothing used yet: a run before its first call. */
export const NO_USAGE: RunUsage = { costUsd: 0, tokens: 0, toolCalls: 0 }

/** The per-run cap a model call would break: cost and tokens, against the run's own totals. */
export const overRun = (scope: string, limits: BudgetLimits, run: RunUsage, quote: Quote): BudgetRefusal | null => {
  const checks: ReadonlyArray<readonly [string, number | undefined, number, number, string]> = [
    ["maxCostUsdPerRun", limits.maxCostUsdPerRun, run.costUsd, quote.worstCaseUsd, " USD"],
    ["maxTokensPerRun", limits.maxTokensPerRun, run.tokens, quote.promptTokens + quote.maxTokens, " tokens"]
  ]
  for (const [cap, limit, spent, requested, unit] of checks) {
    if (limit === undefined || fits(spent + requested, limit)) continue
    return {
      scope,
      cap,
      limit,
      spent: round(spent),
      reserved: 0,
      requested: round(requested),
      reason: `${cap} of ${scope} is ${limit}${unit}: the run has used ${
        round(spent)
      }${unit} and its next model call may use ${round(requested)}${unit}`
    }
  }
  return null
}

/** The refusal of `more` tool calls when a run already made `made` of them. */
export const overToolCalls = (scope: string, limits: BudgetLimits, made: number, more: number): BudgetRefusal | null =>
  limits.maxToolCallsPerRun === undefined || made + more <= limits.maxToolCallsPerRun
    ? null
    : {
      scope,
      cap: "maxToolCallsPerRun",
      limit: limits.maxToolCallsPerRun,
      spent: made,
      reserved: 0,
      requested: more,
      reason:
        `maxToolCallsPerRun of ${scope} is ${limits.maxToolCallsPerRun}: the run has made ${made} tool calls and asked for ${more} more`
    }

/** A per-run check of one scope's caps: the refusal it would give, or null. */
export type RunCheck = (scope: string, limits: BudgetLimits) => BudgetRefusal | null

/** What the per-run caps of the scopes that apply say: refused by the first hard one, or soft ones alerted. */
export interface RunVerdict<S> {
  /** The hard cap that refuses, if any: the call is not made. */
  readonly refused: BudgetRefusal | null
  /** Soft caps passed before it (all of them when none refuses): journaled as alerts, the call goes through. */
  readonly alerts: ReadonlyArray<{ readonly scope: S; readonly refusal: BudgetRefusal }>
}

/**
 * The hard/soft policy of per-run caps over the budgets that apply (the agent's, then the tenant's): scopes are
 * checked in order, a soft cap passed is alerted, and the first hard cap passed refuses.
 */
export const perRun = <S>(
  budgets: ReadonlyArray<{ readonly scope: S; readonly name: string; readonly limits: BudgetLimits }>,
  check: RunCheck
): RunVerdict<S> => {
  const alerts: Array<{ scope: S; refusal: BudgetRefusal }> = []
  for (const { limits, name, scope } of budgets) {
    const refusal = check(name, limits)
    if (refusal === null) continue
    if (limits.hardFail) return { refused: refusal, alerts }
    alerts.push({ scope, refusal })
  }
  return { refused: null, alerts }
}

/** The figure a soft cap's alert journals: what the run would have reached. */
export const alertValue = (refusal: BudgetRefusal) => refusal.spent + refusal.requested
