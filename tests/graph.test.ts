// Graph workflows end to end (ADR 0042): a real `lantern serve` takes a graph with PUT /v1/agents/{name}/workflow and
// runs it when a run of the agent starts. The seed scenario takes the branch its condition says and the journal and
// stream show a step per node and the label taken; a loop iterates per item and fails past maxIterations; an approval
// node blocks until approved; a host SIGKILLed mid-graph is restarted and no completed node runs again (the model's
// requests are counted by idempotency key); a bad graph is refused naming the node.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import { modelEnv } from "./support/Scripted.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let dir: string
let shared: StackProcess
let call: Call
const stacks: Array<StackProcess> = []

/** A `lantern serve` on the suite's bus with `home`. */
const host = async (home: string, env: Record<string, string> = {}, inTest = true, bus = nats) => {
  const stack = await startStack({
    natsUrl: bus.handle.url,
    home,
    env: { ...env, LANTERN_WATCHDOG_INTERVAL: "200 millis" }
  })
  stacks.push(stack)
  if (inTest) onTestFailed(() => console.error(`--- host ${stack.child.pid} ---\n${stack.output()}`))
  return stack
}

beforeAll(async () => {
  nats = await startServer("lantern-graph")
  dir = mkdtempSync(join(tmpdir(), "lantern-graph-"))
  shared = await host(join(dir, "shared"), {}, false)
  call = api(shared)
}, 180_000)

afterAll(async () => {
  for (const s of stacks) await s.kill()
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

type Call = ReturnType<typeof api>

/** Creates agent `name` and draws it as `graph`: the agent's answer to the PUT. */
const drawn = async (c: Call, name: string, graph: unknown) => {
  const created = await c("POST", "/v1/agents", { name, spec: { systemPrompt: "A graph." } })
  expect(created.status, created.text).toBe(201)
  const put = await c("PUT", `/v1/agents/${name}/workflow`, graph)
  expect(put.status, put.text).toBe(200)
  return put.json
}

const start = async (c: Call, agentName: string, input: unknown) => {
  const r = await c("POST", "/v1/runs", { agentName, input })
  expect(r.status, r.text).toBe(201)
  return r.json.id as string
}

const finished = (c: Call, id: string, deadline = 60_000) =>
  eventually(
    async () => {
      const r = await c("GET", `/v1/runs/${id}`).catch(() => null)
      return r !== null && r.json?.status !== undefined && r.json.status !== "running" ? r.json : null
    },
    deadline,
    `run ${id} to finish`
  )

type Event = { type: string; payload: Record<string, any> }
const events = async (c: Call, id: string): Promise<Array<Event>> =>
  (await c("GET", `/v1/runs/${id}/events`)).json.items
const completed = (journal: Array<Event>) =>
  journal.filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId as string)

const SEED = {
  nodes: [
    { id: "start", type: "trigger", data: {} },
    { id: "classify", type: "ai-step", data: { prompt: "Classify this ticket: {{input.text}}", capability: "auto" } },
    { id: "urgent", type: "condition", data: { expression: "steps.classify.text contains 'URGENT'" } },
    { id: "escalate", type: "end", data: { outputExpression: "'escalated'" } },
    { id: "file", type: "end", data: { outputExpression: "steps.classify.text" } }
  ],
  edges: [
    { id: "e1", source: "start", target: "classify" },
    { id: "e2", source: "classify", target: "urgent" },
    { id: "e3", source: "urgent", target: "escalate", label: "true" },
    { id: "e4", source: "urgent", target: "file", label: "false" }
  ]
}

describe("the seed scenario", () => {
  it(
    "runs trigger → ai-step → condition → end down the branch taken, a step per node in the journal and the stream",
    async () => {
      const agent = await drawn(call, "triage", SEED)
      expect(agent.latestVersion).toBe(2)
      expect(agent.spec.workflow.nodes.map((n: { id: string }) => n.id)).toEqual(SEED.nodes.map((n) => n.id))

      const urgent = await start(call, "triage", { text: "URGENT: the database is down" })
      const run = await finished(call, urgent)
      expect(run.status, JSON.stringify(run)).toBe("succeeded")
      expect(run.output).toEqual({ result: "escalated", stepsRan: ["start", "classify", "urgent", "escalate"] })
      const journal = await events(call, urgent)
      expect(journal[0]!.payload.workflow).toEqual({ name: "graph:triage", digest: agent.digest })
      expect(completed(journal)).toEqual([
        "node:start:1",
        "llm-1",
        "node:classify:1",
        "node:urgent:1",
        "node:escalate:1"
      ])
      const branch = journal.find((e) => e.type === "StepCompleted" && e.payload.stepId === "node:urgent:1")!
      expect(branch.payload.result).toEqual({ _tag: "code", value: "true" })
      // the model step went through the router (offline by default), route journaled
      const model = journal.find((e) => e.type === "StepCompleted" && e.payload.stepId === "llm-1")!
      expect(model.payload.result._tag).toBe("model")
      expect(model.payload.result.answer.content).toContain("URGENT: the database is down")

      // the stream shows the same steps, the branch label among them
      const stream = await fetch(`${shared.url}/v1/runs/${urgent}/stream`, {
        headers: { authorization: `Bearer ${shared.token}` }
      }).then((r) => r.text())
      const frames = stream.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)))
      const streamed = frames.filter((f) => f.type === "StepCompleted").map((
        f
      ) => [f.payload.stepId, f.payload.result._tag === "code" ? f.payload.result.value : f.payload.result._tag])
      expect(streamed).toEqual([
        ["node:start:1", null],
        ["llm-1", "model"],
        ["node:classify:1", {
          text: model.payload.result.answer.content,
          provider: "offline",
          model: expect.any(String)
        }],
        ["node:urgent:1", "true"],
        ["node:escalate:1", "escalated"]
      ])

      const calm = await start(call, "triage", { text: "please reset my password" })
      const filed = await finished(call, calm)
      expect(filed.output.stepsRan).toEqual(["start", "classify", "urgent", "file"])
      expect(filed.output.result).toContain("please reset my password")
      const label = (await events(call, calm)).find((e) => e.payload.stepId === "node:urgent:1")!
      expect(label.payload.result.value).toBe("false")
    },
    120_000
  )
})

