import { Effect, Fiber, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { ProviderError } from "../../schema/Errors.ts"
import * as FakeAnthropic from "../../tests/support/FakeAnthropic.ts"
import { freePort } from "../../bus/NatsServer.ts"
import type { Message } from "../run/Plan.ts"
import * as Anthropic from "./Anthropic.ts"
import type { Request } from "./ModelProvider.ts"
import * as Sse from "./Sse.ts"

let fake: FakeAnthropic.FakeAnthropic
beforeAll(async () => {
  fake = await FakeAnthropic.start()
})
afterAll(() => fake.close())

const settings = (overrides: Partial<Anthropic.Settings> = {}): Anthropic.Settings => ({
  baseUrl: fake.url,
  apiKey: Redacted.make(fake.apiKey),
  defaultModel: Anthropic.DEFAULT_MODEL,
  maxTokens: Anthropic.DEFAULT_MAX_TOKENS,
  timeoutMs: 10_000,
  ...overrides
})

const lookup: ToolSpec = {
  name: "lookup",
  description: "Looks a word up.",
  parameters: { type: "object", properties: { word: { type: "string" } }, required: ["word"] }
}

const request = (overrides: Partial<Request> = {}): Request => ({
  model: "auto",
  messages: [{ role: "system", content: "You are terse." }, { role: "user", content: "hello" }],
  tools: [],
  idempotencyKey: "run_01:turn-1:1",
  ...overrides
})

const complete = (r: Request = request(), s = settings()) => Effect.runPromise(Anthropic.make(s).complete(r))
const failure = (r: Request = request(), s = settings()): Promise<ProviderError> =>
  Effect.runPromise(Effect.flip(Anthropic.make(s).complete(r)))
/** Sends one request and returns what the fake received for it. */
const sent = async (r: Request = request(), s = settings()) => {
  const n = fake.requests.length
  await complete(r, s)
  return fake.requests[n]!
}
const within = <A>(p: Promise<A>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))
  ])

