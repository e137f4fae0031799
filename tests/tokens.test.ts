// Live model tokens end to end over HTTP against the real `lantern serve` (ADR 0061): a run's model step streams
// its answer on `GET /v1/runs/{id}/tokens` in more than one piece, the pieces make the journaled answer, the stream
// ends with the run's terminal event, and it is tenant-scoped like every run route.
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Completions from "../schema/Completions.ts"
import * as Sse from "../schema/Sse.ts"
import { Lantern } from "../sdk/src/index.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as RawHttp from "./support/RawHttp.ts"
import { api, eventually, ROOT, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let callB: ReturnType<typeof api>

type Event = { type: string; payload: Record<string, any> }
/** A run's events, a StepsCompleted or a RunSucceeded with steps as the step completions it stands for (ADR 0067, 0077). */
const events = async (id: string): Promise<Array<Event>> =>
  (await call("GET", `/v1/runs/${id}/events`)).json.items.flatMap(Completions.expand)

const run = async (input: string) => {
  const r = await call("POST", "/v1/runs", { agentName: "careful", input })
  expect(r.status, r.text).toBe(201)
  return r.json.id as string
}

const APPROVAL = "turn-1.tool-0.approval"

/** Resolves once the run waits for a human before its answering model step. */
const approvalStarted = (id: string) =>
  eventually(
    async () => (await events(id)).some((e) => e.type === "StepStarted" && e.payload.stepId === APPROVAL),
    20_000,
    "the approval step"
  )

beforeAll(async () => {
  nats = await startServer("lantern-tokens")
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: { LANTERN_WORKFLOWS: join(ROOT, "tests/fixtures/workflows/tokens.ts") }
  })
  call = api(stack)
  const agent = await call("POST", "/v1/agents", {
    name: "careful",
    spec: {
      systemPrompt: "You are careful.",
      maxTurns: 4,
      tools: [{
        name: "echo",
        description: "echo",
        parameters: { type: "object", properties: {} },
        approval: { expiresInSeconds: 600 }
      }]
    }
  })
  expect(agent.status, agent.text).toBe(201)
  const tenant = await call("POST", "/v1/tenants", { name: "other" })
  expect(tenant.status, tenant.text).toBe(201)
  callB = api({ url: stack.url, token: tenant.json.key.key })
}, 240_000)

afterAll(() => stopStack(stack, nats))

/** An open SSE response read frame by frame. */
const open = async (path: string) => {
  const response = await fetch(`${stack.url}${path}`, {
    headers: { authorization: `Bearer ${stack.token}`, accept: "text/event-stream" }
  })
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toContain("text/event-stream")
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const decoder = Sse.makeDecoder()
  return {
    /** The next chunk of text (the first is the opening comment); null at the end. */
    chunk: async (): Promise<string | null> => {
      const r = await reader.read()
      return r.done ? null : r.value
    },
    /** The frames from here to the end of the stream. */
    rest: async (): Promise<Array<Sse.Message>> => {
      const out: Array<Sse.Message> = []
      for (;;) {
        const r = await reader.read()
        if (r.done) return [...out, ...decoder.end()]
        out.push(...decoder.push(r.value))
      }
    }
  }
}

