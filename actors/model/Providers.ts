// Chooses the model provider from configuration: the OpenAI-compatible API when OPENAI_API_KEY is set, the
// Anthropic Messages API when only ANTHROPIC_API_KEY is, otherwise the deterministic offline provider.
// Providers price answers with the table Prices.layerConfig reads, which this layer also provides.
import { Config, Effect, Layer, Option } from "effect"
import * as Anthropic from "./Anthropic.ts"
import * as Offline from "./Offline.ts"
import * as OpenAi from "./OpenAi.ts"
import * as Prices from "./Prices.ts"

export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    const prices = yield* Prices.Prices
    const openAiKey = yield* Config.option(Config.Redacted("OPENAI_API_KEY"))
    const anthropicKey = yield* Config.option(Config.Redacted("ANTHROPIC_API_KEY"))
    const timeoutMs = yield* Config.Int("LANTERN_MODEL_TIMEOUT_MS").pipe(Config.withDefault(120_000))
    if (Option.isSome(openAiKey)) {
      // one provider per host until issue 4's router picks among several
      if (Option.isSome(anthropicKey)) yield* Effect.logInfo("OPENAI_API_KEY and ANTHROPIC_API_KEY are both set: using the OpenAI-compatible provider")
      const baseUrl = yield* Config.String("OPENAI_BASE_URL").pipe(Config.withDefault("https://api.openai.com/v1"))
      const defaultModel = yield* Config.String("LANTERN_OPENAI_MODEL").pipe(Config.withDefault("gpt-4o-mini"))
      return OpenAi.layer({ baseUrl, apiKey: openAiKey.value, defaultModel, timeoutMs }, prices)
    }
    if (Option.isSome(anthropicKey)) {
      const baseUrl = yield* Config.String("ANTHROPIC_BASE_URL").pipe(Config.withDefault(Anthropic.DEFAULT_BASE_URL))
      const defaultModel = yield* Config.String("LANTERN_ANTHROPIC_MODEL").pipe(Config.withDefault(Anthropic.DEFAULT_MODEL))
      const maxTokens = yield* Config.Int("LANTERN_ANTHROPIC_MAX_TOKENS").pipe(Config.withDefault(Anthropic.DEFAULT_MAX_TOKENS))
      return Anthropic.layer({ baseUrl, apiKey: anthropicKey.value, defaultModel, maxTokens, timeoutMs }, prices)
    }
    return Offline.layer
  })
).pipe(Layer.provideMerge(Prices.layerConfig))
