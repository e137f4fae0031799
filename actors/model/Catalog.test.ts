// The model catalogue: a models file decoded whole or refused naming the file and the field, the environment's
// providers and built-in aliases, and how a request's model resolves to candidates.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigProvider, Effect, Exit, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Catalog from "./Catalog.ts"

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lantern-catalog-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const modelsFile = (content: unknown) => {
  const file = join(dir, `models-${++files}.json`)
  writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content))
  return file
}

const fromEnv = (env: Record<string, string>) =>
  Effect.runPromiseExit(Catalog.fromConfig.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))))

const catalogOf = async (env: Record<string, string>) => {
  const exit = await fromEnv(env)
  if (Exit.isFailure(exit)) throw new Error(`expected a catalogue, got ${String(exit.cause)}`)
  return exit.value
}

/** The ModelsFileInvalid a file is refused with. */
const refusal = async (content: unknown, env: Record<string, string> = {}) => {
  const file = modelsFile(content)
  const exit = await fromEnv({ LANTERN_MODELS_FILE: file, ...env })
  if (Exit.isSuccess(exit)) throw new Error("expected the file to be refused")
  const text = String(exit.cause)
  expect(text).toContain(file)
  expect(text).toContain("LANTERN_MODELS_FILE")
  return text
}

const refs = (cs: ReadonlyArray<Catalog.Candidate>) => cs.map((c) => `${c.provider}/${c.model}`)

const twoProviders = {
  providers: {
    primary: { api: "openai", baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "PRIMARY_KEY", timeoutMs: 5000 },
    claude: { api: "anthropic", baseUrl: "https://gateway.example/anthropic", apiKeyEnv: "CLAUDE_KEY" },
    local: { api: "openai", baseUrl: "http://127.0.0.1:11434/v1" }
  },
  aliases: {
    auto: ["primary/fake-1", "claude/claude-sonnet-4-5"],
    summarise: ["local/llama3.2", "primary/fake-1"]
  },
  strategy: "cheap",
  cache: { enabled: true, ttlSeconds: 600 }
}

