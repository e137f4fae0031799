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
interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly name: string
  readonly attributes: Record<string, unknown>
}
const spans: Array<Span> = []
type OtlpSpan = Omit<Span, "attributes"> & { attributes?: Array<{ key: string; value: Record<string, unknown> }> }

beforeAll(async () => {
  const port = await freePort()
  collector = createServer((req, res) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const data = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<OtlpSpan> }> }> }
        for (const rs of data.resourceSpans) {
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              const attributes = Object.fromEntries((s.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]))
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? "",
                name: s.name,
                attributes
              })
            }
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((r) => collector.listen(port, "127.0.0.1", () => r()))
  nats = await startServer("lantern-tracing")
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` }
  })
}, 240_000)

afterAll(async () => {
  await stack?.stop()
  await nats?.cleanup()
  await new Promise<void>((r) => collector.close(() => r()))
})

it("carries the caller's trace from the API call through the driver into every event and exported span", async () => {
  const call = api(stack)
  await call("POST", "/v1/agents", { name: "traced", spec: { systemPrompt: "trace me" } })
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
  const started = await call("POST", "/v1/runs", { agentName: "traced", input: "hi" }, {
    traceparent: `00-${traceId}-00f067aa0ba902b7-01`
  })
  expect(started.status).toBe(201)
  await eventually(async () => (await call("GET", `/v1/runs/${started.json.id}`)).json?.status === "succeeded", 20_000)
  const events = (await call("GET", `/v1/runs/${started.json.id}/events`)).json.items as Array<
    { type: string; traceparent: string | null }
  >
  // RunStarted, the model step's start, and its answer journaled with the run's end (ADR 0077)
  expect(events.length).toBeGreaterThanOrEqual(3)
  for (const e of events) expect(e.traceparent, e.type).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
  const names = await eventually(
    async () => {
      const mine = new Set(spans.filter((s) => s.traceId === traceId).map((s) => s.name))
      return mine.has("Run.drive") && mine.has("Journal.append") && mine.has("gen_ai.offline") ? mine : null
    },
    20_000,
    "spans of the run's trace at the collector"
  )
  expect(names.has("Runs.start")).toBe(true)
})

it("makes one run one connected trace across the edge, the run actor, the driver and the model call, every span naming tenant, run and step", async () => {
  const call = api(stack)
  await call("POST", "/v1/agents", {
    name: "traced-tools",
    spec: {
      systemPrompt: "use the calculator",
      tools: [{ name: "calculator", description: "math", parameters: { type: "object" } }]
    }
  })
  const traceId = "0af7651916cd43dd8448eb211c80319c"
  const callerSpan = "b7ad6b7169203331"
  const started = await call("POST", "/v1/runs", { agentName: "traced-tools", input: "calculator: 6 * 7" }, {
    traceparent: `00-${traceId}-${callerSpan}-01`
  })
  expect(started.status).toBe(201)
  const runId = started.json.id as string
  await eventually(async () => (await call("GET", `/v1/runs/${runId}`)).json?.status === "succeeded", 20_000)
  const trace = await eventually(
    async () => {
      const mine = spans.filter((s) => s.traceId === traceId)
      const steps = mine.filter((s) => s.name === "Run.step").length
      // two model turns and one tool call, each a Run.step, and the run's end appended by the driver
      return steps >= 3 && mine.some((s) => s.name === "gen_ai.offline") ? mine : null
    },
    20_000,
    "the run's spans at the collector"
  )

  // connected: every span's parent is in the trace, except the root, whose parent is the caller's span
  const ids = new Set(trace.map((s) => s.spanId))
  const orphans = trace.filter((s) => !ids.has(s.parentSpanId) && s.parentSpanId !== callerSpan)
  expect(orphans.map((s) => `${s.name} (parent ${s.parentSpanId})`)).toEqual([])
  const roots = trace.filter((s) => s.parentSpanId === callerSpan)
  expect(roots.length).toBe(1)

  const names = new Set(trace.map((s) => s.name))
  for (const name of ["Runs.start", "Run.drive", "Run.step", "Journal.append", "gen_ai.offline"])
    expect(names, name).toContain(name)
  // the driver's spans (the run actor's appends, the model call) all name their tenant and run
  const driven = trace.filter((s) =>
    s.name !== "Runs.start" && s.parentSpanId !== callerSpan && s.attributes["run_id"] !== undefined
  )
  expect(driven.length).toBeGreaterThan(5)
  const underDrive = (s: Span): boolean => {
    const parent = trace.find((p) => p.spanId === s.parentSpanId)
    return parent === undefined ? false : parent.name === "Run.drive" || underDrive(parent)
  }
  for (const s of trace.filter((x) => x.name === "Run.drive" || underDrive(x))) {
    expect(s.attributes["tenant_id"], `${s.name} tenant_id`).toBe("dev")
    expect(s.attributes["run_id"], `${s.name} run_id`).toBe(runId)
  }
  // a step's spans name the step: the step span itself and the model call under it
  for (const s of trace.filter((x) => x.name === "Run.step" || x.name.startsWith("gen_ai."))) {
    expect(s.attributes["step_id"], `${s.name} step_id`).toMatch(/^turn-\d+(\.tool-\d+)?$/)
  }
  const model = trace.find((s) => s.name === "gen_ai.offline")!
  expect(model.attributes["gen_ai.request.model"]).toBe("offline-echo-1")
  expect(model.attributes["gen_ai.system"]).toBe("offline")
})
