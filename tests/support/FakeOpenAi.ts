// A local server speaking the OpenAI Chat Completions wire format, standing in for a model provider in
// tests. It counts the requests and answers it receives per step (from the Idempotency-Key header) and can
// hold a step's answer so a test can crash the caller mid-call.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { freePort } from "../../bus/NatsServer.ts"

export interface Received {
  readonly key: string
  readonly stepId: string
  readonly attempt: number
  readonly toolMessages: number
}

export interface FakeOpenAi {
  readonly url: string
  readonly received: Array<Received>
  /** Answers actually written to a live connection, per idempotency key `runId:stepId:attempt`. */
  readonly answered: Map<string, number>
  /** Steps (ids like `turn-2`) whose first attempt is held until the connection dies. */
  readonly hold: Set<string>
  /** Resolves when a request for `stepId` arrives. */
  readonly waitFor: (stepId: string, attempt?: number, runId?: string) => Promise<Received>
  readonly close: () => Promise<void>
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let data = ""
    req.on("data", (c: Buffer) => (data += c.toString()))
    req.on("end", () => resolve(data))
    req.on("error", reject)
  })

/**
 * The scripted model: while fewer than `toolRounds` tool results are in the conversation it calls the
 * `echo` tool; then it answers "done after N tool calls".
 */
export const start = async (toolRounds = 2): Promise<FakeOpenAi> => {
  const port = await freePort()
  const received: Array<Received> = []
  const answered = new Map<string, number>()
  const hold = new Set<string>()
  const waiters: Array<{ match: (r: Received) => boolean; resolve: (r: Received) => void }> = []
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "not found" } }))
      return
    }
    if (req.headers["authorization"] !== "Bearer test-key") {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "bad key" } }))
      return
    }
    const body = JSON.parse(await readBody(req)) as { model: string; messages: Array<{ role: string }> }
    const key = String(req.headers["idempotency-key"] ?? "")
    const [, stepId = "", attempt = "0"] = key.split(":")
    const toolMessages = body.messages.filter((m) => m.role === "tool").length
    const r: Received = { key, stepId, attempt: Number(attempt), toolMessages }
    received.push(r)
    for (const w of waiters.filter((w) => w.match(r))) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(r)
    }
    if (hold.has(stepId) && r.attempt === 1) return // never answered: the caller dies or gives up
    const message = toolMessages < toolRounds
      ? { role: "assistant", content: null, tool_calls: [{ id: `call_${toolMessages}`, type: "function", function: { name: "echo", arguments: JSON.stringify({ text: `round ${toolMessages + 1}` }) } }] }
      : { role: "assistant", content: `done after ${toolMessages} tool calls` }
    const answer = {
      id: `chatcmpl-${received.length}`,
      object: "chat.completion",
      created: 0,
      model: body.model,
      choices: [{ index: 0, message, finish_reason: toolMessages < toolRounds ? "tool_calls" : "stop" }],
      usage: { prompt_tokens: 10 * body.messages.length, completion_tokens: 7, total_tokens: 10 * body.messages.length + 7 }
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify(answer), () => answered.set(key, (answered.get(key) ?? 0) + 1))
  })
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    answered,
    hold,
    waitFor: (stepId, attempt, runId) => {
      const match = (r: Received) =>
        r.stepId === stepId && (attempt === undefined || r.attempt === attempt) && (runId === undefined || r.key.startsWith(`${runId}:`))
      const found = received.find(match)
      if (found !== undefined) return Promise.resolve(found)
      return new Promise((resolve) => waiters.push({ match, resolve }))
    },
    close: () => new Promise((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  }
}