describe("Catalog: the models file", () => {
  it("decodes providers, keys named by environment variable, aliases over the built-in ones, strategy and cache", async () => {
    const c = await catalogOf({ LANTERN_MODELS_FILE: modelsFile(twoProviders), PRIMARY_KEY: "k1", CLAUDE_KEY: "k2" })
    expect(c.providers.map((p) => [p.name, p.api, p.baseUrl, p.timeoutMs])).toEqual([
      ["primary", "openai", "http://127.0.0.1:9/v1", 5000],
      ["claude", "anthropic", "https://gateway.example/anthropic", 120_000],
      ["local", "openai", "http://127.0.0.1:11434/v1", 120_000]
    ])
    expect(c.providers.map((p) => Redacted.value(p.apiKey))).toEqual(["k1", "k2", ""])
    // the file's aliases replace and add
    expect(refs(c.aliases["auto"]!)).toEqual(["primary/fake-1", "claude/claude-sonnet-4-5"])
    expect(refs(c.aliases["summarise"]!)).toEqual(["local/llama3.2", "primary/fake-1"])
    // built-ins the file leaves alone come from the Anthropic provider (an OpenAI-compatible server's models are its own)
    expect(refs(c.aliases["fast"]!)).toEqual(["claude/claude-haiku-4-5"])
    expect(refs(c.aliases["reasoning-large"]!)).toEqual(["claude/claude-opus-4-1"])
    expect([c.strategy, c.cache, c.source]).toEqual(["cheap", { enabled: true, ttlSeconds: 600 }, c.source])
    expect(c.source).toContain("models-")
  })

  it("an alias the file does not define and no provider supplies borrows auto's candidates", async () => {
    const c = await catalogOf({
      LANTERN_MODELS_FILE: modelsFile({
        providers: { local: { api: "openai", baseUrl: "http://127.0.0.1:11434/v1" } },
        aliases: { auto: ["local/llama3.2"] }
      })
    })
    for (const alias of Catalog.ALIASES) expect(refs(c.aliases[alias]!)).toEqual(["local/llama3.2"])
    expect(c.strategy).toBe(Catalog.DEFAULT_STRATEGY)
  })

  it("refuses unknown keys, naming the file and the field", async () => {
    const text = await refusal({
      providers: { a: { api: "openai", baseUrl: "http://x/v1", apiKey: "sk-live-123" } },
      routes: {}
    })
    expect(text).toContain("providers.a.apiKey")
    expect(text).toContain("routes")
  })

  it("refuses wrong values, naming every bad field", async () => {
    const text = await refusal({
      providers: {
        a: { api: "azure", baseUrl: "ftp://x", timeoutMs: -1 },
        "B!": { api: "openai", baseUrl: "http://x" }
      },
      aliases: { auto: [], fast: ["no-slash"] },
      strategy: "random",
      cache: { ttlSeconds: 0 }
    })
    for (
      const field of [
        "providers.a.api",
        "providers.a.baseUrl",
        "providers.a.timeoutMs",
        "aliases.auto",
        "aliases.fast[0]",
        "strategy",
        "cache.ttlSeconds"
      ]
    ) {
      expect(text).toContain(field)
    }
  })

  it("refuses an alias naming a provider the file lacks, an unset key variable, and a file with no candidate for auto", async () => {
    expect(
      await refusal({
        providers: { a: { api: "anthropic", baseUrl: "http://x" } },
        aliases: { fast: ["a/claude-haiku-4-5", "b/m"] }
      })
    )
      .toContain("aliases.fast[1]: no provider named 'b'")
    const unset = await refusal({
      providers: { a: { api: "openai", baseUrl: "http://x/v1", apiKeyEnv: "MISSING_KEY" } },
      aliases: { auto: ["a/m"] }
    })
    expect(unset).toContain("providers.a.apiKeyEnv: environment variable MISSING_KEY is not set")
    expect(await refusal({ providers: { local: { api: "openai", baseUrl: "http://127.0.0.1:11434/v1" } } })).toContain(
      "aliases.auto"
    )
    expect(await refusal({ providers: {} })).toContain("providers")
    expect(
      await refusal({
        providers: { offline: { api: "openai", baseUrl: "http://x/v1" } },
        aliases: { auto: ["offline/m"] }
      })
    ).toContain("reserved")
  })

  it("refuses a file that is not JSON or cannot be read", async () => {
    expect(await refusal("{ providers: ")).toContain("is not JSON")
    const exit = await fromEnv({ LANTERN_MODELS_FILE: join(dir, "missing.json") })
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain("cannot be read: ENOENT")
  })

  it("the key itself never appears in what a catalogue prints", async () => {
    const c = await catalogOf({
      LANTERN_MODELS_FILE: modelsFile(twoProviders),
      PRIMARY_KEY: "sk-SECRET-1",
      CLAUDE_KEY: "sk-SECRET-2"
    })
    const printed = `${Catalog.describe(c)} ${JSON.stringify(c)} ${String(c.providers[0]!.apiKey)}`
    expect(printed).not.toContain("sk-SECRET")
    // nor a key someone put in a base URL
    const inUrl = await catalogOf({
      OPENAI_API_KEY: "k",
      OPENAI_BASE_URL: "https://user:sk-SECRET-3@gateway.example/v1"
    })
    expect(Catalog.describe(inUrl)).toContain("https://gateway.example/v1")
    expect(Catalog.describe(inUrl)).not.toContain("sk-SECRET")
  })
})