describe("Anthropic provider: answers", () => {
  it("streams a text answer", async () => {
    fake.reply(FakeAnthropic.text("Hello there, how can I help?", { pieces: 4 }))
    const r = await complete()
    expect(r.answer).toEqual({
      content: "Hello there, how can I help?",
      toolCalls: [],
      finishReason: "end_turn",
      provider: "anthropic",
      model: "claude-sonnet-4-5"
    })
  })

  it("sends the Messages API request: headers, endpoint, resolved model, max_tokens, stream", async () => {
    fake.reply(FakeAnthropic.text("ok"))
    const got = await sent(request({ idempotencyKey: "run_7:turn-3:2" }))
    expect(got.headers["x-api-key"]).toBe(fake.apiKey)
    expect(got.headers["anthropic-version"]).toBe("2023-06-01")
    expect(got.headers["content-type"]).toBe("application/json")
    expect(got.headers["idempotency-key"]).toBe("run_7:turn-3:2")
    expect(got.idempotencyKey).toBe("run_7:turn-3:2")
    expect(got.body).toEqual({
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      system: "You are terse.",
      messages: [{ role: "user", content: [{ type: "text", text: "hello" }] }],
      stream: true
    })
  })

  it("resolves capability aliases to the configured model and sends other names as they are", async () => {
    fake.reply(FakeAnthropic.text("a"), FakeAnthropic.text("b"), FakeAnthropic.text("c"))
    const s = settings({ defaultModel: "claude-haiku-4-5", maxTokens: 4096 })
    expect((await sent(request({ model: "fast" }), s)).body.model).toBe("claude-haiku-4-5")
    expect((await sent(request({ model: "smart" }), s)).body.model).toBe("claude-haiku-4-5")
    const named = await sent(request({ model: "claude-opus-4-1" }), s)
    expect(named.body.model).toBe("claude-opus-4-1")
    expect(named.body.max_tokens).toBe(4096)
  })

  it("assembles a tool call whose JSON input arrives split across several deltas", async () => {
    const input = {
      word: "lantern",
      options: { lang: "en", senses: [1, 2, 3] },
      note: "a \"quoted\" value: {not: json}"
    }
    fake.reply(
      FakeAnthropic.toolUse([{ id: "toolu_01A", name: "lookup", input }], { text: "Let me look that up.", pieces: 7 })
    )
    const n = fake.requests.length
    const r = await complete(request({ tools: [lookup] }))
    expect(r.answer.content).toBe("Let me look that up.")
    expect(r.answer.toolCalls).toEqual([{ id: "toolu_01A", name: "lookup", arguments: input }])
    expect(r.answer.finishReason).toBe("tool_use")
    expect(fake.requests[n]!.body.tools).toEqual([{
      name: "lookup",
      description: "Looks a word up.",
      input_schema: lookup.parameters
    }])
  })

  it("assembles several tool calls in one answer, and a tool call with empty input", async () => {
    fake.reply(FakeAnthropic.toolUse([
      { id: "toolu_1", name: "lookup", input: { word: "a" } },
      { id: "toolu_2", name: "lookup", input: { word: "b" } },
      { id: "toolu_3", name: "now", input: {} }
    ], { pieces: 2 }))
    const r = await complete(request({ tools: [lookup] }))
    expect(r.answer.content).toBeNull()
    expect(r.answer.toolCalls).toEqual([
      { id: "toolu_1", name: "lookup", arguments: { word: "a" } },
      { id: "toolu_2", name: "lookup", arguments: { word: "b" } },
      { id: "toolu_3", name: "now", arguments: {} }
    ])
  })

  it("reads a stream delivered in tiny chunks that cut lines and UTF-8 characters", async () => {
    const answer = "Héllo wörld 🌍 — ünïcödé, line\nbreaks and \"quotes\""
    fake.reply(FakeAnthropic.text(answer, { fragmentBytes: 3, pieces: 5 }))
    expect((await complete()).answer.content).toBe(answer)
  })

  it("accepts a non-streamed JSON answer", async () => {
    fake.reply(FakeAnthropic.toolUse([{ id: "toolu_9", name: "lookup", input: { word: "x" } }], {
      text: "Checking.",
      json: true,
      usage: { input_tokens: 40, output_tokens: 12 }
    }))
    const r = await complete(request({ tools: [lookup] }))
    expect(r.answer).toEqual({
      content: "Checking.",
      toolCalls: [{ id: "toolu_9", name: "lookup", arguments: { word: "x" } }],
      finishReason: "tool_use",
      provider: "anthropic",
      model: "claude-sonnet-4-5"
    })
    expect([r.tokensIn, r.tokensOut]).toEqual([40, 12])
  })

  it("counts usage, cache reads included, and prices it from the table (a dated snapshot priced as its alias)", async () => {
    fake.reply(FakeAnthropic.text("priced", {
      model: "claude-sonnet-4-5-20250929",
      usage: { input_tokens: 1000, cache_read_input_tokens: 2000, cache_creation_input_tokens: 400, output_tokens: 500 }
    }))
    const r = await complete()
    expect(r.answer.model).toBe("claude-sonnet-4-5-20250929")
    expect(r.tokensIn).toBe(3400)
    expect(r.tokensOut).toBe(500)
    // 1000 × $3 + 2000 × $0.30 + 400 × $3.75 + 500 × $15, per million tokens
    expect(r.costUsd).toBeCloseTo((3000 + 600 + 1500 + 7500) / 1_000_000, 12)
  })

  it("charges nothing for a model missing from the price table", async () => {
    fake.reply(
      FakeAnthropic.text("free", { model: "claude-unknown-9", usage: { input_tokens: 100, output_tokens: 100 } })
    )
    const r = await complete()
    expect([r.tokensIn, r.tokensOut, r.costUsd]).toEqual([100, 100, 0])
  })
})

describe("Anthropic provider: sampling, output cap and usage details", () => {
  it("sends temperature when set, and the request's output cap over the configured one", async () => {
    fake.reply(FakeAnthropic.text("a"), FakeAnthropic.text("b"))
    const capped = await sent(request({ temperature: 0.2, maxTokens: 64 }), settings({ maxTokens: 999 }))
    expect(capped.body).toMatchObject({ temperature: 0.2, max_tokens: 64 })
    const plain = await sent(request(), settings({ maxTokens: 999 }))
    expect(plain.body.max_tokens).toBe(999)
    expect(plain.body).not.toHaveProperty("temperature")
  })

  it("reports cache reads as cached prompt tokens, streamed and in a JSON answer; reasoning is not reported apart", async () => {
    const usage = { input_tokens: 100, cache_read_input_tokens: 300, cache_creation_input_tokens: 0, output_tokens: 20 }
    fake.reply(FakeAnthropic.text("s", { usage }), FakeAnthropic.text("j", { usage, json: true }))
    for (let i = 0; i < 2; i++) {
      const r = await complete()
      expect([r.tokensIn, r.tokensOut, r.cachedTokensIn]).toEqual([400, 20, 300])
      expect(r).not.toHaveProperty("reasoningTokens")
    }
    fake.reply(FakeAnthropic.text("none"))
    expect(await complete()).not.toHaveProperty("cachedTokensIn")
  })

  it("an instance with a name of its own labels its answers and errors with it", async () => {
    fake.reply(FakeAnthropic.text("named"), FakeAnthropic.httpError(529))
    const named = settings({ name: "claude-eu" })
    expect((await complete(request(), named)).answer.provider).toBe("claude-eu")
    const e = await failure(request(), named)
    expect([e.provider, e.status, e.retryable]).toEqual(["claude-eu", 529, true])
  })
})

