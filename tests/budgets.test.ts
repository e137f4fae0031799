// Budgets end to end, against a real nats-server and real `lantern serve` / `lantern worker` processes: the
// budget routes and their refusals; a burst of runs against a day's hard cap on one host and on three (the
// spend never passes the cap, nothing is counted twice); soft, per-run and run-count caps; usage days; and a
// host SIGKILLed while it holds a reservation, which stops counting at its expiry and is settled exactly once.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import * as Completions from "../schema/Completions.ts"
import * as Budget from "../actors/budget/Decider.ts"
import { fold } from "../actors/kernel/Decider.ts"
import { Journal } from "../bus/Journal.ts"
import type { BudgetEvent } from "../schema/Events.ts"
import { busLayer, startServer, type TestServer } from "./support/Bus.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import * as LeaseWatch from "./support/LeaseWatch.ts"
import { deferrals, echoer, MODEL_STEPS, modelEnv, TOKENS_IN, TOKENS_OUT } from "./support/Scripted.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"
import { startWorker, type Worker } from "./support/Workers.ts"

const defer = deferrals()

/** The tenant `lantern serve` bootstraps. */
const TENANT = "dev"

/** 1000 USD per million tokens in and out: an echoer run (20+7, 40+7, 60+7 tokens) costs 0.141 USD. */
const PRICES = {
  version: "test",
  models: { "fake-1": { inputPerMTok: 1000, outputPerMTok: 1000, cachedInputPerMTok: 0 } }
}
const RUN_COST = (TOKENS_IN + TOKENS_OUT) / 1000
const MODEL_STEP = /^turn-\d+$/

type Call = ReturnType<typeof api>

interface EventItem {
  readonly seq: number
  readonly type: string
  readonly at: string
  readonly payload: Record<string, any>
}

/** Lantern's output without the access log. */
const quiet = (output: string) => output.split("\n").filter((l) => !l.includes("Sent HTTP response")).join("\n")

/** The echoer with an output cap, so a call's worst case stays within a few times its actual cost. */
const agent = (name: string, spec: Record<string, unknown> = {}) => ({
  name,
  spec: { ...echoer.spec, maxTokens: 50, ...spec }
})

const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), `${prefix}-`))

const createAgent = async (call: Call, body: ReturnType<typeof agent>) => {
  const r = await call("POST", "/v1/agents", body)
  expect(r.status, r.text).toBe(201)
}

const putBudget = async (call: Call, path: string, limits: unknown) => {
  const r = await call("PUT", path, limits)
  expect(r.status, r.text).toBe(200)
  return r.json
}

const getBudget = async (call: Call, path: string) => {
  const r = await call("GET", path)
  expect(r.status, r.text).toBe(200)
  return r.json
}

const journalOf = async (call: Call, runId: string): Promise<Array<EventItem>> => {
  const r = await call("GET", `/v1/runs/${runId}/events`)
  if (r.status !== 200) throw new Error(`GET events of ${runId}: ${r.status} ${r.text}`)
  // a StepsCompleted as the step completions it stands for (ADR 0067, 0075)
  return (r.json.items as Array<EventItem>).flatMap(Completions.expand)
}

const TERMINAL = new Set(["succeeded", "failed", "canceled"])

