// Events that cannot fit on the bus, against the real `lantern serve` process and a real nats-server: a request
// whose first event is over the server's max_payload is a quick 413 that leaves nothing behind, and a step whose
// result is too large to journal fails the run with `payload_too_large` once, instead of re-running forever.
import { jetstreamManager } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AGENTS, IDEMPOTENCY_BUCKET, LEASE_BUCKET, RUN_IDENTITIES_BUCKET, RUNS } from "../bus/Topology.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, startStack, type StackProcess, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let nc: NatsConnection
let call: ReturnType<typeof api>

const MAX_BODY_BYTES = 1024 * 1024
/** nats-server's default max_payload, which the test server keeps. */
const MAX_PAYLOAD = 1024 * 1024
/** Well under the 41-50 s a refused append used to be retried for before answering 503 (with room for a busy CI host). */
const QUICK_MS = 10_000

const plain = { name: "plain", spec: { systemPrompt: "You answer." } }
const echoer = {
  name: "echoer",
  spec: {
    systemPrompt: "You repeat.",
    maxTurns: 3,
    tools: [{ name: "echo", description: "repeats", parameters: { type: "object" } }]
  }
}

/** A POST /v1/runs body of exactly `bytes` bytes (ASCII), whose input is one long string. */
const runBodyOf = (agentName: string, bytes: number) => {
  const empty = JSON.stringify({ agentName, input: "" })
  return JSON.stringify({ agentName, input: "x".repeat(bytes - empty.length) })
}

const keysOf = async (bucket: string) => {
  const kv = await new Kvm(nc).open(bucket)
  const keys: Array<string> = []
  for await (const k of await kv.keys()) keys.push(k)
  return keys
}

const subjectsOf = async (stream: string) =>
  Object.keys((await (await jetstreamManager(nc)).streams.info(stream, { subjects_filter: ">" })).state.subjects ?? {})
    .sort()

/** An error body that says nothing of the bus's internals: no subject, no stream, no bucket. */
const expectNoInternals = (text: string) => {
  expect(text).not.toMatch(/lantern\.(run|agent|budget|audit|work|ctl)\./)
  expect(text).not.toMatch(/LANTERN_|lantern-/)
}

beforeAll(async () => {
  nats = await startServer("lantern-oversize")
  nc = await connect({ servers: nats.handle.url, name: "oversize-test" })
  expect(nc.info?.max_payload).toBe(MAX_PAYLOAD)
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  expect((await call("POST", "/v1/agents", plain)).status).toBe(201)
  expect((await call("POST", "/v1/agents", echoer)).status).toBe(201)
}, 240_000)

afterAll(async () => {
  await nc?.close()
  await stopStack(stack, nats)
})

