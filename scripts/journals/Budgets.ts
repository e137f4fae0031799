// Recording scenarios for budgets: runs refused mid-way by an agent's hard per-run caps and by the tenant's day
// cap, soft caps alerted in an agent's and the tenant's journals, and a reservation whose host was SIGKILLed
// mid-call, released at its expiry.
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type * as FakeOpenAi from "../../tests/support/FakeOpenAi.ts"
import type * as Replay from "../../tests/support/Replay.ts"
import { api, eventually, type StackProcess, startStack } from "../../tests/support/Stack.ts"
import {
  budgetSubject,
  type Call,
  eventsOf,
  must,
  readRaw,
  type Recording,
  runSubject,
  startRun,
  waitStatus
} from "./Drive.ts"

/** 1000 USD per million tokens: a run of `agent` against FakeOpenAi.start(2) (120 tokens in, 21 out) costs 0.141 USD. */
const PRICES = {
  version: "record",
  models: { "fake-1": { inputPerMTok: 1000, outputPerMTok: 1000, cachedInputPerMTok: 0 } }
}
const RUN_COST = 0.141

/** Two echo rounds, then a final answer; an output cap keeps a call's worst case near its actual cost. */
const agent = (name: string, spec: Record<string, unknown> = {}) => ({
  name,
  spec: {
    systemPrompt: "Echo twice, then finish.",
    maxTurns: 5,
    maxTokens: 50,
    tools: [{
      name: "echo",
      description: "echo",
      parameters: { type: "object", properties: { text: { type: "string" } } }
    }],
    ...spec
  }
})

/** The environment of a host on `model` with the prices above (written to `dir`). */
export const env = (model: FakeOpenAi.FakeOpenAi, dir: string): Record<string, string> => {
  const prices = join(dir, "prices.json")
  writeFileSync(prices, JSON.stringify(PRICES))
  return {
    OPENAI_API_KEY: "test-key",
    OPENAI_BASE_URL: model.url,
    LANTERN_OPENAI_MODEL: "fake-1",
    LANTERN_PRICES_FILE: prices,
    LANTERN_WATCHDOG_INTERVAL: "200 millis"
  }
}

const run = async (call: Call, agentName: string, status: string) => {
  const id = await startRun(call, agentName, "go")
  await waitStatus(call, id, status)
  return id
}

const micro = (usd: number) => Math.round(usd * 1e6) / 1e6

/** The run failed budget_exceeded on `cap`; with `stepFailed`, a model step failed so first, after others completed. */
const refusedBy = async (call: Call, runId: string, cap: string, stepFailed: boolean, scope?: string) => {
  const events = await eventsOf(call, runId)
  const failed = events.find((e) => e.type === "RunFailed")
  const refusal = failed?.payload.error?.budget
  if (refusal?.cap !== cap || (scope !== undefined && refusal?.scope !== scope))
    throw new Error(`run ${runId} did not fail on ${cap}: ${JSON.stringify(failed)}`)
  const step = events.find((e) => e.type === "StepFailed")
  if ((step?.payload.error?.code === "budget_exceeded") !== stepFailed)
    throw new Error(`run ${runId}: unexpected StepFailed ${JSON.stringify(step)}`)
  if (!events.some((e) => e.type === "StepCompleted"))
    throw new Error(`run ${runId} was refused before any step completed`)
}

/**
 * One host, runs one at a time. The tenant's budget is soft with room for three runs a day: the fourth alerts.
 * `thrifty` is set hard, then replaced by soft caps that its two runs pass (a day's cost, a run's tool calls);
 * `capped-run` and `one-tool` have hard per-run caps that stop their runs mid-way.
 */
export const record = async (
  natsUrl: string,
  home: string,
  hostEnv: Record<string, string>,
  stacks: Array<StackProcess>
): Promise<ReadonlyArray<Recording>> => {
  const stack = await startStack({ natsUrl, home, env: hostEnv })
  stacks.push(stack)
  const call = api(stack)
  await must(call, "PUT", "/v1/budget", 200, { maxCostUsdPerDay: 100, maxRunsPerDay: 3, hardFail: false })
  for (const name of ["thrifty", "capped-run", "one-tool"]) await must(call, "POST", "/v1/agents", 201, agent(name))
  await must(call, "PUT", "/v1/agents/thrifty/budget", 200, { maxCostUsdPerDay: 5, hardFail: true })
  await must(call, "PUT", "/v1/agents/thrifty/budget", 200, {
    maxCostUsdPerDay: RUN_COST / 2,
    maxToolCallsPerRun: 1,
    hardFail: false
  })
  await must(call, "PUT", "/v1/agents/capped-run/budget", 200, { maxCostUsdPerRun: 0.14, hardFail: true })
  await must(call, "PUT", "/v1/agents/one-tool/budget", 200, { maxToolCallsPerRun: 1, hardFail: true })
  await run(call, "thrifty", "succeeded")
  await run(call, "thrifty", "succeeded")
  const costCapped = await run(call, "capped-run", "failed")
  await refusedBy(call, costCapped, "maxCostUsdPerRun", true)
  const toolCapped = await run(call, "one-tool", "failed")
  await refusedBy(call, toolCapped, "maxToolCallsPerRun", false)
  const thrifty = await must(call, "GET", "/v1/agents/thrifty/budget", 200)
  if ([...thrifty.alerts].sort().join() !== "maxCostUsdPerDay,maxToolCallsPerRun")
    throw new Error(`thrifty alerted ${JSON.stringify(thrifty)}`)
  const tenant = await must(call, "GET", "/v1/budget", 200)
  if (tenant.alerts.join() !== "maxRunsPerDay") throw new Error(`the tenant alerted ${JSON.stringify(tenant)}`)
  await stack.stop()
  return [
    { name: "run-budget-cost-per-run-refused", subject: runSubject(costCapped) },
    { name: "run-budget-tool-calls-refused", subject: runSubject(toolCapped) },
    { name: "budget-agent-soft-caps-alerted", subject: budgetSubject("thrifty") }
  ]
}

