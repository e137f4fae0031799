// A2A (ADR 0045) against a real stack: an agent made public has a card that validates against the A2A spec's JSON
// Schema (tests/fixtures/a2a/a2a.json, v0.3.0), as does the deployment's card listing it; a private agent has none;
// `message/send` starts a run and answers it as a completed Task, `tasks/get` reads it back, and JSON-RPC's errors
// and the bearer key guard the endpoint.
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

type Schema = Record<string, any>
const SPEC = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures/a2a/a2a.json"), "utf8")) as Schema
const PUBLIC_URL = "https://agents.example.com"

/** The draft-07 keywords the spec's schema uses for its types: $ref into `definitions`, anyOf, type, const, enum, required, properties, items, additionalProperties. */
const validate = (schema: Schema, value: unknown, path = "$"): Array<string> => {
  if (typeof schema["$ref"] === "string") {
    return validate(SPEC["definitions"][schema["$ref"].replace("#/definitions/", "")], value, path)
  }
  if (Array.isArray(schema["anyOf"])) {
    return schema["anyOf"].some((s: Schema) => validate(s, value, path).length === 0)
      ? []
      : [`${path} matches none of anyOf`]
  }
  const actual = value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : Number.isInteger(value)
    ? "integer"
    : typeof value
  const types = schema["type"] === undefined ? [] : [schema["type"]].flat()
  if (types.length > 0 && !types.some((t) => t === actual || (t === "number" && actual === "integer"))) {
    return [`${path} is ${actual}, not ${types.join("|")}`]
  }
  const out: Array<string> = []
  if ("const" in schema && schema["const"] !== value) out.push(`${path} is not ${JSON.stringify(schema["const"])}`)
  if (Array.isArray(schema["enum"]) && !schema["enum"].includes(value)) out.push(`${path} is not in the enum`)
  if (Array.isArray(value) && schema["items"] !== undefined) {
    value.forEach((v, i) => out.push(...validate(schema["items"], v, `${path}[${i}]`)))
  }
  if (actual === "object") {
    const obj = value as Record<string, unknown>
    for (const name of schema["required"] ?? []) if (!(name in obj)) out.push(`${path}.${name} is required`)
    for (const [name, v] of Object.entries(obj)) {
      const property = schema["properties"]?.[name]
      if (property !== undefined) out.push(...validate(property, v, `${path}.${name}`))
      else if (schema["additionalProperties"] === false) out.push(`${path}.${name} is not allowed`)
      else if (typeof schema["additionalProperties"] === "object") {
        out.push(...validate(schema["additionalProperties"], v, `${path}.${name}`))
      }
    }
  }
  return out
}
const definition = (name: string): Schema => ({ $ref: `#/definitions/${name}` })

let nats: TestServer
let dir: string
let stack: StackProcess
let call: ReturnType<typeof api>

beforeAll(async () => {
  nats = await startServer("lantern-a2a")
  dir = mkdtempSync(join(tmpdir(), "lantern-a2a-"))
  stack = await startStack({
    natsUrl: nats.handle.url,
    home: join(dir, "home"),
    env: { LANTERN_PUBLIC_URL: PUBLIC_URL, LANTERN_EGRESS_ALLOW_PRIVATE: "127.0.0.1" }
  })
  call = api(stack)
  for (const name of ["helper", "secret-agent"]) {
    const r = await call("POST", "/v1/agents", {
      name,
      description: `The ${name}`,
      spec: { systemPrompt: "You help." }
    })
    expect(r.status).toBe(201)
  }
}, 120_000)

