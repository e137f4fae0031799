// A model provider speaking the OpenAI-compatible Chat Completions API (OpenAI, Ollama, vLLM, llama.cpp, gateways)
// at a base URL: streamed (SSE) answers, or a plain JSON one from servers that ignore `stream`. Called
// directly, capability aliases map to the default model; the router (Router.ts) resolves them first. The key
// never leaves its header.
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { ProviderError } from "../../schema/Errors.ts"
import type { ToolCall } from "../../schema/Events.ts"
import type { Message } from "../../schema/Message.ts"
import { emit, ModelProvider, type Request, type Response } from "./ModelProvider.ts"
import * as Prices from "./Prices.ts"
import * as Quote from "./Quote.ts"
import type * as Sse from "./Sse.ts"
import * as Wire from "./Wire.ts"

export const PROVIDER = "openai"

export interface Settings {
  /** The instance's name in answers and errors (the router's catalogue may hold several); `openai` by default. */
  readonly name?: string
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  /** The model capability aliases resolve to. */
  readonly defaultModel: string
  readonly timeoutMs: number
  /**
   * The field the output cap goes in: OpenAI itself wants `max_completion_tokens` (its reasoning models refuse
   * `max_tokens`), while compatible servers (Ollama, vLLM, llama.cpp, most gateways) read `max_tokens`. By
   * default the first for api.openai.com, the second for every other base URL.
   */
  readonly outputCapField?: OutputCapField
}

export type OutputCapField = "max_tokens" | "max_completion_tokens"

/** The cap field a server at `baseUrl` reads (see Settings.outputCapField). */
export const outputCapFieldOf = (baseUrl: string): OutputCapField => {
  try {
    return new URL(baseUrl).hostname === "api.openai.com" ? "max_completion_tokens" : "max_tokens"
  } catch {
    return "max_tokens"
  }
}

const ALIASES = new Set(["auto", "fast", "smart", "default"])

// ---- request ----

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

export const requestBody = (request: Request, model: string, capField: OutputCapField = "max_tokens") => ({
  model,
  messages: request.messages.map(wireMessage),
  ...(request.tools.length > 0
    ? {
      tools: request.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.parameters }
      }))
    }
    : {}),
  ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
  ...(request.maxTokens === undefined ? {} : { [capField]: request.maxTokens }),
  stream: true,
  // without it a stream carries no usage at all, and the step could not be billed
  stream_options: { include_usage: true }
})

// ---- answer: a fold over the stream's chunks ----

const Count = Schema.optionalKey(Schema.NullOr(Schema.Number))

const WireUsage = Schema.Struct({
  prompt_tokens: Count,
  completion_tokens: Count,
  // the part of prompt_tokens served from OpenAI's prompt cache, billed at the cached rate
  prompt_tokens_details: Schema.optionalKey(Schema.NullOr(Schema.Struct({ cached_tokens: Count }))),
  // the part of completion_tokens spent reasoning, billed as output
  completion_tokens_details: Schema.optionalKey(Schema.NullOr(Schema.Struct({ reasoning_tokens: Count })))
})

const WireError = Schema.Struct({
  message: Schema.optionalKey(Schema.NullOr(Schema.String)),
  type: Schema.optionalKey(Schema.NullOr(Schema.String)),
  code: Schema.optionalKey(Schema.NullOr(Schema.Union([Schema.String, Schema.Number])))
})

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
  usage: Schema.optionalKey(Schema.NullOr(WireUsage))
})

const ToolCallDelta = Schema.Struct({
  // some compatible servers leave it out when a turn has one call
  index: Schema.optionalKey(Schema.Number),
  id: Schema.optionalKey(Schema.NullOr(Schema.String)),
  function: Schema.optionalKey(Schema.NullOr(Schema.Struct({
    name: Schema.optionalKey(Schema.NullOr(Schema.String)),
    arguments: Schema.optionalKey(Schema.NullOr(Schema.String))
  })))
})

const Chunk = Schema.Struct({
  model: Schema.optionalKey(Schema.NullOr(Schema.String)),
  choices: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Struct({
    index: Schema.optionalKey(Schema.Number),
    delta: Schema.optionalKey(Schema.NullOr(Schema.Struct({
      content: Schema.optionalKey(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optionalKey(Schema.NullOr(Schema.Array(ToolCallDelta)))
    }))),
    finish_reason: Schema.optionalKey(Schema.NullOr(Schema.String))
  })))),
  usage: Schema.optionalKey(Schema.NullOr(WireUsage)),
  // some compatible servers send a bare message
  error: Schema.optionalKey(Schema.Union([WireError, Schema.String]))
})
export type Chunk = typeof Chunk.Type

/** Tokens of one answer as the API counts them: `prompt` includes `cached`, `completion` includes `reasoning`. */
export interface Usage {
  readonly prompt: number
  readonly completion: number
  readonly cached: number
  readonly reasoning: number
}

interface Call {
  readonly id: string
  readonly name: string
  /** JSON text, built from fragments. */
  readonly arguments: string
}

