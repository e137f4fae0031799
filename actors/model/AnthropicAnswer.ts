// The Anthropic Messages API's answer as a fold: the events of its stream (or one non-streamed message) build a
// draft, and the draft becomes Lantern's answer with its usage and cost. Pure: the I/O is in Anthropic.ts.
import { Schema } from "effect"
import type { ToolCall } from "../../schema/StepOutcome.ts"
import type { Response } from "./ModelProvider.ts"
import * as Prices from "./Prices.ts"

/** Tokens of one answer as the API counts them: `input` excludes the prompt tokens read from or written to the cache. */
export interface Usage {
  readonly input: number
  readonly output: number
  readonly cacheRead: number
  readonly cacheWrite: number
}

/** The answer's cost from `prices`: cache reads and writes at their own rates (a dated snapshot priced as its alias). */
export const costOf = (prices: Prices.Table, model: string, u: Usage): number =>
  Prices.costOf(prices, model, {
    input: u.input + u.cacheRead + u.cacheWrite,
    output: u.output,
    cachedInput: u.cacheRead,
    cacheWriteInput: u.cacheWrite
  }).usd

// ---- the wire: a stream's events, or one whole message ----

const WireUsage = Schema.Struct({
  input_tokens: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  output_tokens: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  cache_read_input_tokens: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  cache_creation_input_tokens: Schema.optionalKey(Schema.NullOr(Schema.Number))
})

const WireBlock = Schema.Struct({
  type: Schema.String,
  text: Schema.optionalKey(Schema.String),
  id: Schema.optionalKey(Schema.String),
  name: Schema.optionalKey(Schema.String),
  input: Schema.optionalKey(Schema.Unknown)
})

export const WireMessage = Schema.Struct({
  model: Schema.optionalKey(Schema.String),
  content: Schema.Array(WireBlock),
  stop_reason: Schema.optionalKey(Schema.NullOr(Schema.String)),
  usage: Schema.optionalKey(WireUsage)
})

export const WireError = Schema.Struct({ type: Schema.String, message: Schema.String })

export const StreamEvent = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("message_start"),
    message: Schema.Struct({ model: Schema.optionalKey(Schema.String), usage: Schema.optionalKey(WireUsage) })
  }),
  Schema.Struct({ type: Schema.Literal("content_block_start"), index: Schema.Number, content_block: WireBlock }),
  Schema.Struct({
    type: Schema.Literal("content_block_delta"),
    index: Schema.Number,
    delta: Schema.Struct({
      type: Schema.String,
      text: Schema.optionalKey(Schema.String),
      partial_json: Schema.optionalKey(Schema.String)
    })
  }),
  Schema.Struct({ type: Schema.Literal("content_block_stop"), index: Schema.Number }),
  Schema.Struct({
    type: Schema.Literal("message_delta"),
    delta: Schema.Struct({ stop_reason: Schema.optionalKey(Schema.NullOr(Schema.String)) }),
    usage: Schema.optionalKey(WireUsage)
  }),
  Schema.Struct({ type: Schema.Literal("message_stop") }),
  Schema.Struct({ type: Schema.Literal("ping") }),
  Schema.Struct({ type: Schema.Literal("error"), error: WireError })
])
export type StreamEvent = typeof StreamEvent.Type
/** The event types of the Messages API stream this code reads; others are skipped, as the API asks. */
export const KNOWN_EVENTS: ReadonlySet<string> = new Set([
  "message_start",
  "content_block_start",
  "content_block_delta",
  "content_block_stop",
  "message_delta",
  "message_stop",
  "ping",
  "error"
])

// ---- the fold ----

type Part =
  | { readonly kind: "text"; readonly text: string }
  | {
    readonly kind: "tool_use"
    readonly id: string
    readonly name: string
    readonly input: unknown
    readonly json: string
  }
  /** Thinking, server tools and block types newer than this code: not part of Lantern's answer. */
  | { readonly kind: "other" }

/** The answer so far: content blocks by index, the stop reason and usage, and whether `message_stop` came. */
export interface Draft {
  readonly model: string
  readonly parts: ReadonlyArray<Part | undefined>
  readonly stopReason: string | null
  readonly usage: Usage
  readonly stopped: boolean
}

export const emptyDraft = (model: string): Draft => ({
  model,
  parts: [],
  stopReason: null,
  usage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
  stopped: false
})