/** Waits until the run has ended; returns it. */
const finished = (call: Call, runId: string, deadlineMs = 30_000) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/runs/${runId}`)
      return TERMINAL.has(r.json?.status) ? r.json : null
    },
    deadlineMs,
    `run ${runId} to finish`
  )

/** What the run's journal says it spent: each completed step's cost, and how many model steps completed. */
const spendOf = (events: ReadonlyArray<EventItem>) => {
  const completed = events.filter((e) => e.type === "StepCompleted")
  return {
    costUsd: completed.reduce((sum, e) => sum + e.payload.costUsd, 0),
    modelSteps: completed.filter((e) => MODEL_STEP.test(e.payload.stepId)).length
  }
}

/** `f` over `items`, at most `n` at a time. */
const mapLimit = async <A, B>(items: ReadonlyArray<A>, n: number, f: (a: A) => Promise<B>): Promise<Array<B>> => {
  const out: Array<B> = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await f(items[i]!)
    }
  }))
  return out
}

const near = (a: number, b: number) => Math.abs(a - b) < 1e-9

/** A scope's budget journal, read from the LANTERN_BUDGETS stream with the test's own connection. */
const budgetJournal = (rt: ManagedRuntime.ManagedRuntime<Journal, unknown>, id: string) =>
  rt.runPromise(Effect.gen(function*() {
    const stored = yield* (yield* Journal).read({ type: "budget", tenant: TENANT, id })
    return stored.map((s) => ({ seq: s.seq, at: s.envelope.at, subject: s.subject, event: s.event as BudgetEvent }))
  }))

const journalRuntime = (url: string) => ManagedRuntime.make(busLayer(url) as unknown as Layer.Layer<Journal, unknown>)

// ---------------------------------------------------------------------------------------------------------
// One bus, one priced fake provider and one `lantern serve` for everything but the crash.

let nats: TestServer
let model: FakeOpenAi.FakeOpenAi
let dir: string
let env: Record<string, string>
let stack: StackProcess
let call: Call
let rt: ManagedRuntime.ManagedRuntime<Journal, unknown>

beforeAll(async () => {
  dir = tempDir("lantern-budgets")
  nats = await startServer("lantern-budgets")
  model = await FakeOpenAi.start(2)
  const prices = join(dir, "prices.json")
  writeFileSync(prices, JSON.stringify(PRICES))
  // the serve host queues the runs it starts, so the three-host burst spreads them over the workers too
  env = { ...modelEnv(model), LANTERN_PRICES_FILE: prices, LANTERN_DRIVE_LOCAL: "false" }
  stack = await startStack({ natsUrl: nats.handle.url, home: join(dir, "home"), env })
  call = api(stack)
  rt = journalRuntime(nats.handle.url)
  // the tenant's cap is loose: every agent's own cap binds first
  await putBudget(call, "/v1/budget", { maxCostUsdPerDay: 1000, hardFail: true })
}, 240_000)

afterAll(async () => {
  await stack?.kill()
  await rt?.dispose()
  await model?.close()
  await nats?.cleanup()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const showOutputOnFailure = (...hosts: ReadonlyArray<{ readonly role: string; readonly output: () => string }>) =>
  onTestFailed(() => {
    for (const h of [{ role: "serve", output: () => stack.output() }, ...hosts])
      console.error(`--- ${h.role} ---\n${quiet(h.output())}`)
  })

describe("budget routes", () => {
  it("PUT then GET an agent's budget and the tenant's: the caps echoed with today's figures", async () => {
    await createAgent(call, agent("budgeted"))
    const limits = {
      maxCostUsdPerRun: 0.5,
      maxCostUsdPerDay: 2.5,
      maxRunsPerDay: 40,
      maxTokensPerRun: 10_000,
      maxToolCallsPerRun: 6,
      hardFail: true
    }
    const today = new Date().toISOString().slice(0, 10)
    const put = await putBudget(call, "/v1/agents/budgeted/budget", limits)
    const expected = {
      scope: "agent:budgeted",
      limits,
      updatedBy: `token:${TENANT}`,
      today: { day: today, spentUsd: 0, reservedUsd: 0, runs: 0, tokens: 0 },
      alerts: [],
      openReservations: 0
    }
    expect(put).toEqual(expected)
    expect(await getBudget(call, "/v1/agents/budgeted/budget")).toEqual(expected)

    const tenant = await putBudget(call, "/v1/budget", { maxCostUsdPerDay: 1000, hardFail: true })
    expect(tenant).toMatchObject({
      scope: "tenant",
      limits: { maxCostUsdPerDay: 1000, hardFail: true },
      today: { day: today, reservedUsd: 0 }
    })
    expect(await getBudget(call, "/v1/budget")).toEqual(tenant)

    // an agent never given a budget: nothing enforced, nothing journaled
    await createAgent(call, agent("unbudgeted"))
    expect(await getBudget(call, "/v1/agents/unbudgeted/budget")).toMatchObject({
      scope: "agent:unbudgeted",
      limits: null,
      updatedBy: null,
      openReservations: 0
    })
    expect(await budgetJournal(rt, "unbudgeted")).toEqual([])
  })

  it.each([
    ["a negative cap", { maxCostUsdPerDay: -1, hardFail: true }, "maxCostUsdPerDay"],
    ["hardFail missing", { maxCostUsdPerDay: 1 }, "hardFail"],
    ["a count of the wrong type", { maxRunsPerDay: "3", hardFail: true }, "maxRunsPerDay"],
    ["a fractional count", { maxToolCallsPerRun: 1.5, hardFail: true }, "maxToolCallsPerRun"],
    ["hardFail not a boolean", { hardFail: "yes" }, "hardFail"]
  ])("400 naming the field for %s, changing nothing", async (_, body, field) => {
    const before = await getBudget(call, "/v1/agents/budgeted/budget")
    const tenantBefore = await getBudget(call, "/v1/budget")
    for (const path of ["/v1/agents/budgeted/budget", "/v1/budget"]) {
      const r = await call("PUT", path, body)
      expect(r.status, r.text).toBe(400)
      expect(r.json.error.code).toBe("invalid_request")
      expect(r.json.error.issues.map((i: { field: string }) => i.field), r.text).toContain(field)
    }
    expect(await getBudget(call, "/v1/agents/budgeted/budget")).toEqual(before)
    expect(await getBudget(call, "/v1/budget")).toEqual(tenantBefore)
  })

  it("404 for an agent that does not exist, journaling nothing", async () => {
    for (
      const [method, path, body] of [
        ["PUT", "/v1/agents/nobody/budget", { maxCostUsdPerDay: 1, hardFail: true }],
        ["GET", "/v1/agents/nobody/budget", undefined],
        ["GET", "/v1/agents/nobody/usage", undefined]
      ] as const
    ) {
      const r = await call(method, path, body)
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(404)
      expect(r.json.error.code).toBe("agent_not_found")
    }
    expect(await budgetJournal(rt, "nobody")).toEqual([])
  })

  it("400 for a usage window out of range", async () => {
    for (const days of ["0", "367", "x"]) {
      const r = await call("GET", `/v1/agents/budgeted/usage?days=${days}`)
      expect(r.status, r.text).toBe(400)
      expect(r.json.error.issues.map((i: { field: string }) => i.field)).toContain("days")
    }
  })
})

interface Burst {
  readonly admitted: number
  readonly refused: number
  readonly succeeded: number
  readonly failed: number
  readonly spentUsd: number
  readonly modelSteps: number
}

/**
 * Starts `n` runs of `name` at once against its day's hard cap `cap`, waits for all to end and checks the
 * budget held: spend within the cap, each call counted once in the agent's and the tenant's budget.
 */
const burst = async (name: string, n: number, cap: number): Promise<Burst> => {
  const tenantBefore = await getBudget(call, "/v1/budget")
  const posts = await Promise.all(
    Array.from({ length: n }, (_, i) => call("POST", "/v1/runs", { agentName: name, input: `burst ${i}` }))
  )
  for (const r of posts) {
    expect([201, 402], r.text).toContain(r.status)
    if (r.status === 402) {
      expect(r.json.error.code).toBe("budget_exceeded")
      expect(r.json.error.budget).toMatchObject({ scope: `agent:${name}`, cap: "maxCostUsdPerDay", limit: cap })
      expect(typeof r.json.error.budget.spent).toBe("number")
      expect(typeof r.json.error.budget.reserved).toBe("number")
      expect(r.json.error.budget.spent + r.json.error.budget.reserved + r.json.error.budget.requested).toBeGreaterThan(
        cap
      )
    }
  }
  const ids = posts.filter((r) => r.status === 201).map((r) => r.json.id as string)

  // every admitted run ends: succeeded, or failed by the budget at one of its model calls
  const runs = await eventually(
    async () => {
      const listed = (await call("GET", `/v1/runs?agentName=${name}&limit=200`)).json?.items as
        | Array<{ id: string; status: string }>
        | undefined
      const mine = (listed ?? []).filter((r) => ids.includes(r.id))
      return mine.length === ids.length && mine.every((r) => TERMINAL.has(r.status)) ? mine : null
    },
    90_000,
    `the ${ids.length} runs of ${name} to end`
  )
  let spentUsd = 0
  let modelSteps = 0
  const journals = await mapLimit(
    ids,
    8,
    async (id) => ({ id, run: (await call("GET", `/v1/runs/${id}`)).json, events: await journalOf(call, id) })
  )
  for (const { id, run, events } of journals) {
    if (run.status === "failed") {
      expect(run.error?.code, `run ${id}: ${JSON.stringify(run.error)}`).toBe("budget_exceeded")
      expect(run.error.budget).toMatchObject({ cap: "maxCostUsdPerDay", limit: cap })
    } else {
      expect(run.status, `run ${id}`).toBe("succeeded")
    }
    const spend = spendOf(events)
    spentUsd += spend.costUsd
    modelSteps += spend.modelSteps
  }
  const succeeded = runs.filter((r) => r.status === "succeeded").length

  // the spend never passed the cap; both budgets counted every call once; nothing is held any more
  expect(spentUsd).toBeLessThanOrEqual(cap + 1e-9)
  const budget = await getBudget(call, `/v1/agents/${name}/budget`)
  expect(near(budget.today.spentUsd, spentUsd), `agent spent ${budget.today.spentUsd} vs journals ${spentUsd}`).toBe(
    true
  )
  expect(budget.today).toMatchObject({ reservedUsd: 0, runs: ids.length })
  expect(budget.openReservations).toBe(0)
  const tenant = await getBudget(call, "/v1/budget")
  expect(
    near(tenant.today.spentUsd - tenantBefore.today.spentUsd, spentUsd),
    `tenant spent ${tenant.today.spentUsd - tenantBefore.today.spentUsd} vs ${spentUsd}`
  ).toBe(true)
  expect(tenant.today.reservedUsd).toBe(0)
  // the provider performed exactly the calls that completed, each once
  const effects = [...model.effects].filter(([k]) => ids.some((id) => k.startsWith(`${id}:`)))
  expect(effects.every(([, count]) => count === 1)).toBe(true)
  expect(effects.length).toBe(modelSteps)
  expect(succeeded).toBeGreaterThan(0)
  return {
    admitted: ids.length,
    refused: n - ids.length,
    succeeded,
    failed: ids.length - succeeded,
    spentUsd,
    modelSteps
  }
}

const report = (label: string, b: Burst, cap: number, extra = "") =>
  console.log(
    `${label}: ${b.admitted} admitted, ${b.refused} refused with 402, ${b.succeeded} succeeded, ${b.failed} failed budget_exceeded; ` +
      `${b.modelSteps} model calls; spent ${b.spentUsd.toFixed(6)} of ${cap} USD (${
        (100 * b.spentUsd / cap).toFixed(1)
      }%)${extra}`
  )

describe("100 runs at once against a day's hard cap of about 10 runs", () => {
  const CAP = 10 * RUN_COST

  it("one host: the spend stays within the cap, each call counted once", async () => {
    showOutputOnFailure()
    await createAgent(call, agent("burst-one"))
    await putBudget(call, "/v1/agents/burst-one/budget", { maxCostUsdPerDay: CAP, hardFail: true })
    const b = await burst("burst-one", 100, CAP)
    report("one host", b, CAP)
  }, 120_000)

  it("three hosts (serve and two workers): reservations race across hosts, the cap still holds", async () => {
    const workers: Array<Worker> = [0, 1].map(() => startWorker({ natsUrl: nats.handle.url, env }))
    for (const w of workers) defer(() => w.cleanup())
    showOutputOnFailure(...workers.map((w, i) => ({ role: `worker ${i + 1} (pid ${w.pid})`, output: w.output })))
    // the workers pull work before the burst: runs of an agent without a budget until each worker drove some
    const leases = await LeaseWatch.start(nats.handle.url, TENANT)
    defer(() => leases.close())
    await createAgent(call, agent("warm-up"))
    await eventually(
      async () => {
        const started = await Promise.all(
          Array.from({ length: 6 }, () => call("POST", "/v1/runs", { agentName: "warm-up", input: "warm up" }))
        )
        await Promise.all(started.map((r) => finished(call, r.json.id)))
        return workers.every((w) => leases.allHolders().has(w.pid))
      },
      60_000,
      "both workers to drive runs"
    )
    await createAgent(call, agent("burst-three"))
    await putBudget(call, "/v1/agents/burst-three/budget", { maxCostUsdPerDay: CAP, hardFail: true })
    const b = await burst("burst-three", 100, CAP)
    // reservations per host, by pid (host ids are `<slot>/<pid>-<random>`)
    const byHost = new Map<number, number>()
    for (const e of await budgetJournal(rt, "burst-three")) {
      if (e.event._tag === "BudgetReserved")
        byHost.set(LeaseWatch.pidOf(e.event.host), (byHost.get(LeaseWatch.pidOf(e.event.host)) ?? 0) + 1)
    }
    report(
      "three hosts",
      b,
      CAP,
      `; reservations per pid ${JSON.stringify(Object.fromEntries(byHost))} (serve ${stack.child.pid})`
    )
    expect(byHost.size).toBeGreaterThanOrEqual(2)
  }, 120_000)
})

describe("caps", () => {
  it("soft (hardFail false): runs go through past the cap and the budget journals an alert", async () => {
    await createAgent(call, agent("softie"))
    await putBudget(call, "/v1/agents/softie/budget", { maxCostUsdPerDay: RUN_COST / 2, hardFail: false })
    for (const input of ["one", "two"]) {
      const r = await call("POST", "/v1/runs", { agentName: "softie", input })
      expect(r.status, r.text).toBe(201)
      expect((await finished(call, r.json.id)).status).toBe("succeeded")
    }
    const budget = await getBudget(call, "/v1/agents/softie/budget")
    expect(budget.alerts).toEqual(["maxCostUsdPerDay"])
    expect(near(budget.today.spentUsd, 2 * RUN_COST)).toBe(true)
    const alerts = (await budgetJournal(rt, "softie")).filter((e) => e.event._tag === "BudgetAlerted")
    expect(alerts.map((e) => e.event)).toEqual([
      expect.objectContaining({ cap: "maxCostUsdPerDay", limit: RUN_COST / 2 })
    ])
  })

  it("maxToolCallsPerRun 1: the run fails budget_exceeded at its second tool call, which never starts", async () => {
    await createAgent(call, agent("one-tool"))
    await putBudget(call, "/v1/agents/one-tool/budget", { maxToolCallsPerRun: 1, hardFail: true })
    const r = await call("POST", "/v1/runs", { agentName: "one-tool", input: "go" })
    expect(r.status, r.text).toBe(201)
    const run = await finished(call, r.json.id)
    expect(run.status).toBe("failed")
    expect(run.error).toMatchObject({
      code: "budget_exceeded",
      budget: { scope: "agent:one-tool", cap: "maxToolCallsPerRun", limit: 1, spent: 1, requested: 1 }
    })
    const events = await journalOf(call, r.json.id)
    expect(events.filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId)).toEqual([
      "turn-1",
      "turn-1.tool-0",
      "turn-2"
    ])
    expect(events.some((e) => e.type === "StepStarted" && e.payload.stepId === "turn-2.tool-0")).toBe(false)
    expect(events.at(-1)?.type).toBe("RunFailed")
  })

  it("maxCostUsdPerRun below a run's cost: the run fails at the model call that could cross it, within the cap", async () => {
    const limit = 0.14
    await createAgent(call, agent("capped-run"))
    await putBudget(call, "/v1/agents/capped-run/budget", { maxCostUsdPerRun: limit, hardFail: true })
    const r = await call("POST", "/v1/runs", { agentName: "capped-run", input: "go" })
    expect(r.status, r.text).toBe(201)
    const run = await finished(call, r.json.id)
    expect(run.status).toBe("failed")
    const events = await journalOf(call, r.json.id)
    const refused = events.find((e) => e.type === "StepFailed")!
    expect(refused.payload.stepId).toMatch(MODEL_STEP)
    expect(refused.payload.error).toMatchObject({
      code: "budget_exceeded",
      budget: { scope: "agent:capped-run", cap: "maxCostUsdPerRun", limit }
    })
    const { budget } = refused.payload.error
    // what the run had spent before the refused call, plus that call's worst case, would have passed the limit
    const before = spendOf(events.filter((e) => e.seq < refused.seq)).costUsd
    expect(near(budget.spent, before)).toBe(true)
    expect(budget.spent + budget.requested).toBeGreaterThan(limit)
    expect(spendOf(events).costUsd).toBeLessThanOrEqual(limit)
    expect(run.error).toMatchObject({ code: "budget_exceeded", budget: { cap: "maxCostUsdPerRun" } })
    console.log(
      `maxCostUsdPerRun ${limit}: refused at ${refused.payload.stepId} with ${budget.spent} spent and ${budget.requested} more at worst`
    )
  })

  it("maxRunsPerDay 3: the fourth run is refused with 402 naming the cap; usage shows the day's three runs", async () => {
    await createAgent(call, agent("thrice"))
    await putBudget(call, "/v1/agents/thrice/budget", { maxRunsPerDay: 3, hardFail: true })
    const ids: Array<string> = []
    for (const input of ["one", "two", "three"]) {
      const r = await call("POST", "/v1/runs", { agentName: "thrice", input })
      expect(r.status, r.text).toBe(201)
      ids.push(r.json.id)
    }
    const fourth = await call("POST", "/v1/runs", { agentName: "thrice", input: "four" })
    expect(fourth.status, fourth.text).toBe(402)
    expect(fourth.json.error).toMatchObject({
      code: "budget_exceeded",
      budget: { scope: "agent:thrice", cap: "maxRunsPerDay", limit: 3, spent: 3, reserved: 0, requested: 1 }
    })
    expect(fourth.json.error.message).toContain("maxRunsPerDay")

    let spent = 0
    let modelSteps = 0
    for (const id of ids) {
      expect((await finished(call, id)).status).toBe("succeeded")
      const s = spendOf(await journalOf(call, id))
      spent += s.costUsd
      modelSteps += s.modelSteps
    }
    expect(modelSteps).toBe(3 * MODEL_STEPS.length)
    // usage comes from the projections: poll until they caught up with the journals
    const today = new Date().toISOString().slice(0, 10)
    const usage = await eventually(
      async () => {
        const r = await call("GET", "/v1/agents/thrice/usage?days=2")
        const day = r.json?.days?.find((d: { day: string }) => d.day === today)
        return day?.modelCalls === modelSteps ? r.json : null
      },
      20_000,
      "usage to show the three runs"
    )
    expect(usage.days).toEqual([{
      day: today,
      runs: 3,
      modelCalls: modelSteps,
      tokensIn: 3 * TOKENS_IN,
      tokensOut: 3 * TOKENS_OUT,
      costUsd: usage.days[0].costUsd
    }])
    expect(near(usage.days[0].costUsd, spent)).toBe(true)
    expect(near(usage.totalCostUsd, spent)).toBe(true)
    expect(usage.reservedUsd).toBe(0)
    const budget = await getBudget(call, "/v1/agents/thrice/budget")
    expect(budget.today).toMatchObject({ runs: 3, tokens: 3 * (TOKENS_IN + TOKENS_OUT), reservedUsd: 0 })
    expect(near(budget.today.spentUsd, spent)).toBe(true)
  })

  it("a day cap set mid-day counts the day's runs and spend from before it: 3 runs, then maxRunsPerDay 4 admits one more", async () => {
    await createAgent(call, agent("latecap"))
    const ids: Array<string> = []
    for (const input of ["one", "two", "three"]) {
      const r = await call("POST", "/v1/runs", { agentName: "latecap", input })
      expect(r.status, r.text).toBe(201)
      ids.push(r.json.id)
    }
    let spent = 0
    for (const id of ids) {
      expect((await finished(call, id)).status).toBe("succeeded")
      spent += spendOf(await journalOf(call, id)).costUsd
    }
    // the seed comes from the projections: wait until they show the day's three runs and their spend
    const today = new Date().toISOString().slice(0, 10)
    await eventually(
      async () => {
        const r = await call("GET", "/v1/agents/latecap/usage?days=1")
        const day = r.json?.days?.find((d: { day: string }) => d.day === today)
        return day?.runs === 3 && near(day.costUsd, spent) ? day : null
      },
      20_000,
      "usage to show the three runs"
    )

    const set = await putBudget(call, "/v1/agents/latecap/budget", { maxRunsPerDay: 4, hardFail: true })
    expect(set.today).toMatchObject({ runs: 3, tokens: 3 * (TOKENS_IN + TOKENS_OUT) })
    const budget = await getBudget(call, "/v1/agents/latecap/budget")
    expect(budget.today).toMatchObject({ runs: 3, tokens: 3 * (TOKENS_IN + TOKENS_OUT), reservedUsd: 0 })
    expect(near(budget.today.spentUsd, spent)).toBe(true)
    // setting the same cap again seeds nothing more: the journal already counts the day
    await putBudget(call, "/v1/agents/latecap/budget", { maxRunsPerDay: 4, hardFail: true })
    expect((await getBudget(call, "/v1/agents/latecap/budget")).today).toMatchObject({ runs: 3 })

    const fourth = await call("POST", "/v1/runs", { agentName: "latecap", input: "four" })
    expect(fourth.status, fourth.text).toBe(201)
    const fifth = await call("POST", "/v1/runs", { agentName: "latecap", input: "five" })
    expect(fifth.status, fifth.text).toBe(402)
    expect(fifth.json.error).toMatchObject({
      code: "budget_exceeded",
      budget: { scope: "agent:latecap", cap: "maxRunsPerDay", limit: 4, spent: 4, reserved: 0, requested: 1 }
    })
    expect((await finished(call, fourth.json.id)).status).toBe("succeeded")
  })
})

// ---------------------------------------------------------------------------------------------------------
// A bus and home of its own: no other host may pick the run up while the only one is dead.

describe("a host SIGKILLed while it holds a reservation", () => {
  it("the reservation stops counting at its expiry, is released, and the run's calls are settled once", async () => {
    const own = await startServer("lantern-budgets-crash")
    defer(() => own.cleanup())
    const home = join(dir, "crash-home")
    const crashRt = journalRuntime(own.handle.url)
    defer(() => crashRt.dispose())
    // a short claim grace and step timeout: the reservation (step timeout + grace) expires within seconds
    const crashEnv = { ...env, LANTERN_CLAIM_GRACE: "2 seconds", LANTERN_WATCHDOG_INTERVAL: "200 millis" }
    const STEP_TIMEOUT_MS = 4_000
    const first = await startStack({ natsUrl: own.handle.url, home, env: crashEnv })
    defer(() => first.kill())
    onTestFailed(() => console.error(`--- first host ---\n${quiet(first.output())}`))
    const before = api(first)
    await createAgent(before, agent("crashy", { stepTimeoutMs: STEP_TIMEOUT_MS }))
    await putBudget(before, "/v1/agents/crashy/budget", { maxCostUsdPerDay: 10, hardFail: true })
    await putBudget(before, "/v1/budget", { maxCostUsdPerDay: 100, hardFail: true })

    // turn-2's call reaches the provider (its effect is performed) but its answer is held
    const release = model.block("turn-2")
    defer(async () => release())
    const started = await before("POST", "/v1/runs", { agentName: "crashy", input: "crash" })
    expect(started.status, started.text).toBe(201)
    const runId: string = started.json.id
    const key = `${runId}:turn-2:1`
    await model.waitFor("turn-2", 1, runId)
    const holding = await getBudget(before, "/v1/agents/crashy/budget")
    expect(holding.openReservations).toBe(1)
    expect(holding.today.reservedUsd).toBeGreaterThan(0)
    expect((await getBudget(before, "/v1/budget")).openReservations).toBe(1)
    await first.kill()
    const killedAt = Date.now()
    expect(first.child.signalCode).toBe("SIGKILL")

    // nobody is left to settle or release it: it stops counting once its expiry passes
    const held = (await budgetJournal(crashRt, "crashy")).map((e) => e.event).find((e) =>
      e._tag === "BudgetReserved" && e.reservationId === key
    )
    if (held?._tag !== "BudgetReserved") throw new Error(`no reservation ${key} in the budget journal`)
    expect(held.amountUsd).toBe(holding.today.reservedUsd)
    expect(held.expiresAt).toBeGreaterThan(killedAt)
    expect(held.expiresAt - killedAt).toBeLessThanOrEqual(STEP_TIMEOUT_MS + 2_000)
    const stateAt = async (now: number) =>
      Budget.reservedOn(
        fold(Budget.decider, (await budgetJournal(crashRt, "crashy")).map((e) => e.event)),
        Budget.dayOf(now),
        now
      )
    expect(await stateAt(Date.now())).toBe(held.amountUsd)
    await eventually(
      async () => Date.now() > held.expiresAt && (await stateAt(Date.now())) === 0,
      15_000,
      "the reservation to expire"
    )
    const expiredAfterMs = held.expiresAt - killedAt

    // a fresh host restarts the same attempt: the provider answers from its idempotency cache
    release()
    const restartedAt = Date.now()
    const second = await startStack({ natsUrl: own.handle.url, home, env: crashEnv })
    defer(() => second.kill())
    onTestFailed(() => console.error(`--- second host ---\n${quiet(second.output())}`))
    const after = api(second)
    const run = await finished(after, runId, 30_000)
    const doneAfterMs = Date.now() - restartedAt
    expect(run.status).toBe("succeeded")
    const events = await journalOf(after, runId)
    const spend = spendOf(events)
    expect(spend.costUsd).toBeCloseTo(RUN_COST, 9)
    expect(Object.fromEntries([...model.effects].filter(([k]) => k.startsWith(`${runId}:`)))).toEqual(
      Object.fromEntries(MODEL_STEPS.map((s) => [`${runId}:${s}:1`, 1]))
    )

    // the budgets: the dead host's hold released, the same id reserved again by the new host, settled once
    for (const [path, id] of [["/v1/agents/crashy/budget", "crashy"], ["/v1/budget", "_tenant"]] as const) {
      const journal = await budgetJournal(crashRt, id)
      const ofKey = journal.filter((e) =>
        "reservationId" in e.event && (e.event as { reservationId: string }).reservationId === key
      )
      expect(ofKey.map((e) => e.event._tag), `${id}: ${JSON.stringify(ofKey)}`).toEqual([
        "BudgetReserved",
        "BudgetReleased",
        "BudgetReserved",
        "BudgetSettled"
      ])
      const [firstHold, releasedHold, secondHold] = ofKey.map((e) => e.event)
      expect(releasedHold).toMatchObject({ reason: expect.stringContaining("without being settled") })
      expect(Date.parse(ofKey[1]!.at)).toBeGreaterThanOrEqual(held.expiresAt)
      if (firstHold?._tag !== "BudgetReserved" || secondHold?._tag !== "BudgetReserved")
        throw new Error("expected two holds")
      expect(secondHold.host).not.toBe(firstHold.host)
      expect(journal.filter((e) => e.event._tag === "BudgetSettled")).toHaveLength(MODEL_STEPS.length)
      const budget = await getBudget(after, path)
      expect(budget.today).toMatchObject({ reservedUsd: 0, runs: 1 })
      expect(budget.openReservations).toBe(0)
      expect(
        near(budget.today.spentUsd, spend.costUsd),
        `${id} spent ${budget.today.spentUsd} vs the run's ${spend.costUsd}`
      ).toBe(true)
    }
    console.log(
      `crash: reservation of ${held.amountUsd} USD expired ${expiredAfterMs} ms after the kill; ` +
        `the restarted host finished the run ${doneAfterMs} ms after it was started; spent ${
          spend.costUsd.toFixed(6)
        } USD = the run's cost`
    )
  }, 90_000)
})