/**
 * A host SIGKILLed while turn-2's call is held by the provider: its reservation (step timeout + lease TTL) expires
 * with nobody to settle it; a second host restarts the attempt, releasing the expired hold and reserving anew,
 * and settles it. Nothing else may run meanwhile: no other host is up.
 */
export const recordExpiry = async (
  natsUrl: string,
  home: string,
  hostEnv: Record<string, string>,
  model: FakeOpenAi.FakeOpenAi,
  stacks: Array<StackProcess>
): Promise<ReadonlyArray<Recording>> => {
  const crashEnv = { ...hostEnv, LANTERN_CLAIM_GRACE: "2 seconds" }
  const first = await startStack({ natsUrl, home, env: crashEnv })
  stacks.push(first)
  const before = api(first)
  await must(before, "POST", "/v1/agents", 201, agent("crashy", { stepTimeoutMs: 4_000 }))
  await must(before, "PUT", "/v1/agents/crashy/budget", 200, { maxCostUsdPerDay: 10, hardFail: true })
  const release = model.block("turn-2")
  try {
    const runId = await startRun(before, "crashy", "go, and die holding a reservation")
    const key = `${runId}:turn-2:1`
    await model.waitFor("turn-2", 1, runId)
    await first.kill()
    const held = (await readRaw(natsUrl, budgetSubject("crashy")))
      .map((l) => (l.data as { type: string; payload: { reservationId?: string; expiresAt?: number } }))
      .find((d) => d.type === "BudgetReserved" && d.payload.reservationId === key)
    if (held?.payload.expiresAt === undefined) throw new Error(`no reservation ${key} in crashy's budget journal`)
    const expiresAt = held.payload.expiresAt
    await eventually(async () => Date.now() > expiresAt + 250, 30_000, "the reservation to expire")
    release()
    const second = await startStack({ natsUrl, home, env: crashEnv })
    stacks.push(second)
    await waitStatus(api(second), runId, "succeeded")
    await second.stop()
    const holdsOf = (l: Replay.Line) => {
      const d = l.data as { type?: string; payload?: { reservationId?: string } }
      return d.type === "BudgetReserved" && d.payload?.reservationId === key
    }
    return [
      { name: "budget-agent-reservation-expired", subject: budgetSubject("crashy") },
      // what the dead host left: a reservation still open
      { name: "budget-agent-holding-reservation", subject: budgetSubject("crashy"), truncateAfter: holdsOf }
    ]
  } finally {
    release()
  }
}

/**
 * Last, the tenant's budget turns hard with room today for one more call of `overreach` but not two: turn-2's
 * reservation is taken in the agent's budget, refused by the tenant's, and released again in the agent's.
 */
export const recordTenantRefusal = async (
  natsUrl: string,
  home: string,
  hostEnv: Record<string, string>,
  stacks: Array<StackProcess>
): Promise<ReadonlyArray<Recording>> => {
  const stack = await startStack({ natsUrl, home, env: hostEnv })
  stacks.push(stack)
  const call = api(stack)
  await must(call, "POST", "/v1/agents", 201, agent("overreach"))
  await must(call, "PUT", "/v1/agents/overreach/budget", 200, { maxCostUsdPerDay: 10, hardFail: true })
  const spent: number = (await must(call, "GET", "/v1/budget", 200)).today.spentUsd
  // turn-1 holds 0.1 USD at worst and costs 0.027; turn-2 would hold 0.125 more
  await must(call, "PUT", "/v1/budget", 200, {
    maxCostUsdPerDay: micro(spent + 0.12),
    maxRunsPerDay: 100,
    hardFail: true
  })
  const refused = await run(call, "overreach", "failed")
  await refusedBy(call, refused, "maxCostUsdPerDay", true, "tenant")
  const last = (await readRaw(natsUrl, budgetSubject("overreach"))).at(-1)?.data as { type?: string } | undefined
  if (last?.type !== "BudgetReleased")
    throw new Error(`overreach's budget journal ends with ${JSON.stringify(last)}, not a release`)
  await stack.stop()
  return [
    { name: "run-budget-tenant-day-refused", subject: runSubject(refused) },
    { name: "budget-agent-released-after-tenant-refusal", subject: budgetSubject("overreach") },
    { name: "budget-tenant", subject: budgetSubject("_tenant") }
  ]
}