describe("Anthropic provider: conversation mapping", () => {
  const conversation: ReadonlyArray<Message> = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "look up a and b" },
    {
      role: "assistant",
      content: "Looking both up.",
      toolCalls: [{ id: "toolu_a", name: "lookup", arguments: { word: "a" } }, {
        id: "toolu_b",
        name: "lookup",
        arguments: { word: "b" }
      }]
    },
    { role: "tool", content: "a: first letter", toolCallId: "toolu_a" },
    { role: "tool", content: "error: call rejected by alice: no", toolCallId: "toolu_b" },
    { role: "assistant", content: null, toolCalls: [{ id: "toolu_c", name: "lookup", arguments: { word: "c" } }] },
    { role: "tool", content: "c: third letter", toolCallId: "toolu_c" }
  ]

  it("puts the system prompt on top, tool calls in tool_use blocks, and merges consecutive tool results into one user turn", async () => {
    fake.reply(FakeAnthropic.text("a is first; b was refused; c is third."))
    const got = await sent(request({ messages: conversation, tools: [lookup] }))
    expect(got.body.system).toBe("Be brief.")
    expect(got.body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "look up a and b" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Looking both up." },
          { type: "tool_use", id: "toolu_a", name: "lookup", input: { word: "a" } },
          { type: "tool_use", id: "toolu_b", name: "lookup", input: { word: "b" } }
        ]
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_a", content: "a: first letter" },
          { type: "tool_result", tool_use_id: "toolu_b", content: "error: call rejected by alice: no" }
        ]
      },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_c", name: "lookup", input: { word: "c" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_c", content: "c: third letter" }] }
    ])
  })

  it("leaves out an empty system prompt and empty text", async () => {
    fake.reply(FakeAnthropic.text("ok"))
    const got = await sent(request({
      messages: [
        { role: "system", content: "" },
        { role: "user", content: "go" },
        { role: "assistant", content: "", toolCalls: [{ id: "toolu_e", name: "lookup", arguments: { word: "e" } }] },
        { role: "tool", content: "", toolCallId: "toolu_e" }
      ]
    }))
    expect("system" in got.body).toBe(false)
    expect(got.body.messages.slice(1)).toEqual([
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_e", name: "lookup", input: { word: "e" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_e" }] }
    ])
  })

  it("gets a 400 from the fake for a conversation the real API would refuse, and does not retry it", async () => {
    const e = await failure(
      request({
        messages: [{ role: "user", content: "x" }, { role: "tool", content: "orphan", toolCallId: "toolu_zz" }]
      })
    )
    expect(e.status).toBe(400)
    expect(e.retryable).toBe(false)
    expect(e.reason).toContain("invalid_request_error")
    expect(e.reason).toContain("toolu_zz")
  })
})

