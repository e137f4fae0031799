// The model catalogue: the providers this host can call and the candidate models each capability alias stands
// for, from the provider keys in the environment or from the JSON file LANTERN_MODELS_FILE. With no provider at
// all, every alias and model name resolves to the offline provider.
import { Config, Effect, Option, Redacted, Schema } from "effect"
import * as ConfigFile from "./ConfigFile.ts"
import * as Anthropic from "./Anthropic.ts"
import type { Strategy } from "./ModelProvider.ts"
import * as Offline from "./Offline.ts"

export type Api = "openai" | "anthropic"

/** One provider instance the router may call. */
export interface Provider {
  /** Unique name: `openai`, `anthropic`, or what the models file calls it; the breaker's key. */
  readonly name: string
  readonly api: Api
  readonly baseUrl: string
  /** Empty for a server that needs no key. */
  readonly apiKey: Redacted.Redacted<string>
  /** Deadline of one call to this provider, so a hung provider cannot hold a step that could fail over. */
  readonly timeoutMs: number
}

export interface Candidate {
  readonly provider: string
  readonly model: string
}

export interface Catalog {
  /** In preference order: the first of an API is where a bare model name of that API goes. */
  readonly providers: ReadonlyArray<Provider>
  /** Candidates per alias, best first. */
  readonly aliases: Readonly<Record<string, ReadonlyArray<Candidate>>>
  readonly strategy: Strategy
  readonly cache: { readonly enabled: boolean; readonly ttlSeconds: number }
  /** Output cap for Anthropic requests that set none (the Messages API requires one). */
  readonly anthropicMaxTokens: number
  /** The models file, or `environment`. */
  readonly source: string
}

export const OFFLINE: Candidate = { provider: Offline.PROVIDER, model: Offline.MODEL }

export const STRATEGIES = ["balanced", "cheap", "best", "fast"] as const
export const DEFAULT_STRATEGY: Strategy = "balanced"
export const DEFAULT_CACHE_TTL_SECONDS = 24 * 3600

/** The capability aliases every catalogue defines, with the models they stand for at each vendor. */
export const BUILT_IN: Readonly<Record<Api, Readonly<Record<string, string>>>> = {
  openai: {
    auto: "gpt-4o-mini",
    fast: "gpt-4o-mini",
    cheap: "gpt-4o-mini",
    "reasoning-large": "gpt-4.1",
    "code-large": "gpt-4.1",
    vision: "gpt-4o"
  },
  anthropic: {
    auto: "claude-sonnet-4-5",
    fast: "claude-haiku-4-5",
    cheap: "claude-haiku-4-5",
    "reasoning-large": "claude-opus-4-1",
    "code-large": "claude-sonnet-4-5",
    vision: "claude-sonnet-4-5"
  }
}
export const ALIASES = Object.keys(BUILT_IN.openai)

/** Names agents used before the router: `default` is `auto`, `smart` is `reasoning-large`, unless a file defines them. */
const SYNONYMS: Readonly<Record<string, string>> = { default: "auto", smart: "reasoning-large" }

const VENDOR_HOSTS: Readonly<Record<Api, string>> = { openai: "api.openai.com", anthropic: "api.anthropic.com" }

const hostOf = (url: string) => {
  try {
    return new URL(url).hostname
  } catch {
    return ""
  }
}

/**
 * The built-in aliases a provider contributes. Anthropic models have the same names behind any gateway; an
 * OpenAI-compatible server other than OpenAI's own (Ollama, vLLM, a gateway) serves models of its own, so it
 * contributes only `auto`, and only when its model is known (LANTERN_OPENAI_MODEL for the environment's).
 */
const builtInsOf = (p: Provider, auto: string | undefined): Record<string, string> => {
  const table = { ...BUILT_IN[p.api], ...(auto === undefined ? {} : { auto }) }
  if (p.api === "anthropic" || hostOf(p.baseUrl) === VENDOR_HOSTS.openai) return table
  return auto === undefined ? {} : { auto }
}

