// Code-first durable workflows end to end (ADR 0041): a real `lantern serve` registers tests/fixtures/workflows/v1.ts
// and runs its workflows; hosts are SIGKILLed inside a step and between steps and restarted, and every step's
// effect (a line in a file) is counted; code that changes under a run in flight fails it naming the step; a deploy
// of new code leaves runs in flight on their own version.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import { modelEnv } from "./support/Scripted.ts"
import { api, eventually, ROOT, type StackProcess, startStack } from "./support/Stack.ts"

const V1 = join(ROOT, "tests/fixtures/workflows/v1.ts")
const V2 = join(ROOT, "tests/fixtures/workflows/v2.ts")

let nats: TestServer
let dir: string
const stacks: Array<StackProcess> = []

beforeAll(async () => {
  nats = await startServer("lantern-workflows")
  dir = mkdtempSync(join(tmpdir(), "lantern-workflows-"))
}, 30_000)

afterAll(async () => {
  for (const s of stacks) await s.kill()
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

/** A `lantern serve` on the suite's bus with `home` and the workflows of `file`. */
const host = async (home: string, file: string, env: Record<string, string> = {}) => {
  const stack = await startStack({
    natsUrl: nats.handle.url,
    home,
    env: { ...env, LANTERN_WORKFLOWS: file, LANTERN_WATCHDOG_INTERVAL: "200 millis" }
  })
  stacks.push(stack)
  onTestFailed(() => console.error(`--- host ${stack.child.pid} ---\n${stack.output()}`))
  return stack
}

type Call = ReturnType<typeof api>

const start = async (call: Call, workflow: string, input: unknown) => {
  const r = await call("POST", "/v1/runs", { workflow, input })
  expect(r.status, r.text).toBe(201)
  return r.json.id as string
}

const finished = (call: Call, id: string, deadline = 60_000) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/runs/${id}`).catch(() => null)
      return r !== null && r.json?.status !== undefined && r.json.status !== "running" ? r.json : null
    },
    deadline,
    `run ${id} to finish`
  )

type Event = { type: string; payload: Record<string, any> }
const events = async (call: Call, id: string): Promise<Array<Event>> =>
  (await call("GET", `/v1/runs/${id}/events`)).json.items

/** The effects the steps performed: one line per execution, the step's idempotency key. */
const effects = (file: string): Array<string> => {
  try {
    return readFileSync(file, "utf8").split("\n").filter((l) => l !== "")
  } catch {
    return []
  }
}

describe("a workflow of ten steps", () => {
  it("runs to its output with each step journaled once and performed once", async () => {
    const stack = await host(join(dir, "plain"), V1)
    const call = api(stack)
    const file = join(dir, "plain-effects")
    const id = await start(call, "ten", { effects: file })
    const run = await finished(call, id)
    expect(run.status).toBe("succeeded")
    expect(run.output).toEqual({ sum: 55, uuidLength: 36 })
    expect(run.agentName).toBe("ten")
    const journal = await events(call, id)
    const steps = journal.filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId)
    expect(steps).toEqual([...Array.from({ length: 10 }, (_, i) => `step-${i + 1}`), "uuid-1"])
    // one event per step: nothing started separately
    expect(journal.filter((e) => e.type === "StepStarted")).toEqual([])
    expect(effects(file)).toEqual(Array.from({ length: 10 }, (_, i) => `${id}:step-${i + 1}:1`))
    await stack.kill()
  }, 120_000)

  for (const where of ["crashIn", "crashAfter"] as const) {
    it(
      `${
        where === "crashIn" ? "inside step 5" : "between steps 5 and 6"
      }: a SIGKILLed host restarted finishes the run, no completed step again`,
      async () => {
        const home = join(dir, `crash-${where}`)
        const file = join(dir, `crash-${where}-effects`)
        const marker = join(dir, `crash-${where}-marker`)
        const first = await host(home, V1)
        const id = await start(api(first), "ten", { effects: file, [where]: 5, marker })
        // the host kills itself at step 5
        await eventually(async () => first.child.signalCode === "SIGKILL", 60_000, "the host to kill itself")
        const second = await host(home, V1)
        const call = api(second)
        const run = await finished(call, id)
        expect(run.status).toBe("succeeded")
        expect(run.output).toEqual({ sum: 55, uuidLength: 36 })
        // steps 1-4 (and 5 when the crash came after it) ran once; the step in flight ran again under the same key
        const once = Array.from({ length: 10 }, (_, i) => `${id}:step-${i + 1}:1`)
        expect(effects(file)).toEqual(once)
        const completed = (await events(call, id)).filter((e) => e.type === "StepCompleted").map((e) =>
          e.payload.stepId
        )
        expect(new Set(completed).size).toBe(completed.length)
        await second.kill()
      },
      180_000
    )
  }
})

describe("model calls", () => {
  it(
    "ctx.llm goes through the router and is journaled with its route and cost; a crash after it never calls again",
    async () => {
      const model = await FakeOpenAi.start(0)
      try {
        const home = join(dir, "llm")
        const marker = join(dir, "llm-marker")
        const env = modelEnv(model)
        const first = await host(home, V1, env)
        const id = await start(api(first), "writer", { marker })
        await eventually(async () => first.child.signalCode === "SIGKILL", 60_000, "the host to kill itself")
        const second = await host(home, V1, env)
        const call = api(second)
        const run = await finished(call, id)
        expect(run.status, JSON.stringify(run)).toBe("succeeded")
        expect(run.output).toEqual({ provider: "openai", model: "fake-1", answered: true, after: "done" })
        // the provider was asked once, under the step's key: the replay read the journaled answer
        expect(model.received.filter((r) => r.key.startsWith(`${id}:`)).map((r) => r.key)).toEqual([`${id}:llm-1:1`])
        const journal = await events(call, id)
        const completed = journal.find((e) => e.type === "StepCompleted" && e.payload.stepId === "llm-1")!
        expect(completed.payload.result._tag).toBe("model")
        expect(completed.payload.route.chosen).toBeDefined()
        expect(completed.payload.tokensIn).toBeGreaterThan(0)
        expect(run.costUsd).toBeGreaterThanOrEqual(0)
        await second.kill()
      } finally {
        await model.close()
      }
    },
    180_000
  )
})

describe("a model call made while its StepStarted is appended (ADR 0083)", () => {
  it("reaches the provider before the StepStarted is journaled, and is asked once", async () => {
    const model = await FakeOpenAi.start(0)
    try {
      // llm-1's append is held 5 s after its call was made: a call made only once its StepStarted was journaled
      // would reach the provider after the hold, with the StepStarted already in the journal
      const stalled = await host(join(dir, "llm-overlap"), V1, {
        ...modelEnv(model),
        LANTERN_FAILPOINTS: "during-step-start:llm-1=stall"
      })
      const call = api(stalled)
      const id = await start(call, "writer", {})
      await eventually(
        async () => model.received.some((r) => r.key === `${id}:llm-1:1`),
        30_000,
        `llm-1 of ${id} to reach the provider`
      )
      expect((await events(call, id)).filter((e) => e.type === "StepStarted")).toEqual([])
      expect(stalled.output()).toContain("failpoint during-step-start:llm-1 hit: stalling")
      const run = await finished(call, id)
      expect(run.status, JSON.stringify(run)).toBe("succeeded")
      expect(run.output).toMatchObject({ answered: true, after: "done" })
      expect(model.received.filter((r) => r.key.startsWith(`${id}:`)).map((r) => r.key)).toEqual([`${id}:llm-1:1`])
      const journal = await events(call, id)
      expect(journal.filter((e) => e.type === "StepStarted").map((e) => e.payload.stepId)).toEqual(["llm-1"])
      expect(journal.filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId)).toEqual(["llm-1", "after"])
      await stalled.kill()
    } finally {
      await model.close()
    }
  }, 120_000)
})

describe("signals and approvals", () => {
  it("a run waits for a signal and then a human, parked, and a wait with nobody signalling times out", async () => {
    const stack = await host(join(dir, "signals"), V1)
    const call = api(stack)
    const id = await start(call, "reviewer", null)
    const waitingOn = (kind: string, stepId: string) =>
      eventually(
        async () => {
          const r = (await call("GET", `/v1/runs/${id}`)).json
          return r.waiting?.kind === kind && r.waiting.stepId === stepId ? r : null
        },
        30_000,
        `the run to wait on ${stepId}`
      )
    await waitingOn("sleep", "wait-go-1")
    // the projected row says so too (the list reads the database)
    await eventually(
      async () => {
        const items = (await call("GET", "/v1/runs?agentName=reviewer")).json.items as Array<any>
        return items.find((r) => r.id === id)?.waiting?.stepId === "wait-go-1"
      },
      30_000,
      "the projection to show the wait"
    )
    const sent = await call("POST", `/v1/runs/${id}/signals/go`, { value: { answer: 42 } })
    expect(sent.status, sent.text).toBe(202)
    expect(sent.json).toEqual({ runId: id, name: "go", seq: 1 })
    await waitingOn("approval", "approval-1")
    const approved = await call("POST", `/v1/runs/${id}/approvals/approval-1`, { approved: true, by: "ana" })
    expect(approved.status, approved.text).toBe(200)
    const run = await finished(call, id)
    expect(run.output).toEqual({
      go: { received: true, value: { answer: 42 } },
      approved: true,
      by: "ana",
      late: { received: false, value: null }
    })
    // a finished run takes no more signals; nor does an agent's run
    expect((await call("POST", `/v1/runs/${id}/signals/go`, { value: 1 })).status).toBe(409)
    const bad = await call("POST", `/v1/runs/${id}/signals/go`, { value: 1, extra: true })
    expect(bad.status).toBe(400)
    await stack.kill()
  }, 120_000)
})

describe("child runs", () => {
  it(
    "ctx.run starts a child workflow and a child agent, waits for each, and names a child that cannot start",
    async () => {
      const stack = await host(join(dir, "children"), V1)
      const call = api(stack)
      const agent = await call("POST", "/v1/agents", { name: "helper", spec: { systemPrompt: "Help." } })
      expect(agent.status, agent.text).toBe(201)
      const id = await start(call, "parent", null)
      const run = await finished(call, id)
      expect(run.status, JSON.stringify(run)).toBe("succeeded")
      expect(run.output).toEqual({
        doubled: 42,
        doubledStatus: "succeeded",
        helped: "succeeded",
        missing: "StepFailedError"
      })
      const children = (await events(call, id)).filter((e) =>
        e.type === "StepStarted" && e.payload.request._tag === "agent"
      )
      expect(children.map((e) => e.payload.request.agentName)).toEqual(["doubler", "helper", "nobody"])
      // each child knows its parent
      const child = await call("GET", `/v1/runs/${children[0]!.payload.request.childRunId}/events`)
      expect(child.json.items[0].payload.parent.runId).toBe(id)
      await stack.kill()
    },
    120_000
  )
})

describe("retries", () => {
  it("retries a failing step with its attempts journaled, and hands the last error to the code", async () => {
    const stack = await host(join(dir, "retries"), V1)
    const call = api(stack)
    const file = join(dir, "retries-effects")
    const id = await start(call, "flaky", { effects: file })
    const run = await finished(call, id)
    expect(run.status, JSON.stringify(run)).toBe("succeeded")
    expect(run.output).toEqual({ value: 3, caught: "StepFailedError" })
    expect(effects(file)).toEqual(["flaky 1", "flaky 2", "flaky 3"])
    const failed = (await events(call, id)).filter((e) => e.type === "StepFailed").map((e) =>
      `${e.payload.stepId}#${e.payload.attempt}:${e.payload.retryable}`
    )
    expect(failed).toEqual(["flaky#1:true", "flaky#2:true", "doomed#1:true", "doomed#2:false"])
    await stack.kill()
  }, 120_000)
})

