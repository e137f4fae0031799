// Where budgets apply and what the API shows of one: addresses and names of the two scopes, and a view that rounds
// the day's figures and counts only the reservations still live.
import { describe, expect, it } from "vitest"
import type { BudgetEvent } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import * as Decider from "./Decider.ts"
import * as Scopes from "./Scopes.ts"

const T = Date.UTC(2026, 10, 3, 12)

describe("budget scopes", () => {
  it("given a run of an agent, then the agent's budget applies first and the tenant's second, each on its journal", () => {
    const scopes = Scopes.applying("echoer")
    expect(scopes.map(Scopes.scopeName)).toEqual(["agent:echoer", "tenant"])
    expect(scopes.map((s) => Scopes.addressOf("acme", s))).toEqual([
      { type: "budget", tenant: "acme", id: "echoer" },
      { type: "budget", tenant: "acme", id: "_tenant" }
    ])
  })

  it("given spend and reservations, then the view rounds the day's figures and counts only live reservations", () => {
    const history: ReadonlyArray<BudgetEvent> = [
      { _tag: "BudgetSet", scope: "agent:echoer", limits: { maxCostUsdPerDay: 1, hardFail: true }, by: "token:dev" },
      { _tag: "BudgetSettled", reservationId: "r0", runId: "run_1", day: "2026-11-03", costUsd: 0.1, tokens: 10 },
      { _tag: "BudgetSettled", reservationId: "r1", runId: "run_1", day: "2026-11-03", costUsd: 0.2, tokens: 20 },
      ...(["r2", "r3"] as const).map((id, i): BudgetEvent => ({
        _tag: "BudgetReserved",
        reservationId: id,
        runId: "run_2",
        day: "2026-11-03",
        amountUsd: 0.25,
        tokens: 100,
        host: "host-a",
        expiresAt: T + (i === 0 ? -1 : 60_000)
      }))
    ]
    const view = Scopes.viewOf(Scopes.agentScope("echoer"), fold(Decider.decider, history), T)
    expect(view).toEqual({
      scope: "agent:echoer",
      limits: { maxCostUsdPerDay: 1, hardFail: true },
      updatedBy: "token:dev",
      today: { day: "2026-11-03", spentUsd: 0.3, reservedUsd: 0.25, runs: 0, tokens: 30 },
      alerts: [],
      openReservations: 1
    })
  })
})