const LOOP = (maxIterations: number) => ({
  nodes: [
    { id: "start", type: "trigger", data: {} },
    { id: "each", type: "loop", data: { arrayExpression: "input.items", maxIterations } },
    { id: "count", type: "tool", data: { tool: "word_count", arguments: { text: "{{loop.index}} {{loop.item}}" } } },
    { id: "done", type: "end", data: { outputExpression: "steps.count.output" } }
  ],
  edges: [
    { id: "e1", source: "start", target: "each" },
    { id: "e2", source: "each", target: "count", label: "body" },
    { id: "e3", source: "count", target: "each" },
    { id: "e4", source: "each", target: "done", label: "done" }
  ]
})

describe("loops", () => {
  it("iterates the body once per item of a 3-item array, and fails the loop's step past maxIterations", async () => {
    await drawn(call, "counter", LOOP(3))
    const id = await start(call, "counter", { items: ["a", "b c", "d e f"] })
    const run = await finished(call, id)
    expect(run.status, JSON.stringify(run)).toBe("succeeded")
    expect(run.output).toEqual({ result: "4", stepsRan: ["start", "each", "count", "count", "count", "done"] })
    const journal = await events(call, id)
    expect(completed(journal)).toEqual([
      "node:start:1",
      "node:each:1",
      "node:count:1",
      "node:count:2",
      "node:count:3",
      "node:done:1"
    ])
    expect(journal.find((e) => e.payload.stepId === "node:count:2")!.payload.result.value).toEqual({ output: "3" })

    const over = await start(call, "counter", { items: [1, 2, 3, 4] })
    const failed = await finished(call, over)
    expect(failed.status).toBe("failed")
    expect(failed.error.message).toContain("loop 'each': 4 items exceed its maxIterations of 3")
    const step = (await events(call, over)).find((e) => e.type === "StepFailed")!
    expect(step.payload.stepId).toBe("node:each:1")
    expect(step.payload.retryable).toBe(false)
  }, 120_000)
})

