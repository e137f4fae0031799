import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigProvider, Effect, Exit, Layer, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Nats } from "../../bus/Nats.ts"
import { freePort } from "../../bus/NatsServer.ts"
import * as Topology from "../../bus/Topology.ts"
import { startServer, type TestServer } from "../../tests/support/Bus.ts"
import * as FakeAnthropic from "../../tests/support/FakeAnthropic.ts"
import * as AnthropicAnswer from "./AnthropicAnswer.ts"
import { ModelProvider, type Request } from "./ModelProvider.ts"
import * as OpenAi from "./OpenAi.ts"
import * as Prices from "./Prices.ts"
import * as Providers from "./Providers.ts"

let dir: string
// the providers' layer keeps its circuit breakers and response cache on the bus
let nats: TestServer
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lantern-prices-"))
  nats = await startServer("lantern-prices")
})
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await nats?.cleanup()
})

let files = 0
/** A price file holding `content` (JSON-encoded unless a string). */
const priceFile = (content: unknown) => {
  const file = join(dir, `prices-${++files}.json`)
  writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content))
  return file
}

const withEnv = (env: Record<string, string>) => Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
/** Providers.layerConfig under `env`, on the test bus with its buckets applied. */
const providers = (env: Record<string, string>) =>
  Providers.layerConfig.pipe(
    Layer.provide(
      Layer.effectDiscard(Topology.apply).pipe(Layer.provideMerge(Nats.layerUrl(nats.handle.url, "lantern-test")))
    ),
    withEnv(env)
  )

const loadTable = (env: Record<string, string>) =>
  Effect.runPromiseExit(
    Effect.gen(function*() {
      return yield* Prices.Prices
    }).pipe(Effect.provide(Prices.layerConfig.pipe(withEnv(env))))
  )

const loaded = async (env: Record<string, string>) => {
  const exit = await loadTable(env)
  if (Exit.isFailure(exit)) throw new Error(`expected a table, got ${String(exit.cause)}`)
  return exit.value
}

const refusal = async (file: string): Promise<Prices.PricesFileInvalid> => {
  const exit = await Effect.runPromiseExit(
    Prices.fromConfig.pipe(
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ LANTERN_PRICES_FILE: file })))
    )
  )
  if (Exit.isSuccess(exit)) throw new Error(`expected ${file} to be refused, got a table`)
  const error = exit.cause.reasons.flatMap((r) => (r._tag === "Fail" ? [r.error] : []))[0]
  expect(error).toBeInstanceOf(Prices.PricesFileInvalid)
  return error as Prices.PricesFileInvalid
}

const perMillion = (usd: number) => usd * 1_000_000

describe("Prices: the built-in table", () => {
  it("holds the list prices the providers charged before the table existed", async () => {
    const table = await loaded({})
    expect(table).toBe(Prices.defaults)
    expect(table.version).toBe("2026-11-01")
    // OpenAi.ts and Anthropic.ts priced these before; the numbers must not move
    const before: Record<string, readonly [number, number]> = {
      "gpt-4o-mini": [0.15, 0.6],
      "gpt-4o": [2.5, 10],
      "gpt-4.1-mini": [0.4, 1.6],
      "gpt-4.1": [2, 8],
      "claude-sonnet-4-5": [3, 15],
      "claude-haiku-4-5": [1, 5],
      "claude-opus-4-1": [15, 75]
    }
    for (const [model, [input, output]] of Object.entries(before)) {
      expect(Prices.costOf(table, model, { input: 1_000_000, output: 0, cachedInput: 0 })).toEqual({
        usd: input,
        priced: true
      })
      expect(Prices.costOf(table, model, { input: 0, output: 1_000_000, cachedInput: 0 })).toEqual({
        usd: output,
        priced: true
      })
    }
    expect(Object.keys(table.models).sort()).toEqual(Object.keys(before).sort())
    expect(table.models["claude-sonnet-4-5"]).toEqual({
      inputPerMTok: 3,
      outputPerMTok: 15,
      cachedInputPerMTok: 0.3,
      cacheWriteInputPerMTok: 3.75
    })
    expect(table.models["claude-haiku-4-5"]).toMatchObject({ cachedInputPerMTok: 0.1, cacheWriteInputPerMTok: 1.25 })
    expect(table.models["claude-opus-4-1"]).toMatchObject({ cachedInputPerMTok: 1.5, cacheWriteInputPerMTok: 18.75 })
  })
})