// usage fields are cumulative: a later event's count replaces an earlier one
const withUsage = (u: Usage, w: typeof WireUsage.Type | undefined): Usage =>
  w === undefined ? u : {
    input: w.input_tokens ?? u.input,
    output: w.output_tokens ?? u.output,
    cacheRead: w.cache_read_input_tokens ?? u.cacheRead,
    cacheWrite: w.cache_creation_input_tokens ?? u.cacheWrite
  }

const partOf = (b: typeof WireBlock.Type): Part =>
  b.type === "text"
    ? { kind: "text", text: b.text ?? "" }
    : b.type === "tool_use"
    ? { kind: "tool_use", id: b.id ?? "", name: b.name ?? "", input: b.input ?? {}, json: "" }
    : { kind: "other" }

const setPart = (d: Draft, index: number, part: Part): Draft => {
  const parts = [...d.parts]
  parts[index] = part
  return { ...d, parts }
}

/** Folds one stream event into the draft; `error` events are the caller's to handle. */
export const evolve = (d: Draft, e: StreamEvent): Draft => {
  switch (e.type) {
    case "message_start":
      return { ...d, model: e.message.model ?? d.model, usage: withUsage(d.usage, e.message.usage) }
    case "content_block_start":
      return setPart(d, e.index, partOf(e.content_block))
    case "content_block_delta": {
      const p = d.parts[e.index]
      if (p?.kind === "text" && e.delta.type === "text_delta")
        return setPart(d, e.index, { ...p, text: p.text + (e.delta.text ?? "") })
      if (p?.kind === "tool_use" && e.delta.type === "input_json_delta") {
        return setPart(d, e.index, { ...p, json: p.json + (e.delta.partial_json ?? "") })
      }
      return d
    }
    case "message_delta":
      return { ...d, stopReason: e.delta.stop_reason ?? d.stopReason, usage: withUsage(d.usage, e.usage) }
    case "message_stop":
      return { ...d, stopped: true }
    default:
      return d
  }
}

/** The text an event adds to the answer (a text block's start or a text delta), for live tokens (ADR 0061). */
export const textAdded = (d: Draft, e: StreamEvent): string | null => {
  if (e.type === "content_block_start") return e.content_block.type === "text" ? e.content_block.text ?? null : null
  if (e.type === "content_block_delta" && e.delta.type === "text_delta" && d.parts[e.index]?.kind === "text") {
    return e.delta.text ?? null
  }
  return null
}

/** The draft's text so far, as the answer's content joins it. */
export const textOf = (d: Draft): string => d.parts.flatMap((p) => (p?.kind === "text" ? [p.text] : [])).join("")

/** A non-streamed answer as the draft its stream would have built. */
export const fromMessage = (m: typeof WireMessage.Type, model: string): Draft => ({
  model: m.model ?? model,
  parts: m.content.map(partOf),
  stopReason: m.stop_reason ?? null,
  usage: withUsage(emptyDraft(model).usage, m.usage),
  stopped: true
})

const parseArguments = (raw: string): unknown => {
  try {
    return JSON.parse(raw)
  } catch {
    return { raw }
  }
}

/** The draft as Lantern's answer, priced from `prices`, named as `provider` answered it. */
export const toResponse = (d: Draft, prices: Prices.Table, provider: string): Response => {
  const parts = d.parts.filter((p): p is Part => p !== undefined)
  const texts = parts.flatMap((p) => (p.kind === "text" ? [p.text] : []))
  const toolCalls: Array<ToolCall> = parts.flatMap((p) =>
    p.kind === "tool_use"
      ? [{ id: p.id, name: p.name, arguments: p.json === "" ? p.input : parseArguments(p.json) }]
      : []
  )
  return {
    answer: {
      content: texts.length === 0 ? null : texts.join(""),
      toolCalls,
      finishReason: d.stopReason ?? "end_turn",
      provider,
      model: d.model
    },
    tokensIn: d.usage.input + d.usage.cacheRead + d.usage.cacheWrite,
    tokensOut: d.usage.output,
    costUsd: costOf(prices, d.model, d.usage),
    // the API does not report thinking tokens apart from output, so `reasoningTokens` stays unset
    ...(d.usage.cacheRead > 0 ? { cachedTokensIn: d.usage.cacheRead } : {})
  }
}
