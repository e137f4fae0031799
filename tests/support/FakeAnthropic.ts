// A local server speaking the Anthropic Messages API wire format (SSE streams, and JSON when a request does not
// stream), standing in for Anthropic in tests. It checks the key and version headers and the tool_use/tool_result
// pairing the real API enforces, records every request, and answers scripted replies.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http"
import { freePort } from "../../bus/NatsServer.ts"
import { readBody } from "./FakeOpenAi.ts"

export const API_KEY = "sk-ant-test-5f1c0d9a"
export const API_VERSION = "2023-06-01"

export type Block =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: Record<string, unknown> }

export interface Usage {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cache_read_input_tokens: number
  readonly cache_creation_input_tokens: number
}

export interface MessageOptions {
  /** Defaults: 10 input tokens per request message, 7 output tokens, no cache. */
  readonly usage?: Partial<Usage>
  /** The model the answer names; the request's model by default. */
  readonly model?: string
  readonly stopReason?: string
  /** How many deltas each text or tool input is split into (default 3). */
  readonly pieces?: number
  /** Writes the event stream in chunks of this many bytes, cutting lines and UTF-8 characters anywhere. */
  readonly fragmentBytes?: number
  /** Answers with one JSON message even when the request asked for a stream. */
  readonly json?: boolean
}

export type Reply =
  | ({ readonly _tag: "Message"; readonly content: ReadonlyArray<Block> } & MessageOptions)
  | {
    readonly _tag: "HttpError"
    readonly status: number
    readonly type: string
    readonly message: string
    readonly retryAfterSeconds?: number
  }
  /** A 200 stream that starts a text block, then sends an `error` event and ends. */
  | { readonly _tag: "StreamError"; readonly type: string; readonly message: string }
  /** A 200 stream cut off after some text, with no `message_stop`. */
  | { readonly _tag: "Truncated" }
  /** A 200 stream that sends `message_start` and a ping, then nothing until the client goes away. */
  | { readonly _tag: "Hang" }

export const message = (content: ReadonlyArray<Block>, options: MessageOptions = {}): Reply => ({
  _tag: "Message",
  content,
  ...options
})
export const text = (answer: string, options: MessageOptions = {}): Reply =>
  message([{ type: "text", text: answer }], options)
export const toolUse = (
  calls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly input: Record<string, unknown> }>,
  options: MessageOptions & { readonly text?: string } = {}
): Reply =>
  message([
    ...(options.text === undefined ? [] : [{ type: "text" as const, text: options.text }]),
    ...calls.map((c) => ({ type: "tool_use" as const, ...c }))
  ], { stopReason: "tool_use", ...options })

const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error"
}
export const httpError = (
  status: number,
  options: { readonly message?: string; readonly retryAfterSeconds?: number } = {}
): Reply => ({
  _tag: "HttpError",
  status,
  type: ERROR_TYPES[status] ?? "api_error",
  message: options.message ??
    (status === 429
      ? "Number of request tokens has exceeded your per-minute rate limit"
      : status === 529
      ? "Overloaded"
      : "Internal server error"),
  ...(options.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: options.retryAfterSeconds })
})
export const streamError = (type = "overloaded_error", errorMessage = "Overloaded"): Reply => ({
  _tag: "StreamError",
  type,
  message: errorMessage
})
export const truncated: Reply = { _tag: "Truncated" }
export const hang: Reply = { _tag: "Hang" }

export interface RequestBody {
  readonly model: string
  readonly max_tokens: number
  readonly system?: string
  readonly messages: ReadonlyArray<
    { readonly role: string; readonly content: string | ReadonlyArray<Record<string, unknown>> }
  >
  readonly tools?: ReadonlyArray<
    { readonly name: string; readonly description: string; readonly input_schema: Record<string, unknown> }
  >
  readonly stream?: boolean
}

export interface Recorded {
  readonly headers: IncomingHttpHeaders
  readonly body: RequestBody
  readonly idempotencyKey: string | undefined
  /** Resolves when the client closed the connection before the answer was complete. */
  readonly abandoned: Promise<void>
}

export interface FakeAnthropic {
  /** The base URL, as ANTHROPIC_BASE_URL takes it (no `/v1`). */
  readonly url: string
  readonly apiKey: string
  /** Every request that reached the handler (rejected ones included), in arrival order. */
  readonly requests: Array<Recorded>
  /** Queues replies for the next requests, in order; with none queued the scripted echo agent answers. */
  readonly reply: (...replies: ReadonlyArray<Reply>) => void
  /** Resolves with the n-th request (0-based) once it has arrived. */
  readonly request: (n: number) => Promise<Recorded>
  readonly close: () => Promise<void>
}

