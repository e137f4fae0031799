import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http"
import { Effect, Fiber, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { ProviderError } from "../../schema/Errors.ts"
import { freePort } from "../../bus/NatsServer.ts"
import * as FakeOpenAi from "../../tests/support/FakeOpenAi.ts"
import type { Request } from "./ModelProvider.ts"
import * as OpenAi from "./OpenAi.ts"

const echo: ToolSpec = {
  name: "echo",
  description: "Echoes.",
  parameters: { type: "object", properties: { text: { type: "string" } } }
}

const request = (overrides: Partial<Request> = {}): Request => ({
  model: "auto",
  messages: [{ role: "system", content: "You echo." }, { role: "user", content: "go" }],
  tools: [echo],
  idempotencyKey: "run_01:turn-1:1",
  ...overrides
})

const within = <A>(p: Promise<A>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))
  ])

// ---- against the scripted provider the end-to-end suites use ----

describe("OpenAI provider against FakeOpenAi (streamed)", () => {
  let fake: FakeOpenAi.FakeOpenAi
  beforeAll(async () => {
    fake = await FakeOpenAi.start(1)
  })
  afterAll(() => fake.close())

  const settings = (): OpenAi.Settings => ({
    baseUrl: fake.url,
    apiKey: Redacted.make("test-key"),
    defaultModel: "gpt-4o-mini",
    timeoutMs: 10_000
  })
  const complete = (r: Request) => Effect.runPromise(OpenAi.make(settings()).complete(r))

  it("streams a tool call whose arguments arrive in several fragments", async () => {
    const r = await complete(request())
    expect(r.answer).toEqual({
      content: null,
      toolCalls: [{ id: "call_0", name: "echo", arguments: { text: "round 1" } }],
      finishReason: "tool_calls",
      provider: "openai",
      model: "gpt-4o-mini"
    })
    // 2 messages at 10 prompt tokens each, 7 completion tokens, at gpt-4o-mini's list price
    expect([r.tokensIn, r.tokensOut]).toEqual([20, 7])
    expect(r.costUsd).toBeCloseTo((20 * 0.15 + 7 * 0.6) / 1e6, 12)
    expect(fake.received.at(-1)!.key).toBe("run_01:turn-1:1")
    expect(fake.streamed).toContain("run_01:turn-1:1")
  })

  it("streams a text answer", async () => {
    const r = await complete(request({
      idempotencyKey: "run_01:turn-2:1",
      messages: [
        ...request().messages,
        {
          role: "assistant",
          content: null,
          toolCalls: [{ id: "call_0", name: "echo", arguments: { text: "round 1" } }]
        },
        { role: "tool", content: "round 1", toolCallId: "call_0" }
      ]
    }))
    expect(r.answer.content).toBe("done after 1 tool calls")
    expect(r.answer.toolCalls).toEqual([])
    expect(r.answer.finishReason).toBe("stop")
    expect([r.tokensIn, r.tokensOut]).toEqual([40, 7])
    expect(fake.streamed).toContain("run_01:turn-2:1")
  })

  it("the fake's stream splits text and tool arguments across chunks and ends with usage and [DONE]", () => {
    const completion = JSON.stringify({
      id: "x",
      model: "m",
      choices: [{
        message: {
          content: null,
          tool_calls: [{ id: "c", function: { name: "echo", arguments: "{\"text\":\"round 1\"}" } }]
        },
        finish_reason: "tool_calls"
      }],
      usage: { prompt_tokens: 1, completion_tokens: 2 }
    })
    const events = FakeOpenAi.streamOf(completion)
    const fragments = events.filter((e) => e.includes("\"arguments\":\"") && !e.includes("\"arguments\":\"\""))
    expect(fragments.length).toBeGreaterThan(1)
    expect(events.at(-2)).toContain("\"choices\":[],\"usage\":")
    expect(events.at(-1)).toBe("data: [DONE]\n\n")
  })
})

// ---- against a purpose-built server answering exactly what each test scripts ----

interface Recorded {
  readonly headers: IncomingHttpHeaders
  readonly body: Record<string, unknown>
  /** Resolves when the client goes away before the answer was finished. */
  readonly abandoned: Promise<void>
}

type Script = (res: ServerResponse) => void | Promise<void>

let server: Server
let url: string
const requests: Array<Recorded> = []
const scripts: Array<Script> = []
const arrivals: Array<(r: Recorded) => void> = []