describe("Anthropic provider: failures", () => {
  it("429 is retryable, with retry-after in the reason", async () => {
    fake.reply(FakeAnthropic.httpError(429, { retryAfterSeconds: 7 }))
    const e = await failure()
    expect(e._tag).toBe("ProviderError")
    expect(e.provider).toBe("anthropic")
    expect(e.status).toBe(429)
    expect([e.kind, e.retryable, e.retryAfterMs]).toEqual(["rate_limited", true, 7_000])
    expect(e.reason).toContain("rate_limit_error")
    expect(e.reason).toContain("retry-after: 7")
    expect(e.reason).toMatch(/request-id: req_fake_\d+/)
  })

  it("500 and 529 (overloaded) are retryable", async () => {
    fake.reply(FakeAnthropic.httpError(500), FakeAnthropic.httpError(529))
    const e500 = await failure()
    expect([e500.kind, e500.status, e500.retryable]).toEqual(["unavailable", 500, true])
    expect(e500.reason).toContain("api_error")
    const e529 = await failure()
    expect([e529.status, e529.retryable]).toEqual([529, true])
    expect(e529.reason).toContain("overloaded_error: Overloaded")
  })

  it("an error event in the middle of a stream fails the call with the status of its type", async () => {
    fake.reply(
      FakeAnthropic.streamError("overloaded_error", "Overloaded"),
      FakeAnthropic.streamError("invalid_request_error", "bad")
    )
    const overloaded = await failure()
    expect([overloaded.kind, overloaded.status, overloaded.retryable]).toEqual(["unavailable", 529, true])
    expect(overloaded.reason).toContain("error event in the stream: overloaded_error: Overloaded")
    const invalid = await failure()
    expect([invalid.kind, invalid.status, invalid.retryable]).toEqual(["refused", 400, false])
  })

  it("a stream that ends before message_stop is retryable", async () => {
    fake.reply(FakeAnthropic.truncated)
    const e = await failure()
    expect([e.kind, e.retryable]).toEqual(["unavailable", true])
    expect(e.reason).toContain("before message_stop")
  })

  it("a network error is retryable and has no status", async () => {
    const closed = await freePort()
    const e = await failure(request(), settings({ baseUrl: `http://127.0.0.1:${closed}` }))
    expect([e.kind, e.retryable]).toEqual(["unavailable", true])
    expect(e.status).toBeUndefined()
    expect(e.reason).toContain("request failed")
  })

  it("a 401 is not retryable and the key appears nowhere in the error, even when the server echoes it", async () => {
    const key = "sk-ant-api03-SECRET-do-not-leak-7731"
    const n = fake.requests.length
    const e = await failure(request(), settings({ apiKey: Redacted.make(key) }))
    expect(fake.requests[n]!.headers["x-api-key"]).toBe(key)
    expect([e.kind, e.status, e.retryable]).toEqual(["refused", 401, false])
    expect(e.reason).toContain("authentication_error")
    expect(e.reason).toContain("[redacted]")
    for (const text of [e.reason, e.message, String(e), JSON.stringify(e), JSON.stringify(e.toJSON())])
      expect(text).not.toContain(key)
  })

  it("a step that takes longer than the timeout fails retryably and closes the connection", async () => {
    fake.reply(FakeAnthropic.hang)
    const n = fake.requests.length
    const e = await failure(request(), settings({ timeoutMs: 300 }))
    expect([e.kind, e.retryable]).toEqual(["timeout", true])
    expect(e.reason).toContain("no answer within 300 ms")
    await within(fake.requests[n]!.abandoned, 5_000, "the connection closing")
  })
})

describe("Anthropic provider: cancellation", () => {
  it("interrupting the call aborts the HTTP request mid-stream", async () => {
    fake.reply(FakeAnthropic.hang)
    const n = fake.requests.length
    const fiber = Effect.runFork(Anthropic.make(settings()).complete(request()))
    const got = await within(fake.request(n), 5_000, "the request arriving")
    // let the response headers and first events reach the client, so the body is being read
    await new Promise((r) => setTimeout(r, 100))
    await Effect.runPromise(Fiber.interrupt(fiber))
    await within(got.abandoned, 5_000, "the connection closing")
  })
})

describe("Anthropic SSE parser", () => {
  const stream = ": comment\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\n" +
    "event: ping\ndata: {}\n\n" +
    "event: content_block_delta\ndata: {\"text\":\"x\"}\ndata: {\"more\":2}\r\r" +
    "data:nospace\n\n" +
    "event: partial\ndata: {\"never\":true}"
  const expected = [
    { event: "message_start", data: "{\"a\":1}" },
    { event: "ping", data: "{}" },
    { event: "content_block_delta", data: "{\"text\":\"x\"}\n{\"more\":2}" },
    { event: "message", data: "nospace" }
  ]

  it("parses a stream however it is cut into chunks", () => {
    for (let i = 0; i <= stream.length; i++) {
      for (const j of [i, Math.min(stream.length, i + 1), Math.min(stream.length, i + 7)]) {
        const p = Sse.parser()
        const events = [stream.slice(0, i), stream.slice(i, j), stream.slice(j)].flatMap((c) => p.feed(c))
        expect(events).toEqual(expected)
      }
    }
  })
})

describe("Anthropic provider: live deltas (ADR 0061)", () => {
  it("gives each text delta to the sink as it streams, and their concatenation is the answer", async () => {
    fake.reply(FakeAnthropic.text("Hello there, how can I help?", { pieces: 4 }))
    const deltas: Array<string> = []
    const r = await complete(request({
      onDelta: (d) => {
        if (d._tag === "text") deltas.push(d.text)
      }
    }))
    expect(deltas.length).toBeGreaterThanOrEqual(4)
    expect(deltas.join("")).toBe(r.answer.content)
  })

  it("a tool use gives no delta", async () => {
    fake.reply(FakeAnthropic.toolUse([{ id: "toolu_1", name: "lookup", input: { word: "x" } }]))
    const deltas: Array<unknown> = []
    await complete(request({ tools: [lookup], onDelta: (d) => deltas.push(d) }))
    expect(deltas).toEqual([])
  })
})