afterAll(async () => {
  await stack?.kill()
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const anonymous = (path: string, init: RequestInit = {}) => fetch(`${stack.url}${path}`, init)

const rpc = async (path: string, body: unknown, token: string | null = stack.token) => {
  const r = await fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
  return { status: r.status, json: await r.json() as any }
}

const send = (text: string, extra: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id: 1,
  method: "message/send",
  params: { message: { kind: "message", role: "user", messageId: "m-1", parts: [{ kind: "text", text }] }, ...extra }
})

describe("agent cards", () => {
  it("a private agent has no card; made public, its card validates against the spec's AgentCard", async () => {
    onTestFailed(() => console.error(stack.output()))
    const hidden = await anonymous("/v1/agents/helper/card")
    expect(hidden.status).toBe(404)
    expect((await hidden.json() as any).error.code).toBe("agent_not_found")

    expect((await call("PUT", "/v1/agents/helper/visibility", { public: true })).json).toEqual({ public: true })
    expect((await call("PUT", "/v1/agents/nobody/visibility", { public: true })).status).toBe(404)
    expect((await call("PUT", "/v1/agents/helper/visibility", { public: "yes" })).status).toBe(400)

    const r = await anonymous("/v1/agents/helper/card")
    expect(r.status).toBe(200)
    const card = await r.json() as any
    expect(validate(definition("AgentCard"), card)).toEqual([])
    expect(card).toMatchObject({
      name: "helper",
      description: "The helper",
      url: `${PUBLIC_URL}/a2a/dev/helper`,
      protocolVersion: "0.3.0",
      capabilities: { streaming: true },
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      security: [{ bearer: [] }]
    })
    expect(card.skills.map((s: any) => s.id)).toEqual(["dev/helper"])
    // the validator does catch a card the spec refuses
    const { url: _, ...noUrl } = card
    expect(validate(definition("AgentCard"), noUrl)).toEqual(["$.url is required"])
    expect(validate(definition("AgentCard"), { ...card, securitySchemes: { bearer: { type: "http" } } }))
      .not.toEqual([])

    expect((await anonymous("/v1/agents/secret-agent/card")).status).toBe(404)
    expect((await anonymous("/v1/agents/helper/card?tenant=other")).status).toBe(404)
  })

  it("the deployment's card lists its public agents as skills, and validates", async () => {
    const r = await anonymous("/.well-known/agent-card.json")
    expect(r.status).toBe(200)
    const card = await r.json() as any
    expect(validate(definition("AgentCard"), card)).toEqual([])
    expect(card.url).toBe(`${PUBLIC_URL}/a2a`)
    expect(card.skills.map((s: any) => s.id)).toEqual(["dev/helper"])
  })

  it("made private again, the agent's card is gone", async () => {
    await call("PUT", "/v1/agents/secret-agent/visibility", { public: true })
    expect((await anonymous("/v1/agents/secret-agent/card")).status).toBe(200)
    await call("PUT", "/v1/agents/secret-agent/visibility", { public: false })
    expect((await anonymous("/v1/agents/secret-agent/card")).status).toBe(404)
  })
})

describe("the JSON-RPC endpoint", () => {
  let taskId = ""

  it("message/send to a public agent starts a run and answers its result as a completed Task", async () => {
    onTestFailed(() => console.error(stack.output()))
    const r = await rpc("/a2a/dev/helper", send("Say hello"))
    expect(r.status).toBe(200)
    expect(r.json.jsonrpc).toBe("2.0")
    expect(r.json.id).toBe(1)
    const task = r.json.result
    expect(validate(definition("Task"), task)).toEqual([])
    expect(task.status.state).toBe("completed")
    expect(task.id).toMatch(/^run_/)
    taskId = task.id
    const run = (await call("GET", `/v1/runs/${taskId}`)).json
    expect(run).toMatchObject({ agentName: "helper", input: "Say hello", status: "succeeded" })
    const output = task.artifacts[0].parts[0]
    expect(output.kind === "text" ? output.text : output.data).toEqual(run.output)
  })

  it("tasks/get answers the run as a task; an unknown id is the spec's task-not-found", async () => {
    const r = await rpc("/a2a/dev/helper", { jsonrpc: "2.0", id: "g", method: "tasks/get", params: { id: taskId } })
    expect(validate(definition("Task"), r.json.result)).toEqual([])
    expect(r.json.result).toMatchObject({ id: taskId, status: { state: "completed" } })
    const missing = await rpc("/a2a/dev/helper", {
      jsonrpc: "2.0",
      id: "g",
      method: "tasks/get",
      params: { id: "run_00000000000000000000000000" }
    })
    expect(missing.json.error.code).toBe(-32001)
    expect(validate(definition("JSONRPCErrorResponse"), missing.json)).toEqual([])
  })

  it("the deployment's endpoint takes the agent from the message's skill", async () => {
    const r = await rpc("/a2a", send("Hi", { metadata: { skill: "dev/helper" } }))
    expect(r.json.result.status.state).toBe("completed")
    const unnamed = await rpc("/a2a", send("Hi"))
    expect(unnamed.json.error.code).toBe(-32602)
    expect((await rpc("/a2a", send("Hi", { metadata: { skill: "other/helper" } }))).status).toBe(404)
    expect((await rpc("/a2a", send("Hi", { metadata: { skill: "dev/*" } }))).status).toBe(404)
  })

  it("answers JSON-RPC's errors: unknown method, bad params, bad JSON", async () => {
    const method = await rpc("/a2a/dev/helper", {
      jsonrpc: "2.0",
      id: 2,
      method: "tasks/pushNotificationConfig/set",
      params: {}
    })
    expect(method.json.error.code).toBe(-32601)
    expect(validate(definition("JSONRPCErrorResponse"), method.json)).toEqual([])
    const noText = await rpc("/a2a/dev/helper", {
      ...send(""),
      params: { message: { kind: "message", role: "user", messageId: "m", parts: [] } }
    })
    expect(noText.json.error.code).toBe(-32602)
    expect((await rpc("/a2a/dev/helper", "{not json")).json.error.code).toBe(-32700)
    expect((await rpc("/a2a/dev/helper", { id: 3, method: "message/send" })).json.error.code).toBe(-32600)
  })

  it("refuses a call without a token (401), a key without the scope (403) and a private agent (404)", async () => {
    const anon = await rpc("/a2a/dev/helper", send("Hi"), null)
    expect(anon.status).toBe(401)
    const reader = (await call("POST", "/v1/api-keys", { name: "a2a-reader", scopes: ["runs:read"] })).json.key
    expect((await rpc("/a2a/dev/helper", send("Hi"), reader)).status).toBe(403)
    const read = await rpc(
      "/a2a/dev/helper",
      { jsonrpc: "2.0", id: 4, method: "tasks/get", params: { id: taskId } },
      reader
    )
    expect(read.json.result.id).toBe(taskId)
    const hidden = await rpc("/a2a/dev/secret-agent", send("Hi"))
    expect(hidden.status).toBe(404)
    expect((await call("GET", "/v1/runs?agentName=secret-agent")).json.items).toEqual([])
  })
})

/** A streamed JSON-RPC answer's events (each `data:` line a JSON-RPC response), read until the stream ends. */
const streamed = async (path: string, body: unknown) => {
  const r = await fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "text/event-stream",
      authorization: `Bearer ${stack.token}`
    },
    body: JSON.stringify(body)
  })
  expect(r.headers.get("content-type")).toContain("text/event-stream")
  return (await r.text()).split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)))
}