/** The answer so far: text, tool calls by their stream index, finish reason and usage, and whether `[DONE]` came. */
export interface Draft {
  readonly model: string
  readonly content: string | null
  readonly calls: ReadonlyArray<Call | undefined>
  readonly finishReason: string | null
  readonly usage: Usage
  readonly done: boolean
}

export const emptyDraft = (model: string): Draft => ({
  model,
  content: null,
  calls: [],
  finishReason: null,
  usage: { prompt: 0, completion: 0, cached: 0, reasoning: 0 },
  done: false
})

const withUsage = (u: Usage, w: typeof WireUsage.Type | null | undefined): Usage =>
  w == null ? u : {
    prompt: w.prompt_tokens ?? u.prompt,
    completion: w.completion_tokens ?? u.completion,
    cached: w.prompt_tokens_details?.cached_tokens ?? u.cached,
    reasoning: w.completion_tokens_details?.reasoning_tokens ?? u.reasoning
  }

const withCallDelta = (calls: Array<Call | undefined>, d: typeof ToolCallDelta.Type, position: number) => {
  const index = d.index ?? position
  const c = calls[index] ?? { id: "", name: "", arguments: "" }
  calls[index] = {
    id: c.id === "" ? d.id ?? "" : c.id,
    // names come whole in the first fragment; a server that repeats one must not double it
    name: c.name === "" ? d.function?.name ?? "" : c.name,
    arguments: c.arguments + (d.function?.arguments ?? "")
  }
}

/** The answer's text a chunk carries (of the first choice), for live tokens (ADR 0061). */
export const textAdded = (chunk: Chunk): string | null | undefined =>
  (chunk.choices ?? []).find((c) => (c.index ?? 0) === 0)?.delta?.content

/** Folds one chunk into the draft; a chunk carrying `error` is the caller's to handle. */
export const evolve = (d: Draft, chunk: Chunk): Draft => {
  // n = 1: only the first choice is Lantern's answer
  const choice = (chunk.choices ?? []).find((c) => (c.index ?? 0) === 0)
  const deltas = choice?.delta?.tool_calls ?? []
  const calls = [...d.calls]
  deltas.forEach((delta, position) => withCallDelta(calls, delta, position))
  const text = choice?.delta?.content
  return {
    ...d,
    model: chunk.model ?? d.model,
    content: text == null ? d.content : (d.content ?? "") + text,
    calls,
    finishReason: choice?.finish_reason ?? d.finishReason,
    usage: withUsage(d.usage, chunk.usage)
  }
}

/** A non-streamed answer as the draft its stream would have built. */
export const fromCompletion = (r: typeof ChatResponse.Type, model: string): Draft => {
  const choice = r.choices[0]!
  return {
    model: r.model ?? model,
    content: choice.message.content ?? null,
    calls: (choice.message.tool_calls ?? []).map((c) => ({
      id: c.id,
      name: c.function.name,
      arguments: c.function.arguments
    })),
    finishReason: choice.finish_reason ?? null,
    usage: withUsage(emptyDraft(model).usage, r.usage),
    done: true
  }
}

const parseArguments = (raw: string): unknown => {
  if (raw === "") return {}
  try {
    return JSON.parse(raw)
  } catch {
    return { raw }
  }
}

/** The answer's cost: a gateway may answer with a model name of its own, and then the requested model's price applies. */
export const costOf = (prices: Prices.Table, answered: string, requested: string, u: Usage): number => {
  const usage = { input: u.prompt, output: u.completion, cachedInput: u.cached }
  const cost = Prices.costOf(prices, answered, usage)
  return cost.priced ? cost.usd : Prices.costOf(prices, requested, usage).usd
}

export const toResponse = (d: Draft, requested: string, prices: Prices.Table, provider = PROVIDER): Response => {
  const toolCalls: Array<ToolCall> = d.calls.flatMap((c) =>
    c === undefined ? [] : [{ id: c.id, name: c.name, arguments: parseArguments(c.arguments) }]
  )
  return {
    answer: {
      content: d.content,
      toolCalls,
      finishReason: d.finishReason ?? "stop",
      provider,
      model: d.model
    },
    tokensIn: d.usage.prompt,
    tokensOut: d.usage.completion,
    costUsd: costOf(prices, d.model, requested, d.usage),
    // only when the server reported some: a zero would say nothing and lengthen every journaled step
    ...(d.usage.cached > 0 ? { cachedTokensIn: d.usage.cached } : {}),
    ...(d.usage.reasoning > 0 ? { reasoningTokens: d.usage.reasoning } : {})
  }
}

// ---- errors ----

const errorText = (e: typeof WireError.Type) =>
  [e.type, e.code === undefined || e.code === null ? undefined : String(e.code), e.message].filter((s) =>
    s != null && s !== ""
  ).join(": ")

// ---- I/O ----

