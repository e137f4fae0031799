// A scripted OpenAI-compatible provider for the recordings: what it does is chosen by a marker in the run's input.
import { createServer, type Server } from "node:http"
import * as NatsServer from "../../bus/NatsServer.ts"
import * as FakeOpenAi from "../../tests/support/FakeOpenAi.ts"

export interface Provider {
  readonly url: string
  /** Idempotency keys (`runId:stepId:attempt`) of the requests received so far. */
  readonly received: Array<string>
  readonly close: () => Promise<void>
}

/**
 * `[hold]` in the input: never answers. `[fail-once]`: HTTP 500 on attempt 1, then answers. `[fail-hard]`:
 * HTTP 400 on every attempt. Anything else: a final answer, whose usage also reports 8 of its prompt tokens
 * read from the provider's cache and 3 of its completion tokens spent reasoning when the input has `[usage-details]`.
 */
export const start = async (): Promise<Provider> => {
  const port = await NatsServer.freePort()
  const received: Array<string> = []
  const server: Server = createServer(async (req, res) => {
    const body = JSON.parse(await FakeOpenAi.readBody(req)) as {
      model: string
      messages: Array<{ role: string; content: string | null }>
    }
    const key = String(req.headers["idempotency-key"] ?? "")
    received.push(key)
    const attempt = Number(key.split(":")[2] ?? "0")
    const input = body.messages.find((m) => m.role === "user")?.content ?? ""
    const reply = (status: number, value: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value))
    if (input.includes("[hold]")) return
    if (input.includes("[fail-hard]"))
      return reply(400, { error: { message: "unsupported parameter: temperature", type: "invalid_request_error" } })
    if (input.includes("[fail-once]") && attempt === 1)
      return reply(500, { error: { message: "upstream overloaded", type: "server_error" } })
    const details = input.includes("[usage-details]")
      ? { prompt_tokens_details: { cached_tokens: 8 }, completion_tokens_details: { reasoning_tokens: 3 } }
      : {}
    reply(200, {
      id: `chatcmpl-${received.length}`,
      object: "chat.completion",
      created: 0,
      model: body.model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: `answered after ${attempt} attempt(s)` },
        finish_reason: "stop"
      }],
      usage: {
        prompt_tokens: 10 * body.messages.length,
        completion_tokens: 7,
        total_tokens: 10 * body.messages.length + 7,
        ...details
      }
    })
  })
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      })
  }
}
