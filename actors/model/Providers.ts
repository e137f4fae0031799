// The model provider a host uses: the router (Router.ts) over the catalogue's providers (Catalog.ts: the
// environment's keys or LANTERN_MODELS_FILE; the offline provider when there are none), with the circuit
// breakers and the response cache the hosts share on the bus. Also provides the price table answers are priced with.
import { Effect, Layer } from "effect"
import { Breakers } from "./Breakers.ts"
import * as Anthropic from "./Anthropic.ts"
import * as Catalog from "./Catalog.ts"
import { ModelProvider } from "./ModelProvider.ts"
import * as Offline from "./Offline.ts"
import * as OpenAi from "./OpenAi.ts"
import * as Prices from "./Prices.ts"
import * as ResponseCache from "./ResponseCache.ts"
import * as Router from "./Router.ts"

/** A client per catalogue provider, by name; the offline provider alone when the catalogue has none. */
export const instances = (
  catalog: Catalog.Catalog,
  prices: Prices.Table
): Effect.Effect<ReadonlyMap<string, ModelProvider["Service"]>> =>
  catalog.providers.length === 0
    ? Effect.gen(function*() {
      return new Map([[Offline.PROVIDER, yield* ModelProvider]])
    }).pipe(Effect.provide(Offline.layer))
    : Effect.succeed(clients(catalog, prices))

const clients = (catalog: Catalog.Catalog, prices: Prices.Table): ReadonlyMap<string, ModelProvider["Service"]> =>
  new Map(catalog.providers.map((p) => {
    const common = { name: p.name, baseUrl: p.baseUrl, apiKey: p.apiKey, timeoutMs: p.timeoutMs }
    // the router resolves aliases before calling, so the default model is only a provider's answer to a bare alias
    const provider = p.api === "anthropic"
      ? Anthropic.make({
        ...common,
        defaultModel: Catalog.BUILT_IN.anthropic["auto"]!,
        maxTokens: catalog.anthropicMaxTokens
      }, prices)
      : OpenAi.make({ ...common, defaultModel: Catalog.BUILT_IN.openai["auto"]! }, prices)
    return [p.name, provider] as const
  }))

/** The router as the host's ModelProvider; needs the bus (Nats) for the shared breakers and cache. */
export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    const prices = yield* Prices.Prices
    const catalog = yield* Catalog.fromConfig
    yield* Effect.logInfo(Catalog.describe(catalog))
    const breakers = Breakers.layer(catalog.providers.map((p) => p.name))
    return Layer.effect(
      ModelProvider,
      Effect.gen(function*() {
        const cache = catalog.cache.enabled ? yield* ResponseCache.open(catalog.cache.ttlSeconds) : null
        return Router.make({
          catalog,
          providers: yield* instances(catalog, prices),
          prices,
          breakers: yield* Breakers,
          cache
        })
      })
    ).pipe(Layer.provide(breakers))
  })
).pipe(Layer.provideMerge(Prices.layerConfig))
