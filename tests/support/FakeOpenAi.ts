// A local server speaking the OpenAI Chat Completions wire format, standing in for a model provider in
// tests. Like providers that honour Idempotency-Key, the first request with a key performs the effect and
// later ones get the cached answer. It can hold or delay a step's answer and fail chosen requests. A request
// with `stream: true` gets the same answer as an SSE stream of chunks, text and tool arguments split across them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { freePort } from "../../bus/NatsServer.ts"

export interface Received {
  readonly key: string
  readonly stepId: string
  readonly attempt: number
  readonly toolMessages: number
}

/** An error answer for `failFirst`: HTTP 500 by default; 429 usually with a Retry-After. */
export interface Failure {
  readonly status?: number
  readonly retryAfterSeconds?: number
  readonly message?: string
  /** Only requests of this run (the key's first part); any run when absent. */
  readonly runId?: string
}

export interface FakeOpenAi {
  readonly url: string
  /** Every request, in arrival order (replays of a cached answer and failed ones included). */
  readonly received: Array<Received>
  /** Answers actually written to a live connection, per idempotency key `runId:stepId:attempt`. */
  readonly answered: Map<string, number>
  /**
   * Effects performed, per idempotency key: the first request with a key performs it (the answer is made
   * and cached), later ones replay the cache, so every count is 1. Requests without a key count under "".
   */
  readonly effects: Map<string, number>
  /** Idempotency keys of the answers sent as an event stream (the request had `stream: true`), in order. */
  readonly streamed: Array<string>
  /** Requests answered with an injected error, in arrival order, with the status sent. */
  readonly failed: Array<Received & { readonly status: number }>
  /** Steps (ids like `turn-2`) whose first attempt is held until the connection dies. */
  readonly hold: Set<string>
  /**
   * Holds every answer for `stepId` (the effect is performed when the request arrives) until the returned
   * release is called; answers whose connection died meanwhile are dropped.
   */
  readonly block: (stepId: string) => () => void
  /** Answers the next `times` requests for `stepId` with an error instead of performing the effect. */
  readonly failFirst: (stepId: string, times: number, failure?: Failure) => void
  /** Answers every request with `failure` (a provider that is down) until called with null. */
  readonly failAll: (failure: Failure | null) => void
  /** Every request's JSON body, in arrival order (as `received`). */
  readonly bodies: Array<Record<string, unknown>>
  /** Resolves when a request for `stepId` arrives. */
  readonly waitFor: (stepId: string, attempt?: number, runId?: string) => Promise<Received>
  readonly close: () => Promise<void>
}

/** A request's whole body as text. */
export const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let data = ""
    req.on("data", (c: Buffer) => (data += c.toString()))
    req.on("end", () => resolve(data))
    req.on("error", reject)
  })

interface Completion {
  readonly id: string
  readonly model: string
  readonly choices: ReadonlyArray<{
    readonly message: {
      readonly content: string | null
      readonly tool_calls?: ReadonlyArray<
        { readonly id: string; readonly function: { readonly name: string; readonly arguments: string } }
      >
    }
    readonly finish_reason: string
  }>
  readonly usage: unknown
}

/** Cuts `text` into `pieces` parts of about equal length (fewer when it is shorter). */
const split = (text: string, pieces: number): Array<string> => {
  const size = Math.max(1, Math.ceil(text.length / pieces))
  const out: Array<string> = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out
}

/**
 * A Chat Completions answer (JSON text) as the `data:` events of its stream, `[DONE]` included: a role chunk,
 * the text in `pieces` deltas, each tool call's id and name then its arguments in `pieces` fragments, the
 * finish reason, and a last chunk with the usage and no choices (what `stream_options.include_usage` asks for).
 */
export const streamOf = (completion: string, pieces = 3): Array<string> => {
  const c = JSON.parse(completion) as Completion
  const { message, finish_reason } = c.choices[0]!
  const chunk = (choices: ReadonlyArray<unknown>, extra: object = {}) =>
    `data: ${
      JSON.stringify({ id: c.id, object: "chat.completion.chunk", created: 0, model: c.model, choices, ...extra })
    }\n\n`
  const delta = (d: object, finishReason: string | null = null) =>
    chunk([{ index: 0, delta: d, finish_reason: finishReason }])
  return [
    delta({ role: "assistant", content: message.content === null ? null : "" }),
    ...split(message.content ?? "", pieces).map((t) => delta({ content: t })),
    ...(message.tool_calls ?? []).flatMap((call, index) => [
      delta({
        tool_calls: [{ index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } }]
      }),
      ...split(call.function.arguments, pieces).map((a) =>
        delta({ tool_calls: [{ index, function: { arguments: a } }] })
      )
    ]),
    delta({}, finish_reason),
    chunk([], { usage: c.usage }),
    "data: [DONE]\n\n"
  ]
}

/**
 * The scripted model: while fewer than `toolRounds` tool results are in the conversation it calls the
 * `echo` tool; then it answers "done after N tool calls".
 */