describe("Catalog: from the environment", () => {
  it("with no key every alias and model name resolves to the offline provider", async () => {
    const c = await catalogOf({})
    expect(c.providers).toEqual([])
    for (const model of ["auto", "fast", "gpt-4o", "claude-opus-4-1", "openai/gpt-4o"])
      expect(refs(Catalog.resolve(c, model))).toEqual(["offline/offline-echo-1"])
    expect(Catalog.describe(c)).toContain("offline")
  })

  it("OpenAI's own API gets the built-in aliases, with LANTERN_OPENAI_MODEL as auto", async () => {
    const c = await catalogOf({ OPENAI_API_KEY: "k" })
    expect(c.providers.map((p) => [p.name, p.baseUrl])).toEqual([["openai", "https://api.openai.com/v1"]])
    expect(Object.fromEntries(Catalog.ALIASES.map((a) => [a, refs(c.aliases[a]!)]))).toEqual({
      auto: ["openai/gpt-4o-mini"],
      fast: ["openai/gpt-4o-mini"],
      cheap: ["openai/gpt-4o-mini"],
      "reasoning-large": ["openai/gpt-4.1"],
      "code-large": ["openai/gpt-4.1"],
      vision: ["openai/gpt-4o"]
    })
    const pinned = await catalogOf({ OPENAI_API_KEY: "k", LANTERN_OPENAI_MODEL: "gpt-4.1-mini" })
    expect(refs(pinned.aliases["auto"]!)).toEqual(["openai/gpt-4.1-mini"])
    expect(refs(pinned.aliases["vision"]!)).toEqual(["openai/gpt-4o"])
  })

  it("an OpenAI-compatible server elsewhere (Ollama, vLLM) serves LANTERN_OPENAI_MODEL for every alias", async () => {
    const c = await catalogOf({
      OPENAI_API_KEY: "k",
      OPENAI_BASE_URL: "http://127.0.0.1:11434/v1",
      LANTERN_OPENAI_MODEL: "llama3.2"
    })
    for (const alias of [...Catalog.ALIASES, "smart", "default"])
      expect(refs(Catalog.resolve(c, alias))).toEqual(["openai/llama3.2"])
  })

  it("with both keys both providers are candidates, OpenAI first", async () => {
    const c = await catalogOf({
      OPENAI_API_KEY: "o",
      ANTHROPIC_API_KEY: "a",
      LANTERN_ANTHROPIC_MODEL: "claude-haiku-4-5"
    })
    expect(c.providers.map((p) => p.name)).toEqual(["openai", "anthropic"])
    expect(refs(c.aliases["auto"]!)).toEqual(["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
    expect(refs(c.aliases["reasoning-large"]!)).toEqual(["openai/gpt-4.1", "anthropic/claude-opus-4-1"])
    expect(refs(c.aliases["fast"]!)).toEqual(["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
  })

  it("resolves provider/model, bare names by vendor, and the names agents used before the router", async () => {
    const c = await catalogOf({ OPENAI_API_KEY: "o", ANTHROPIC_API_KEY: "a" })
    expect(refs(Catalog.resolve(c, "anthropic/claude-haiku-4-5"))).toEqual(["anthropic/claude-haiku-4-5"])
    expect(refs(Catalog.resolve(c, "claude-opus-4-1"))).toEqual(["anthropic/claude-opus-4-1"])
    expect(refs(Catalog.resolve(c, "gpt-4.1"))).toEqual(["openai/gpt-4.1"])
    // a slash that does not start with a provider's name is part of the model's name
    expect(refs(Catalog.resolve(c, "meta-llama/llama-3-8b"))).toEqual(["openai/meta-llama/llama-3-8b"])
    expect(refs(Catalog.resolve(c, "smart"))).toEqual(refs(c.aliases["reasoning-large"]!))
    expect(refs(Catalog.resolve(c, "default"))).toEqual(refs(c.aliases["auto"]!))
    const anthropicOnly = await catalogOf({ ANTHROPIC_API_KEY: "a" })
    expect(refs(Catalog.resolve(anthropicOnly, "gpt-4o"))).toEqual(["anthropic/gpt-4o"])
  })

  it("reads the strategy, the cache switch and TTL, and timeouts from the environment", async () => {
    const c = await catalogOf({
      OPENAI_API_KEY: "o",
      LANTERN_ROUTING_STRATEGY: "fast",
      LANTERN_MODEL_CACHE: "off",
      LANTERN_MODEL_CACHE_TTL_SECONDS: "60",
      LANTERN_MODEL_TIMEOUT_MS: "9000"
    })
    expect([c.strategy, c.cache, c.providers[0]!.timeoutMs]).toEqual(["fast", { enabled: false, ttlSeconds: 60 }, 9000])
    // off in the environment wins over a file that turns the cache on
    const file = modelsFile({ ...twoProviders, cache: { enabled: true } })
    const f = await catalogOf({
      LANTERN_MODELS_FILE: file,
      PRIMARY_KEY: "k",
      CLAUDE_KEY: "k",
      LANTERN_MODEL_CACHE: "off"
    })
    expect(f.cache.enabled).toBe(false)
  })
})
