// A model provider speaking the Anthropic Messages API at a base URL: streamed (SSE) answers, or a plain JSON
// one when the server sends that. Called directly, capability aliases map to the default model; the router
// (Router.ts) resolves them first. The key never leaves its header. What the answer is made of: AnthropicAnswer.ts.
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import type { Message } from "../../schema/Message.ts"
import {
  type Draft,
  emptyDraft,
  evolve,
  fromMessage,
  KNOWN_EVENTS,
  StreamEvent,
  textAdded,
  textOf,
  toResponse,
  WireError,
  WireMessage
} from "./AnthropicAnswer.ts"
import { emit, ModelProvider, type Request } from "./ModelProvider.ts"
import * as Prices from "./Prices.ts"
import * as Quote from "./Quote.ts"
import type * as Sse from "./Sse.ts"
import * as Wire from "./Wire.ts"

export const PROVIDER = "anthropic"
export const API_VERSION = "2023-06-01"
export const DEFAULT_BASE_URL = "https://api.anthropic.com"
export const DEFAULT_MODEL = "claude-sonnet-4-5"
export const DEFAULT_MAX_TOKENS = 1024

export interface Settings {
  /** The instance's name in answers and errors (the router's catalogue may hold several); `anthropic` by default. */
  readonly name?: string
  /** Without the `/v1` suffix, as the official SDKs take it. */
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  /** The model capability aliases resolve to. */
  readonly defaultModel: string
  /** The cap on output tokens of a request that sets none (the Messages API requires one in every request). */
  readonly maxTokens: number
  readonly timeoutMs: number
}

/** Capability aliases; issue 4's router maps them to candidate lists. Any other name goes to the API as is. */
const ALIASES = new Set(["auto", "fast", "smart", "default", "cheap", "reasoning-large", "code-large", "vision"])

export const resolveModel = (
  requested: string,
  defaultModel: string
) => (ALIASES.has(requested) ? defaultModel : requested)

// ---- request ----

type Block =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown }
  | { readonly type: "tool_result"; readonly tool_use_id: string; readonly content?: string }

export interface Turn {
  readonly role: "user" | "assistant"
  readonly content: ReadonlyArray<Block>
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const blocksOf = (m: Message): Array<Block> => {
  // the API rejects empty text blocks
  const text: Array<Block> = m.content === null || m.content === "" ? [] : [{ type: "text", text: m.content }]
  switch (m.role) {
    case "assistant":
      return [
        ...text,
        ...(m.toolCalls ?? []).map((c): Block => ({
          type: "tool_use",
          id: c.id,
          name: c.name,
          input: isRecord(c.arguments) ? c.arguments : { value: c.arguments }
        }))
      ]
    case "tool":
      return [{
        type: "tool_result",
        tool_use_id: m.toolCallId ?? "",
        ...(m.content === null || m.content === "" ? {} : { content: m.content })
      }]
    default:
      return text
  }
}

/**
 * Lantern's conversation as the Messages API's top-level `system` and alternating `messages`: tool results
 * become user turns of `tool_result` blocks, and consecutive messages of one role (the results answering
 * one assistant turn) merge into one turn, tool results first as the API requires.
 */
export const wireConversation = (
  messages: ReadonlyArray<Message>
): { readonly system: string; readonly messages: ReadonlyArray<Turn> } => {
  const system = messages.flatMap((
    m
  ) => (m.role === "system" && m.content !== null && m.content !== "" ? [m.content] : [])).join("\n\n")
  const turns: Array<{ role: "user" | "assistant"; content: Array<Block> }> = []
  for (const m of messages) {
    if (m.role === "system") continue
    const blocks = blocksOf(m)
    if (blocks.length === 0) continue
    const role = m.role === "assistant" ? "assistant" : "user"
    const last = turns.at(-1)
    if (last?.role === role) last.content.push(...blocks)
    else turns.push({ role, content: blocks })
  }
  for (const t of turns) {
    if (t.role === "user") t.content.sort((a, b) => Number(b.type === "tool_result") - Number(a.type === "tool_result"))
  }
  return { system, messages: turns }
}

export const requestBody = (request: Request, model: string, maxTokens: number) => {
  const { system, messages } = wireConversation(request.messages)
  return {
    model,
    max_tokens: request.maxTokens ?? maxTokens,
    ...(system === "" ? {} : { system }),
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    messages,
    ...(request.tools.length > 0
      ? {
        tools: request.tools.map((t) => ({
          name: t.name,
          description: t.description,
          input_schema: { type: "object", ...t.parameters }
        }))
      }
      : {}),
    stream: true
  }
}

// ---- errors ----

/** The HTTP status Anthropic gives each error type, for errors that arrive as a stream event after a 200. */
const STATUS_OF_ERROR: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529
}

