// What a cap refuses, without a decider: the day's caps met exactly or passed, the per-run caps against a run's
// own usage, and the hard/soft policy over the budgets that apply (the agent's, then the tenant's).
import { describe, expect, it } from "vitest"
import type { BudgetLimits } from "../../schema/Budget.ts"
import * as Caps from "./Caps.ts"

const SCOPE = "agent:echoer"
const hard: BudgetLimits = { maxCostUsdPerDay: 1, hardFail: true }
const soft: BudgetLimits = { maxCostUsdPerDay: 1, hardFail: false }

describe("over (one cap against what is spent and held)", () => {
  it("given 0.1 + 0.2 spent of a 0.4 cap, when 0.1 more is asked, then it fits (float sums a hair over still fit)", () =>
    expect(Caps.over(SCOPE, "maxCostUsdPerDay", 0.4, { spent: 0.1 + 0.2, reserved: 0 }, 0.1, " USD")).toBeNull())

  it("given no limit, then nothing is refused", () =>
    expect(Caps.over(SCOPE, "maxRunsPerDay", undefined, { spent: 1e9, reserved: 0 }, 1, " runs")).toBeNull())

  it("given spent and reserved figures, when the request does not fit, then the refusal names them rounded", () =>
    expect(Caps.over(SCOPE, "maxCostUsdPerDay", 1, { spent: 0.1 + 0.2, reserved: 0.5 }, 0.3, " USD")).toEqual({
      scope: SCOPE,
      cap: "maxCostUsdPerDay",
      limit: 1,
      spent: 0.3,
      reserved: 0.5,
      requested: 0.3,
      reason: `maxCostUsdPerDay of ${SCOPE} is 1 USD: 0.3 USD spent and 0.5 USD reserved leave no room for 0.3 USD more`
    }))
})

describe("per-run caps (checked against the run's own usage, which only its driver knows)", () => {
  const quote = { promptTokens: 300, maxTokens: 700, worstCaseUsd: 0.4, models: ["offline/echo"] }
  const used = { costUsd: 0.7, tokens: 9_500, toolCalls: 2 }
  const budgets = (agent: BudgetLimits, tenant: BudgetLimits) => [
    { scope: "agent", name: "agent:echoer", limits: agent },
    { scope: "tenant", name: "tenant", limits: tenant }
  ]
  const perRunCost = (name: string, limits: BudgetLimits) => Caps.overRun(name, limits, used, quote)

  it("given maxCostUsdPerRun 1 and 0.7 USD used, when the next call may cost 0.4, then it is refused naming the figures", () =>
    expect(perRunCost(SCOPE, { maxCostUsdPerRun: 1, hardFail: true })).toEqual({
      scope: SCOPE,
      cap: "maxCostUsdPerRun",
      limit: 1,
      spent: 0.7,
      reserved: 0,
      requested: 0.4,
      reason: `maxCostUsdPerRun of ${SCOPE} is 1 USD: the run has used 0.7 USD and its next model call may use 0.4 USD`
    }))

  it("given maxTokensPerRun 10,000 and 9,500 used, when the next call may use 1,000 (prompt and output cap), then it is refused", () =>
    expect(perRunCost(SCOPE, { maxTokensPerRun: 10_000, hardFail: true })).toMatchObject({
      cap: "maxTokensPerRun",
      spent: 9_500,
      requested: 1_000
    }))

  it("given caps the call fits exactly, then nothing is refused", () => {
    expect(perRunCost(SCOPE, { maxCostUsdPerRun: 1.1, maxTokensPerRun: 10_500, hardFail: true })).toBeNull()
    expect(perRunCost(SCOPE, hard)).toBeNull()
  })

  it("given maxToolCallsPerRun 2, when a run that made 2 asks for one more, then it is refused; one that made 1 is not", () => {
    expect(Caps.overToolCalls(SCOPE, { maxToolCallsPerRun: 2, hardFail: true }, 2, 1)).toEqual({
      scope: SCOPE,
      cap: "maxToolCallsPerRun",
      limit: 2,
      spent: 2,
      reserved: 0,
      requested: 1,
      reason: `maxToolCallsPerRun of ${SCOPE} is 2: the run has made 2 tool calls and asked for 1 more`
    })
    expect(Caps.overToolCalls(SCOPE, { maxToolCallsPerRun: 2, hardFail: true }, 1, 1)).toBeNull()
    expect(Caps.overToolCalls(SCOPE, hard, 100, 1)).toBeNull()
  })

  it("given a hard per-run cap passed, then the verdict refuses with it and alerts nothing", () =>
    expect(Caps.perRun(budgets({ maxCostUsdPerRun: 1, hardFail: true }, hard), perRunCost)).toEqual({
      refused: expect.objectContaining({ scope: "agent:echoer", cap: "maxCostUsdPerRun" }),
      alerts: []
    }))

  it("given a soft per-run cap passed, then the call goes through and the cap is alerted in its scope", () => {
    const verdict = Caps.perRun(budgets({ maxCostUsdPerRun: 1, hardFail: false }, hard), perRunCost)
    expect(verdict.refused).toBeNull()
    expect(verdict.alerts).toEqual([{
      scope: "agent",
      refusal: expect.objectContaining({ scope: "agent:echoer", cap: "maxCostUsdPerRun" })
    }])
    expect(Caps.alertValue(verdict.alerts[0]!.refusal)).toBeCloseTo(1.1, 12)
  })

  it("given the agent's soft cap and the tenant's hard cap both passed, then the agent's is alerted and the tenant's refuses", () => {
    const verdict = Caps.perRun(
      budgets({ maxCostUsdPerRun: 1, hardFail: false }, { maxCostUsdPerRun: 0.9, hardFail: true }),
      perRunCost
    )
    expect(verdict.refused).toMatchObject({ scope: "tenant", cap: "maxCostUsdPerRun", limit: 0.9 })
    expect(verdict.alerts.map((a) => a.scope)).toEqual(["agent"])
  })

  it("given the agent's hard cap passed, then the scopes after it are not looked at", () =>
    expect(
      Caps.perRun(
        budgets({ maxCostUsdPerRun: 1, hardFail: true }, { maxCostUsdPerRun: 0.9, hardFail: false }),
        perRunCost
      )
    ).toMatchObject({
      refused: { scope: "agent:echoer" },
      alerts: []
    }))

  it("given no cap passed, then the verdict is empty", () =>
    expect(Caps.perRun(budgets(hard, soft), perRunCost)).toEqual({ refused: null, alerts: [] }))
})
