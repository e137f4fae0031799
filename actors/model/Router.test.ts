// The router against real parts: OpenAI-compatible fakes on local ports, the breakers and the response cache
// in a real nats-server's buckets. Strategy ordering, failover on retryable failures only, per-candidate
// deadlines, breakers that skip a failing provider and close after a trial, the exact-match cache, and the
// route every answer and failure carries. Also Providers.layerConfig, the host's composition of all of it.
import { ConfigProvider, Effect, Layer, Option, Redacted, Tracer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Kv from "../../bus/Kv.ts"
import { Nats } from "../../bus/Nats.ts"
import * as Topology from "../../bus/Topology.ts"
import { ProviderError } from "../../schema/Errors.ts"
import { startServer, type TestServer } from "../../tests/support/Bus.ts"
import * as FakeAnthropic from "../../tests/support/FakeAnthropic.ts"
import * as FakeOpenAi from "../../tests/support/FakeOpenAi.ts"
import { deferrals } from "../../tests/support/Scripted.ts"
import { eventually } from "../../tests/support/Stack.ts"
import * as Breakers from "./Breakers.ts"
import type * as Catalog from "./Catalog.ts"
import { type Delta, ModelProvider, type Request, type Strategy } from "./ModelProvider.ts"
import * as Prices from "./Prices.ts"
import * as Providers from "./Providers.ts"
import * as ResponseCache from "./ResponseCache.ts"
import * as Router from "./Router.ts"
import * as Tokenizer from "./Tokenizer.ts"

let nats: TestServer
const bus = () => Nats.layerUrl(nats.handle.url, "lantern-router-test")

beforeAll(async () => {
  nats = await startServer("lantern-router")
  await Effect.runPromise(Topology.apply.pipe(Effect.provide(bus())))
  // quotes count tokens; the encoder's first load must not eat into a breaker's cooldown
  await Effect.runPromise(Tokenizer.warm)
}, 30_000)
afterAll(async () => {
  await nats?.cleanup()
})

const defer = deferrals()

/** A fresh FakeOpenAi answering text at once (no tool rounds), closed after the test. */
const fake = async () => {
  const f = await FakeOpenAi.start(0)
  defer(() => f.close())
  return f
}

let keys = 0
const request = (overrides: Partial<Request> = {}): Request => ({
  model: "auto",
  messages: [{ role: "system", content: "You answer." }, { role: "user", content: "go" }],
  tools: [],
  idempotencyKey: `run_r:turn-${++keys}:1`,
  ...overrides
})

let catalogs = 0
interface Server {
  readonly url: string
  readonly model?: string
  readonly timeoutMs?: number
}
/**
 * A catalogue of OpenAI-compatible providers at `servers`, named afresh for each test (p<n>-0, p<n>-1, ...) so
 * breaker state in the shared bucket does not carry over; `auto` lists them in order.
 */
const catalogOf = (servers: ReadonlyArray<Server>, strategy: Strategy = "best"): Catalog.Catalog => {
  const tag = ++catalogs
  const providers = servers.map((s, i): Catalog.Provider => ({
    name: `p${tag}-${i}`,
    api: "openai",
    baseUrl: s.url,
    apiKey: Redacted.make("test-key"),
    timeoutMs: s.timeoutMs ?? 10_000
  }))
  return {
    providers,
    aliases: { auto: providers.map((p, i) => ({ provider: p.name, model: servers[i]!.model ?? "fake-1" })) },
    strategy,
    cache: { enabled: true, ttlSeconds: 3600 },
    anthropicMaxTokens: 1024,
    source: "test"
  }
}
const names = (c: Catalog.Catalog) => c.providers.map((p) => p.name)

interface Options {
  readonly failures?: number
  readonly cooldownMs?: number
  readonly cache?: boolean
}

/** Runs `f` with a router over `catalog` (and the breakers it uses), on the test bus. */
const withRouter = <A, E>(
  catalog: Catalog.Catalog,
  f: (router: ModelProvider["Service"], breakers: Breakers.Breakers["Service"]) => Effect.Effect<A, E>,
  options: Options = {}
) =>
  Effect.gen(function*() {
    const breakerBucket = yield* Kv.open(Breakers.bucket)
    const breakers = yield* Breakers.make(breakerBucket, {
      failures: options.failures ?? 5,
      cooldownMs: options.cooldownMs ?? 30_000
    }, names(catalog))
    const cache = options.cache === true ? ResponseCache.make(yield* Kv.open(ResponseCache.bucket), 3600) : null
    const providers = yield* Providers.instances(catalog, Prices.defaults)
    return yield* f(Router.make({ catalog, providers, prices: Prices.defaults, breakers, cache }), breakers)
  }).pipe(Effect.scoped, Effect.provide(bus()), (e) => Effect.runPromise(e as Effect.Effect<A, E>))

const storedBreaker = async (provider: string) => {
  const state = await Effect.runPromise(
    Effect.gen(function*() {
      const kv = yield* Kv.open(Breakers.bucket)
      return Option.getOrNull(Option.map(yield* Effect.orDie(kv.get(provider)), (e) => e.value))
    }).pipe(Effect.provide(bus()))
  )
  return state
}

const down = { status: 500, message: "upstream exploded" }

describe("Router.order", () => {
  const cs = ["a/gpt-4.1", "b/gpt-4o-mini", "c/unpriced-model", "d/gpt-4o"].map((r) => {
    const [provider, model] = r.split("/") as [string, string]
    return { provider, model }
  })
  const refs = (xs: ReadonlyArray<Catalog.Candidate>) => xs.map((c) => `${c.provider}/${c.model}`)
  const price = (c: Catalog.Candidate) => Router.priceOf(Prices.defaults, c)
  const health = (h: Record<string, Router.Health>) => (c: Catalog.Candidate) => h[c.provider]

  it("best keeps the catalogue's order; cheap sorts by input + output price, unpriced last", () => {
    expect(refs(Router.order("best", cs, { price, health: health({}) }))).toEqual([
      "a/gpt-4.1",
      "b/gpt-4o-mini",
      "c/unpriced-model",
      "d/gpt-4o"
    ])
    expect(refs(Router.order("cheap", cs, { price, health: health({}) }))).toEqual([
      "b/gpt-4o-mini",
      "a/gpt-4.1",
      "d/gpt-4o",
      "c/unpriced-model"
    ])
    // ties keep the catalogue's order
    const twins = [{ provider: "x", model: "gpt-4o" }, { provider: "y", model: "gpt-4o" }]
    expect(refs(Router.order("cheap", twins, { price, health: health({}) }))).toEqual(["x/gpt-4o", "y/gpt-4o"])
  })

  it("fast sorts the observed candidates by latency in their places; unobserved ones keep theirs", () => {
    const h = health({
      a: { latencyMs: 900, errorRate: 0 },
      c: { latencyMs: 100, errorRate: 0 },
      d: { latencyMs: 400, errorRate: 0 }
    })
    expect(refs(Router.order("fast", cs, { price, health: h }))).toEqual([
      "c/unpriced-model",
      "b/gpt-4o-mini",
      "d/gpt-4o",
      "a/gpt-4.1"
    ])
    expect(refs(Router.order("fast", cs, { price, health: health({}) }))).toEqual(refs(cs))
  })

  it("balanced keeps the catalogue's order but moves failing and much slower candidates to the end", () => {
    const h = health({
      a: { latencyMs: 200, errorRate: 0.6 },
      b: { latencyMs: 2000, errorRate: 0 },
      c: { latencyMs: 300, errorRate: 0.1 },
      d: { latencyMs: 100, errorRate: 0 }
    })
    expect(refs(Router.order("balanced", cs, { price, health: h }))).toEqual([
      "c/unpriced-model",
      "d/gpt-4o",
      "a/gpt-4.1",
      "b/gpt-4o-mini"
    ])
    expect(refs(Router.order("balanced", cs, { price, health: health({}) }))).toEqual(refs(cs))
  })

  it("the moving averages of one host: errors push the rate up, answers bring it and the latency back", () => {
    const o = Router.makeObservations()
    const c = { provider: "a", model: "m" }
    o.record(c, false, 50)
    o.record(c, false, 50)
    expect(o.get(c)!.errorRate).toBeGreaterThanOrEqual(Router.TROUBLED_ERROR_RATE)
    expect(o.get(c)!.latencyMs).toBeUndefined()
    o.record(c, true, 100)
    o.record(c, true, 200)
    expect(o.get(c)!.errorRate).toBeLessThan(Router.TROUBLED_ERROR_RATE)
    expect(o.get(c)!.latencyMs).toBeCloseTo(130, 6)
  })
})

describe("Router against OpenAI-compatible fakes", () => {
  it("answers from the first healthy candidate, with its route", async () => {
    const a = await fake()
    const catalog = catalogOf([{ url: a.url }])
    const r = await withRouter(catalog, (router) => router.complete(request()))
    expect(r.answer).toMatchObject({
      content: "done after 0 tool calls",
      provider: `${names(catalog)[0]}`,
      model: "fake-1"
    })
    expect(r.route).toEqual({
      alias: "auto",
      strategy: "best",
      chosen: `${names(catalog)[0]}/fake-1`,
      reason: "first healthy candidate of auto (best)",
      cached: false,
      attempts: []
    })
  })

  it("fails over from a provider answering 500 to the next, and the route names the failed attempt", async () => {
    const a = await fake()
    const b = await fake()
    a.failAll(down)
    const catalog = catalogOf([{ url: a.url }, { url: b.url }])
    const [pa, pb] = names(catalog)
    const r = await withRouter(catalog, (router) => router.complete(request()))
    expect(r.answer.provider).toBe(pb)
    expect([a.failed.length, b.received.length]).toEqual([1, 1])
    expect(r.route).toMatchObject({
      alias: "auto",
      strategy: "best",
      chosen: `${pb}/fake-1`,
      cached: false,
      reason: "failover after 1 failed attempt; auto (best)"
    })
    expect(r.route!.attempts).toHaveLength(1)
    expect(r.route!.attempts[0]).toMatchObject({ provider: pa, model: "fake-1", code: "provider_unavailable" })
    expect(r.route!.attempts[0]!.message).toContain("HTTP 500")
    expect(r.route!.attempts[0]!.message).toContain("upstream exploded")
    expect(r.route!.attempts[0]!.durationMs).toBeGreaterThanOrEqual(0)
  })

  it("a 429 with retry-after fails over, filed as rate_limited", async () => {
    const a = await fake()
    const b = await fake()
    a.failAll({ status: 429, retryAfterSeconds: 3 })
    const catalog = catalogOf([{ url: a.url }, { url: b.url }])
    const r = await withRouter(catalog, (router) => router.complete(request()))
    expect(r.route!.chosen).toBe(`${names(catalog)[1]}/fake-1`)
    expect(r.route!.attempts[0]).toMatchObject({ code: "rate_limited" })
    expect(r.route!.attempts[0]!.message).toContain("retry-after: 3")
  })

  it("a non-retryable 400 does not fail over: the error carries the route, and the next provider is never called", async () => {
    const a = await fake()
    const b = await fake()
    a.failAll({ status: 400, message: "bad tools" })
    const catalog = catalogOf([{ url: a.url }, { url: b.url }])
    const e: ProviderError = await withRouter(catalog, (router) => Effect.flip(router.complete(request())))
    expect([e._tag, e.kind, e.status, e.retryable]).toEqual(["ProviderError", "refused", 400, false])
    expect(e.reason).toContain("bad tools")
    expect(b.received).toHaveLength(0)
    expect(e.route).toMatchObject({ alias: "auto", chosen: null, cached: false })
    expect(e.route!.attempts.map((x) => x.code)).toEqual(["provider_error"])
    expect(e.route!.reason).toContain("not retryable")
  })

  it("when every candidate fails the error is retryable, carries every attempt, and keeps the last status", async () => {
    const a = await fake()
    const b = await fake()
    a.failAll(down)
    b.failAll({ status: 429, retryAfterSeconds: 1 })
    const catalog = catalogOf([{ url: a.url }, { url: b.url }])
    const e: ProviderError = await withRouter(catalog, (router) => Effect.flip(router.complete(request())))
    expect([e.retryable, e.kind, e.status, e.provider]).toEqual([true, "rate_limited", 429, names(catalog)[1]])
    // the first candidate may be tried again at once, so the error asks for no wait
    expect(e.retryAfterMs).toBeUndefined()
    expect(e.route!.chosen).toBeNull()
    expect(e.route!.reason).toBe("every candidate of auto failed")
    expect(e.route!.attempts.map((x) => [x.provider, x.code])).toEqual([[names(catalog)[0], "provider_unavailable"], [
      names(catalog)[1],
      "rate_limited"
    ]])
    expect(e.message).toContain("every candidate of auto failed")
  })

  it("when the only candidate asks to be left alone (Retry-After), the error carries the wait", async () => {
    const a = await fake()
    a.failAll({ status: 429, retryAfterSeconds: 3 })
    const catalog = catalogOf([{ url: a.url }])
    const e: ProviderError = await withRouter(catalog, (router) => Effect.flip(router.complete(request())))
    expect([e.kind, e.retryable, e.retryAfterMs]).toEqual(["rate_limited", true, 3_000])
  })

  it("a hung provider's own deadline lets the call fail over in time", async () => {
    const a = await fake()
    const b = await fake()
    const req = request()
    a.hold.add(req.idempotencyKey.split(":")[1]!)
    const catalog = catalogOf([{ url: a.url, timeoutMs: 300 }, { url: b.url }])
    const started = Date.now()
    const r = await withRouter(catalog, (router) => router.complete(req))
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(r.route!.chosen).toBe(`${names(catalog)[1]}/fake-1`)
    expect(r.route!.attempts[0]).toMatchObject({ code: "timeout" })
    expect(r.route!.attempts[0]!.durationMs).toBeGreaterThanOrEqual(250)
  })

  it("the cheap strategy tries the cheaper model first", async () => {
    const a = await fake()
    const b = await fake()
    const catalog = catalogOf([{ url: a.url, model: "gpt-4.1" }, { url: b.url, model: "gpt-4o-mini" }], "best")
    const r = await withRouter(catalog, (router) => router.complete(request({ strategy: "cheap" })))
    expect(r.route).toMatchObject({
      strategy: "cheap",
      chosen: `${names(catalog)[1]}/gpt-4o-mini`,
      reason: "first healthy candidate of auto (cheap)"
    })
    expect(a.received).toHaveLength(0)
  })

  it("sends each candidate its own model, with the request's temperature and output cap", async () => {
    const a = await fake()
    const catalog = catalogOf([{ url: a.url, model: "llama3.2" }])
    await withRouter(catalog, (router) => router.complete(request({ temperature: 0.3, maxTokens: 99 })))
    expect(a.bodies[0]).toMatchObject({ model: "llama3.2", temperature: 0.3, max_tokens: 99 })
  })
})

describe("Router tracing", () => {
  it("emits a span per attempt with the GenAI attributes, usage and cost", async () => {
    const a = await fake()
    const b = await fake()
    a.failAll(down)
    const spans: Array<Tracer.Span> = []
    const recording = Tracer.make({
      span(options) {
        const span = Tracer.nativeTracer.span(options)
        spans.push(span)
        return span
      }
    })
    const catalog = catalogOf([{ url: a.url, model: "gpt-4o" }, { url: b.url, model: "gpt-4o-mini" }])
    const [pa, pb] = names(catalog)
    await withRouter(
      catalog,
      (router) => Effect.withTracer(router.complete(request({ temperature: 0.5, maxTokens: 64 })), recording)
    )
    const attempts = spans.filter((s) => s.name === "gen_ai.route.attempt")
    expect(attempts.map((s) => s.attributes.get("lantern.provider"))).toEqual([pa, pb])
    expect(attempts[0]!.attributes.get("error.type")).toBe("provider_unavailable")
    const answered = attempts[1]!.attributes
    const keys = [
      "gen_ai.system",
      "gen_ai.request.model",
      "gen_ai.request.temperature",
      "gen_ai.request.max_tokens",
      "gen_ai.usage.input_tokens",
      "gen_ai.usage.output_tokens"
    ]
    expect(Object.fromEntries(keys.map((k) => [k, answered.get(k)])))
      .toEqual({
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 7
      })
    expect(answered.get("lantern.cost_usd")).toBeCloseTo((20 * 0.15 + 7 * 0.6) / 1e6, 12)
    const route = spans.find((s) => s.name === "gen_ai.route")!
    expect(route.attributes.get("lantern.route.chosen")).toBe(`${pb}/gpt-4o-mini`)
  })
})

describe("Router and the shared breakers", () => {
  it("after N failures the provider is skipped as circuit_open; quotes leave it out; after the cooldown a trial closes it", async () => {
    const a = await fake()
    const b = await fake()
    a.failAll(down)
    const catalog = catalogOf([{ url: a.url, model: "gpt-4o" }, { url: b.url, model: "gpt-4o-mini" }])
    const [pa, pb] = names(catalog) as [string, string]
    await withRouter(catalog, (router, breakers) =>
      Effect.gen(function*() {
        for (let i = 0; i < 3; i++)
          expect((yield* router.complete(request())).route!.attempts[0]!.code).toBe("provider_unavailable")
        expect(yield* breakers.isOpen(pa)).toBe(true)
        const skipped = yield* router.complete(request())
        expect(skipped.route!.attempts).toEqual([{
          provider: pa,
          model: "gpt-4o",
          code: "circuit_open",
          message: `circuit of ${pa} is open`,
          durationMs: 0
        }])
        expect(skipped.route!.reason).toBe("1 candidate skipped (circuit open); auto (best)")
        expect(a.received).toHaveLength(3)
        // a quote counts only the candidates that may be called
        expect((yield* router.quote(request())).models).toEqual([`${pb}/gpt-4o-mini`])
      }), { failures: 3, cooldownMs: 1500 })
    expect(await storedBreaker(pa)).toMatchObject({ state: "open", failures: 3 })
    expect(await storedBreaker(pb)).toBeNull()

    // another host's router sees it open from the bucket, and once the cooldown is over makes the trial
    a.failAll(null)
    await withRouter(catalog, (router) =>
      Effect.gen(function*() {
        const stored = (yield* Effect.promise(() => storedBreaker(pa)))!
        yield* Effect.promise(() => eventually(async () => Date.now() > stored.until, 5_000, "the cooldown to pass"))
        const trial = yield* router.complete(request())
        expect(trial.route).toMatchObject({
          chosen: `${pa}/gpt-4o`,
          reason: "half-open trial call; auto (best)",
          attempts: []
        })
      }), { failures: 3, cooldownMs: 1500 })
    expect(await storedBreaker(pa)).toMatchObject({ state: "closed", failures: 0 })
  })

  it("when every candidate's breaker is open the call fails at once, retryably, and the quote counts them all", async () => {
    const a = await fake()
    a.failAll(down)
    const catalog = catalogOf([{ url: a.url }])
    const [pa] = names(catalog) as [string]
    await withRouter(catalog, (router) =>
      Effect.gen(function*() {
        yield* Effect.flip(router.complete(request()))
        const e = yield* Effect.flip(router.complete(request()))
        expect([e.retryable, e.kind]).toEqual([true, "unavailable"])
        // the next attempt is worth making once the breaker's cooldown is over, not before
        expect(e.retryAfterMs).toBeGreaterThan(25_000)
        expect(e.retryAfterMs).toBeLessThanOrEqual(30_000)
        expect(e.route!.attempts.map((x) => x.code)).toEqual(["circuit_open"])
        expect(a.received).toHaveLength(1)
        expect((yield* router.quote(request())).models).toEqual([`${pa}/fake-1`])
      }), { failures: 1 })
  })
})

describe("Router and the response cache", () => {
  it("a temperature-0 request identical to an answered one is served from the cache: no call, no cost, route.cached", async () => {
    const a = await fake()
    const catalog = catalogOf([{ url: a.url, model: "gpt-4o-mini" }])
    const deterministic = {
      temperature: 0,
      tenant: "t1",
      messages: [{ role: "system" as const, content: "s" }, { role: "user" as const, content: `q${catalogs}` }]
    }
    await withRouter(catalog, (router) =>
      Effect.gen(function*() {
        const first = yield* router.complete(request(deterministic))
        expect(first.route!.cached).toBe(false)
        expect(first.costUsd).toBeGreaterThan(0)
        // another step (another idempotency key) asking the same
        const second = yield* router.complete(request(deterministic))
        expect(a.received).toHaveLength(1)
        expect(second.answer).toEqual(first.answer)
        expect([second.tokensIn, second.tokensOut, second.costUsd]).toEqual([0, 0, 0])
        expect(second.route).toEqual({
          alias: "auto",
          strategy: "best",
          chosen: first.route!.chosen,
          reason: "cache hit",
          cached: true,
          attempts: []
        })
        // another tenant, cache turned off, another conversation, another temperature: all go to the provider
        yield* router.complete(request({ ...deterministic, tenant: "t2" }))
        yield* router.complete(request({ ...deterministic, cache: false }))
        yield* router.complete(request({ ...deterministic, maxTokens: 12 }))
        yield* router.complete(request({ ...deterministic, temperature: 0.7 }))
        yield* router.complete(request({ ...deterministic, temperature: 0.7 }))
        expect(a.received).toHaveLength(6)
      }), { cache: true })
  })

  it("the key covers tenant, candidates, conversation, tools and sampling, and not the idempotency key", () => {
    const base = request({ temperature: 0, tenant: "t" })
    const cs = [{ provider: "a", model: "m" }]
    const key = ResponseCache.keyOf(base, cs)
    expect(key).toMatch(/^[0-9a-f]{64}$/)
    expect(ResponseCache.keyOf({ ...base, idempotencyKey: "other:turn-1:2" }, cs)).toBe(key)
    for (
      const changed of [
        ResponseCache.keyOf({ ...base, tenant: "u" }, cs),
        ResponseCache.keyOf(base, [{ provider: "a", model: "n" }]),
        ResponseCache.keyOf({ ...base, messages: [...base.messages, { role: "user", content: "more" }] }, cs),
        ResponseCache.keyOf({ ...base, tools: [{ name: "echo", description: "", parameters: {} }] }, cs),
        ResponseCache.keyOf({ ...base, maxTokens: 5 }, cs)
      ]
    ) expect(changed).not.toBe(key)
    expect(ResponseCache.isCacheable(base)).toBe(true)
    expect(ResponseCache.isCacheable({ ...base, cache: false })).toBe(false)
    expect(ResponseCache.isCacheable({ ...base, temperature: 0.1 })).toBe(false)
    expect(ResponseCache.isCacheable(request())).toBe(false)
  })
})

describe("Providers.layerConfig", () => {
  let anthropic: FakeAnthropic.FakeAnthropic
  beforeAll(async () => {
    anthropic = await FakeAnthropic.start()
  })
  afterAll(() => anthropic.close())

  const withProvider = <A, E>(env: Record<string, string>, f: (p: ModelProvider["Service"]) => Effect.Effect<A, E>) =>
    Effect.runPromise(
      Effect.gen(function*() {
        return yield* f(yield* ModelProvider)
      }).pipe(
        Effect.provide(Providers.layerConfig.pipe(
          Layer.provide(bus()),
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
        ))
      ) as Effect.Effect<A, never>
    )

  it("is the offline provider without a key, the router with one", async () => {
    expect(await withProvider({}, (p) => Effect.succeed(p.name))).toBe("offline")
    expect(await withProvider({ ANTHROPIC_API_KEY: "k" }, (p) => Effect.succeed(p.name))).toBe("router")
    const offline = await withProvider({}, (p) => p.complete(request()))
    expect(offline.answer.provider).toBe("offline")
    expect(offline.route).toMatchObject({ chosen: "offline/offline-echo-1", cached: false })
  })

  it("with both keys, auto's candidates are OpenAI's then Anthropic's", async () => {
    const q = await withProvider({ ANTHROPIC_API_KEY: "k", OPENAI_API_KEY: "o" }, (p) => p.quote(request()))
    expect(q.models).toEqual(["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"])
  })

  it("the configured Anthropic provider talks to ANTHROPIC_BASE_URL with LANTERN_ANTHROPIC_MODEL and LANTERN_ANTHROPIC_MAX_TOKENS", async () => {
    anthropic.reply(FakeAnthropic.text("configured"))
    const n = anthropic.requests.length
    const env = {
      ANTHROPIC_API_KEY: anthropic.apiKey,
      ANTHROPIC_BASE_URL: `${anthropic.url}/`,
      LANTERN_ANTHROPIC_MODEL: "claude-haiku-4-5",
      LANTERN_ANTHROPIC_MAX_TOKENS: "333"
    }
    const r = await withProvider(env, (p) => p.complete(request()))
    expect(r.answer.content).toBe("configured")
    expect(r.route!.chosen).toBe("anthropic/claude-haiku-4-5")
    expect(anthropic.requests[n]!.body.model).toBe("claude-haiku-4-5")
    expect(anthropic.requests[n]!.body.max_tokens).toBe(333)
  })

  it("a bad models file stops the host's start, naming the file and the field", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.gen(function*() {
        return (yield* ModelProvider).name
      }).pipe(
        Effect.provide(Providers.layerConfig.pipe(
          Layer.provide(bus()),
          Layer.provide(
            ConfigProvider.layer(ConfigProvider.fromUnknown({ LANTERN_MODELS_FILE: "/nonexistent/models.json" }))
          )
        ))
      )
    )
    expect(String(exit)).toContain("models file /nonexistent/models.json (LANTERN_MODELS_FILE): cannot be read")
  })
})

