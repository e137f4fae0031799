// The model router end to end: the real `lantern serve` with a models file naming two OpenAI-compatible
// providers (local fakes), a real nats-server holding the shared breakers and the response cache. Failover is
// journaled in each step's route; the breaker opens on the bus, is seen by another host, and closes after its
// cooldown; temperature-0 runs with identical input are answered from the cache.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Kvm } from "@nats-io/kv"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Breakers, decode } from "../actors/model/Breakers.ts"
import * as Completions from "../schema/Completions.ts"
import { Nats } from "../bus/Nats.ts"
import { BREAKERS_BUCKET } from "../bus/Topology.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import { echoer, MODEL_STEPS } from "./support/Scripted.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"

const FAILURES = 3
/** Long enough for the checks between opening and the trial, short enough to wait out. */
const COOLDOWN_MS = 4_000

let nats: TestServer
let primary: FakeOpenAi.FakeOpenAi
let backup: FakeOpenAi.FakeOpenAi
let stack: StackProcess
let call: ReturnType<typeof api>
let dir: string

type Event = { type: string; payload: Record<string, any> }

beforeAll(async () => {
  nats = await startServer("lantern-router-e2e")
  primary = await FakeOpenAi.start(2)
  backup = await FakeOpenAi.start(2)
  dir = mkdtempSync(join(tmpdir(), "lantern-router-e2e-"))
  const file = join(dir, "models.json")
  writeFileSync(
    file,
    JSON.stringify({
      providers: {
        primary: { api: "openai", baseUrl: primary.url, apiKeyEnv: "FAKE_MODEL_KEY", timeoutMs: 5000 },
        backup: { api: "openai", baseUrl: backup.url, apiKeyEnv: "FAKE_MODEL_KEY", timeoutMs: 5000 }
      },
      aliases: { auto: ["primary/fake-1", "backup/fake-1"], solo: ["backup/fake-1"] },
      strategy: "best"
    })
  )
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: {
      LANTERN_MODELS_FILE: file,
      FAKE_MODEL_KEY: "test-key",
      LANTERN_BREAKER_FAILURES: String(FAILURES),
      LANTERN_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
      LANTERN_WATCHDOG_INTERVAL: "200 millis"
    }
  })
  call = api(stack)
  const deterministic = { ...echoer.spec, model: "solo", temperature: 0 }
  for (
    const agent of [
      echoer,
      { name: "cached", spec: deterministic },
      {
        name: "uncached",
        spec: { ...deterministic, systemPrompt: "Echo twice, then finish. No cache.", routing: { cache: false } }
      }
    ]
  ) expect((await call("POST", "/v1/agents", agent)).status).toBe(201)
}, 240_000)

afterAll(async () => {
  try {
    await stack?.stop()
    await primary?.close()
    await backup?.close()
  } finally {
    await nats?.cleanup()
    rmSync(dir, { recursive: true, force: true })
  }
})

const run = async (agentName: string) => {
  const started = await call("POST", "/v1/runs", { agentName, input: "go" })
  expect(started.status).toBe(201)
  const id: string = started.json.id
  const done = await eventually(
    async () => {
      const r = await call("GET", `/v1/runs/${id}`)
      return r.json?.status !== "running" ? r.json : null
    },
    30_000,
    `run ${id} to finish`
  )
  expect(done.status).toBe("succeeded")
  // a StepsCompleted as the step completions it stands for (ADR 0067, 0075)
  const events: Array<Event> = (await call("GET", `/v1/runs/${id}/events`)).json.items.flatMap(Completions.expand)
  const completed = (stepId: string) =>
    events.find((e) => e.type === "StepCompleted" && e.payload.stepId === stepId)!.payload
  return { id, completed }
}

const asked = (fake: FakeOpenAi.FakeOpenAi, runId: string) =>
  fake.received.filter((r) => r.key.startsWith(`${runId}:`)).length

/** The breaker of `provider` as the bucket holds it. */
const storedBreaker = (provider: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const { js } = yield* Nats
      const kv = yield* Effect.promise(() => new Kvm(js).open(BREAKERS_BUCKET))
      const e = yield* Effect.promise(() => kv.get(provider))
      return e === null ? undefined : decode(e.string())
    }).pipe(Effect.provide(Nats.layerUrl(nats.handle.url, "lantern-router-e2e-reader")))
  )

