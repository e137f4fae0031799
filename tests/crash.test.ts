// Fault injection: the process driving a run is SIGKILLed while a model call is in flight; a restarted
// process continues the run from its journal. The provider (a local Chat Completions server) sees every
// completed step exactly once: nothing is re-spent, nothing is lost.
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Completions from "../schema/Completions.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import { echoer as agent } from "./support/Scripted.ts"
import { api, eventually, startStack } from "./support/Stack.ts"

let nats: TestServer
let model: FakeOpenAi.FakeOpenAi

beforeAll(async () => {
  nats = await startServer("lantern-crash")
  model = await FakeOpenAi.start(2)
}, 240_000)

afterAll(async () => {
  await model?.close()
  await nats?.cleanup()
})

describe("a host killed mid-run", () => {
  it("continues the run on restart without calling the provider again for completed steps", async () => {
    const home = mkdtempSync(join(tmpdir(), "lantern-crash-home-"))
    const env = { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: model.url, LANTERN_OPENAI_MODEL: "fake-1" }
    model.hold.add("turn-2")
    const first = await startStack({ natsUrl: nats.handle.url, home, env })
    const call = api(first)
    expect((await call("POST", "/v1/agents", agent)).status).toBe(201)
    const started = await call("POST", "/v1/runs", { agentName: "echoer", input: "go" })
    expect(started.status).toBe(201)
    const runId: string = started.json.id

    // the second model call is in flight (held by the provider): crash the host now
    const inFlight = await model.waitFor("turn-2", 1)
    expect(inFlight.key).toBe(`${runId}:turn-2:1`)
    await first.kill()
    expect(first.child.signalCode).toBe("SIGKILL")

    model.hold.clear()
    const second = await startStack({ natsUrl: nats.handle.url, home, env, port: Number(new URL(first.url).port) })
    try {
      const after = api(second)
      const run = await eventually(
        async () => {
          const r = await after("GET", `/v1/runs/${runId}`)
          return r.json?.status === "succeeded" ? r.json : null
        },
        45_000,
        "the run to finish after the restart"
      )
      expect(run.output).toBe("done after 2 tool calls")
      expect(run.steps).toBe(5)

      // the provider: turn-1 asked once; turn-2 asked twice under the same idempotency key (the host died
      // while the first request was unanswered; a restart is not a new attempt), answered once
      const asked = (step: string) => model.received.filter((r) => r.stepId === step && r.key.startsWith(runId)).length
      expect(asked("turn-1")).toBe(1)
      expect(asked("turn-2")).toBe(2)
      expect(asked("turn-3")).toBe(1)
      const answered = Object.fromEntries([...model.answered].filter(([k]) => k.startsWith(runId)))
      expect(answered).toEqual({ [`${runId}:turn-1:1`]: 1, [`${runId}:turn-2:1`]: 1, [`${runId}:turn-3:1`]: 1 })
      expect(model.received.filter((r) => r.stepId === "turn-2").map((r) => r.key)).toEqual([
        `${runId}:turn-2:1`,
        `${runId}:turn-2:1`
      ])

      // the journal: every step completed exactly once, no event lost or duplicated
      const stored = (await after("GET", `/v1/runs/${runId}/events`)).json.items as Array<
        { type: string; payload: { stepId?: string; attempt?: number } }
      >
      // a model step's answer and the built-in call it asks for are one StepsCompleted (ADR 0075)
      expect(stored.filter((e) => e.type === "StepsCompleted")).toHaveLength(2)
      const events = stored.flatMap(Completions.expand)
      const completed = events.filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId)
      expect(completed).toEqual(["turn-1", "turn-1.tool-0", "turn-2", "turn-2.tool-0", "turn-3"])
      // a step starts with a StepStarted, or, for a built-in tool, is journaled once with its request
      const starts = events.filter((e) =>
        e.type === "StepStarted" || (e.type === "StepCompleted" && (e.payload as { request?: unknown }).request)
      ).map((e) => `${e.payload.stepId}#${e.payload.attempt}`)
      expect(starts).toEqual(["turn-1#1", "turn-1.tool-0#1", "turn-2#1", "turn-2#1", "turn-2.tool-0#1", "turn-3#1"])
      expect(events.filter((e) => e.type === "RunSucceeded")).toHaveLength(1)
      expect(new Set(stored.map((e) => JSON.stringify(e))).size).toBe(stored.length)
      expect(run.tokensOut).toBe(3 * 7)
    } finally {
      await second.stop()
    }
  }, 120_000)

  it("cancel interrupts the model call in flight and journals RunCanceled", async () => {
    model.hold.add("turn-1")
    const stack = await startStack({
      natsUrl: nats.handle.url,
      env: { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: model.url }
    })
    try {
      const call = api(stack)
      await call("POST", "/v1/agents", { ...agent, name: "slow" })
      const started = await call("POST", "/v1/runs", { agentName: "slow", input: "wait" })
      await model.waitFor("turn-1", 1, started.json.id)
      const canceled = await call("POST", `/v1/runs/${started.json.id}/cancel`, { reason: "operator said so" })
      expect(canceled.status).toBe(200)
      expect(canceled.json.status).toBe("canceled")
      expect(canceled.json.error).toEqual({ code: "canceled", message: "operator said so" })
      // the driver stops: no completion or further step is ever journaled for the held call
      await eventually(
        async () => (await call("GET", `/v1/runs/${started.json.id}`)).json.status === "canceled",
        10_000
      )
      const events = (await call("GET", `/v1/runs/${started.json.id}/events`)).json.items.map((e: { type: string }) =>
        e.type
      )
      expect(events).toEqual(["RunStarted", "StepStarted", "RunCanceled"])
      expect(model.answered.get(`${started.json.id}:turn-1:1`)).toBeUndefined()
    } finally {
      model.hold.clear()
      await stack.stop()
    }
  }, 90_000)
})
