// What an agent spent, per UTC day, from the projections: every completed step's tokens and cost, and the
// runs started. A step answered by a child run (kind `agent`) is left out: the child's own steps count for
// the child's agent, so a parent does not count its children's spend a second time. Eval traffic (the runs of an
// eval run's cases) is left out of these production figures unless `includeEval` (ADR 0058); budgets count it.
// Read as the tenant (RLS).
import { Effect } from "effect"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import { forTenant, type Sql } from "./Sql.ts"

export interface UsageDay {
  readonly day: string
  readonly runs: number
  readonly modelCalls: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

const utcDay = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD')`

/** The last `days` UTC days (today included) on which the agent ran or spent, oldest first. */
export const agentDays = (
  tenant: string,
  agentName: string,
  days: number,
  now: number,
  includeEval = false
): Effect.Effect<ReadonlyArray<UsageDay>, DatabaseUnavailable, Sql> => daysOf(tenant, agentName, days, now, includeEval)

/** The same for the whole tenant, every agent's runs and spend together (what a tenant-wide budget counts). */
export const tenantDays = (
  tenant: string,
  days: number,
  now: number,
  includeEval = false
): Effect.Effect<ReadonlyArray<UsageDay>, DatabaseUnavailable, Sql> => daysOf(tenant, null, days, now, includeEval)

const daysOf = (
  tenant: string,
  agentName: string | null,
  days: number,
  now: number,
  includeEval: boolean
): Effect.Effect<ReadonlyArray<UsageDay>, DatabaseUnavailable, Sql> =>
  forTenant(tenant, (sql) =>
    Effect.gen(function*() {
      const since = new Date(Date.UTC(
        new Date(now).getUTCFullYear(),
        new Date(now).getUTCMonth(),
        new Date(now).getUTCDate() - (days - 1)
      )).toISOString()
      const spend = yield* sql.query<
        { day: string; modelCalls: number; tokensIn: number; tokensOut: number; costUsd: number }
      >(
        `select ${utcDay("s.finished_at")} as day,
         (count(*) filter (where s.kind = 'model'))::int as "modelCalls",
         coalesce(sum(s.tokens_in), 0)::float8 as "tokensIn",
         coalesce(sum(s.tokens_out), 0)::float8 as "tokensOut",
         coalesce(sum(s.cost_usd), 0)::float8 as "costUsd"
       from steps s join runs r on r.tenant_id = s.tenant_id and r.id = s.run_id
       where s.tenant_id = $1 and ($2::text is null or r.agent_name = $2) and s.status = 'completed' and s.kind <> 'agent'
         and s.finished_at >= $3::timestamptz and ($4::boolean or r.eval_run_id is null)
       group by 1`,
        [tenant, agentName, since, includeEval]
      )
      const started = yield* sql.query<{ day: string; runs: number }>(
        `select ${utcDay("created_at")} as day, count(*)::int as runs from runs
       where tenant_id = $1 and ($2::text is null or agent_name = $2) and created_at >= $3::timestamptz
         and ($4::boolean or eval_run_id is null) group by 1`,
        [tenant, agentName, since, includeEval]
      )
      const byDay = new Map<string, UsageDay>()
      const at = (day: string) =>
        byDay.get(day) ?? { day, runs: 0, modelCalls: 0, tokensIn: 0, tokensOut: 0, costUsd: 0 }
      for (const r of started) byDay.set(r.day, { ...at(r.day), runs: Number(r.runs) })
      for (const s of spend) {
        byDay.set(s.day, {
          ...at(s.day),
          modelCalls: Number(s.modelCalls),
          tokensIn: Number(s.tokensIn),
          tokensOut: Number(s.tokensOut),
          costUsd: Math.round(Number(s.costUsd) * 1e9) / 1e9
        })
      }
      return [...byDay.values()].sort((a, b) => a.day.localeCompare(b.day))
    }))