beforeAll(async () => {
  const port = await freePort()
  server = createServer(async (req, res) => {
    const raw = await FakeOpenAi.readBody(req)
    let resolveAbandoned = () => {}
    const abandoned = new Promise<void>((r) => (resolveAbandoned = r))
    res.on("close", () => {
      if (!res.writableFinished) resolveAbandoned()
    })
    const recorded = { headers: req.headers, body: JSON.parse(raw) as Record<string, unknown>, abandoned }
    requests.push(recorded)
    arrivals.splice(0).forEach((f) => f(recorded))
    await (scripts.shift() ?? ((r: ServerResponse) => void r.writeHead(500).end("no script")))(res)
  })
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  url = `http://127.0.0.1:${port}/v1`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

const KEY = "sk-proj-SECRET-do-not-leak-4412"
const settings = (overrides: Partial<OpenAi.Settings> = {}): OpenAi.Settings => ({
  baseUrl: url,
  apiKey: Redacted.make(KEY),
  defaultModel: "gpt-4o",
  timeoutMs: 10_000,
  ...overrides
})
const complete = (r: Request = request(), s = settings()) => Effect.runPromise(OpenAi.make(s).complete(r))
const failure = (r: Request = request(), s = settings()): Promise<ProviderError> =>
  Effect.runPromise(Effect.flip(OpenAi.make(s).complete(r)))
const nextRequest = () => new Promise<Recorded>((r) => arrivals.push(r))

const data = (chunk: unknown) => `data: ${typeof chunk === "string" ? chunk : JSON.stringify(chunk)}\n\n`
const delta = (d: object, finish_reason: string | null = null) => ({
  model: "gpt-4o-2024-08-06",
  choices: [{ index: 0, delta: d, finish_reason }]
})

/** Answers with an event stream, written in pieces of `fragmentBytes` bytes (lines and UTF-8 characters cut anywhere). */
const stream =
  (events: ReadonlyArray<string>, options: { readonly fragmentBytes?: number; readonly end?: boolean } = {}): Script =>
  async (res) => {
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" })
    const bytes = Buffer.from(events.join(""))
    const size = options.fragmentBytes ?? bytes.length
    for (let i = 0; i < bytes.length && !res.destroyed; i += size) {
      res.write(bytes.subarray(i, i + size))
      await new Promise((r) => setImmediate(r))
    }
    if (options.end !== false) res.end()
  }
const json = (status: number, body: unknown, headers: Record<string, string> = {}): Script => (res) =>
  void res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body))

const usage = {
  prompt_tokens: 10_000,
  completion_tokens: 2000,
  total_tokens: 12_000,
  prompt_tokens_details: { cached_tokens: 4000 },
  completion_tokens_details: { reasoning_tokens: 1500 }
}
/** gpt-4o: 6000 uncached and 4000 cached prompt tokens, 2000 completion tokens (reasoning included). */
const expectedCost = (6000 * 2.5 + 4000 * 1.25 + 2000 * 10) / 1e6

