// Test support: one local HTTP server speaking the send APIs of the chat platforms Lantern answers through, as
// their documentation gives them: Slack `POST /chat.postMessage` (`{ok: true, ts}`), Discord's interaction
// follow-up `POST /webhooks/{applicationId}/{token}`, Telegram `POST /bot{token}/sendMessage` and
// `sendChatAction` (`{ok: true, result}`), WhatsApp Cloud `POST /{phoneNumberId}/messages` and Twilio
// `POST /2010-04-01/Accounts/{sid}/Messages.json`. It records every request and can answer the next ones to a
// path with 429 and a Retry-After, as the platforms' rate limits do.
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"

export interface Recorded {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

export interface FakePlatforms {
  readonly url: string
  readonly requests: Array<Recorded>
  /** The requests whose path ends with `suffix`. */
  readonly to: (suffix: string) => ReadonlyArray<Recorded>
  /** The next `times` requests to a path ending with `suffix` get 429 with `Retry-After: seconds`. */
  readonly limit: (suffix: string, times: number, seconds: number) => void
  readonly close: () => Promise<void>
}

const answerOf = (path: string): unknown => {
  if (path.endsWith("/chat.postMessage")) return { ok: true, channel: "C1", ts: `${Date.now() / 1000}` }
  if (/\/bot[^/]+\/(sendMessage|sendChatAction)$/.test(path)) return { ok: true, result: { message_id: 1 } }
  if (path.endsWith("/messages")) return { messaging_product: "whatsapp", messages: [{ id: "wamid.out" }] }
  if (path.endsWith("/Messages.json")) return { sid: "SM0000000000000000000000000000000", status: "queued" }
  if (path.includes("/webhooks/")) return { id: "1", content: "" }
  return { ok: false, error: "unknown_method" }
}

export const start = async (): Promise<FakePlatforms> => {
  const requests: Array<Recorded> = []
  const limits = new Map<string, { times: number; seconds: number }>()
  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://localhost").pathname
      requests.push({
        method: req.method ?? "",
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now()
      })
      for (const [suffix, limit] of limits) {
        if (path.endsWith(suffix) && limit.times > 0) {
          limit.times--
          res.writeHead(429, { "content-type": "application/json", "retry-after": String(limit.seconds) })
          res.end(JSON.stringify({ ok: false, error: "ratelimited" }))
          return
        }
      }
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify(answerOf(path)))
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    to: (suffix) => requests.filter((r) => r.path.endsWith(suffix)),
    limit: (suffix, times, seconds) => limits.set(suffix, { times, seconds }),
    close: () => new Promise((r) => server.close(() => r()))
  }
}