// ---- I/O ----

/** Prices from `prices` (the built-in table when omitted, as in tests); Providers.ts passes the configured one. */
export const make = (settings: Settings, prices: Prices.Table = Prices.defaults) => {
  const secret = Redacted.value(settings.apiKey)
  const endpoint = `${settings.baseUrl.replace(/\/+$/, "")}/v1/messages`
  const name = settings.name ?? PROVIDER
  const fail = Wire.failWith(name, secret)

  const refused = (response: globalThis.Response, text: string) => {
    const parsed = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Struct({ error: WireError })))(text)
    const detail = Option.match(parsed, {
      onNone: () => text.slice(0, 300) || response.statusText,
      onSome: (p) => `${p.error.type}: ${p.error.message}`
    })
    const notes = Wire.headerNotes(response, "request-id")
    return fail(
      notes.length === 0 ? detail : `${detail} (${notes.join(", ")})`,
      Wire.isRetryableStatus(response.status),
      response.status,
      Wire.refusalOf(response, Date.now())
    )
  }

  const streamFailure = (error: typeof WireError.Type) => {
    const status = STATUS_OF_ERROR[error.type]
    return fail(
      `error event in the stream: ${error.type}: ${error.message}`,
      status === undefined || Wire.isRetryableStatus(status),
      status
    )
  }

  const decodeEvent = (sse: Sse.Event) =>
    Effect.gen(function*() {
      const json = yield* Effect.try({
        try: (): unknown => JSON.parse(sse.data),
        catch: () => fail(`malformed '${sse.event}' event in the stream`, false)
      })
      const type = isRecord(json) && typeof json["type"] === "string" ? json["type"] : sse.event
      // new event types may appear at any time; the API's docs ask clients to skip the ones they do not know
      if (!KNOWN_EVENTS.has(type)) return undefined
      return yield* Schema.decodeUnknownEffect(StreamEvent)(json).pipe(
        Effect.mapError(() => fail(`unexpected '${type}' event in the stream`, false))
      )
    })

  const step = (request: Request) => (draft: Draft, sse: Sse.Event) =>
    Effect.gen(function*() {
      const event = yield* decodeEvent(sse)
      if (event === undefined) return draft
      if (event.type === "error") return yield* streamFailure(event.error)
      emit(request, textAdded(draft, event))
      return evolve(draft, event)
    })

  const complete = (request: Request) => {
    const model = resolveModel(request.model, settings.defaultModel)
    // the tenant's own key for this provider, when its agent names one: used for this call only
    const own = request.apiKeys?.[name]
    const ownKey = own === undefined ? "" : Redacted.value(own)
    return Wire.exchange<Draft>({
      url: endpoint,
      headers: {
        "x-api-key": own === undefined ? secret : ownKey,
        "anthropic-version": API_VERSION,
        "idempotency-key": request.idempotencyKey
      },
      body: requestBody(request, model, settings.maxTokens),
      timeoutMs: settings.timeoutMs,
      fail,
      refused,
      json: (text, status) =>
        Schema.decodeUnknownEffect(Schema.fromJsonString(WireMessage))(text).pipe(
          Effect.mapBoth({
            onFailure: () => fail("response is not a Messages API answer", false, status),
            onSuccess: (message) => fromMessage(message, model)
          }),
          // an answer sent whole is one delta
          Effect.tap((d) => Effect.sync(() => emit(request, textOf(d))))
        ),
      stream: {
        initial: emptyDraft(model),
        step: step(request),
        done: (d) => d.stopped,
        endedEarly: "the event stream ended before message_stop"
      }
    }).pipe(
      Effect.map((d) => toResponse(d, prices, name)),
      Effect.mapError((e) => Wire.scrub(e, ownKey)),
      Effect.tap((r) =>
        Effect.annotateCurrentSpan({
          "gen_ai.response.model": r.answer.model,
          "gen_ai.usage.input_tokens": r.tokensIn,
          "gen_ai.usage.output_tokens": r.tokensOut,
          "gen_ai.usage.cached_input_tokens": r.cachedTokensIn ?? 0
        })
      ),
      Effect.withSpan("gen_ai.chat", {
        attributes: { "gen_ai.system": PROVIDER, "gen_ai.request.model": model, "gen_ai.operation.name": "chat" }
      })
    )
  }

  const quote = (request: Request) =>
    Effect.sync(() =>
      Quote.of(
        prices,
        request,
        [{ provider: name, model: resolveModel(request.model, settings.defaultModel) }],
        settings.maxTokens
      )
    )

  return ModelProvider.of({ name, complete, quote })
}

export const layer = (settings: Settings, prices?: Prices.Table) => Layer.succeed(ModelProvider, make(settings, prices))
