// The built-in deterministic offline provider: answers without any network so the whole system runs on a
// machine with no model key. Every answer says `provider: "offline"`; it costs nothing. Not a language model.
import { Effect, Layer } from "effect"
import type { ModelAnswer, ToolCall } from "../../schema/Events.ts"
import type { Message } from "../../schema/Message.ts"
import { emit, ModelProvider, type Request, type Response } from "./ModelProvider.ts"
import * as Quote from "./Quote.ts"

export const PROVIDER = "offline"
export const MODEL = "offline-echo-1"

const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4))

const argumentsFor = (tool: string, input: string): Record<string, unknown> => {
  if (tool === "calculator") {
    const expr = (input.match(/[-\d(][\d+\-*/(). ]*[\d)]/g) ?? []).sort((a, b) => b.length - a.length)[0] ?? input
    return { expression: expr.trim() }
  }
  if (tool === "sleep") return { seconds: Number(/\d+(\.\d+)?/.exec(input)?.[0] ?? 0) }
  return { text: input }
}

const text = (m: Message) => m.content ?? ""

/** The first `n` UTF-16 units of `s`, one fewer when the cut would split a surrogate pair (a lone half cannot be stored). */
export const prefix = (s: string, n: number) => {
  const cut = s.slice(0, n)
  const last = cut.charCodeAt(cut.length - 1)
  return cut.length === n && last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut
}

/**
 * The offline answer to a conversation: on the first turn, a call to every declared tool the user's input
 * names; once tool results are in, a final answer that reports them; otherwise an acknowledgement of the input.
 */
export const answer = (request: Request): Response => {
  const user = request.messages.find((m) => m.role === "user")
  const input = user === undefined ? "" : text(user)
  const toolResults = request.messages.filter((m) => m.role === "tool")
  const mentioned = request.tools.filter((t) => input.toLowerCase().includes(t.name.toLowerCase()))
  let result: ModelAnswer
  if (toolResults.length === 0 && mentioned.length > 0) {
    const calls: Array<ToolCall> = mentioned.map((t, i) => ({
      id: `call_${i}`,
      name: t.name,
      arguments: argumentsFor(t.name, input)
    }))
    result = { content: null, toolCalls: calls, finishReason: "tool_calls", provider: PROVIDER, model: MODEL }
  } else {
    const content = toolResults.length > 0
      ? `[offline] Tool results: ${toolResults.map(text).join("; ")}`
      : `[offline] Received ${input.length} characters: ${prefix(input, 200)}`
    result = { content, toolCalls: [], finishReason: "stop", provider: PROVIDER, model: MODEL }
  }
  const promptTokens = request.messages.reduce((n, m) => n + tokens(text(m)), 0)
  const completionTokens = tokens(result.content ?? "") + 8 * result.toolCalls.length
  return { answer: result, tokensIn: promptTokens, tokensOut: completionTokens, costUsd: 0 }
}

/** `text` cut into words, each with the whitespace before it: the pieces the offline answer streams in. */
export const chunksOf = (text: string): Array<string> => text.match(/\s*\S+|\s+$/g) ?? []

export const layer = Layer.succeed(ModelProvider, {
  name: PROVIDER,
  complete: (request) =>
    Effect.sync(() => {
      const response = answer(request)
      // streamed word by word, so a viewer of live tokens sees more than one piece (ADR 0061)
      if (request.onDelta !== undefined) {
        for (const piece of chunksOf(response.answer.content ?? ""))
          emit(request, piece)
      }
      return response
    }).pipe(Effect.withSpan("gen_ai.offline", {
      attributes: { "gen_ai.system": PROVIDER, "gen_ai.request.model": request.model }
    }, { captureStackTrace: false })),
  // free: the quote counts the tokens, its price is 0
  quote: (request) =>
    Effect.sync(() => Quote.of({ version: "offline", models: {} }, request, [{ provider: PROVIDER, model: MODEL }]))
})
