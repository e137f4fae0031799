// Budgets and usage: `PUT/GET /v1/agents/{name}/budget`, tenant-wide `PUT/GET /v1/budget`, and
// `GET /v1/agents/{name}/usage` (day buckets). Budgets are read from their journals, so a cap just set is
// enforced and shown at once; usage comes from the projections.
import { Clock, Effect, Layer } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import { agentScope, Budgets, TENANT } from "../actors/budget/Budgets.ts"
import { dayOf } from "../actors/budget/Decider.ts"
import * as Usage from "../projections/Usage.ts"
import * as Budget from "../schema/Budget.ts"
import { Auth } from "./Auth.ts"
import { body, decode, json, query } from "./Http.ts"
import { actorOf, agentName, authed, route } from "./Routes.ts"

/** Who set a budget, as journaled: the calling key's id (`key:<id>`), or `token:<tenant>` for a bootstrap token. */
const byWhom = Effect.gen(function*() {
  return actorOf(yield* (yield* Auth).principal)
})

/** The agent must exist: a budget for a misspelt name would never apply to anything. */
const existingAgent = (tenant: string) =>
  Effect.gen(function*() {
    const name = yield* agentName
    yield* (yield* Agents).get(tenant, name)
    return name
  })

/**
 * Today's usage of an agent (or, with null, the whole tenant) as the projections know it: a day cap set mid-day
 * counts the runs and spend made before it (the budget actor seeds only what its journal does not count already).
 */
const projectedToday = (tenant: string, name: string | null) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const day = dayOf(now)
    const days = yield* (name === null ? Usage.tenantDays(tenant, 1, now) : Usage.agentDays(tenant, name, 1, now))
    const today = days.find((d) => d.day === day)
    return {
      day,
      spentUsd: today?.costUsd ?? 0,
      tokens: (today?.tokensIn ?? 0) + (today?.tokensOut ?? 0),
      runs: today?.runs ?? 0
    }
  })

export const budgetRoutes = Layer.mergeAll(
  route(
    "PUT",
    "/v1/agents/:name/budget",
    authed((tenant) =>
      Effect.gen(function*() {
        const name = yield* existingAgent(tenant)
        const limits = yield* body(Budget.SetBudgetRequest)
        const projected = yield* projectedToday(tenant, name)
        return json(yield* (yield* Budgets).set(tenant, agentScope(name), limits, yield* byWhom, projected))
      })
    )
  ),
  route(
    "GET",
    "/v1/agents/:name/budget",
    authed((tenant) =>
      Effect.gen(function*() {
        const name = yield* existingAgent(tenant)
        return json(yield* (yield* Budgets).view(tenant, agentScope(name)))
      })
    )
  ),
  route(
    "PUT",
    "/v1/budget",
    authed((tenant) =>
      Effect.gen(function*() {
        const limits = yield* body(Budget.SetBudgetRequest)
        const projected = yield* projectedToday(tenant, null)
        return json(yield* (yield* Budgets).set(tenant, TENANT, limits, yield* byWhom, projected))
      })
    )
  ),
  route(
    "GET",
    "/v1/budget",
    authed((tenant) =>
      Effect.gen(function*() {
        return json(yield* (yield* Budgets).view(tenant, TENANT))
      })
    )
  ),
  route(
    "GET",
    "/v1/agents/:name/usage",
    authed((tenant) =>
      Effect.gen(function*() {
        const name = yield* existingAgent(tenant)
        const q = yield* decode(Budget.UsageQuery, yield* query)
        const now = yield* Clock.currentTimeMillis
        const days = yield* Usage.agentDays(tenant, name, q.days ?? 30, now)
        const budget = yield* (yield* Budgets).view(tenant, agentScope(name))
        const total = days.reduce((sum, d) => sum + d.costUsd, 0)
        return json(
          {
            agentName: name,
            days,
            totalCostUsd: Math.round(total * 1e9) / 1e9,
            reservedUsd: budget.today.reservedUsd
          } satisfies Budget.UsageResponse
        )
      })
    )
  )
)
