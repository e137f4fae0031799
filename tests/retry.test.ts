// Per-step retry and timeout policy from the agent spec, applied durably: attempts, exponential backoff with
// the wake-up time journaled on each failure (never before a provider's Retry-After), which error codes retry,
// step timeouts, and a retry count that survives a SIGKILL of the host. Against the real `lantern serve` and a
// local OpenAI-compatible server.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"

let nats: TestServer
let model: FakeOpenAi.FakeOpenAi
let stack: StackProcess
let call: ReturnType<typeof api>
let env: Record<string, string>

type Event = { type: string; at: string; payload: Record<string, any> }

const echo = {
  name: "echo",
  description: "echo",
  parameters: { type: "object", properties: { text: { type: "string" } } }
}

const agent = (name: string, policy: Record<string, unknown>) => ({
  name,
  spec: { systemPrompt: "You echo.", maxTurns: 4, tools: [echo], ...policy }
})

const startRun = async (c: typeof call, agentName: string) => {
  const r = await c("POST", "/v1/runs", { agentName, input: "go" })
  expect(r.status).toBe(201)
  return r.json.id as string
}

const finished = (c: typeof call, id: string, deadline = 30_000) =>
  eventually(
    async () => {
      const r = await c("GET", `/v1/runs/${id}`)
      return r.json?.status !== "running" ? r.json : null
    },
    deadline,
    `run ${id} to finish`
  )

const events = async (c: typeof call, id: string): Promise<Array<Event>> =>
  (await c("GET", `/v1/runs/${id}/events`)).json.items

const ofStep = (all: ReadonlyArray<Event>, type: string, stepId: string) =>
  all.filter((e) => e.type === type && e.payload.stepId === stepId)

beforeAll(async () => {
  nats = await startServer("lantern-retry")
  model = await FakeOpenAi.start(1)
  env = {
    OPENAI_API_KEY: "test-key",
    OPENAI_BASE_URL: model.url,
    LANTERN_OPENAI_MODEL: "fake-1",
    LANTERN_WATCHDOG_INTERVAL: "200 millis"
  }
  stack = await startStack({ natsUrl: nats.handle.url, env })
  call = api(stack)
  for (
    const a of [
      agent("patient", { retry: { maxAttempts: 4, initialBackoffMs: 300, multiplier: 2, jitter: 0 } }),
      agent("twice", { retry: { maxAttempts: 2, initialBackoffMs: 50, jitter: 0 } }),
      agent("timeouts-only", { retry: { retryOn: ["timeout"], initialBackoffMs: 50 } }),
      agent("impatient", { stepTimeoutMs: 500, retry: { initialBackoffMs: 50 } }),
      agent("slow-retry", { retry: { maxAttempts: 2, initialBackoffMs: 4000, jitter: 0 } })
    ]
  ) expect((await call("POST", "/v1/agents", a)).status).toBe(201)
}, 240_000)

afterAll(async () => {
  try {
    await stack?.stop()
    await model?.close()
  } finally {
    await nats?.cleanup()
  }
})

