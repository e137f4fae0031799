// What the model router adds to a call: N sequential calls to a local OpenAI-compatible fake through the
// Router (alias resolution, ordering, the breaker mirror live on the bus, cache off) against the same calls
// made with the OpenAI provider directly. Calls alternate between the two so drift hits both alike.
import { Effect, Redacted } from "effect"
import type * as Catalog from "../actors/model/Catalog.ts"
import type { Request } from "../actors/model/ModelProvider.ts"
import * as OpenAi from "../actors/model/OpenAi.ts"
import * as Prices from "../actors/model/Prices.ts"
import * as Router from "../actors/model/Router.ts"
import * as Breakers from "../actors/model/Breakers.ts"
import * as Kv from "../bus/Kv.ts"
import * as FakeOpenAi from "../tests/support/FakeOpenAi.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

/** Calls each way at BENCH_SCALE=1. */
export const CALLS = 500

export interface Result {
  readonly calls: number
  readonly direct: Stats.Summary
  readonly routed: Stats.Summary
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

const request = (n: number): Request => ({
  model: "auto",
  messages: [{ role: "system", content: "You answer briefly." }, { role: "user", content: `question ${n}` }],
  tools: [],
  idempotencyKey: `bench_router:turn-${n}:1`,
  maxTokens: 256
})

const timed = <A, E>(e: Effect.Effect<A, E>, samples: Array<number>) =>
  Effect.suspend(() => {
    const t = performance.now()
    return Effect.tap(e, () => Effect.sync(() => samples.push(performance.now() - t)))
  })

export const run = (scale: number) =>
  Effect.gen(function*() {
    const calls = Math.max(20, Math.round(CALLS * scale))
    const fake = yield* Effect.acquireRelease(Effect.promise(() => FakeOpenAi.start(0)), (f) =>
      Effect.promise(() => f.close()))
    const settings: OpenAi.Settings = {
      name: "bench",
      baseUrl: fake.url,
      apiKey: Redacted.make("test-key"),
      defaultModel: "fake-1",
      timeoutMs: 10_000
    }
    const catalog: Catalog.Catalog = {
      providers: [{ name: "bench", api: "openai", baseUrl: fake.url, apiKey: settings.apiKey, timeoutMs: 10_000 }],
      aliases: { auto: [{ provider: "bench", model: "fake-1" }] },
      strategy: "balanced",
      cache: { enabled: false, ttlSeconds: 60 },
      anthropicMaxTokens: 1024,
      source: "bench"
    }
    const breakers = yield* Breakers.make(yield* Kv.open(Breakers.bucket), { failures: 5, cooldownMs: 30_000 }, [
      "bench"
    ])
    const direct = OpenAi.make(settings, Prices.defaults)
    const router = Router.make({
      catalog,
      providers: new Map([["bench", direct]]),
      prices: Prices.defaults,
      breakers,
      cache: null
    })

    yield* progress(`router: ${calls} calls each way, direct and through the router`)
    const warm = Math.max(10, Math.round(calls / 10))
    for (let i = 0; i < warm; i++) {
      yield* direct.complete(request(-1 - i))
      yield* router.complete(request(-1 - i))
    }
    const directMs: Array<number> = []
    const routedMs: Array<number> = []
    const started = performance.now()
    for (let i = 0; i < calls; i++) {
      // alternate which goes first, so neither always follows the other
      if (i % 2 === 0) {
        yield* timed(direct.complete(request(i)), directMs)
        yield* timed(router.complete(request(i)), routedMs)
      } else {
        yield* timed(router.complete(request(i)), routedMs)
        yield* timed(direct.complete(request(i)), directMs)
      }
    }
    const wall = (performance.now() - started) / 2
    return { calls, direct: Stats.summarize(directMs, wall), routed: Stats.summarize(routedMs, wall) } satisfies Result
  }).pipe(Effect.scoped)

const ms = (x: number) => x.toFixed(3)

export const render = (r: Result): string =>
  [
    `8. Model router overhead (${r.calls} sequential calls each way to a local Chat Completions fake; breaker mirror live, response cache off)`,
    table(
      ["path", "calls", "median ms", "p99 ms", "max ms"],
      [
        [
          "OpenAi provider directly",
          String(r.direct.count),
          ms(r.direct.medianMs),
          ms(r.direct.p99Ms),
          ms(r.direct.maxMs)
        ],
        ["through the Router", String(r.routed.count), ms(r.routed.medianMs), ms(r.routed.p99Ms), ms(r.routed.maxMs)],
        ["added by the Router", "", ms(r.routed.medianMs - r.direct.medianMs), ms(r.routed.p99Ms - r.direct.p99Ms), ""]
      ]
    ),
    "   added = router figure - direct figure (median and p99 each taken on its own; a negative value is noise)"
  ].join("\n")

const round = (x: number, digits: number) => Number(x.toFixed(digits))

/** The figures as one `BENCH_ROUTER_JSON {...}` line. */
export const json = (r: Result): string =>
  `BENCH_ROUTER_JSON ${
    JSON.stringify({
      calls: r.calls,
      directMedianMs: round(r.direct.medianMs, 4),
      directP99Ms: round(r.direct.p99Ms, 4),
      routedMedianMs: round(r.routed.medianMs, 4),
      routedP99Ms: round(r.routed.p99Ms, 4),
      addedMedianMs: round(r.routed.medianMs - r.direct.medianMs, 4),
      addedP99Ms: round(r.routed.p99Ms - r.direct.p99Ms, 4)
    })
  }`