/** Prices from `prices` (the built-in table when omitted, as in tests); Providers.ts passes the configured one. */
export const make = (settings: Settings, prices: Prices.Table = Prices.defaults) => {
  const secret = Redacted.value(settings.apiKey)
  const endpoint = `${settings.baseUrl.replace(/\/+$/, "")}/chat/completions`
  const name = settings.name ?? PROVIDER
  const fail = Wire.failWith(name, secret)
  const capField = settings.outputCapField ?? outputCapFieldOf(settings.baseUrl)
  // a local server (Ollama, llama.cpp) may need no key: then no authorization header at all
  const auth: Record<string, string> = secret === "" ? {} : { authorization: `Bearer ${secret}` }

  const refused = (response: globalThis.Response, text: string) => {
    const parsed = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Struct({ error: WireError })))(text)
    const detail = Option.match(parsed, {
      onNone: () => text.slice(0, 300) || response.statusText,
      onSome: (p) => errorText(p.error) || text.slice(0, 300)
    })
    const notes = Wire.headerNotes(response, "x-request-id")
    const reason = `HTTP ${response.status}: ${notes.length === 0 ? detail : `${detail} (${notes.join(", ")})`}`
    return fail(reason, Wire.isRetryableStatus(response.status), response.status, Wire.refusalOf(response, Date.now()))
  }

  // an error after the 200 went out: the server gave up mid-answer, so another attempt may well succeed;
  // a rate limit keeps its status so the retry policy files it as one
  const streamFailure = (error: typeof WireError.Type | string) => {
    const e = typeof error === "string" ? { message: error } : error
    const rateLimited = /rate_limit/.test(`${e.type ?? ""} ${String(e.code ?? "")}`)
    return fail(`error in the stream: ${errorText(e) || "unknown error"}`, true, rateLimited ? 429 : undefined)
  }

  const decodeChunk = (data: string) =>
    Effect.try({ try: (): unknown => JSON.parse(data), catch: () => fail("malformed chunk in the stream", false) })
      .pipe(
        Effect.flatMap((json) => Schema.decodeUnknownEffect(Chunk)(json)),
        Effect.mapError((e) => (e instanceof ProviderError ? e : fail("unexpected chunk in the stream", false)))
      )

  const step = (request: Request) => (draft: Draft, sse: Sse.Event) =>
    Effect.gen(function*() {
      if (sse.data.trim() === "[DONE]") return { ...draft, done: true }
      const chunk = yield* decodeChunk(sse.data)
      if (chunk.error !== undefined) return yield* streamFailure(chunk.error)
      emit(request, textAdded(chunk))
      return evolve(draft, chunk)
    })

  const complete = (request: Request) => {
    const model = ALIASES.has(request.model) ? settings.defaultModel : request.model
    // the tenant's own key for this provider, when its agent names one: used for this call only
    const own = request.apiKeys?.[name]
    const ownKey = own === undefined ? "" : Redacted.value(own)
    return Wire.exchange<Draft>({
      url: endpoint,
      headers: {
        ...(own === undefined ? auth : { authorization: `Bearer ${ownKey}` }),
        "idempotency-key": request.idempotencyKey
      },
      body: requestBody(request, model, capField),
      timeoutMs: settings.timeoutMs,
      fail,
      refused,
      json: (text, status) =>
        Schema.decodeUnknownEffect(Schema.fromJsonString(ChatResponse))(text).pipe(
          Effect.mapBoth({
            onFailure: () => fail("response is not a Chat Completions answer", false, status),
            onSuccess: (completion) => fromCompletion(completion, model)
          }),
          // an answer sent whole is one delta
          Effect.tap((d) => Effect.sync(() => emit(request, d.content)))
        ),
      stream: {
        initial: emptyDraft(model),
        step: step(request),
        done: (d) => d.done,
        endedEarly: "the event stream ended before [DONE]"
      }
    }).pipe(
      Effect.tap((d) =>
        Effect.annotateCurrentSpan({
          "gen_ai.response.model": d.model,
          "gen_ai.usage.input_tokens": d.usage.prompt,
          "gen_ai.usage.output_tokens": d.usage.completion,
          "gen_ai.usage.cached_input_tokens": d.usage.cached,
          "gen_ai.usage.reasoning_tokens": d.usage.reasoning
        })
      ),
      Effect.map((d) => toResponse(d, model, prices, name)),
      Effect.mapError((e) => Wire.scrub(e, ownKey)),
      Effect.withSpan("gen_ai.chat", {
        attributes: {
          "gen_ai.system": PROVIDER,
          "gen_ai.request.model": request.model,
          "gen_ai.operation.name": "chat"
        }
      })
    )
  }

  const quote = (request: Request) =>
    Effect.sync(() =>
      Quote.of(prices, request, [{
        provider: name,
        model: ALIASES.has(request.model) ? settings.defaultModel : request.model
      }])
    )

  return ModelProvider.of({ name, complete, quote })
}

export const layer = (settings: Settings, prices?: Prices.Table) => Layer.succeed(ModelProvider, make(settings, prices))