describe("retry policy", () => {
  it("retries with exponential backoff, journaling when each next attempt may start", async () => {
    model.failFirst("turn-1", 2, { status: 503 })
    const id = await startRun(call, "patient")
    const run = await finished(call, id)
    expect(run.status).toBe("succeeded")
    const all = await events(call, id)
    const failures = ofStep(all, "StepFailed", "turn-1")
    expect(failures.map((e) => [e.payload.attempt, e.payload.retryable, e.payload.error.code])).toEqual([
      [1, true, "provider_unavailable"],
      [2, true, "provider_unavailable"]
    ])
    // backoff 300 ms then 600 ms (no jitter), measured from each failure's journal time
    expect(failures[0]!.payload.retryAt - Date.parse(failures[0]!.at)).toBeGreaterThanOrEqual(290)
    expect(failures[0]!.payload.retryAt - Date.parse(failures[0]!.at)).toBeLessThan(400)
    expect(failures[1]!.payload.retryAt - Date.parse(failures[1]!.at)).toBeGreaterThanOrEqual(590)
    expect(failures[1]!.payload.retryAt - Date.parse(failures[1]!.at)).toBeLessThan(700)
    // no attempt started before its journaled time
    const starts = ofStep(all, "StepStarted", "turn-1")
    expect(starts.map((e) => e.payload.attempt)).toEqual([1, 2, 3])
    expect(Date.parse(starts[1]!.at)).toBeGreaterThanOrEqual(failures[0]!.payload.retryAt)
    expect(Date.parse(starts[2]!.at)).toBeGreaterThanOrEqual(failures[1]!.payload.retryAt)
    // each attempt is its own idempotency key; the effect happened once, on the third
    expect(model.effects.get(`${id}:turn-1:3`)).toBe(1)
    expect(model.effects.has(`${id}:turn-1:1`)).toBe(false)
  })

  it("waits out a 429's Retry-After before the next attempt, not just the policy's backoff", async () => {
    model.failFirst("turn-1", 1, { status: 429, retryAfterSeconds: 3 })
    // the backoff alone (300 ms) would retry well before the provider asked
    const id = await startRun(call, "patient")
    // while it waits, the run and the list (the projection) say so, with the time of the next attempt
    const waiting = await eventually(
      async () => {
        const listed = (await call("GET", "/v1/runs?agentName=patient")).json.items.find((r: { id: string }) =>
          r.id === id
        )
        return listed?.waiting?.kind === "retry" ? listed.waiting : null
      },
      20_000,
      "the run listed as waiting for its retry"
    )
    expect(waiting.stepId).toBe("turn-1")
    expect(Date.parse(waiting.until)).toBeGreaterThan(Date.now() - 3_000)
    const run = await finished(call, id)
    expect(run.status).toBe("succeeded")
    const all = await events(call, id)
    const [failure] = ofStep(all, "StepFailed", "turn-1")
    expect([failure!.payload.attempt, failure!.payload.retryable, failure!.payload.error.code]).toEqual([
      1,
      true,
      "rate_limited"
    ])
    // the wait counts from the end of the refused call, a moment before its failure was journaled
    expect(failure!.payload.retryAt - Date.parse(failure!.at)).toBeGreaterThan(1_900)
    const starts = ofStep(all, "StepStarted", "turn-1")
    expect(starts.map((e) => e.payload.attempt)).toEqual([1, 2])
    expect(Date.parse(starts[1]!.at)).toBeGreaterThanOrEqual(failure!.payload.retryAt)
    expect(Date.parse(starts[1]!.at) - Date.parse(starts[0]!.at)).toBeGreaterThanOrEqual(2_000)
  })

  it("fails the run when maxAttempts is used up", async () => {
    model.failFirst("turn-1", 2, { status: 500 })
    const id = await startRun(call, "twice")
    const run = await finished(call, id)
    expect(run.status).toBe("failed")
    expect(run.error.code).toBe("provider_unavailable")
    const failures = ofStep(await events(call, id), "StepFailed", "turn-1")
    expect(failures.map((e) => [e.payload.attempt, e.payload.retryable])).toEqual([[1, true], [2, false]])
  })

  it("does not retry error codes the policy leaves out of retryOn", async () => {
    model.failFirst("turn-1", 1, { status: 429, retryAfterSeconds: 1 })
    const id = await startRun(call, "timeouts-only")
    const run = await finished(call, id)
    expect(run.status).toBe("failed")
    expect(run.error.code).toBe("rate_limited")
    expect(ofStep(await events(call, id), "StepStarted", "turn-1")).toHaveLength(1)
  })

  it("times a step out after stepTimeoutMs and retries it", async () => {
    model.hold.add("turn-1")
    try {
      const id = await startRun(call, "impatient")
      const run = await finished(call, id)
      expect(run.status).toBe("succeeded")
      const failures = ofStep(await events(call, id), "StepFailed", "turn-1")
      expect(failures.map((e) => [e.payload.attempt, e.payload.error.code])).toEqual([[1, "timeout"]])
    } finally {
      model.hold.clear()
    }
  })

  it("keeps counting attempts across a SIGKILL of the host and waits out the journaled backoff", async () => {
    // every attempt fails: maxAttempts 2 means exactly one retry, even though the host dies in between
    model.failFirst("turn-1", 2, { status: 502 })
    const id = await startRun(call, "slow-retry")
    const failed = await eventually(
      async () => ofStep(await events(call, id), "StepFailed", "turn-1")[0],
      20_000,
      "attempt 1 to fail"
    )
    expect(failed.payload.attempt).toBe(1)
    await stack.kill()
    stack = await startStack({ natsUrl: nats.handle.url, home: stack.home, env, port: Number(new URL(stack.url).port) })
    const run = await finished(call, id)
    expect(run.status).toBe("failed")
    const all = await events(call, id)
    const starts = ofStep(all, "StepStarted", "turn-1")
    expect(starts.map((e) => e.payload.attempt)).toEqual([1, 2])
    expect(Date.parse(starts[1]!.at)).toBeGreaterThanOrEqual(failed.payload.retryAt)
    expect(ofStep(all, "StepFailed", "turn-1").map((e) => e.payload.attempt)).toEqual([1, 2])
  }, 60_000)
})