/** Aliases of `providers` in order, each provider adding its built-in model; aliases without one borrow `auto`'s. */
const builtInAliases = (providers: ReadonlyArray<{ readonly provider: Provider; readonly auto?: string }>) => {
  const aliases: Record<string, Array<Candidate>> = {}
  for (const { provider, auto } of providers) {
    for (const [alias, model] of Object.entries(builtInsOf(provider, auto)))
      (aliases[alias] ??= []).push({ provider: provider.name, model })
  }
  const fallback = aliases["auto"] ?? []
  for (const alias of ALIASES) if ((aliases[alias] ?? []).length === 0 && fallback.length > 0) aliases[alias] = fallback
  return aliases
}

// ---- resolution ----

/** The candidates a request's `model` stands for: an alias's list, `provider/model`, or a bare model name. */
export const resolve = (catalog: Catalog, requested: string): ReadonlyArray<Candidate> => {
  if (catalog.providers.length === 0) return [OFFLINE]
  const alias = catalog.aliases[requested] ??
    (Object.hasOwn(SYNONYMS, requested) ? catalog.aliases[SYNONYMS[requested]!] : undefined)
  if (alias !== undefined && alias.length > 0) return alias
  const slash = requested.indexOf("/")
  if (slash > 0) {
    const provider = requested.slice(0, slash)
    // `meta-llama/llama-3-8b` names a model, not a provider: then the whole is a bare name
    if (catalog.providers.some((p) => p.name === provider)) return [{ provider, model: requested.slice(slash + 1) }]
  }
  const anthropic = catalog.providers.find((p) => p.api === "anthropic")
  const openai = catalog.providers.find((p) => p.api === "openai")
  const target = (requested.startsWith("claude-") ? anthropic : openai) ?? catalog.providers[0]!
  return [{ provider: target.name, model: requested }]
}

/** A base URL fit for a log line: credentials in it (`https://user:key@host`) left out. */
const printable = (url: string) => {
  try {
    const u = new URL(url)
    u.username = ""
    u.password = ""
    return u.toString().replace(/\/$/, "")
  } catch {
    return "(unparsable URL)"
  }
}

/** One line for the host's start log: providers, aliases, strategy, cache. */
export const describe = (c: Catalog): string =>
  c.providers.length === 0
    ? "models: offline deterministic provider only (no provider key and no LANTERN_MODELS_FILE)"
    : [
      `models (${c.source}): ${c.providers.map((p) => `${p.name} [${p.api} ${printable(p.baseUrl)}]`).join(", ")}`,
      `auto = ${(c.aliases["auto"] ?? []).map((x) => `${x.provider}/${x.model}`).join(", ")}`,
      `strategy ${c.strategy}`,
      c.cache.enabled ? `response cache on (${c.cache.ttlSeconds} s)` : "response cache off"
    ].join("; ")

// ---- the models file ----

const ProviderName = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
    message: "Expected a provider name: lowercase letters, digits, '-' or '_'"
  })
)
const AliasName = Schema.String.check(
  Schema.isPattern(/^[a-zA-Z0-9][a-zA-Z0-9._:-]{0,127}$/, {
    message: "Expected an alias: letters, digits, '.', '_', ':' or '-'"
  })
)
const CandidateRef = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}\/\S+$/, { message: "Expected \"<provider>/<model>\"" })
)
const BaseUrl = Schema.String.check(
  Schema.isPattern(/^https?:\/\/\S+$/, { message: "Expected an http:// or https:// URL" })
)

export const FileProvider = Schema.Struct({
  api: Schema.Literals(["openai", "anthropic"]),
  baseUrl: BaseUrl,
  /** The NAME of the environment variable holding the key; never the key itself. */
  apiKeyEnv: Schema.optionalKey(Schema.String.check(
    Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "Expected the name of an environment variable" })
  )),
  timeoutMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 3_600_000 })))
})

