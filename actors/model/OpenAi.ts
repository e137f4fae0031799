// A model provider speaking the OpenAI-compatible Chat Completions API (OpenAI, Ollama, vLLM, llama.cpp,
// gateways) at OPENAI_BASE_URL. Capability aliases map to LANTERN_OPENAI_MODEL. The key never leaves the header.
import { Effect, Layer, Redacted, Schema } from "effect"
import { ProviderError } from "../../schema/Errors.ts"
import type { ToolCall } from "../../schema/Events.ts"
import type { Message } from "../run/Plan.ts"
import { ModelProvider, type Request } from "./ModelProvider.ts"

export const PROVIDER = "openai"

export interface Settings {
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  /** The model capability aliases resolve to. */
  readonly defaultModel: string
  readonly timeoutMs: number
}

const ALIASES = new Set(["auto", "fast", "smart", "default"])

/** USD per million tokens (input, output) for models whose price is public; unknown models cost 0 here. */
const PRICES: Record<string, readonly [number, number]> = {
  "gpt-4o-mini": [0.15, 0.6],
  "gpt-4o": [2.5, 10],
  "gpt-4.1-mini": [0.4, 1.6],
  "gpt-4.1": [2, 8]
}

const ChatResponse = Schema.Struct({
  model: Schema.optionalKey(Schema.String),
  choices: Schema.Array(Schema.Struct({
    finish_reason: Schema.optionalKey(Schema.NullOr(Schema.String)),
    message: Schema.Struct({
      content: Schema.optionalKey(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Struct({
        id: Schema.String,
        function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
      }))))
    })
  })).check(Schema.isMinLength(1)),
  usage: Schema.optionalKey(Schema.Struct({ prompt_tokens: Schema.Number, completion_tokens: Schema.Number }))
})

const wireMessage = (m: Message) => {
  switch (m.role) {
    case "assistant":
      return {
        role: "assistant",
        content: m.content,
        ...(m.toolCalls !== undefined && m.toolCalls.length > 0
          ? {
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: "function",
              function: { name: c.name, arguments: JSON.stringify(c.arguments) }
            }))
          }
          : {})
      }
    case "tool":
      return { role: "tool", content: m.content ?? "", tool_call_id: m.toolCallId }
    default:
      return { role: m.role, content: m.content ?? "" }
  }
}

const parseArguments = (raw: string): unknown => {
  try {
    return JSON.parse(raw)
  } catch {
    return { raw }
  }
}

export const make = (settings: Settings) => {
  const fail = (reason: string, retryable: boolean, status?: number) =>
    new ProviderError({ provider: PROVIDER, reason, retryable, ...(status === undefined ? {} : { status }) })

  const complete = (request: Request) =>
    Effect.gen(function*() {
      const model = ALIASES.has(request.model) ? settings.defaultModel : request.model
      const body = {
        model,
        messages: request.messages.map(wireMessage),
        ...(request.tools.length > 0
          ? { tools: request.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } })) }
          : {})
      }
      const response = yield* Effect.tryPromise({
        try: (signal) =>
          fetch(`${settings.baseUrl.replace(/\/$/, "")}/chat/completions`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              authorization: `Bearer ${Redacted.value(settings.apiKey)}`,
              "idempotency-key": request.idempotencyKey
            },
            body: JSON.stringify(body),
            signal: AbortSignal.any([signal, AbortSignal.timeout(settings.timeoutMs)])
          }),
        catch: (e) => fail(`request failed: ${e instanceof Error ? e.message : String(e)}`, true)
      })
      const text = yield* Effect.tryPromise({ try: () => response.text(), catch: () => fail("response body unreadable", true) })
      if (!response.ok) {
        const retryable = response.status === 429 || response.status >= 500
        return yield* fail(`HTTP ${response.status}: ${text.slice(0, 300)}`, retryable, response.status)
      }
      const parsed = yield* Schema.decodeUnknownEffect(Schema.fromJsonString(ChatResponse))(text).pipe(
        Effect.mapError(() => fail("response is not a Chat Completions answer", false, response.status))
      )
      const choice = parsed.choices[0]!
      const toolCalls: Array<ToolCall> = (choice.message.tool_calls ?? []).map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: parseArguments(c.function.arguments)
      }))
      const tokensIn = parsed.usage?.prompt_tokens ?? 0
      const tokensOut = parsed.usage?.completion_tokens ?? 0
      const [pin, pout] = PRICES[parsed.model ?? model] ?? PRICES[model] ?? [0, 0]
      return {
        answer: {
          content: choice.message.content ?? null,
          toolCalls,
          finishReason: choice.finish_reason ?? "stop",
          provider: PROVIDER,
          model: parsed.model ?? model
        },
        tokensIn,
        tokensOut,
        costUsd: (tokensIn * pin + tokensOut * pout) / 1_000_000
      }
    }).pipe(Effect.withSpan("gen_ai.chat", {
      attributes: { "gen_ai.system": PROVIDER, "gen_ai.request.model": request.model, "gen_ai.operation.name": "chat" }
    }))

  return ModelProvider.of({ name: PROVIDER, complete })
}

export const layer = (settings: Settings) => Layer.succeed(ModelProvider, make(settings))