describe("OpenAI provider: streamed answers", () => {
  it("sends stream with include_usage, the resolved model, the key and the idempotency key", async () => {
    scripts.push(stream([data(delta({ content: "ok" }, "stop")), data("[DONE]")]))
    const arrived = nextRequest()
    await complete(request({ idempotencyKey: "run_7:turn-3:2" }))
    const got = await arrived
    expect(got.body).toMatchObject({ model: "gpt-4o", stream: true, stream_options: { include_usage: true } })
    expect(got.headers["authorization"]).toBe(`Bearer ${KEY}`)
    expect(got.headers["idempotency-key"]).toBe("run_7:turn-3:2")
  })

  it("folds text, parallel tool calls with split arguments, usage with cached and reasoning tokens, cut anywhere on the wire", async () => {
    const events = [
      data(delta({ role: "assistant", content: "" })),
      data(delta({ content: "Looking ü" })),
      data(delta({ content: "p…" })),
      data(
        delta({ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "echo", arguments: "" } }] })
      ),
      data(
        delta({
          tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "echo", arguments: "{\"te" } }]
        })
      ),
      data(delta({ tool_calls: [{ index: 0, function: { arguments: "{\"text\":" } }] })),
      data(delta({ tool_calls: [{ index: 1, function: { arguments: "xt\":\"b\"}" } }] })),
      data(delta({ tool_calls: [{ index: 0, function: { arguments: "\"a\"}" } }] })),
      data(delta({}, "tool_calls")),
      ": keep-alive\n\n",
      data({ model: "gpt-4o-2024-08-06", choices: [], usage }),
      data("[DONE]")
    ]
    for (const fragmentBytes of [undefined, 1, 7]) {
      scripts.push(stream(events, fragmentBytes === undefined ? {} : { fragmentBytes }))
      const r = await complete()
      expect(r.answer).toEqual({
        content: "Looking üp…",
        toolCalls: [
          { id: "call_a", name: "echo", arguments: { text: "a" } },
          { id: "call_b", name: "echo", arguments: { text: "b" } }
        ],
        finishReason: "tool_calls",
        provider: "openai",
        model: "gpt-4o-2024-08-06"
      })
      expect([r.tokensIn, r.tokensOut]).toEqual([10_000, 2000])
      expect(r.costUsd).toBeCloseTo(expectedCost, 12)
    }
  })

  it("the fold keeps cached and reasoning tokens", () => {
    const d = [delta({ content: "hi" }, "stop"), { choices: [], usage }].reduce(
      OpenAi.evolve,
      OpenAi.emptyDraft("gpt-4o")
    )
    expect(d.usage).toEqual({ prompt: 10_000, completion: 2000, cached: 4000, reasoning: 1500 })
    expect(d.content).toBe("hi")
    expect(d.done).toBe(false)
  })

  it("accepts a tool call whose fragments carry no index, as some compatible servers send them", async () => {
    scripts.push(stream([
      data(delta({ tool_calls: [{ id: "call_x", function: { name: "echo", arguments: "{\"text\"" } }] })),
      data(delta({ tool_calls: [{ function: { arguments: ":\"x\"}" } }] }, "tool_calls")),
      data("[DONE]")
    ]))
    const r = await complete()
    expect(r.answer.toolCalls).toEqual([{ id: "call_x", name: "echo", arguments: { text: "x" } }])
    // no usage chunk: nothing to bill
    expect([r.tokensIn, r.tokensOut, r.costUsd]).toEqual([0, 0, 0])
  })

  it("accepts a plain JSON answer from a server that ignores stream", async () => {
    scripts.push(json(200, {
      id: "chatcmpl-1",
      object: "chat.completion",
      model: "gpt-4o-2024-08-06",
      choices: [{
        index: 0,
        message: {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_j", type: "function", function: { name: "echo", arguments: "{\"text\":\"j\"}" } }]
        },
        finish_reason: "tool_calls"
      }],
      usage
    }))
    const r = await complete()
    expect(r.answer).toEqual({
      content: null,
      toolCalls: [{ id: "call_j", name: "echo", arguments: { text: "j" } }],
      finishReason: "tool_calls",
      provider: "openai",
      model: "gpt-4o-2024-08-06"
    })
    expect([r.tokensIn, r.tokensOut]).toEqual([10_000, 2000])
    expect(r.costUsd).toBeCloseTo(expectedCost, 12)
  })
})

