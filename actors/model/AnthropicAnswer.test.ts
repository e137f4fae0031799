// The Anthropic answer fold without HTTP: a stream's events, in order, build the same answer as the whole message
// would, usage counts replace earlier ones, and block types this code does not know are left out.
import { describe, expect, it } from "vitest"
import * as Answer from "./AnthropicAnswer.ts"
import * as Prices from "./Prices.ts"

const MODEL = "claude-sonnet-4-5"

const events: ReadonlyArray<Answer.StreamEvent> = [
  { type: "message_start", message: { model: "claude-sonnet-4-5-20250929", usage: { input_tokens: 100 } } },
  { type: "content_block_start", index: 0, content_block: { type: "thinking" } },
  { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
  { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "Hello, " } },
  { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "world" } },
  {
    type: "content_block_start",
    index: 2,
    content_block: { type: "tool_use", id: "toolu_1", name: "echo", input: {} }
  },
  { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: "{\"text\":" } },
  { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: "\"hi\"}" } },
  { type: "ping" },
  {
    type: "message_delta",
    delta: { stop_reason: "tool_use" },
    usage: { output_tokens: 30, cache_read_input_tokens: 50 }
  },
  { type: "message_stop" }
]

describe("AnthropicAnswer", () => {
  it("given a stream's events, then the draft holds the text, the tool call's arguments and the last usage counts", () => {
    const draft = events.reduce(Answer.evolve, Answer.emptyDraft(MODEL))
    expect(draft.stopped).toBe(true)
    expect(Answer.toResponse(draft, Prices.defaults, "anthropic")).toEqual({
      answer: {
        content: "Hello, world",
        toolCalls: [{ id: "toolu_1", name: "echo", arguments: { text: "hi" } }],
        finishReason: "tool_use",
        provider: "anthropic",
        model: "claude-sonnet-4-5-20250929"
      },
      tokensIn: 150,
      tokensOut: 30,
      costUsd: Answer.costOf(Prices.defaults, "claude-sonnet-4-5-20250929", {
        input: 100,
        output: 30,
        cacheRead: 50,
        cacheWrite: 0
      }),
      cachedTokensIn: 50
    })
  })

  it("given the same answer as one message, then it becomes the same response", () => {
    const streamed = events.reduce(Answer.evolve, Answer.emptyDraft(MODEL))
    const whole = Answer.fromMessage({
      model: "claude-sonnet-4-5-20250929",
      content: [
        { type: "thinking" },
        { type: "text", text: "Hello, world" },
        { type: "tool_use", id: "toolu_1", name: "echo", input: { text: "hi" } }
      ],
      stop_reason: "tool_use",
      usage: { input_tokens: 100, output_tokens: 30, cache_read_input_tokens: 50 }
    }, MODEL)
    expect(Answer.toResponse(whole, Prices.defaults, "anthropic")).toEqual(
      Answer.toResponse(streamed, Prices.defaults, "anthropic")
    )
  })

  it("given tool arguments that are not JSON, then they are kept raw instead of failing the answer", () => {
    const broken: ReadonlyArray<Answer.StreamEvent> = [
      events[5]!,
      { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: "{not json" } }
    ]
    const draft = broken.reduce(Answer.evolve, Answer.emptyDraft(MODEL))
    expect(Answer.toResponse(draft, Prices.defaults, "anthropic").answer.toolCalls).toEqual([
      { id: "toolu_1", name: "echo", arguments: { raw: "{not json" } }
    ])
  })
})