export const File = Schema.Struct({
  providers: Schema.Record(ProviderName, FileProvider),
  aliases: Schema.optionalKey(Schema.Record(AliasName, Schema.Array(CandidateRef).check(Schema.isMinLength(1)))),
  strategy: Schema.optionalKey(Schema.Literals(STRATEGIES)),
  cache: Schema.optionalKey(Schema.Struct({
    enabled: Schema.optionalKey(Schema.Boolean),
    ttlSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 30 * 24 * 3600 })))
  }))
})
export type File = typeof File.Type

export class ModelsFileInvalid extends Schema.TaggedError<ModelsFileInvalid>()("ModelsFileInvalid", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `models file ${this.file} (LANTERN_MODELS_FILE): ${this.reason}`
  }
}

/** Settings the environment gives every catalogue. */
export interface Defaults {
  readonly timeoutMs: number
  readonly strategy: Strategy
  readonly cache: { readonly enabled: boolean; readonly ttlSeconds: number }
  readonly anthropicMaxTokens: number
}

const candidateOf = (ref: string): Candidate => {
  const slash = ref.indexOf("/")
  return { provider: ref.slice(0, slash), model: ref.slice(slash + 1) }
}

/**
 * The catalogue a decoded file describes, given the value of each key variable it names (`keys`). A file's
 * aliases replace the built-in ones of the same name and add the others; the built-in ones come from the
 * file's providers (see `builtInsOf`).
 */
export const fromFile = (
  file: string,
  decoded: File,
  keys: Readonly<Record<string, Redacted.Redacted<string> | undefined>>,
  defaults: Defaults
): Effect.Effect<Catalog, ModelsFileInvalid> =>
  Effect.gen(function*() {
    const invalid = (reason: string) => new ModelsFileInvalid({ file, reason })
    const providers: Array<Provider> = []
    for (const [name, p] of Object.entries(decoded.providers)) {
      if (name === Offline.PROVIDER)
        return yield* invalid(`providers.${name}: the name '${Offline.PROVIDER}' is reserved`)
      const key = p.apiKeyEnv === undefined ? Redacted.make("") : keys[p.apiKeyEnv]
      if (key === undefined)
        return yield* invalid(`providers.${name}.apiKeyEnv: environment variable ${p.apiKeyEnv} is not set`)
      providers.push({
        name,
        api: p.api,
        baseUrl: p.baseUrl,
        apiKey: key,
        timeoutMs: p.timeoutMs ?? defaults.timeoutMs
      })
    }
    if (providers.length === 0)
      return yield* invalid("providers: Expected at least one provider")
    const aliases: Record<string, ReadonlyArray<Candidate>> = builtInAliases(
      providers.map((provider) => ({ provider }))
    )
    for (const [alias, refs] of Object.entries(decoded.aliases ?? {})) {
      const candidates = refs.map(candidateOf)
      const unknown = candidates.findIndex((c) => !Object.hasOwn(decoded.providers, c.provider))
      if (unknown !== -1)
        return yield* invalid(
          `aliases.${alias}[${unknown}]: no provider named '${candidates[unknown]!.provider}' in providers`
        )
      aliases[alias] = candidates
    }
    for (const alias of ALIASES)
      if (aliases[alias] === undefined && aliases["auto"] !== undefined) aliases[alias] = aliases["auto"]
    if ((aliases["auto"] ?? []).length === 0) {
      return yield* invalid(
        "aliases.auto: no candidate; name the models of your OpenAI-compatible servers in aliases.auto (every agent's default model)"
      )
    }
    return {
      providers,
      aliases,
      strategy: decoded.strategy ?? defaults.strategy,
      cache: {
        enabled: defaults.cache.enabled && (decoded.cache?.enabled ?? true),
        ttlSeconds: decoded.cache?.ttlSeconds ?? defaults.cache.ttlSeconds
      },
      anthropicMaxTokens: defaults.anthropicMaxTokens,
      source: file
    }
  })

/** A models file, whole or not at all: unknown keys are refused, so a misspelt field is not silently dropped. */
export const readFileConfig = (file: string): Effect.Effect<File, ModelsFileInvalid> =>
  ConfigFile.read(file, File as Schema.Codec<File, unknown>, (reason) => new ModelsFileInvalid({ file, reason }))

