// Counts prompt tokens before a model call, with OpenAI's o200k_base encoding (js-tiktoken), so a budget can
// reserve the prompt's cost up front. For other vendors' models the count is an approximation.
import { Effect } from "effect"
import { Tiktoken } from "js-tiktoken/lite"
import o200k from "js-tiktoken/ranks/o200k_base"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { Message } from "../../schema/Message.ts"

export const ENCODING = "o200k_base"

// building the encoder parses its 200k ranks (about a second); only the first count pays it
let encoder: Tiktoken | undefined
const getEncoder = () => (encoder ??= new Tiktoken(o200k))

/** Loads the encoder now, so a host pays the load at start and not in its first step. */
export const warm: Effect.Effect<void> = Effect.sync(() => void getEncoder())

// the encoding's own pre-tokenizer: BPE runs within each piece it matches
const pieces = new RegExp(o200k.pat_str, "gu")

/**
 * js-tiktoken merges a piece's bytes in time that grows faster than the square of its length: one 10,000-letter
 * word takes about 10 s, and Chinese or Japanese prose (no spaces, 3 bytes a character) forms long pieces too.
 * Pieces longer than this many UTF-8 bytes are counted in slices of at most this size, which costs about
 * 0.3 ms a slice and overcounts such runs by a few per cent (a budget reservation errs high, not low).
 */
export const MAX_PIECE_BYTES = 48

const utf8 = new TextEncoder()

// special-token text such as "<|endoftext|>" in user content is counted as the ordinary text it is to the API
const encodeLength = (text: string) => (text === "" ? 0 : getEncoder().encode(text, [], []).length)

const slicedLength = (piece: string) => {
  let total = 0
  let slice = ""
  let bytes = 0
  for (const ch of piece) {
    const cp = ch.codePointAt(0)!
    const size = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4
    if (bytes + size > MAX_PIECE_BYTES) {
      total += encodeLength(slice)
      slice = ""
      bytes = 0
    }
    slice += ch
    bytes += size
  }
  return total + encodeLength(slice)
}

/** Tokens of `text` in o200k_base: exact unless it holds a piece longer than MAX_PIECE_BYTES. */
export const count = (text: string): number => {
  let total = 0
  let start = 0
  for (const m of text.matchAll(pieces)) {
    // 16 UTF-16 code units are at most 48 UTF-8 bytes, so most pieces need no byte count
    if (m[0].length <= MAX_PIECE_BYTES / 3 || utf8.encode(m[0]).length <= MAX_PIECE_BYTES) continue
    total += encodeLength(text.slice(start, m.index)) + slicedLength(m[0])
    start = m.index + m[0].length
  }
  return total + encodeLength(text.slice(start))
}

/** Each message is wrapped as `<|start|>{role}<|message|>{content}<|end|>`. */
export const TOKENS_PER_MESSAGE = 3
/** The answer is primed with `<|start|>assistant<|message|>`. */
export const TOKENS_PER_REPLY = 3

const messageTokens = (m: Message) =>
  TOKENS_PER_MESSAGE
  + count(m.role)
  + count(m.content ?? "")
  + (m.toolCalls ?? []).reduce((n, c) => n + count(c.id) + count(c.name) + count(JSON.stringify(c.arguments) ?? ""), 0)
  + (m.toolCallId === undefined ? 0 : count(m.toolCallId))

/**
 * Input tokens of a chat request, following OpenAI's published accounting for chat models (3 tokens per
 * message plus its role and content, 3 to prime the reply), with tool calls counted by id, name and JSON
 * arguments and tool definitions as the JSON of the request's `tools` field. OpenAI renders definitions
 * more compactly than JSON, so tools count somewhat high. For Anthropic and other vendors, whose tokenizers
 * differ, this is an approximation of the same order, good for a reservation, not for billing.
 */
export const estimatePrompt = (messages: ReadonlyArray<Message>, tools: ReadonlyArray<ToolSpec>): number => {
  const definitions = tools.length === 0
    ? 0
    : count(
      JSON.stringify(
        tools.map((t) => ({
          type: "function",
          function: { name: t.name, description: t.description, parameters: t.parameters }
        }))
      )
    )
  return messages.reduce((n, m) => n + messageTokens(m), TOKENS_PER_REPLY) + definitions
}