/** Splits text into `n` pieces of about equal length, never inside a surrogate pair. */
const split = (s: string, n: number): Array<string> => {
  const chars = Array.from(s)
  const size = Math.max(1, Math.ceil(chars.length / Math.max(1, n)))
  const out: Array<string> = []
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""))
  return out.length === 0 ? [""] : out
}

const sse = (type: string, data: Record<string, unknown> = {}) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`

const blocksOf = (content: RequestBody["messages"][number]["content"]): ReadonlyArray<Record<string, unknown>> =>
  typeof content === "string" ? [{ type: "text", text: content }] : content

/** What the real API refuses with 400 invalid_request_error; undefined when the request is acceptable. */
const invalid = (body: RequestBody): string | undefined => {
  if (typeof body.model !== "string") return "model: Field required"
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) return "max_tokens: Field required"
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "messages: at least one message is required"
  if (body.messages[0]!.role !== "user") return "messages: first message must use the \"user\" role"
  for (const [i, m] of body.messages.entries()) {
    if (m.role !== "user" && m.role !== "assistant") return `messages.${i}.role: Input should be 'user' or 'assistant'`
    const blocks = blocksOf(m.content)
    if (blocks.length === 0) return `messages.${i}: all messages must have non-empty content`
    if (blocks.some((b) => b["type"] === "text" && b["text"] === ""))
      return `messages.${i}: text content blocks must be non-empty`
    const uses = blocks.filter((b) => b["type"] === "tool_use").map((b) => String(b["id"]))
    if (uses.length > 0) {
      const next = body.messages[i + 1]
      const results = next === undefined ? [] : blocksOf(next.content)
      const answered = new Set(results.filter((b) => b["type"] === "tool_result").map((b) => String(b["tool_use_id"])))
      const missing = uses.filter((id) => !answered.has(id))
      if (next !== undefined && missing.length > 0) {
        return `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${
          missing.join(", ")
        }. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`
      }
    }
    const resultIds = blocks.filter((b) => b["type"] === "tool_result").map((b) => String(b["tool_use_id"]))
    if (resultIds.length > 0) {
      const firstOther = blocks.findIndex((b) => b["type"] !== "tool_result")
      if (firstOther !== -1 && firstOther < resultIds.length)
        return `messages.${i}: tool_result blocks must come first in the content`
      const previous = body.messages[i - 1]
      const used = new Set(
        previous?.role === "assistant"
          ? blocksOf(previous.content).filter((b) => b["type"] === "tool_use").map((b) => String(b["id"]))
          : []
      )
      const orphan = resultIds.find((id) => !used.has(id))
      if (orphan !== undefined)
        return `messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${orphan}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`
    }
  }
  return undefined
}

/** The scripted agent answering when nothing is queued: calls `echo` until `toolRounds` results are in, then says so. */
const scripted = (body: RequestBody, toolRounds: number): Reply => {
  const results = body.messages.flatMap((m) => blocksOf(m.content)).filter((b) => b["type"] === "tool_result").length
  return results < toolRounds
    ? toolUse([{ id: `toolu_${results}`, name: "echo", input: { text: `round ${results + 1}` } }])
    : text(`done after ${results} tool calls`)
}

export const start = async (
  options: { readonly apiKey?: string; readonly toolRounds?: number } = {}
): Promise<FakeAnthropic> => {
  const apiKey = options.apiKey ?? API_KEY
  const port = await freePort()
  const requests: Array<Recorded> = []
  const queue: Array<Reply> = []
  const waiters: Array<{ readonly n: number; readonly resolve: (r: Recorded) => void }> = []
  let ids = 0

  const error = (
    res: ServerResponse,
    status: number,
    type: string,
    errorMessage: string,
    headers: Record<string, string> = {}
  ) => {
    const requestId = `req_fake_${++ids}`
    res.writeHead(status, { "content-type": "application/json", "request-id": requestId, ...headers })
    res.end(JSON.stringify({ type: "error", error: { type, message: errorMessage }, request_id: requestId }))
  }

  const answerMessage = async (res: ServerResponse, body: RequestBody, reply: Extract<Reply, { _tag: "Message" }>) => {
    const id = `msg_fake_${++ids}`
    const model = reply.model ?? body.model
    const stopReason = reply.stopReason ?? "end_turn"
    const usage: Usage = {
      input_tokens: 10 * body.messages.length,
      output_tokens: 7,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      ...reply.usage
    }
    if (body.stream !== true || reply.json === true) {
      res.writeHead(200, { "content-type": "application/json", "request-id": `req_fake_${ids}` })
      res.end(
        JSON.stringify({
          id,
          type: "message",
          role: "assistant",
          model,
          content: reply.content,
          stop_reason: stopReason,
          stop_sequence: null,
          usage
        })
      )
      return
    }
    const pieces = reply.pieces ?? 3
    const events = [
      sse("message_start", {
        message: {
          id,
          type: "message",
          role: "assistant",
          content: [],
          model,
          stop_reason: null,
          stop_sequence: null,
          usage: {
            input_tokens: usage.input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            output_tokens: 1
          }
        }
      }),
      sse("ping"),
      ...reply.content.flatMap((b, index) =>
        b.type === "text"
          ? [
            sse("content_block_start", { index, content_block: { type: "text", text: "" } }),
            ...split(b.text, pieces).map((t) =>
              sse("content_block_delta", { index, delta: { type: "text_delta", text: t } })
            ),
            sse("content_block_stop", { index })
          ]
          : [
            sse("content_block_start", {
              index,
              content_block: { type: "tool_use", id: b.id, name: b.name, input: {} }
            }),
            ...split(JSON.stringify(b.input), pieces).map((j) =>
              sse("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: j } })
            ),
            sse("content_block_stop", { index })
          ]
      ),
      sse("message_delta", {
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: usage.output_tokens }
      }),
      sse("message_stop")
    ]
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "request-id": `req_fake_${ids}`
    })
    if (reply.fragmentBytes === undefined) {
      for (const e of events) res.write(e)
    } else {
      const bytes = Buffer.from(events.join(""))
      for (let i = 0; i < bytes.length && !res.destroyed; i += reply.fragmentBytes) {
        res.write(bytes.subarray(i, i + reply.fragmentBytes))
        await new Promise((r) => setImmediate(r))
      }
    }
    res.end()
  }

  const startStream = (res: ServerResponse, body: RequestBody) => {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "request-id": `req_fake_${++ids}`
    })
    res.write(sse("message_start", {
      message: {
        id: `msg_fake_${ids}`,
        type: "message",
        role: "assistant",
        content: [],
        model: body.model,
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 10, output_tokens: 1 }
      }
    }))
    res.write(sse("ping"))
  }

  const server: Server = createServer(async (req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/messages")
      return error(res, 404, "not_found_error", `Not found: ${req.method} ${req.url}`)
    const raw = await readBody(req)
    let resolveAbandoned = () => {}
    const abandoned = new Promise<void>((r) => (resolveAbandoned = r))
    res.on("close", () => {
      if (!res.writableFinished) resolveAbandoned()
    })
    let body: RequestBody
    try {
      body = JSON.parse(raw) as RequestBody
    } catch {
      return error(res, 400, "invalid_request_error", "The request body is not valid JSON")
    }
    const key = req.headers["idempotency-key"]
    const recorded: Recorded = {
      headers: req.headers,
      body,
      idempotencyKey: typeof key === "string" ? key : undefined,
      abandoned
    }
    requests.push(recorded)
    for (const w of waiters.filter((w) => w.n === requests.length - 1)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(recorded)
    }

    const got = req.headers["x-api-key"]
    // some gateways echo the credential they refused, so the provider must scrub it from what it reports
    if (got !== apiKey) return error(res, 401, "authentication_error", `invalid x-api-key: ${String(got)}`)
    const version = req.headers["anthropic-version"]
    if (version === undefined) return error(res, 400, "invalid_request_error", "anthropic-version: header is required")
    if (version !== API_VERSION)
      return error(res, 400, "invalid_request_error", `anthropic-version: unknown version '${String(version)}'`)
    const problem = invalid(body)
    if (problem !== undefined) return error(res, 400, "invalid_request_error", problem)

    const reply = queue.shift() ?? scripted(body, options.toolRounds ?? 0)
    switch (reply._tag) {
      case "Message":
        return answerMessage(res, body, reply)
      case "HttpError":
        return error(
          res,
          reply.status,
          reply.type,
          reply.message,
          reply.retryAfterSeconds === undefined ? {} : { "retry-after": String(reply.retryAfterSeconds) }
        )
      case "StreamError":
        startStream(res, body)
        res.write(sse("content_block_start", { index: 0, content_block: { type: "text", text: "" } }))
        res.write(sse("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Partial" } }))
        res.end(sse("error", { error: { type: reply.type, message: reply.message } }))
        return
      case "Truncated":
        startStream(res, body)
        res.write(sse("content_block_start", { index: 0, content_block: { type: "text", text: "" } }))
        res.end(sse("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Partial" } }))
        return
      case "Hang":
        startStream(res, body)
        return
    }
  })
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    reply: (...replies) => {
      queue.push(...replies)
    },
    request: (n) => {
      const found = requests[n]
      if (found !== undefined) return Promise.resolve(found)
      return new Promise((resolve) => waiters.push({ n, resolve }))
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      })
  }
}