describe("streaming and cancel", () => {
  it("message/stream answers the task, its output as an artifact-update and a final status-update", async () => {
    const events = await streamed("/a2a/dev/helper", { ...send("Stream this"), id: "s1", method: "message/stream" })
    for (const e of events) expect(validate(definition("SendStreamingMessageSuccessResponse"), e)).toEqual([])
    expect(events.every((e) => e.id === "s1")).toBe(true)
    expect(events[0].result.kind).toBe("task")
    const artifact = events.find((e) => e.result.kind === "artifact-update")
    expect(artifact.result.artifact.artifactId).toBe("output")
    const last = events.at(-1).result
    expect(last).toMatchObject({ kind: "status-update", final: true, status: { state: "completed" } })
    expect(events.filter((e) => e.result.final === true)).toHaveLength(1)
    const run = (await call("GET", `/v1/runs/${last.taskId}`)).json
    expect(run.status).toBe("succeeded")

    // a finished task: resubscribing answers it and its final status at once; it can no longer be canceled
    const again = await streamed("/a2a/dev/helper", {
      jsonrpc: "2.0",
      id: "r1",
      method: "tasks/resubscribe",
      params: { id: last.taskId }
    })
    expect(again.map((e) => e.result.kind)).toEqual(["task", "status-update"])
    expect(again[1].result.final).toBe(true)
    const late = await rpc("/a2a/dev/helper", {
      jsonrpc: "2.0",
      id: "c1",
      method: "tasks/cancel",
      params: { id: last.taskId }
    })
    expect(late.json.error.code).toBe(-32002)
    expect(validate(definition("JSONRPCErrorResponse"), late.json)).toEqual([])
  })

  it("tasks/cancel of a task waiting for a human cancels its run, and its stream ends canceled", async () => {
    const waiter = await call("POST", "/v1/agents", {
      name: "waiter",
      spec: {
        systemPrompt: "Echo, with approval.",
        tools: [{
          name: "echo",
          description: "echo",
          parameters: { type: "object", properties: {} },
          approval: { expiresInSeconds: 600 }
        }]
      }
    })
    expect(waiter.status, waiter.text).toBe(201)
    expect((await call("PUT", "/v1/agents/waiter/visibility", { public: true })).status).toBe(200)
    const sent = await rpc("/a2a/dev/waiter", send("echo please", { configuration: { blocking: false } }))
    const taskId = sent.json.result.id
    await eventually(
      async () => (await call("GET", `/v1/runs/${taskId}`)).json.waiting?.kind === "approval" ? true : null,
      30_000,
      "the run to wait for approval"
    )
    const stream = streamed("/a2a/dev/waiter", {
      jsonrpc: "2.0",
      id: "w",
      method: "tasks/resubscribe",
      params: { id: taskId }
    })
    const canceled = await rpc("/a2a/dev/waiter", {
      jsonrpc: "2.0",
      id: "c2",
      method: "tasks/cancel",
      params: { id: taskId }
    })
    expect(validate(definition("CancelTaskSuccessResponse"), canceled.json)).toEqual([])
    expect(canceled.json.result.status.state).toBe("canceled")
    const events = await stream
    expect(events[0].result).toMatchObject({ kind: "task", status: { state: "working" } })
    expect(events.at(-1).result).toMatchObject({ kind: "status-update", final: true, status: { state: "canceled" } })
    expect((await call("GET", `/v1/runs/${taskId}`)).json.status).toBe("canceled")
  }, 60_000)
})