describe("approvals", () => {
  it("blocks the run on an approval node until approved, honouring timeoutMinutes", async () => {
    await drawn(call, "gated", {
      nodes: [
        { id: "start", type: "trigger", data: {} },
        { id: "ask", type: "approval", data: { reason: "ship {{input.what}}?", timeoutMinutes: 30 } },
        { id: "done", type: "end", data: { outputExpression: "steps.ask.approved" } }
      ],
      edges: [
        { id: "e1", source: "start", target: "ask" },
        { id: "e2", source: "ask", target: "done" }
      ]
    })
    const before = Date.now()
    const id = await start(call, "gated", { what: "v2" })
    const waiting = await eventually(
      async () => {
        const r = (await call("GET", `/v1/runs/${id}`)).json
        return r.waiting?.kind === "approval" ? r : null
      },
      30_000,
      "the run to wait for approval"
    )
    expect(waiting.status).toBe("running")
    expect(waiting.waiting.stepId).toBe("approval-1")
    const started = (await events(call, id)).find((e) => e.type === "StepStarted")!
    expect(started.payload.request.call.arguments).toEqual({ reason: "ship v2?" })
    expect(started.payload.wakeAt).toBeGreaterThanOrEqual(before + 30 * 60_000)
    expect(started.payload.wakeAt).toBeLessThan(Date.now() + 30 * 60_000 + 1_000)
    // parked on the approval: its start is the journal's last event, and no wake is due for 30 minutes
    const parked = await events(call, id)
    expect(parked.at(-1)).toMatchObject({ type: "StepStarted", payload: { stepId: "approval-1" } })
    expect((await call("GET", `/v1/runs/${id}`)).json.status).toBe("running")
    const approved = await call("POST", `/v1/runs/${id}/approvals/approval-1`, { approved: true, by: "ana" })
    expect(approved.status, approved.text).toBe(200)
    const run = await finished(call, id)
    expect(run.output).toEqual({ result: true, stepsRan: ["start", "ask", "done"] })
  }, 120_000)
})

describe("parallel branches and subagents", () => {
  it(
    "runs branches concurrently (one parks on a wait), joins them, then starts a child run of another agent",
    async () => {
      const helper = await call("POST", "/v1/agents", { name: "helper", spec: { systemPrompt: "Help." } })
      expect(helper.status, helper.text).toBe(201)
      await drawn(call, "fanout", {
        nodes: [
          { id: "start", type: "trigger", data: {} },
          { id: "fan", type: "parallel", data: {} },
          { id: "think", type: "ai-step", data: { prompt: "Think about {{input.topic}}" } },
          { id: "shout", type: "tool", data: { tool: "echo", arguments: { text: "{{steps.think.text}}!" } } },
          { id: "pause", type: "wait", data: { duration: "3s" } },
          { id: "merge", type: "tool", data: { tool: "word_count", arguments: { text: "{{steps.shout.output}}" } } },
          { id: "ask", type: "subagent", data: { agent: "helper", input: "count {{steps.merge.output}}" } },
          { id: "done", type: "end", data: { outputExpression: "steps.ask.status" } }
        ],
        edges: [
          { id: "e1", source: "start", target: "fan" },
          { id: "e2", source: "fan", target: "think" },
          { id: "e3", source: "fan", target: "pause" },
          { id: "e4", source: "think", target: "shout" },
          { id: "e5", source: "shout", target: "merge" },
          { id: "e6", source: "pause", target: "merge" },
          { id: "e7", source: "merge", target: "ask" },
          { id: "e8", source: "ask", target: "done" }
        ]
      })
      const id = await start(call, "fanout", { topic: "graphs" })
      const run = await finished(call, id)
      expect(run.status, JSON.stringify(run)).toBe("succeeded")
      expect(run.output).toEqual({
        result: "succeeded",
        stepsRan: ["start", "fan", "think", "pause", "shout", "merge", "ask", "done"]
      })
      const journal = await events(call, id)
      expect(completed(journal)).toEqual([
        "node:start:1",
        "node:fan:1",
        "llm-1",
        "sleep-1",
        "node:think:1",
        "node:pause:1",
        "node:shout:1",
        "node:merge:1",
        "run-1",
        "node:ask:1",
        "node:done:1"
      ])
      const child = journal.find((e) => e.type === "StepStarted" && e.payload.request._tag === "agent")!
      expect(child.payload.request.agentName).toBe("helper")
      const childRun = (await call("GET", `/v1/runs/${child.payload.request.childRunId}`)).json
      expect(childRun.input).toBe("count 7")
    },
    120_000
  )
})