describe("Prices.costOf", () => {
  const t = Prices.defaults

  it("bills cached input at the cached rate and not again at the input rate", () => {
    // gpt-4o: 600 uncached × $2.50 + 400 cached × $1.25 + 100 out × $10, per million
    const cost = Prices.costOf(t, "gpt-4o", { input: 1000, output: 100, cachedInput: 400 })
    expect(cost.priced).toBe(true)
    expect(perMillion(cost.usd)).toBeCloseTo(600 * 2.5 + 400 * 1.25 + 100 * 10, 9)
    // all of it cached: no input-rate tokens at all
    expect(perMillion(Prices.costOf(t, "gpt-4o", { input: 1000, output: 0, cachedInput: 1000 }).usd)).toBeCloseTo(
      1250,
      9
    )
  })

  it("bills cache writes at their own rate where the model has one, at the input rate where it has none", () => {
    // claude-sonnet-4-5: 1000 × $3 + 2000 cached × $0.30 + 400 written × $3.75 + 500 out × $15
    const usage = { input: 3400, output: 500, cachedInput: 2000, cacheWriteInput: 400 }
    expect(perMillion(Prices.costOf(t, "claude-sonnet-4-5", usage).usd)).toBeCloseTo(3000 + 600 + 1500 + 7500, 9)
    expect(perMillion(Prices.costOf(t, "gpt-4o-mini", usage).usd)).toBeCloseTo(
      1400 * 0.15 + 2000 * 0.075 + 500 * 0.6,
      9
    )
  })

  it("never bills negative input when a provider reports more cached tokens than prompt tokens", () => {
    expect(perMillion(Prices.costOf(t, "gpt-4o", { input: 10, output: 0, cachedInput: 50 }).usd)).toBeCloseTo(
      50 * 1.25,
      9
    )
  })

  it("prices a dated snapshot as its base model", () => {
    for (
      const [dated, base] of [
        ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5"],
        ["gpt-4o-mini-2024-07-18", "gpt-4o-mini"],
        ["gpt-4.1-2025-04-14", "gpt-4.1"]
      ] as const
    ) {
      const usage = { input: 1234, output: 567, cachedInput: 89 }
      expect(Prices.costOf(t, dated, usage)).toEqual(Prices.costOf(t, base, usage))
      expect(Prices.priceOf(t, dated)?.model).toBe(base)
    }
  })

  it("prefers a snapshot's own entry over its base model's", () => {
    const table = Prices.merge(t, {
      version: "x",
      models: { "gpt-4o-2024-05-13": { inputPerMTok: 5, outputPerMTok: 15, cachedInputPerMTok: 5 } }
    })
    expect(Prices.costOf(table, "gpt-4o-2024-05-13", { input: 1_000_000, output: 0, cachedInput: 0 }).usd).toBe(5)
    expect(Prices.costOf(table, "gpt-4o-2024-08-06", { input: 1_000_000, output: 0, cachedInput: 0 }).usd).toBe(2.5)
  })

  it("reports a model missing from the table as unpriced, at 0, and does not price it as a model whose name it extends", () => {
    const usage = { input: 1000, output: 1000, cachedInput: 0 }
    expect(Prices.costOf(t, "claude-unknown-9", usage)).toEqual({ usd: 0, priced: false })
    expect(Prices.costOf(t, "gpt-4.1-nano", usage)).toEqual({ usd: 0, priced: false })
    expect(Prices.costOf(t, "gpt-4o-mini-search-preview", usage)).toEqual({ usd: 0, priced: false })
    expect(Prices.costOf(t, "toString", usage)).toEqual({ usd: 0, priced: false })
    expect(Prices.costOf(t, "", usage)).toEqual({ usd: 0, priced: false })
  })
})