export const start = async (toolRounds = 2): Promise<FakeOpenAi> => {
  const port = await freePort()
  const received: Array<Received> = []
  const answered = new Map<string, number>()
  const effects = new Map<string, number>()
  const cache = new Map<string, string>()
  const failed: Array<Received & { readonly status: number }> = []
  const streamed: Array<string> = []
  const hold = new Set<string>()
  const blocks = new Map<string, { readonly released: Promise<void>; readonly release: () => void }>()
  const failures: Array<{ readonly stepId: string; left: number; readonly failure: Failure }> = []
  const waiters: Array<{ match: (r: Received) => boolean; resolve: (r: Received) => void }> = []
  const bodies: Array<Record<string, unknown>> = []
  let down: Failure | null = null

  const answerTo = (body: { model: string; messages: Array<{ role: string }> }, n: number) => {
    const toolMessages = body.messages.filter((m) => m.role === "tool").length
    const message = toolMessages < toolRounds
      ? {
        role: "assistant",
        content: null,
        tool_calls: [{
          id: `call_${toolMessages}`,
          type: "function",
          function: { name: "echo", arguments: JSON.stringify({ text: `round ${toolMessages + 1}` }) }
        }]
      }
      : { role: "assistant", content: `done after ${toolMessages} tool calls` }
    return JSON.stringify({
      id: `chatcmpl-${n}`,
      object: "chat.completion",
      created: 0,
      model: body.model,
      choices: [{ index: 0, message, finish_reason: toolMessages < toolRounds ? "tool_calls" : "stop" }],
      usage: {
        prompt_tokens: 10 * body.messages.length,
        completion_tokens: 7,
        total_tokens: 10 * body.messages.length + 7
      }
    })
  }

  const injectedFailure = (r: Received, runId: string) => {
    if (down !== null && (down.runId === undefined || down.runId === runId)) return down
    const plan = failures.find((f) =>
      f.left > 0 && f.stepId === r.stepId && (f.failure.runId === undefined || f.failure.runId === runId)
    )
    if (plan === undefined) return undefined
    plan.left--
    return plan.failure
  }

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" }).end(
        JSON.stringify({ error: { message: "not found" } })
      )
      return
    }
    if (req.headers["authorization"] !== "Bearer test-key") {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "bad key" } }))
      return
    }
    const body = JSON.parse(await readBody(req)) as {
      model: string
      messages: Array<{ role: string }>
      stream?: boolean
    }
    bodies.push(body)
    const key = String(req.headers["idempotency-key"] ?? "")
    const [runId = "", stepId = "", attempt = "0"] = key.split(":")
    const toolMessages = body.messages.filter((m) => m.role === "tool").length
    const r: Received = { key, stepId, attempt: Number(attempt), toolMessages }
    received.push(r)
    for (const w of waiters.filter((w) => w.match(r))) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(r)
    }

    const failure = injectedFailure(r, runId)
    if (failure !== undefined) {
      const status = failure.status ?? 500
      failed.push({ ...r, status })
      res.writeHead(status, {
        "content-type": "application/json",
        ...(failure.retryAfterSeconds === undefined ? {} : { "retry-after": String(failure.retryAfterSeconds) })
      }).end(JSON.stringify({
        error: {
          message: failure.message ??
            (status === 429 ? "Rate limit reached" : "The server had an error while processing your request"),
          type: status === 429 ? "rate_limit_exceeded" : "server_error"
        }
      }))
      return
    }

    // the effect happens once per key, when its first request arrives, whether or not the answer gets back
    let answer = key === "" ? undefined : cache.get(key)
    const replayed = answer !== undefined
    if (answer === undefined) {
      answer = answerTo(body, received.length)
      effects.set(key, (effects.get(key) ?? 0) + 1)
      if (key !== "") cache.set(key, answer)
    }

    if (hold.has(stepId) && r.attempt === 1) return // never answered: the caller dies or gives up
    const blocked = blocks.get(stepId)
    if (blocked !== undefined) await blocked.released
    if (res.destroyed || req.socket.destroyed) return
    const count = () => answered.set(key, (answered.get(key) ?? 0) + 1)
    if (body.stream === true) {
      const events = streamOf(answer)
      streamed.push(key)
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        ...(replayed ? { "idempotent-replayed": "true" } : {})
      })
      for (const e of events.slice(0, -1)) res.write(e)
      res.end(events.at(-1), count)
      return
    }
    res.writeHead(200, { "content-type": "application/json", ...(replayed ? { "idempotent-replayed": "true" } : {}) })
    res.end(answer, count)
  })
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    answered,
    effects,
    streamed,
    failed,
    hold,
    block: (stepId) => {
      const existing = blocks.get(stepId)
      if (existing !== undefined) return existing.release
      let release = () => {}
      const released = new Promise<void>((r) => (release = r))
      const entry = {
        released,
        release: () => {
          if (blocks.get(stepId) === entry) blocks.delete(stepId)
          release()
        }
      }
      blocks.set(stepId, entry)
      return entry.release
    },
    failFirst: (stepId, times, failure = {}) => {
      failures.push({ stepId, left: times, failure })
    },
    failAll: (failure) => {
      down = failure
    },
    bodies,
    waitFor: (stepId, attempt, runId) => {
      const match = (r: Received) =>
        r.stepId === stepId && (attempt === undefined || r.attempt === attempt) &&
        (runId === undefined || r.key.startsWith(`${runId}:`))
      const found = received.find(match)
      if (found !== undefined) return Promise.resolve(found)
      return new Promise((resolve) => waiters.push({ match, resolve }))
    },
    close: () =>
      new Promise((r) => {
        for (const b of [...blocks.values()]) b.release()
        server.closeAllConnections()
        server.close(() => r())
      })
  }
}