// ---- configuration ----

const defaultsConfig = Effect.gen(function*() {
  const timeoutMs = yield* Config.Int("LANTERN_MODEL_TIMEOUT_MS").pipe(Config.withDefault(120_000))
  const strategy = yield* Config.Literals(STRATEGIES, "LANTERN_ROUTING_STRATEGY").pipe(
    Config.withDefault(DEFAULT_STRATEGY)
  )
  const cacheSwitch = yield* Config.Literals(["on", "off"], "LANTERN_MODEL_CACHE").pipe(Config.withDefault("on"))
  const ttlSeconds = yield* Config.Int("LANTERN_MODEL_CACHE_TTL_SECONDS").pipe(
    Config.withDefault(DEFAULT_CACHE_TTL_SECONDS)
  )
  const anthropicMaxTokens = yield* Config.Int("LANTERN_ANTHROPIC_MAX_TOKENS").pipe(
    Config.withDefault(Anthropic.DEFAULT_MAX_TOKENS)
  )
  return {
    timeoutMs,
    strategy,
    cache: { enabled: cacheSwitch === "on", ttlSeconds },
    anthropicMaxTokens
  } satisfies Defaults
})

/** The catalogue of OPENAI_API_KEY and ANTHROPIC_API_KEY (either, both, or neither: offline). */
const fromEnvironment = (defaults: Defaults) =>
  Effect.gen(function*() {
    const providers: Array<{ provider: Provider; auto?: string }> = []
    const openAiKey = yield* Config.option(Config.Redacted("OPENAI_API_KEY"))
    if (Option.isSome(openAiKey)) {
      const baseUrl = yield* Config.String("OPENAI_BASE_URL").pipe(Config.withDefault("https://api.openai.com/v1"))
      const model = yield* Config.String("LANTERN_OPENAI_MODEL").pipe(Config.withDefault(BUILT_IN.openai["auto"]!))
      providers.push({
        provider: { name: "openai", api: "openai", baseUrl, apiKey: openAiKey.value, timeoutMs: defaults.timeoutMs },
        auto: model
      })
    }
    const anthropicKey = yield* Config.option(Config.Redacted("ANTHROPIC_API_KEY"))
    if (Option.isSome(anthropicKey)) {
      const baseUrl = yield* Config.String("ANTHROPIC_BASE_URL").pipe(Config.withDefault(Anthropic.DEFAULT_BASE_URL))
      const model = yield* Config.String("LANTERN_ANTHROPIC_MODEL").pipe(
        Config.withDefault(BUILT_IN.anthropic["auto"]!)
      )
      providers.push({
        provider: {
          name: "anthropic",
          api: "anthropic",
          baseUrl,
          apiKey: anthropicKey.value,
          timeoutMs: defaults.timeoutMs
        },
        auto: model
      })
    }
    return {
      providers: providers.map((p) => p.provider),
      aliases: builtInAliases(providers),
      strategy: defaults.strategy,
      cache: defaults.cache,
      anthropicMaxTokens: defaults.anthropicMaxTokens,
      source: "environment"
    } satisfies Catalog
  })

/** LANTERN_MODELS_FILE's catalogue when it is set, the environment's otherwise; a bad file fails the host's start. */
export const fromConfig = Effect.gen(function*() {
  const defaults = yield* defaultsConfig
  const file = yield* Config.option(Config.NonEmptyString("LANTERN_MODELS_FILE"))
  if (Option.isNone(file)) return yield* fromEnvironment(defaults)
  const decoded = yield* readFileConfig(file.value)
  const keys: Record<string, Redacted.Redacted<string> | undefined> = {}
  for (const p of Object.values(decoded.providers)) {
    if (p.apiKeyEnv === undefined || Object.hasOwn(keys, p.apiKeyEnv)) continue
    const value = yield* Config.option(Config.Redacted(p.apiKeyEnv))
    keys[p.apiKeyEnv] = Option.getOrUndefined(value)
  }
  return yield* fromFile(file.value, decoded, keys, defaults)
})
