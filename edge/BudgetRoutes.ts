// Budgets and usage: `PUT/GET /v1/agents/{name}/budget`, tenant-wide `PUT/GET /v1/budget`, and
// `GET /v1/agents/{name}/usage` (day buckets). Budgets are read from their journals, so a cap just set is
// enforced and shown at once; usage comes from the projections.
import { Clock, Effect } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import { agentScope, Budgets, TENANT } from "../actors/budget/Budgets.ts"
import { dayOf } from "../actors/budget/Decider.ts"
import * as Usage from "../projections/Usage.ts"
import * as Budget from "../schema/Budget.ts"
import { actorOf, handlers } from "./Serve.ts"

/** The agent must exist: a budget for a misspelt name would never apply to anything. */
const existingAgent = (tenant: string, name: string) => Effect.as(Agents.use((a) => a.get(tenant, name)), name)

/**
 * Today's usage of an agent (or, with null, the whole tenant) as the projections know it: a day cap set mid-day
 * counts the runs and spend made before it (the budget actor seeds only what its journal does not count already).
 */
const projectedToday = (tenant: string, name: string | null) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const day = dayOf(now)
    // a budget counts eval traffic too: its cases run under the agent's budgets
    const days = yield* (name === null
      ? Usage.tenantDays(tenant, 1, now, true)
      : Usage.agentDays(tenant, name, 1, now, true))
    const today = days.find((d) => d.day === day)
    return {
      day,
      spentUsd: today?.costUsd ?? 0,
      tokens: (today?.tokensIn ?? 0) + (today?.tokensOut ?? 0),
      runs: today?.runs ?? 0
    }
  })

export const budgetHandlers = handlers({
  setAgentBudget: ({ tenant, principal, params, body }) =>
    Effect.gen(function*() {
      const name = yield* existingAgent(tenant, params.name)
      const projected = yield* projectedToday(tenant, name)
      return yield* (yield* Budgets).set(tenant, agentScope(name), body, actorOf(principal), projected)
    }),
  getAgentBudget: ({ tenant, params }) =>
    Effect.gen(function*() {
      const name = yield* existingAgent(tenant, params.name)
      return yield* (yield* Budgets).view(tenant, agentScope(name))
    }),
  setTenantBudget: ({ tenant, principal, body }) =>
    Effect.gen(function*() {
      const projected = yield* projectedToday(tenant, null)
      return yield* (yield* Budgets).set(tenant, TENANT, body, actorOf(principal), projected)
    }),
  getTenantBudget: ({ tenant }) => Budgets.use((b) => b.view(tenant, TENANT)),
  agentUsage: ({ tenant, params, query }) =>
    Effect.gen(function*() {
      const name = yield* existingAgent(tenant, params.name)
      const now = yield* Clock.currentTimeMillis
      const days = yield* Usage.agentDays(tenant, name, query.days ?? 30, now, query.includeEval === "true")
      const budget = yield* (yield* Budgets).view(tenant, agentScope(name))
      const total = days.reduce((sum, d) => sum + d.costUsd, 0)
      return {
        agentName: name,
        days,
        totalCostUsd: Math.round(total * 1e9) / 1e9,
        reservedUsd: budget.today.reservedUsd
      } satisfies Budget.UsageResponse
    })
})