describe("GET /v1/runs/{id}/tokens", () => {
  it("streams a model step's answer in more than one piece, the pieces make the journaled answer, then the terminal event", async () => {
    const id = await run("please echo hello token world")
    // the run waits for a human before its answering model step: the stream is open before that step runs
    await approvalStarted(id)
    const stream = await open(`/v1/runs/${id}/tokens`)
    expect(await stream.chunk()).toContain(": lantern run tokens")
    const approved = await call("POST", `/v1/runs/${id}/approvals/${APPROVAL}`, { approved: true, by: "test" })
    expect(approved.status, approved.text).toBe(200)
    const frames = await stream.rest()
    const tokens = frames.filter((f) => f.event === "token").map((f) => JSON.parse(f.data))
    expect(frames.filter((f) => f.event === "reset")).toEqual([])
    expect(frames.at(-1)!.event).toBe("RunSucceeded")
    const answered = (await events(id)).filter((e) =>
      e.type === "StepCompleted" && e.payload.result?._tag === "model" && e.payload.result.answer.content !== null
    )
    expect(answered).toHaveLength(1)
    const step = answered[0]!.payload
    const ofStep = tokens.filter((t) => t.stepId === step.stepId && t.attempt === step.attempt)
    expect(ofStep.length).toBeGreaterThan(1)
    expect(ofStep.map((t) => t.seq)).toEqual(ofStep.map((_, i) => i + 1))
    expect(ofStep.map((t) => t.text).join("")).toBe(step.result.answer.content)
    expect(step.result.answer.content).toContain("[offline] Tool results")
  })

  it("sends the terminal event with the end of its response, so a client that stops there keeps its connection (ADR 0087)", async () => {
    const id = await run("please echo the end")
    await approvalStarted(id)
    const raw = await RawHttp.open(stack.url)
    try {
      raw.send(`GET /v1/runs/${id}/tokens HTTP/1.1`, { authorization: `Bearer ${stack.token}` })
      await raw.readMatching(/: lantern run tokens/, 0)
      const approved = await call("POST", `/v1/runs/${id}/approvals/${APPROVAL}`, { approved: true, by: "test" })
      expect(approved.status, approved.text).toBe(200)
      // the terminal event arrives after the answer's tokens, in the read that ends the response
      const { read, next } = await RawHttp.lastAndNext(raw, /event: RunSucceeded\n/)
      expect(read).toMatch(RawHttp.ENDS_RESPONSE)
      expect(next).toContain("ok")
    } finally {
      raw.socket.destroy()
    }
  })

  it("streams a workflow's ctx.llm answer too", async () => {
    const started = await call("POST", "/v1/runs", { workflow: "streamer", input: null })
    expect(started.status, started.text).toBe(201)
    const id = started.json.id as string
    // the workflow waits for its signal: the stream is open before its model call
    await eventually(
      async () => (await call("GET", `/v1/runs/${id}`)).json.waiting?.stepId === "wait-go-1",
      20_000,
      "the workflow to wait for its signal"
    )
    const stream = await open(`/v1/runs/${id}/tokens`)
    expect(await stream.chunk()).toContain(": lantern run tokens")
    const sent = await call("POST", `/v1/runs/${id}/signals/go`, { value: true })
    expect(sent.status, sent.text).toBe(202)
    const frames = await stream.rest()
    expect(frames.at(-1)!.event).toBe("RunSucceeded")
    const tokens = frames.filter((f) => f.event === "token").map((f) => JSON.parse(f.data))
    expect(tokens.length).toBeGreaterThan(1)
    const output = (await call("GET", `/v1/runs/${id}`)).json.output
    expect(tokens.map((t) => t.text).join("")).toBe(output)
  })

  it("ends at once for a finished run, by HTTP and through the SDK", async () => {
    const id = await run("no tools here")
    await eventually(async () => (await call("GET", `/v1/runs/${id}`)).json.status === "succeeded", 30_000, "the run")
    const stream = await open(`/v1/runs/${id}/tokens`)
    expect((await stream.rest()).filter((f) => f.event !== "message")).toEqual([])
    const sdk = new Lantern({ baseUrl: stack.url, apiKey: stack.token })
    const seen: Array<unknown> = []
    for await (const t of sdk.runs.tokens(id)) seen.push(t)
    expect(seen).toEqual([])
  })

  it("is 404 for an unknown run and for another tenant's run", async () => {
    const id = await run("mine")
    expect((await call("GET", "/v1/runs/run_0000000000000000000000000z/tokens")).status).toBe(404)
    const other = await callB("GET", `/v1/runs/${id}/tokens`)
    expect(other.status).toBe(404)
    expect(other.json.error.code).toBe("run_not_found")
  })
})