describe("a request whose event cannot fit on the bus", () => {
  it("starting a run is refused with 413 at once, naming the limit, and leaves no run, lease, key or identity", async () => {
    const body = runBodyOf("plain", MAX_BODY_BYTES - 140)
    expect(body.length).toBeLessThanOrEqual(MAX_BODY_BYTES) // passes the body limit; its RunStarted does not fit
    const began = Date.now()
    const r = await call("POST", "/v1/runs", body, { "idempotency-key": "oversize-start" })
    const took = Date.now() - began
    expect(r.status, r.text).toBe(413)
    expect(took).toBeLessThan(QUICK_MS)
    expect(r.json.error.code).toBe("payload_too_large")
    expect(r.json.error.message).toContain(`limit of ${MAX_PAYLOAD} bytes`)
    expect(r.headers.get("retry-after")).toBeNull()
    expectNoInternals(r.text)

    // the same request again: the same quick refusal, not a run found under the key
    const again = await call("POST", "/v1/runs", body, { "idempotency-key": "oversize-start" })
    expect(again.status).toBe(413)

    expect(await subjectsOf(RUNS)).toEqual([])
    expect(await keysOf(LEASE_BUCKET)).toEqual([])
    expect(await keysOf(IDEMPOTENCY_BUCKET)).toEqual([])
    expect(await keysOf(RUN_IDENTITIES_BUCKET)).toEqual([])
    const list = await call("GET", "/v1/runs")
    expect(list.status).toBe(200)
    expect(list.json.items).toEqual([])
  })

  it("creating or updating an agent with a spec too large to journal is refused with 413 at once and changes nothing", async () => {
    // the system prompt is capped at 32,000 characters; a tool's JSON schema is not
    const huge = {
      systemPrompt: "You repeat.",
      tools: [{
        name: "echo",
        description: "repeats",
        parameters: { type: "object", description: "y".repeat(MAX_BODY_BYTES - 500) }
      }]
    }
    let began = Date.now()
    const created = await call("POST", "/v1/agents", { name: "huge", spec: huge })
    expect(Date.now() - began).toBeLessThan(QUICK_MS)
    expect(created.status, created.text).toBe(413)
    expect(created.json.error.code).toBe("payload_too_large")
    expectNoInternals(created.text)

    began = Date.now()
    const updated = await call("PUT", "/v1/agents/plain", { spec: huge })
    expect(Date.now() - began).toBeLessThan(QUICK_MS)
    expect(updated.status, updated.text).toBe(413)
    expect(updated.json.error.code).toBe("payload_too_large")
    expectNoInternals(updated.text)

    expect(await subjectsOf(AGENTS)).toEqual(["lantern.agent.dev.echoer", "lantern.agent.dev.plain"])
    expect((await call("GET", "/v1/agents/plain")).json.latestVersion).toBe(1)
    expect((await call("GET", "/v1/agents/huge")).status).toBe(404)
  })
})

describe("a step whose result cannot fit on the bus", () => {
  it("fails the run with payload_too_large within seconds, having run the model step once", async () => {
    // ~600 KB of quotes in an object input: the offline model quotes the input back as the echo tool's
    // argument, JSON inside JSON, so its answer (the step's completion) is about twice the input: over 1 MB
    const input = { text: `please echo this: ${"\"".repeat(290_000)}` }
    const body = JSON.stringify({ agentName: "echoer", input })
    expect(body.length).toBeGreaterThan(550_000)
    expect(body.length).toBeLessThan(MAX_PAYLOAD * 0.7)

    const started = await call("POST", "/v1/runs", body)
    expect(started.status, started.text).toBe(201)
    const id = started.json.id as string
    const run = await eventually(
      async () => {
        const r = await call("GET", `/v1/runs/${id}`)
        return r.json?.status === "running" ? null : r.json
      },
      15_000,
      `run ${id} to end`
    )
    expect(run.status).toBe("failed")
    expect(run.error.code).toBe("payload_too_large")
    expect(run.error.message).toContain(`limit of ${MAX_PAYLOAD} bytes`)
    expectNoInternals(JSON.stringify(run.error))

    const events = (await call("GET", `/v1/runs/${id}/events`)).json.items as ReadonlyArray<
      { type: string; payload: any }
    >
    expect(events.map((e) => e.type)).toEqual(["RunStarted", "StepStarted", "StepFailed", "RunFailed"])
    expect(events.filter((e) => e.type === "StepStarted" && e.payload.stepId === "turn-1")).toHaveLength(1)
    const failed = events.find((e) => e.type === "StepFailed")!
    expect(failed.payload).toMatchObject({
      stepId: "turn-1",
      attempt: 1,
      retryable: false,
      error: { code: "payload_too_large" }
    })
    expect(JSON.stringify(failed.payload).length).toBeLessThan(1_000) // sizes only, no payload
    // the run ended: its lease entry is gone, so the watchdog has nothing to recover
    await eventually(
      async () => !(await keysOf(LEASE_BUCKET)).some((k) => k.endsWith(id)),
      10_000,
      "the lease entry to go"
    )
  })
})