describe("OpenAI provider: sampling, output cap and usage details", () => {
  it("sends temperature and the output cap when the request sets them, and neither when it does not", async () => {
    scripts.push(
      stream([data(delta({ content: "ok" }, "stop")), data("[DONE]")]),
      stream([data(delta({ content: "ok" }, "stop")), data("[DONE]")])
    )
    const first = nextRequest()
    await complete(request({ temperature: 0, maxTokens: 256 }))
    const capped = (await first).body
    expect(capped["temperature"]).toBe(0)
    // a compatible server (this one is not api.openai.com) reads max_tokens
    expect(capped["max_tokens"]).toBe(256)
    expect(capped).not.toHaveProperty("max_completion_tokens")
    const second = nextRequest()
    await complete(request())
    const plain = (await second).body
    expect(plain).not.toHaveProperty("temperature")
    expect(plain).not.toHaveProperty("max_tokens")
  })

  it("OpenAI itself gets max_completion_tokens; the field can be chosen per provider", async () => {
    expect(OpenAi.outputCapFieldOf("https://api.openai.com/v1")).toBe("max_completion_tokens")
    expect(OpenAi.outputCapFieldOf("http://127.0.0.1:11434/v1")).toBe("max_tokens")
    expect(OpenAi.outputCapFieldOf("https://openrouter.ai/api/v1")).toBe("max_tokens")
    expect(OpenAi.requestBody(request({ maxTokens: 9 }), "o3", "max_completion_tokens")).toMatchObject({
      max_completion_tokens: 9
    })
    scripts.push(stream([data(delta({ content: "ok" }, "stop")), data("[DONE]")]))
    const arrived = nextRequest()
    await complete(request({ maxTokens: 77 }), settings({ outputCapField: "max_completion_tokens" }))
    const body = (await arrived).body
    expect(body["max_completion_tokens"]).toBe(77)
    expect(body).not.toHaveProperty("max_tokens")
  })

  it("reports cached prompt tokens and reasoning tokens, streamed and in a JSON answer", async () => {
    scripts.push(
      stream([
        data(delta({ content: "hi" }, "stop")),
        data({ model: "gpt-4o-2024-08-06", choices: [], usage }),
        data("[DONE]")
      ]),
      json(200, {
        model: "gpt-4o",
        choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
        usage
      })
    )
    for (let i = 0; i < 2; i++) {
      const r = await complete()
      expect([r.tokensIn, r.tokensOut, r.cachedTokensIn, r.reasoningTokens]).toEqual([10_000, 2000, 4000, 1500])
      expect(r.costUsd).toBeCloseTo(expectedCost, 12)
    }
  })

  it("leaves cached and reasoning tokens out when the server reports none", async () => {
    scripts.push(json(200, {
      model: "gpt-4o",
      choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
      usage: {
        prompt_tokens: 5,
        completion_tokens: 1,
        prompt_tokens_details: { cached_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 }
      }
    }))
    const r = await complete()
    expect(r).not.toHaveProperty("cachedTokensIn")
    expect(r).not.toHaveProperty("reasoningTokens")
  })

  it("an instance with a name of its own labels its answers and errors with it, and a keyless one sends no authorization", async () => {
    scripts.push(
      stream([data(delta({ content: "ok" }, "stop")), data("[DONE]")]),
      json(500, { error: { message: "boom", type: "server_error" } })
    )
    const arrived = nextRequest()
    const named = settings({ name: "local", apiKey: Redacted.make("") })
    const r = await complete(request(), named)
    expect(r.answer.provider).toBe("local")
    expect((await arrived).headers).not.toHaveProperty("authorization")
    const e = await failure(request(), named)
    expect([e.provider, e.status, e.retryable]).toEqual(["local", 500, true])
  })
})