describe("Router: live deltas (ADR 0061)", () => {
  /** A provider that streams `pieces`, then answers them joined, or fails retryably after them. */
  const scripted = (name: string, pieces: ReadonlyArray<string>, fails: boolean): ModelProvider["Service"] =>
    ModelProvider.of({
      name,
      quote: () => Effect.die("not quoted"),
      complete: (r) =>
        Effect.suspend(() => {
          for (const text of pieces) r.onDelta?.({ _tag: "text", text })
          return fails
            ? Effect.fail(new ProviderError({ provider: name, kind: "unavailable", reason: "cut", retryable: true }))
            : Effect.succeed({
              answer: { content: pieces.join(""), toolCalls: [], finishReason: "stop", provider: name, model: "m" },
              tokensIn: 1,
              tokensOut: 1,
              costUsd: 0
            })
        })
    })

  const routed = (catalog: Catalog.Catalog, providers: ReadonlyMap<string, ModelProvider["Service"]>, r: Request) =>
    Effect.gen(function*() {
      const breakers = yield* Breakers.make(yield* Kv.open(Breakers.bucket), { failures: 5, cooldownMs: 30_000 }, [
        ...providers.keys()
      ])
      return yield* Router.make({ catalog, providers, prices: Prices.defaults, breakers, cache: null }).complete(r)
    }).pipe(Effect.scoped, Effect.provide(bus()), Effect.runPromise)

  it("forwards the answering provider's deltas; a failover after some deltas sends a reset first", async () => {
    const catalog = catalogOf([{ url: "http://127.0.0.1:9" }, { url: "http://127.0.0.1:9" }])
    const [a, b] = names(catalog) as [string, string]
    const deltas: Array<Delta> = []
    const r = await routed(
      catalog,
      new Map([[a, scripted(a, ["Hel", "lo"], true)], [b, scripted(b, ["Good", "bye"], false)]]),
      request({ onDelta: (d) => deltas.push(d) })
    )
    expect(deltas).toEqual([
      { _tag: "text", text: "Hel" },
      { _tag: "text", text: "lo" },
      { _tag: "reset" },
      { _tag: "text", text: "Good" },
      { _tag: "text", text: "bye" }
    ])
    // what a viewer keeps after the last reset is the answer
    const after = deltas.slice(deltas.findLastIndex((d) => d._tag === "reset") + 1)
    expect(after.map((d) => (d._tag === "text" ? d.text : "")).join("")).toBe(r.answer.content)
    expect(r.route!.chosen).toBe(`${b}/fake-1`)
  })

  it("a failure before any delta sends no reset", async () => {
    const catalog = catalogOf([{ url: "http://127.0.0.1:9" }, { url: "http://127.0.0.1:9" }])
    const [a, b] = names(catalog) as [string, string]
    const deltas: Array<Delta> = []
    await routed(
      catalog,
      new Map([[a, scripted(a, [], true)], [b, scripted(b, ["ok"], false)]]),
      request({ onDelta: (d) => deltas.push(d) })
    )
    expect(deltas).toEqual([{ _tag: "text", text: "ok" }])
  })

  it("a cached answer is one delta", async () => {
    const f = await fake()
    const catalog = catalogOf([{ url: f.url }])
    const deltas: Array<Delta> = []
    await withRouter(catalog, (router) =>
      Effect.gen(function*() {
        const r = request({ temperature: 0, idempotencyKey: "run_c:turn-1:1" })
        yield* router.complete(r)
        const hit = yield* router.complete({ ...r, idempotencyKey: "run_c:turn-1:2", onDelta: (d) => deltas.push(d) })
        expect(hit.route!.cached).toBe(true)
        expect(deltas).toEqual([{ _tag: "text", text: hit.answer.content }])
      }), { cache: true })
  })
})