describe("the response cache", () => {
  it("a second temperature-0 run with identical input is answered from the cache: no provider call, no cost", async () => {
    const first = await run("cached")
    expect(asked(backup, first.id)).toBe(MODEL_STEPS.length)
    const second = await run("cached")
    expect(asked(backup, second.id)).toBe(0)
    for (const step of MODEL_STEPS) {
      const original = first.completed(step)
      const hit = second.completed(step)
      expect(original.route).toMatchObject({ alias: "solo", chosen: "backup/fake-1", cached: false })
      expect(hit.route).toEqual({
        alias: "solo",
        strategy: "best",
        chosen: "backup/fake-1",
        reason: "cache hit",
        cached: true,
        attempts: []
      })
      expect(hit.result).toEqual(original.result)
      expect([hit.costUsd, hit.tokensIn, hit.tokensOut]).toEqual([0, 0, 0])
    }
  })

  it("with routing.cache false every run calls the provider", async () => {
    const first = await run("uncached")
    const second = await run("uncached")
    expect([asked(backup, first.id), asked(backup, second.id)]).toEqual([MODEL_STEPS.length, MODEL_STEPS.length])
    expect(second.completed("turn-1").route).toMatchObject({
      cached: false,
      reason: "first healthy candidate of solo (best)"
    })
  })
})

describe("failover and the shared breaker", () => {
  it("a run completes on the second provider while the first answers 500s; each step's route shows the failed attempt", async () => {
    primary.failAll({ status: 500, message: "primary is down" })
    const r = await run("echoer")
    expect(asked(backup, r.id)).toBe(MODEL_STEPS.length)
    const turn1 = r.completed("turn-1")
    expect(turn1.result.answer.provider).toBe("backup")
    expect(turn1.route).toMatchObject({
      alias: "auto",
      strategy: "best",
      chosen: "backup/fake-1",
      cached: false,
      reason: "failover after 1 failed attempt; auto (best)"
    })
    expect(turn1.route.attempts).toHaveLength(1)
    expect(turn1.route.attempts[0]).toMatchObject({
      provider: "primary",
      model: "fake-1",
      code: "provider_unavailable"
    })
    expect(turn1.route.attempts[0].message).toContain("primary is down")
    expect(turn1.route.attempts[0].durationMs).toBeGreaterThanOrEqual(0)
  })

  it(
    `after ${FAILURES} failures the breaker is open in the bucket, for this host and another, and closes after the cooldown`,
    async () => {
      // the run before failed the primary once per model step
      const opened = await storedBreaker("primary")
      expect(opened).toMatchObject({ state: "open", failures: FAILURES })
      expect(stack.output()).toContain(`breaker primary opened after ${FAILURES} failures`)

      // this host skips the primary without calling it
      const before = primary.received.length
      const skipped = await run("echoer")
      expect(primary.received.length).toBe(before)
      expect(skipped.completed("turn-1").route.attempts).toEqual([
        {
          provider: "primary",
          model: "fake-1",
          code: "circuit_open",
          message: "circuit of primary is open",
          durationMs: 0
        }
      ])

      // another host reads the same state from the bucket
      const elsewhere = await Effect.runPromise(
        Effect.gen(function*() {
          const breakers = Context.get(yield* Layer.build(Breakers.layer(["primary"])), Breakers)
          return { open: yield* breakers.isOpen("primary"), state: breakers.current("primary") }
        }).pipe(
          Effect.scoped,
          Effect.provide(Nats.layerUrl(nats.handle.url, "lantern-router-e2e-host2")),
          Effect.provide(
            ConfigProvider.layer(ConfigProvider.fromUnknown({ LANTERN_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS) }))
          )
        )
      )
      expect(elsewhere).toMatchObject({ open: true, state: { state: "open", failures: FAILURES } })

      // the primary recovers; once the cooldown is over the next call is the trial, and its success closes the breaker
      primary.failAll(null)
      await eventually(async () => Date.now() > opened!.until + 50, COOLDOWN_MS + 5_000, "the cooldown to pass")
      const recovered = await run("echoer")
      expect(recovered.completed("turn-1").route).toMatchObject({
        chosen: "primary/fake-1",
        reason: "half-open trial call; auto (best)",
        attempts: []
      })
      expect(recovered.completed("turn-3").route).toMatchObject({
        chosen: "primary/fake-1",
        reason: "first healthy candidate of auto (best)"
      })
      expect(await storedBreaker("primary")).toMatchObject({ state: "closed", failures: 0 })
      await eventually(async () => stack.output().includes("breaker primary closed"), 5_000, "the close to be logged")
    },
    60_000
  )
})