describe("OpenAI provider: errors", () => {
  it("an error chunk mid-stream is retryable", async () => {
    scripts.push(stream([
      data(delta({ content: "Partial" })),
      data({
        error: { message: "The server had an error while processing your request.", type: "server_error", code: null }
      })
    ]))
    const e = await failure()
    expect([e.kind, e.retryable]).toEqual(["unavailable", true])
    expect(e.status).toBeUndefined()
    expect(e.reason).toContain("error in the stream: server_error: The server had an error")
    // some compatible servers send the message bare
    scripts.push(stream([data({ error: "upstream timed out" })]))
    const bare = await failure()
    expect(bare.retryable).toBe(true)
    expect(bare.reason).toContain("error in the stream: upstream timed out")
  })

  it("a rate-limit error chunk keeps status 429", async () => {
    scripts.push(
      stream([data({ error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } })])
    )
    const e = await failure()
    expect([e.kind, e.status, e.retryable]).toEqual(["rate_limited", 429, true])
  })

  it("a stream cut before [DONE] is retryable, even after the finish reason and usage", async () => {
    scripts.push(stream([data(delta({ content: "Partial" }, "stop")), data({ choices: [], usage })]))
    const e = await failure()
    expect([e.kind, e.retryable]).toEqual(["unavailable", true])
    expect(e.reason).toContain("before [DONE]")
  })

  it("HTTP 429 and 5xx are retryable, with retry-after noted and kept as a wait; 400 is not", async () => {
    scripts.push(
      json(429, { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } }, {
        "retry-after": "2"
      }),
      json(500, { error: { message: "The server had an error while processing your request", type: "server_error" } }),
      json(503, { error: { message: "overloaded", type: "server_error" } }),
      json(400, { error: { message: "bad tools", type: "invalid_request_error" } })
    )
    const limited = await failure()
    expect([limited.kind, limited.status, limited.retryable, limited.retryAfterMs]).toEqual([
      "rate_limited",
      429,
      true,
      2_000
    ])
    expect(limited.reason).toContain("retry-after: 2")
    const internal = await failure()
    expect([internal.kind, internal.status, internal.retryable, internal.retryAfterMs]).toEqual([
      "unavailable",
      500,
      true,
      undefined
    ])
    expect(internal.reason).toContain("server_error: The server had an error")
    const unavailable = await failure()
    expect([unavailable.status, unavailable.retryable]).toEqual([503, true])
    const invalid = await failure()
    expect([invalid.kind, invalid.status, invalid.retryable]).toEqual(["refused", 400, false])
    expect(invalid.reason).toContain("bad tools")
  })

  it("the key appears nowhere in an error, even when the server echoes it in a refusal or a stream", async () => {
    scripts.push(
      json(401, {
        error: { message: `Incorrect API key provided: ${KEY}`, type: "invalid_request_error", code: "invalid_api_key" }
      }),
      stream([data({ error: { message: `gateway lost upstream for ${KEY}`, type: "server_error" } })])
    )
    const refused = await failure()
    expect([refused.status, refused.retryable]).toEqual([401, false])
    const cut = await failure()
    for (const e of [refused, cut]) {
      expect(e.reason).toContain("[redacted]")
      for (const text of [e.reason, e.message, String(e), JSON.stringify(e), JSON.stringify(e.toJSON())])
        expect(text).not.toContain(KEY)
    }
  })

  it("a step that takes longer than the timeout fails retryably and closes the connection", async () => {
    scripts.push(stream([data(delta({ content: "Part" }))], { end: false }))
    const arrived = nextRequest()
    const e = await failure(request(), settings({ timeoutMs: 300 }))
    expect([e.kind, e.retryable]).toEqual(["timeout", true])
    expect(e.reason).toContain("no answer within 300 ms")
    await within((await arrived).abandoned, 5_000, "the connection closing")
  })
})

describe("OpenAI provider: cancellation", () => {
  it("interrupting the call aborts the HTTP request mid-stream", async () => {
    scripts.push(stream([data(delta({ role: "assistant", content: "" }))], { end: false }))
    const arrived = nextRequest()
    const fiber = Effect.runFork(OpenAi.make(settings()).complete(request()))
    const got = await within(arrived, 5_000, "the request arriving")
    // let the response headers and first chunk reach the client, so the body is being read
    await new Promise((r) => setTimeout(r, 100))
    await Effect.runPromise(Fiber.interrupt(fiber))
    await within(got.abandoned, 5_000, "the connection closing")
  })

  it("interrupting before the answer starts aborts the request too", async () => {
    scripts.push(() => {}) // never answers
    const arrived = nextRequest()
    const fiber = Effect.runFork(OpenAi.make(settings()).complete(request()))
    const got = await within(arrived, 5_000, "the request arriving")
    await Effect.runPromise(Fiber.interrupt(fiber))
    await within(got.abandoned, 5_000, "the connection closing")
  })
})

describe("OpenAI provider: live deltas (ADR 0061)", () => {
  it("gives each text delta of the stream to the sink as it arrives, and none for tool arguments", async () => {
    scripts.push(stream([
      data(delta({ role: "assistant", content: "" })),
      data(delta({ content: "Hel" })),
      data(delta({ content: "lo, " })),
      data(delta({ tool_calls: [{ index: 0, id: "c1", function: { name: "echo", arguments: "{\"text\":" } }] })),
      data(delta({ content: "world" }, "stop")),
      data("[DONE]")
    ], { fragmentBytes: 7 }))
    const deltas: Array<unknown> = []
    const r = await complete(request({ onDelta: (d) => deltas.push(d) }))
    expect(deltas).toEqual([
      { _tag: "text", text: "Hel" },
      { _tag: "text", text: "lo, " },
      { _tag: "text", text: "world" }
    ])
    expect(r.answer.content).toBe("Hello, world")
  })

  it("a plain JSON answer is one delta", async () => {
    scripts.push(json(200, {
      model: "gpt-4o",
      choices: [{ finish_reason: "stop", message: { content: "all at once" } }]
    }))
    const deltas: Array<unknown> = []
    await complete(request({ onDelta: (d) => deltas.push(d) }))
    expect(deltas).toEqual([{ _tag: "text", text: "all at once" }])
  })
})