describe("Prices.layerConfig: LANTERN_PRICES_FILE", () => {
  it("merges the file over the defaults: its entries replace whole models, its version names the table", async () => {
    const file = priceFile({
      version: "2027-01-15",
      models: {
        "gpt-4o": { inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 1 },
        "llama-3.3-70b": { inputPerMTok: 0.2, outputPerMTok: 0.2, cachedInputPerMTok: 0.2 }
      }
    })
    const table = await loaded({ LANTERN_PRICES_FILE: file })
    expect(table.version).toBe("2027-01-15")
    expect(table.models["gpt-4o"]).toEqual({ inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 1 })
    expect(table.models["llama-3.3-70b"]).toEqual({ inputPerMTok: 0.2, outputPerMTok: 0.2, cachedInputPerMTok: 0.2 })
    expect(table.models["gpt-4o-mini"]).toEqual(Prices.defaults.models["gpt-4o-mini"])
    // the defaults themselves are untouched
    expect(Prices.defaults.models["gpt-4o"]?.inputPerMTok).toBe(2.5)
    expect(Prices.costOf(table, "gpt-4o-2024-08-06", { input: 1_000_000, output: 0, cachedInput: 0 })).toEqual({
      usd: 2,
      priced: true
    })
  })

  it("an entry replaces a model's prices whole: a file without a cache-write price drops the built-in one", async () => {
    const file = priceFile({
      version: "v2",
      models: { "claude-haiku-4-5": { inputPerMTok: 0.8, outputPerMTok: 4, cachedInputPerMTok: 0.08 } }
    })
    const table = await loaded({ LANTERN_PRICES_FILE: file })
    expect(table.models["claude-haiku-4-5"]).toEqual({ inputPerMTok: 0.8, outputPerMTok: 4, cachedInputPerMTok: 0.08 })
  })

  it("refuses a missing file, naming it", async () => {
    const file = join(dir, "nowhere.json")
    const e = await refusal(file)
    expect(e.file).toBe(file)
    expect(e.message).toBe(`price file ${file} (LANTERN_PRICES_FILE): cannot be read: ENOENT`)
  })

  it("refuses a file that is not JSON", async () => {
    const file = priceFile("{ version: 2026-11-01 }")
    const e = await refusal(file)
    expect(e.message).toContain(file)
    expect(e.reason).toMatch(/^is not JSON: /)
  })

  it("refuses a negative price, naming the field, and loads none of the file", async () => {
    const file = priceFile({
      version: "2027-01-15",
      models: {
        "gpt-4o": { inputPerMTok: 9, outputPerMTok: 9, cachedInputPerMTok: 9 },
        "gpt-4o-mini": { inputPerMTok: -0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 }
      }
    })
    const e = await refusal(file)
    expect(e.message).toContain(file)
    expect(e.reason).toContain("models.gpt-4o-mini.inputPerMTok")
    expect(e.reason).toMatch(/greater than or equal to 0/)
    // no partial load: the layer fails as a whole, so no host starts with half a table
    expect(Exit.isFailure(await loadTable({ LANTERN_PRICES_FILE: file }))).toBe(true)
  })

  it("refuses a missing field, a wrong type, a misspelt key and an empty version, naming each", async () => {
    const e = await refusal(priceFile({
      version: "",
      models: {
        a: { inputPerMTok: 1, outputPerMTok: 1 },
        b: { inputPerMTok: "1", outputPerMTok: 1, cachedInputPerMTok: 1 },
        c: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 1, cacheWritePerMTok: 1 }
      }
    }))
    expect(e.reason).toContain("version")
    expect(e.reason).toContain("models.a.cachedInputPerMTok")
    expect(e.reason).toContain("models.b.inputPerMTok")
    expect(e.reason).toContain("models.c.cacheWritePerMTok")
    const noVersion = await refusal(priceFile({ models: {} }))
    expect(noVersion.reason).toContain("version")
  })

  it("a bad price file stops the model providers from starting", async () => {
    const file = priceFile({
      version: "v",
      models: { "gpt-4o": { inputPerMTok: -1, outputPerMTok: 1, cachedInputPerMTok: 1 } }
    })
    const exit = await Effect.runPromiseExit(
      Effect.gen(function*() {
        return (yield* ModelProvider).name
      }).pipe(Effect.provide(providers({ LANTERN_PRICES_FILE: file })))
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(exit)).toContain("models.gpt-4o.inputPerMTok")
  })
})

// ---- the providers price from the table they are given ----

const request = (model = "auto"): Request => ({
  model,
  messages: [{ role: "user", content: "hello" }],
  tools: [],
  idempotencyKey: "run_01:turn-1:1"
})