describe("determinism and versions", () => {
  it("fails a run whose code asks for its steps in another order than its journal, naming the step", async () => {
    const stack = await host(join(dir, "order"), V1)
    const call = api(stack)
    const orderFile = join(dir, "order-file")
    writeFileSync(orderFile, "a,b")
    const id = await start(call, "ordered", { orderFile })
    // the run parks on its timer with a and b journaled; the code then changes its mind
    await eventually(
      async () => (await events(call, id)).some((e) => e.type === "StepStarted" && e.payload.request._tag === "timer"),
      30_000,
      "the run to reach its timer"
    )
    writeFileSync(orderFile, "b,a")
    const run = await finished(call, id)
    expect(run.status).toBe("failed")
    expect(run.error.code).toBe("nondeterminism")
    expect(run.error.message).toContain(`"b"`)
    expect(run.error.message).toContain(`"a"`)
    await stack.kill()
  }, 120_000)

  it("keeps a run in flight on its code when new code is deployed; new runs start on the new code", async () => {
    const home = join(dir, "deploy")
    const first = await host(home, V1)
    const old = await start(api(first), "versioned", null)
    await eventually(
      async () => (await events(api(first), old)).some((e) => e.type === "StepStarted"),
      30_000,
      "the old run to park on its timer"
    )
    await first.stop()
    const second = await host(home, V2)
    const call = api(second)
    const fresh = await start(call, "versioned", null)
    expect((await finished(call, old)).output).toBe("v1")
    expect((await finished(call, fresh)).output).toBe("v2")
    const pinned = async (id: string) =>
      (await events(call, id)).find((e) => e.type === "RunStarted")!.payload.workflow.digest as string
    expect(await pinned(old)).not.toBe(await pinned(fresh))
    await second.kill()
  }, 120_000)
})

