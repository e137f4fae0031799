// One trace per run: the caller's W3C traceparent on POST /v1/runs reaches every event of the run (written by
// the edge and by the driver on the work-queue side) and the spans exported over OTLP to a local collector.
import { createServer, type Server } from "node:http"
import { afterAll, beforeAll, expect, it } from "vitest"
import { freePort } from "../bus/NatsServer.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let collector: Server
const spans: Array<{ traceId: string; name: string }> = []

beforeAll(async () => {
  const port = await freePort()
  collector = createServer((req, res) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const data = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ traceId: string; name: string }> }> }> }
        for (const rs of data.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ traceId: s.traceId, name: s.name })
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((r) => collector.listen(port, "127.0.0.1", () => r()))
  nats = await startServer("lantern-tracing")
  stack = await startStack({ natsUrl: nats.handle.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } })
}, 90_000)

afterAll(async () => {
  await stack?.stop()
  await nats?.cleanup()
  await new Promise<void>((r) => collector.close(() => r()))
})

it("carries the caller's trace from the API call through the driver into every event and exported span", async () => {
  const call = api(stack)
  await call("POST", "/v1/agents", { name: "traced", spec: { systemPrompt: "trace me" } })
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
  const started = await call("POST", "/v1/runs", { agentName: "traced", input: "hi" }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` })
  expect(started.status).toBe(201)
  await eventually(async () => (await call("GET", `/v1/runs/${started.json.id}`)).json?.status === "succeeded", 20_000)
  const events = (await call("GET", `/v1/runs/${started.json.id}/events`)).json.items as Array<{ type: string; traceparent: string | null }>
  expect(events.length).toBeGreaterThanOrEqual(4)
  for (const e of events) expect(e.traceparent, e.type).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
  const names = await eventually(async () => {
    const mine = new Set(spans.filter((s) => s.traceId === traceId).map((s) => s.name))
    return mine.has("Run.drive") && mine.has("Journal.append") && mine.has("gen_ai.offline") ? mine : null
  }, 20_000, "spans of the run's trace at the collector")
  expect(names.has("Runs.start")).toBe(true)
})