describe("an A2A agent as a tool", () => {
  it(
    "answers a tool call with a remote agent's task: here this deployment's own public helper, over HTTP",
    async () => {
      const visible = await call("PUT", "/v1/agents/helper/visibility", { public: true })
      expect(visible.status, visible.text).toBe(200)
      expect((await call("POST", "/v1/secrets", { name: "a2a-key", value: stack.token })).status).toBe(201)
      const port = new URL(stack.url).port
      expect((await call("PUT", "/v1/egress", { hosts: [`127.0.0.1:${port}`] })).status).toBe(200)
      const asker = await call("POST", "/v1/agents", {
        name: "asker",
        spec: {
          systemPrompt: "Ask the helper.",
          tools: [{
            name: "ask_helper",
            description: "Asks the helper agent",
            parameters: { type: "object", properties: { text: { type: "string" } } },
            a2a: { url: `${stack.url}/a2a/dev/helper`, auth: { bearer: "lantern.secret://a2a-key" } }
          }]
        }
      })
      expect(asker.status, asker.text).toBe(201)
      const started = await call("POST", "/v1/runs", { agentName: "asker", input: "ask_helper about lanterns" })
      expect(started.status, started.text).toBe(201)
      const deadline = Date.now() + 60_000
      let run: any
      while (Date.now() < deadline) {
        run = (await call("GET", `/v1/runs/${started.json.id}`)).json
        if (run.status !== "running") break
        await new Promise((r) => setTimeout(r, 200))
      }
      expect(run.status, JSON.stringify(run)).toBe("succeeded")
      const events = (await call("GET", `/v1/runs/${started.json.id}/events`)).json.items as Array<any>
      const output = events.find((e) => e.type === "StepCompleted" && e.payload.result._tag === "tool")!.payload.result
        .output as string
      // the helper (offline model) answered the asker's message: its run's output came back as the tool's output
      expect(output).toContain("[offline] Received")
      expect(output).toContain("ask_helper about lanterns")
      expect(JSON.stringify(events)).not.toContain(stack.token)
    },
    120_000
  )
})