describe("Prices in the providers", () => {
  let openAi: Server
  let openAiUrl: string
  let anthropic: FakeAnthropic.FakeAnthropic
  /** What the fake Chat Completions server answers next. */
  let chat: { model: string; usage: unknown } = { model: "gpt-4o-mini", usage: {} }

  beforeAll(async () => {
    anthropic = await FakeAnthropic.start()
    const port = await freePort()
    openAi = createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({
          model: chat.model,
          choices: [{ finish_reason: "stop", message: { role: "assistant", content: "priced" } }],
          usage: chat.usage
        }))
      })
    })
    await new Promise<void>((resolve) => openAi.listen(port, "127.0.0.1", resolve))
    openAiUrl = `http://127.0.0.1:${port}/v1`
  })
  afterAll(async () => {
    await anthropic.close()
    await new Promise((resolve) => openAi.close(resolve))
  })

  const openAiSettings = (): OpenAi.Settings => ({
    baseUrl: openAiUrl,
    apiKey: Redacted.make("sk-test"),
    defaultModel: "gpt-4o-mini",
    timeoutMs: 10_000
  })

  it("OpenAI: prices a dated answer as its base model, cached prompt tokens at the cached rate", async () => {
    chat = {
      model: "gpt-4o-mini-2024-07-18",
      usage: { prompt_tokens: 10_000, completion_tokens: 2000, prompt_tokens_details: { cached_tokens: 4000 } }
    }
    const r = await Effect.runPromise(OpenAi.make(openAiSettings()).complete(request()))
    expect([r.tokensIn, r.tokensOut]).toEqual([10_000, 2000])
    expect(perMillion(r.costUsd)).toBeCloseTo(6000 * 0.15 + 4000 * 0.075 + 2000 * 0.6, 9)
  })

  it("OpenAI: without cache details every prompt token is billed at the input rate, as before the table", async () => {
    chat = { model: "gpt-4o", usage: { prompt_tokens: 1000, completion_tokens: 100 } }
    const r = await Effect.runPromise(OpenAi.make(openAiSettings()).complete(request("gpt-4o")))
    expect(perMillion(r.costUsd)).toBeCloseTo(1000 * 2.5 + 100 * 10, 9)
  })

  it("OpenAI: a gateway's own model name falls back to the requested model's price; an unknown model costs 0", async () => {
    chat = { model: "acme/gpt-4o-proxy", usage: { prompt_tokens: 1000, completion_tokens: 0 } }
    const r = await Effect.runPromise(OpenAi.make(openAiSettings()).complete(request("gpt-4o")))
    expect(perMillion(r.costUsd)).toBeCloseTo(2500, 9)
    chat = { model: "llama-3.3-70b", usage: { prompt_tokens: 1000, completion_tokens: 1000 } }
    const free = await Effect.runPromise(OpenAi.make(openAiSettings()).complete(request("llama-3.3-70b")))
    expect(free.costUsd).toBe(0)
  })

  it("OpenAI and Anthropic from Providers.layerConfig price with the configured file, which the layer also provides", async () => {
    const file = priceFile({
      version: "2027-02-01",
      models: {
        "llama-3.3-70b": { inputPerMTok: 0.5, outputPerMTok: 1, cachedInputPerMTok: 0.5 },
        "claude-haiku-4-5": { inputPerMTok: 2, outputPerMTok: 10, cachedInputPerMTok: 0.2, cacheWriteInputPerMTok: 2.5 }
      }
    })
    chat = { model: "llama-3.3-70b", usage: { prompt_tokens: 1000, completion_tokens: 1000 } }
    const viaOpenAi = await Effect.runPromise(
      Effect.gen(function*() {
        const r = yield* (yield* ModelProvider).complete(request("llama-3.3-70b"))
        return { cost: r.costUsd, version: (yield* Prices.Prices).version }
      }).pipe(
        Effect.provide(providers({ OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: openAiUrl, LANTERN_PRICES_FILE: file }))
      )
    )
    expect(perMillion(viaOpenAi.cost)).toBeCloseTo(1000 * 0.5 + 1000 * 1, 9)
    expect(viaOpenAi.version).toBe("2027-02-01")

    anthropic.reply(FakeAnthropic.text("priced", {
      model: "claude-haiku-4-5-20251001",
      usage: { input_tokens: 1000, cache_read_input_tokens: 2000, cache_creation_input_tokens: 400, output_tokens: 500 }
    }))
    const viaAnthropic = await Effect.runPromise(
      Effect.gen(function*() {
        return (yield* (yield* ModelProvider).complete(request())).costUsd
      }).pipe(
        Effect.provide(
          providers({
            ANTHROPIC_API_KEY: anthropic.apiKey,
            ANTHROPIC_BASE_URL: anthropic.url,
            LANTERN_PRICES_FILE: file
          })
        )
      )
    )
    expect(perMillion(viaAnthropic)).toBeCloseTo(1000 * 2 + 2000 * 0.2 + 400 * 2.5 + 500 * 10, 9)
  })

  it("AnthropicAnswer.costOf maps the API's usage (input without cache tokens) onto the table", () => {
    const usage = { input: 1000, output: 500, cacheRead: 2000, cacheWrite: 400 }
    expect(perMillion(AnthropicAnswer.costOf(Prices.defaults, "claude-sonnet-4-5-20250929", usage))).toBeCloseTo(
      3000 + 600 + 1500 + 7500,
      9
    )
  })
})