describe("bad input", () => {
  it("answers 404 for a workflow no host registered and 400 naming the field for agentName with workflow", async () => {
    const stack = await host(join(dir, "bad"), V1)
    const call = api(stack)
    const missing = await call("POST", "/v1/runs", { workflow: "nope", input: null })
    expect(missing.status).toBe(404)
    expect(missing.json.error.code).toBe("workflow_not_found")
    const both = await call("POST", "/v1/runs", { workflow: "ten", agentName: "ten", input: null })
    expect(both.status).toBe(400)
    expect(both.json.error.issues.map((i: { field: string }) => i.field)).toContain("workflow")
    const neither = await call("POST", "/v1/runs", { input: null })
    expect(neither.status).toBe(400)
    expect(neither.json.error.issues.map((i: { field: string }) => i.field)).toContain("agentName")
    await stack.kill()
  }, 120_000)
})

describe("budgets", () => {
  it("count a workflow's run against the day's runs: past a hard maxRunsPerDay its start is a 402", async () => {
    const stack = await host(join(dir, "budget"), V1)
    const call = api(stack)
    try {
      // the day's runs so far (the tenant's earlier runs in this file are seeded from the projections)
      expect((await call("PUT", "/v1/budget", { hardFail: true })).status).toBe(200)
      const today = (await call("GET", "/v1/budget")).json.today.runs as number
      const capped = await call("PUT", "/v1/budget", { maxRunsPerDay: today + 1, hardFail: true })
      expect(capped.status, capped.text).toBe(200)
      let first = await call("POST", "/v1/runs", { workflow: "doubler", input: { n: 1 } })
      if (first.status === 402 && first.json.error.budget.spent > today) {
        // a run of an earlier test was counted after `today` was read: the cap goes one past what is spent now
        const spent = first.json.error.budget.spent as number
        expect((await call("PUT", "/v1/budget", { maxRunsPerDay: spent + 1, hardFail: true })).status).toBe(200)
        first = await call("POST", "/v1/runs", { workflow: "doubler", input: { n: 1 } })
      }
      expect(first.status, first.text).toBe(201)
      const second = await call("POST", "/v1/runs", { workflow: "doubler", input: { n: 2 } })
      expect(second.status, second.text).toBe(402)
      expect(second.json.error.code).toBe("budget_exceeded")
    } finally {
      await call("PUT", "/v1/budget", { hardFail: true })
      await stack.kill()
    }
  }, 120_000)
})
