// What an HTTP tool step adds over the raw HTTP call (issue 13, ADR 0043): a local API answers both this process's
// own requests (the raw call) and a `lantern serve`'s HTTP tool, which the offline model calls once per run. The
// step's time is from its StepStarted to its StepCompleted in the journal, and its `durationMs`: both run from the
// decision (before the start's append) to the call's answer, through the allowlist read and address check.
import { createServer, request } from "node:http"
import { Effect } from "effect"
import * as NatsServer from "../bus/NatsServer.ts"
import { table } from "./Report.ts"
import { ms, p, scaled } from "./RunBatch.ts"
import * as RunBatch from "./RunBatch.ts"
import * as Serve from "./Serve.ts"

const RUNS = 60
const WARMUP = 5
const RAW = 300
const AGENT = "bench-http-tool"

export interface Result {
  /** The raw GET's round trip from this process, ms. */
  readonly rawMs: ReadonlyArray<number>
  /** StepStarted -> StepCompleted of the tool step, ms (journal envelope times). */
  readonly stepMs: ReadonlyArray<number>
  /** The step's `durationMs` as the host timed it. */
  readonly callMs: ReadonlyArray<number>
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: httptool: ${text}\n`))

/** A local API: GET /item/<x> answers a small JSON document. */
const api = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(`{"item":"${req.url?.length ?? 0}","ok":true}`)
    })
    const port = await NatsServer.freePort()
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
    return { server, port }
  }),
  ({ server }) => Effect.promise(() => new Promise<void>((r) => server.close(() => r())))
)

const rawGet = (port: number) =>
  new Promise<number>((resolve, reject) => {
    const t0 = performance.now()
    request({ host: "127.0.0.1", port, path: "/item/raw", method: "GET", agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(performance.now() - t0))
    }).on("error", reject).end()
  })

export const run = (scale: number) =>
  Effect.gen(function*() {
    const { port } = yield* api
    return yield* Serve.withStack(
      "httptool",
      { LANTERN_EGRESS_ALLOW_PRIVATE: "127.0.0.1" },
      progress,
      (stack) =>
        Effect.gen(function*() {
          const runs = scaled(RUNS, scale, 10)
          yield* progress(`${RAW} raw GETs, then ${runs} runs of an agent with one HTTP tool call each`)
          const rawMs: Array<number> = []
          for (let i = 0; i < RAW; i++) rawMs.push(yield* Effect.promise(() => rawGet(port)))
          yield* Effect.promise(async () => {
            await stack.call("PUT", "/v1/egress", { hosts: [`127.0.0.1:${port}`] })
            await stack.call("POST", "/v1/agents", {
              name: AGENT,
              spec: {
                systemPrompt: "Fetch the item.",
                tools: [{
                  name: "fetch_item",
                  description: "Fetches an item",
                  parameters: { type: "object", properties: { text: { type: "string" } } },
                  http: { method: "GET", url: `http://127.0.0.1:${port}/item/{text}` },
                  idempotent: true
                }]
              }
            })
          })
          const ends = yield* RunBatch.watchEnds
          const stepMs: Array<number> = []
          const callMs: Array<number> = []
          for (let i = 0; i < runs + WARMUP; i++) {
            const timing = yield* Effect.promise(async () => {
              const { id } = await stack.call("POST", "/v1/runs", { agentName: AGENT, input: "fetch_item x" })
              const end = await ends(id)
              if (end !== "RunSucceeded") throw new Error(`run ${id} ended with ${end}`)
              const events: ReadonlyArray<{ type: string; at: string; payload: any }> =
                (await stack.call("GET", `/v1/runs/${id}/events`)).items
              const started = events.find((e) => e.type === "StepStarted" && e.payload.request._tag === "tool")
              const completed = events.find((e) => e.type === "StepCompleted" && e.payload.result._tag === "tool")
              if (started === undefined || completed === undefined) throw new Error(`run ${id} made no tool step`)
              if (!String(completed.payload.result.output).includes("ok")) {
                throw new Error(`run ${id}'s tool answered ${completed.payload.result.output}`)
              }
              return {
                step: Date.parse(completed.at) - Date.parse(started.at),
                call: completed.payload.durationMs as number
              }
            })
            if (i < WARMUP) continue
            stepMs.push(timing.step)
            callMs.push(timing.call)
          }
          return { rawMs, stepMs, callMs } satisfies Result
        })
    )
  }).pipe(Effect.scoped)

export const render = (r: Result): string => {
  const raw = p(r.rawMs, 0.5)
  const row = (label: string, xs: ReadonlyArray<number>) => [
    label,
    String(xs.length),
    ms(p(xs, 0.5)),
    ms(p(xs, 0.9)),
    ms(p(xs, 0.5) - raw)
  ]
  return [
    "HTTP tools (bench/HttpTool.ts, issue 13): one HTTP tool call per run of a `lantern serve` to a local API",
    table(["interval", "count", "p50 ms", "p90 ms", "p50 - raw ms"], [
      row("raw GET from this process", r.rawMs),
      row("tool step's durationMs", r.callMs),
      row("tool step: StepStarted at -> StepCompleted at", r.stepMs)
    ]),
    "   a step's time runs from its decision (before the StepStarted append) to the call's answer: the append, the",
    "   egress allowlist read (a KV get) and address check, and the call; the StepCompleted append follows it.",
    "   Envelope times are whole milliseconds."
  ].join("\n")
}

export const json = (r: Result): string =>
  `BENCH_HTTPTOOL_JSON ${
    JSON.stringify({
      rawP50Ms: RunBatch.round(p(r.rawMs, 0.5)),
      callP50Ms: RunBatch.round(p(r.callMs, 0.5)),
      stepP50Ms: RunBatch.round(p(r.stepMs, 0.5)),
      stepP90Ms: RunBatch.round(p(r.stepMs, 0.9)),
      runs: r.stepMs.length
    })
  }`
