// Chooses the model provider from configuration: the OpenAI-compatible API when OPENAI_API_KEY is set,
// otherwise the deterministic offline provider.
import { Config, Effect, Layer, Option } from "effect"
import * as Offline from "./Offline.ts"
import * as OpenAi from "./OpenAi.ts"

export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    const key = yield* Config.option(Config.Redacted("OPENAI_API_KEY"))
    if (Option.isNone(key)) return Offline.layer
    const baseUrl = yield* Config.String("OPENAI_BASE_URL").pipe(Config.withDefault("https://api.openai.com/v1"))
    const defaultModel = yield* Config.String("LANTERN_OPENAI_MODEL").pipe(Config.withDefault("gpt-4o-mini"))
    const timeoutMs = yield* Config.Int("LANTERN_MODEL_TIMEOUT_MS").pipe(Config.withDefault(120_000))
    return OpenAi.layer({ baseUrl, apiKey: key.value, defaultModel, timeoutMs })
  })
)