describe("a run cancelled while a step's call is made and its StepStarted appended (ADR 0083)", () => {
  it("settles what the call cost: nothing stays reserved, and the spend is the calls made", async () => {
    const own = await startServer("lantern-budgets-overlap")
    defer(() => own.cleanup())
    const ownRt = journalRuntime(own.handle.url)
    defer(() => ownRt.dispose())
    // turn-2's StepStarted append is held 5 s after its call was made; the run is cancelled meanwhile, so the held
    // append is refused and the call's outcome is never journaled: only the budgets hear of it
    const host = await startStack({
      natsUrl: own.handle.url,
      home: join(dir, "overlap-home"),
      env: { ...env, LANTERN_FAILPOINTS: "during-step-start:turn-2=stall" }
    })
    defer(() => host.kill())
    onTestFailed(() => console.error(`--- host ---\n${quiet(host.output())}`))
    const on = api(host)
    await createAgent(on, agent("overlapped"))
    await putBudget(on, "/v1/agents/overlapped/budget", { maxCostUsdPerDay: 10, hardFail: true })
    const started = await on("POST", "/v1/runs", { agentName: "overlapped", input: "cancelled mid-call" })
    expect(started.status, started.text).toBe(201)
    const runId: string = started.json.id
    const key = `${runId}:turn-2:1`
    await model.waitFor("turn-2", 1, runId)
    const cancelled = await on("POST", `/v1/runs/${runId}/cancel`, { reason: "while its call is made" })
    expect(cancelled.status, cancelled.text).toBe(200)
    expect((await finished(on, runId)).status).toBe("canceled")

    const settled = await eventually(
      async () => {
        const journal = await budgetJournal(ownRt, "overlapped")
        const ofKey = journal.filter((e) => "reservationId" in e.event && e.event.reservationId === key)
        return ofKey.some((e) => e.event._tag === "BudgetSettled") ? ofKey.map((e) => e.event) : null
      },
      30_000,
      `the reservation of ${key} to be settled`
    )
    expect(settled.map((e) => e._tag)).toEqual(["BudgetReserved", "BudgetSettled"])
    // turn-1 (20 + 7 tokens) journaled; turn-2 (40 + 7) made, not journaled, settled all the same
    const budget = await getBudget(on, "/v1/agents/overlapped/budget")
    expect(budget.openReservations).toBe(0)
    expect(budget.today.reservedUsd).toBe(0)
    expect(near(budget.today.spentUsd, (27 + 47) / 1000), `spent ${budget.today.spentUsd}`).toBe(true)
    const events = await journalOf(on, runId)
    expect(events.filter((e) => e.type === "StepStarted").map((e) => e.payload.stepId)).toEqual(["turn-1"])
  }, 90_000)
})