describe("a crash mid-graph", () => {
  it(
    "a host SIGKILLed while the graph waits and while a model call is held is restarted: no completed node runs again",
    async () => {
      // a bus of its own: no other host drives the run while this one is down
      const bus = await startServer("lantern-graph-crash")
      const model = await FakeOpenAi.start(0)
      try {
        const home = join(dir, "crash")
        const env = modelEnv(model)
        const first = await host(home, env, true, bus)
        const c1 = api(first)
        await drawn(c1, "crashy", {
          nodes: [
            { id: "start", type: "trigger", data: {} },
            { id: "draft", type: "ai-step", data: { prompt: "Draft {{input.topic}}" } },
            { id: "pause", type: "wait", data: { duration: "3s" } },
            { id: "polish", type: "ai-step", data: { prompt: "Polish: {{steps.draft.text}}" } },
            { id: "done", type: "end", data: { outputExpression: "steps.polish.text" } }
          ],
          edges: [
            { id: "e1", source: "start", target: "draft" },
            { id: "e2", source: "draft", target: "pause" },
            { id: "e3", source: "pause", target: "polish" },
            { id: "e4", source: "polish", target: "done" }
          ]
        })
        const release = model.block("llm-2")
        const id = await start(c1, "crashy", { topic: "graphs" })
        // parked on the wait, then killed; restarted, it wakes, reaches the second model call, and is killed there
        await eventually(
          async () =>
            (await events(c1, id)).some((e) => e.type === "StepStarted" && e.payload.request._tag === "timer"),
          30_000,
          "the run to park on its wait"
        )
        await first.kill()
        const second = await host(home, env, true, bus)
        await Promise.race([
          model.waitFor("llm-2", 1, id),
          new Promise((_, reject) => setTimeout(() => reject(new Error("no request for llm-2")), 60_000))
        ])
        await second.kill()
        release()
        const third = await host(home, env, true, bus)
        const c3 = api(third)
        const run = await finished(c3, id)
        expect(run.status, JSON.stringify(run)).toBe("succeeded")
        expect(run.output.stepsRan).toEqual(["start", "draft", "pause", "polish", "done"])
        expect(run.output.result).toBe("done after 0 tool calls")
        // the first model call was made once; the one in flight at the crash again under its key, performed once
        const keys = model.received.filter((r) => r.key.startsWith(`${id}:`)).map((r) => r.key)
        expect(keys.filter((k) => k === `${id}:llm-1:1`)).toHaveLength(1)
        expect([...model.effects].filter(([k]) => k.startsWith(`${id}:`)).every(([, n]) => n === 1)).toBe(true)
        const steps = completed(await events(c3, id))
        expect(steps).toEqual([
          "node:start:1",
          "llm-1",
          "node:draft:1",
          "sleep-1",
          "node:pause:1",
          "llm-2",
          "node:polish:1",
          "node:done:1"
        ])
        // the run finished once
        expect((await events(c3, id)).filter((e) => e.type === "RunSucceeded")).toHaveLength(1)
        await third.kill()
      } finally {
        await model.close()
        // this bus's hosts go before it does
        for (const s of stacks.filter((s) => s !== shared)) await s.kill()
        await bus.cleanup()
      }
    },
    240_000
  )
})

describe("bad graphs", () => {
  it("answers 400 naming the node and its field, and 404 for an agent that does not exist", async () => {
    await call("POST", "/v1/agents", { name: "sloppy", spec: { systemPrompt: "A graph." } })
    const noLabel = structuredClone(SEED) as any
    delete noLabel.edges[3].label
    const r = await call("PUT", "/v1/agents/sloppy/workflow", noLabel)
    expect(r.status).toBe(400)
    expect(r.json.error.issues).toEqual([{
      field: "nodes[2]",
      message:
        "node 'urgent': a condition needs two outgoing edges labelled 'true' and 'false'; it has 'true', an unlabelled one"
    }])
    const badData = structuredClone(SEED) as any
    badData.nodes[1].data.temprature = 0.5
    const unknown = await call("PUT", "/v1/agents/sloppy/workflow", badData)
    expect(unknown.status).toBe(400)
    expect(unknown.json.error.issues).toEqual([{
      field: "nodes[1].data.temprature",
      message: "node 'classify' (ai-step): unknown field: not part of this node's data"
    }])
    const extra = await call("PUT", "/v1/agents/sloppy/workflow", { ...SEED, layout: {} })
    expect(extra.status).toBe(400)
    expect(extra.json.error.issues[0].field).toBe("layout")
    // the same checks hold for a graph inside a spec
    const inSpec = await call("PUT", "/v1/agents/sloppy", { spec: { systemPrompt: "x", workflow: noLabel } })
    expect(inSpec.status).toBe(400)
    expect(inSpec.json.error.issues[0].field).toBe("spec.workflow.nodes[2]")
    // nothing was published
    expect((await call("GET", "/v1/agents/sloppy")).json.latestVersion).toBe(1)
    expect((await call("PUT", "/v1/agents/nobody/workflow", SEED)).status).toBe(404)
  }, 60_000)
})
