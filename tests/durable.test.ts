// Durable waits end to end over HTTP against the real `lantern serve`: `sleep` timers, human approvals
// (approve, reject, expire, bad input), child runs of other agents (output and cost roll up, cancel propagates,
// nesting is bounded). The offline model calls every declared tool the input names, so inputs pick the tools.
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WORK } from "../bus/Topology.ts"
import * as Completions from "../schema/Completions.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

const tool = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  description: name,
  parameters: { type: "object", properties: {} },
  ...extra
})

const agent = (name: string, tools: ReadonlyArray<unknown>) => ({
  name,
  spec: { systemPrompt: `You are ${name}.`, maxTurns: 4, tools }
})

const run = async (agentName: string, input: unknown) => {
  const r = await call("POST", "/v1/runs", { agentName, input })
  expect(r.status).toBe(201)
  return r.json.id as string
}

const finished = (id: string, deadline = 30_000) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/runs/${id}`)
      return r.json?.status !== "running" ? r.json : null
    },
    deadline,
    `run ${id} to finish`
  )

type Event = { type: string; payload: Record<string, any> }
/** A run's events, a StepsCompleted or a RunSucceeded with steps as the step completions it stands for (ADR 0067, 0077). */
const events = async (id: string): Promise<Array<Event>> =>
  (await call("GET", `/v1/runs/${id}/events`)).json.items.flatMap(Completions.expand)

/** Waits until the run has journaled a StepStarted for `stepId`. */
const stepStarted = (id: string, stepId: string) =>
  eventually(
    async () => (await events(id)).find((e) => e.type === "StepStarted" && e.payload.stepId === stepId),
    20_000,
    `${stepId} of ${id} to start`
  )

beforeAll(async () => {
  nats = await startServer("lantern-durable")
  stack = await startStack({ natsUrl: nats.handle.url, env: { LANTERN_WATCHDOG_INTERVAL: "200 millis" } })
  call = api(stack)
  for (
    const a of [
      agent("sleeper", [tool("sleep")]),
      agent("careful", [tool("echo", { approval: { expiresInSeconds: 600 } })]),
      agent("hasty", [tool("echo", { approval: { expiresInSeconds: 1 } })]),
      agent("researcher", [tool("word_count")]),
      agent("lead", [tool("research", { agent: "researcher" })]),
      agent("boss", [tool("delegate", { agent: "careful" })]),
      agent("recursive", [tool("recursive", { agent: "recursive" })]),
      agent("orphan", [tool("ask", { agent: "nobody" })])
    ]
  ) {
    const r = await call("POST", "/v1/agents", a)
    expect(r.status, JSON.stringify(r.json)).toBe(201)
  }
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("where a run is driven", () => {
  it("a new run is driven by the host that accepted it, from what it appended: no work message is queued", async () => {
    const nc = await connect({ servers: nats.handle.url, name: "durable-work-watch" })
    try {
      const jsm = await jetstreamManager(nc)
      const before = (await jsm.streams.info(WORK)).state.last_seq
      const id = await run("researcher", "count these words")
      expect((await finished(id)).status).toBe("succeeded")
      expect((await jsm.streams.info(WORK)).state.last_seq).toBe(before)
      // and its receipt, issued from the journal the driver held, verifies against the stored journal
      const receipt = await call("GET", `/v1/runs/${id}/receipt`)
      expect(receipt.status).toBe(200)
      const verdict = await call("POST", "/v1/receipts/verify", { receipt: receipt.json })
      expect(verdict.json.valid, JSON.stringify(verdict.json)).toBe(true)
    } finally {
      await nc.close()
    }
  })
})

describe("sleep", () => {
  it("parks the run, journals the wake-up time, and continues when the timer fires", async () => {
    const before = Date.now()
    const id = await run("sleeper", "please sleep 3 seconds")
    const started = await stepStarted(id, "turn-1.tool-0")
    expect(started.payload.request).toMatchObject({ _tag: "sleep", seconds: 3 })
    expect(started.payload.wakeAt).toBeGreaterThanOrEqual(before + 3000)
    expect((await call("GET", `/v1/runs/${id}`)).json.status).toBe("running")
    const done = await finished(id)
    expect(Date.now()).toBeGreaterThanOrEqual(started.payload.wakeAt)
    expect(done.status).toBe("succeeded")
    expect(done.output).toContain("slept 3 seconds")
    const completed = (await events(id)).filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId)
    expect(completed).toEqual(["turn-1", "turn-1.tool-0", "turn-2"])
    // the projections took the timer step too: the list (read from Postgres) shows the finished run
    await eventually(
      async () => {
        const listed = (await call("GET", "/v1/runs?agentName=sleeper")).json.items.find((r: { id: string }) =>
          r.id === id
        )
        return listed?.status === "succeeded" && listed.steps === 3
      },
      10_000,
      "the projected run"
    )
  })
})

describe("approvals", () => {
  it("waits for a human, then runs the tool once approved", async () => {
    const id = await run("careful", "echo hello")
    const started = await stepStarted(id, "turn-1.tool-0.approval")
    expect(started.payload.request._tag).toBe("approval")
    const waiting = {
      stepId: "turn-1.tool-0.approval",
      kind: "approval",
      until: new Date(started.payload.wakeAt).toISOString()
    }
    const current = (await call("GET", `/v1/runs/${id}`)).json
    expect(current.status).toBe("running")
    expect(current.waiting).toEqual(waiting)
    // the list reads the projection: it shows the same wait once it has caught up
    await eventually(
      async () => {
        const listed = (await call("GET", "/v1/runs?agentName=careful")).json.items.find((r: { id: string }) =>
          r.id === id
        )
        return JSON.stringify(listed?.waiting) === JSON.stringify(waiting)
      },
      10_000,
      "the projected wait"
    )
    // the tool itself has not run while the approval waits
    expect((await events(id)).some((e) => e.payload.stepId === "turn-1.tool-0")).toBe(false)

    const approved = await call("POST", `/v1/runs/${id}/approvals/turn-1.tool-0.approval`, {
      approved: true,
      by: "ops@example.com",
      reason: "looks fine"
    })
    expect(approved.status).toBe(200)
    const done = await finished(id)
    expect(done.status).toBe("succeeded")
    expect(done.waiting).toBeNull()
    expect(done.output).toContain("echo hello")
    const decision = (await events(id)).find((e) =>
      e.type === "StepCompleted" && e.payload.stepId === "turn-1.tool-0.approval"
    )
    expect(decision?.payload.result).toEqual({
      _tag: "approval",
      approved: true,
      by: "ops@example.com",
      reason: "looks fine"
    })

    // deciding twice is a conflict, and changes nothing
    const again = await call("POST", `/v1/runs/${id}/approvals/turn-1.tool-0.approval`, { approved: false, by: "x" })
    expect(again.status).toBe(409)
  })

  it("tells the model a rejected call was rejected, without running the tool", async () => {
    const id = await run("careful", "echo secrets")
    await stepStarted(id, "turn-1.tool-0.approval")
    const rejected = await call("POST", `/v1/runs/${id}/approvals/turn-1.tool-0.approval`, {
      approved: false,
      by: "ops",
      reason: "no"
    })
    expect(rejected.status).toBe(200)
    const done = await finished(id)
    expect(done.status).toBe("succeeded")
    expect(done.output).toContain("error: call rejected by ops: no")
    expect((await events(id)).some((e) => e.payload.stepId === "turn-1.tool-0")).toBe(false)
  })

  it("fails the run with approval_expired when nobody decides in time", async () => {
    const id = await run("hasty", "echo now")
    const done = await finished(id)
    expect(done.status).toBe("failed")
    expect(done.error.code).toBe("approval_expired")
    const late = await call("POST", `/v1/runs/${id}/approvals/turn-1.tool-0.approval`, { approved: true, by: "late" })
    expect(late.status).toBe(409)
  })

  it("answers bad decisions with 400 naming the field, unknown steps and runs with 404", async () => {
    const id = await run("careful", "echo bad input")
    await stepStarted(id, "turn-1.tool-0.approval")
    const path = `/v1/runs/${id}/approvals/turn-1.tool-0.approval`
    const missing = await call("POST", path, { by: "ops" })
    expect(missing.status).toBe(400)
    expect(JSON.stringify(missing.json.error.issues)).toContain("approved")
    const blank = await call("POST", path, { approved: true, by: "" })
    expect(blank.status).toBe(400)
    expect(JSON.stringify(blank.json.error.issues)).toContain("by")
    expect((await call("POST", `/v1/runs/${id}/approvals/turn-9.tool-0.approval`, { approved: true, by: "x" })).status)
      .toBe(404)
    expect((await call("POST", `/v1/runs/${id}/approvals/turn-1`, { approved: true, by: "x" })).status).toBe(404)
    expect(
      (await call("POST", `/v1/runs/run_00000000000000000000000000/approvals/turn-1.tool-0.approval`, {
        approved: true,
        by: "x"
      })).status
    ).toBe(404)
    // nothing was decided by the bad requests
    expect((await call("GET", `/v1/runs/${id}`)).json.status).toBe("running")
    await call("POST", `/v1/runs/${id}/cancel`, {})
  })
})

describe("child runs", () => {
  it("starts a child run of another agent for a tool call and rolls its output and tokens up", async () => {
    const id = await run("lead", "research the word count of this sentence")
    const done = await finished(id)
    expect(done.status).toBe("succeeded")
    const started = (await events(id)).find((e) => e.type === "StepStarted" && e.payload.request._tag === "agent")!
    const childId: string = started.payload.request.childRunId
    const child = (await call("GET", `/v1/runs/${childId}`)).json
    expect(child.status).toBe("succeeded")
    expect(child.agentName).toBe("researcher")
    expect(done.output).toContain(child.output)
    const childEvents = await events(childId)
    expect(childEvents[0]!.payload.parent).toEqual({ tenant: "dev", runId: id, stepId: "turn-1.tool-0", depth: 1 })
    // the parent's step carries the child's usage, so the parent's totals include it
    const rolled = (await events(id)).find((e) => e.type === "StepCompleted" && e.payload.stepId === "turn-1.tool-0")!
    expect(rolled.payload.tokensIn).toBe(child.tokensIn)
    expect(rolled.payload.tokensOut).toBe(child.tokensOut)
    expect(done.tokensIn).toBeGreaterThan(child.tokensIn)
    await eventually(
      async () => {
        const listed = (await call("GET", "/v1/runs?agentName=lead")).json.items.find((r: { id: string }) =>
          r.id === id
        )
        return listed?.status === "succeeded" && listed.tokensIn === done.tokensIn
      },
      10_000,
      "the projected parent run"
    )
  })

  it("projects approvals that are waiting", async () => {
    const id = await run("careful", "echo projected")
    await stepStarted(id, "turn-1.tool-0.approval")
    await call("POST", `/v1/runs/${id}/approvals/turn-1.tool-0.approval`, { approved: true, by: "ops" })
    await finished(id)
    await eventually(
      async () => {
        const listed = (await call("GET", "/v1/runs?agentName=careful")).json.items.find((r: { id: string }) =>
          r.id === id
        )
        return listed?.status === "succeeded"
      },
      10_000,
      "the projected run"
    )
  })

  it("cancels the children of a canceled run", async () => {
    const id = await run("boss", "delegate: echo the plan")
    const started = await stepStarted(id, "turn-1.tool-0")
    const childId: string = started.payload.request.childRunId
    await stepStarted(childId, "turn-1.tool-0.approval")
    const canceled = await call("POST", `/v1/runs/${id}/cancel`, { reason: "stop everything" })
    expect(canceled.status).toBe(200)
    const child = await finished(childId)
    expect(child.status).toBe("canceled")
    expect(child.error.message).toContain("stop everything")
  })

  it("bounds nesting: the deepest run is told the depth limit instead of starting another child", async () => {
    const id = await run("recursive", "recursive please")
    const done = await finished(id, 60_000)
    expect(done.status).toBe("succeeded")
    // follow the chain of children down to the run whose child was never started
    let current = id
    let depth = 0
    for (;;) {
      const started = (await events(current)).find((e) =>
        e.type === "StepStarted" && e.payload.stepId === "turn-1.tool-0"
      )!
      const child = await call("GET", `/v1/runs/${started.payload.request.childRunId}`)
      if (child.status === 404) break
      current = started.payload.request.childRunId
      depth++
    }
    const deepest = (await events(current)).find((e) =>
      e.type === "StepCompleted" && e.payload.stepId === "turn-1.tool-0"
    )!
    expect(deepest.payload.result.output).toContain("nest at most 5 deep")
    expect(depth).toBe(5)
  })

  it("answers a tool whose agent does not exist with an error result, not a stuck run", async () => {
    const id = await run("orphan", "ask someone")
    const done = await finished(id)
    expect(done.status).toBe("succeeded")
    expect(done.output).toContain("agent 'nobody' not found")
  })
})
