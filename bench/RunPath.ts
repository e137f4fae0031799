// The run path of issue 11: a real `lantern serve` (offline provider, PGlite or BENCH_DATABASE_URL's Postgres) on its
// own nats-server, driving runs of ten durable steps (model, eight built-in tool calls, model) through the HTTP API,
// beside the raw JetStream floor (twelve sequential publishes-with-ack per "run") measured on the same server in the
// same run.
import { loadavg } from "node:os"
import { Effect } from "effect"
import * as Tools from "../actors/model/Tools.ts"
import * as Completions from "../schema/Completions.ts"
import { table } from "./Report.ts"
import * as RunBatch from "./RunBatch.ts"
import {
  IN_FLIGHT,
  met,
  ms,
  p,
  per,
  round,
  scaled,
  SEQUENTIAL_COLD,
  SEQUENTIAL_WARMUP,
  type Throughput
} from "./RunBatch.ts"
import * as Serve from "./Serve.ts"

/** The goals for the run path. */
export const TARGETS = {
  /** Sequential run p50 over the p50 of twelve sequential raw publishes. */
  latencyRatio: 2,
  runsPerSecond: 400,
  engineCpuMsPerRun: 10,
  busRequestsPerRun: 15
} as const

/** Sequential publishes a raw "run" makes: about the journal writes of a ten-step run. */
export const FLOOR_PUBLISHES = 12
/** Counts at BENCH_SCALE=1. */
/**
 * Runs measured one at a time after SEQUENTIAL_WARMUP, with as many raw floor "runs" interleaved (RunBatch.interleaved):
 * the figure the latency target is judged by.
 */
const SEQUENTIAL = 100
/** Runs of the one-request client before its measured ones (the server is warm by then). */
const ONE_REQUEST_WARMUP = 30
const THROUGHPUT = 600

const AGENT = "bench-run-path"
/** Tool calls the model's first turn makes. */
const TOOL_CALLS = 8
/**
 * The spec declares the built-ins in turn until it has TOOL_CALLS declarations (there are fewer built-ins than
 * that, and a spec may declare a name twice); the offline provider calls every declaration the input names.
 */
const DECLARED = Array.from({ length: TOOL_CALLS }, (_, i) => Tools.builtins[i % Tools.builtins.length]!)
const INPUT = `Use ${Tools.builtins.map((t) => t.name).join(", ")} on: (17 + 25) * 3`
const TERMINAL = /(?:^|\n)event: (RunSucceeded|RunFailed|RunCanceled)\r?\n/

export interface Result extends RunBatch.Measured {
  /** Start to end of runs one at a time right after `sequential`, started and followed in one request. */
  readonly sequentialOneRequest: ReadonlyArray<number>
  /** Start to end of each of the first runs one at a time after `serve` started (its JIT cold), ms. */
  readonly sequentialCold: ReadonlyArray<number>
  readonly toolCallsPerRun: number
  /** POST only; ends seen by one core subscription of this process to the journal subjects (no SSE follows). */
  readonly engineOnly: Throughput
  /** From the last run's end until serve was idle (its projectors caught up), s; the floor is measured after. */
  readonly settledSeconds: number
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: runpath: ${text}\n`))

/**
 * Reads an SSE response up to its terminal event: how the run ended, and the run's id, `id` when the caller knows
 * it, else the first in the stream (the `run` frame's).
 */
const toTerminal = async (r: Response, what: string, id: string | null = null) => {
  if (!r.ok || r.body === null) throw new Error(`${what}: ${r.status} ${await r.text()}`)
  const reader = r.body.getReader()
  const decoder = new TextDecoder()
  let tail = ""
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) throw new Error(`${what} ended before its terminal event`)
      // a frame may arrive in pieces: keep enough of the previous chunk for a split `event:` line or id
      tail = tail.slice(-256) + decoder.decode(value, { stream: true })
      id ??= RUN_ID.exec(tail)?.[1] ?? null
      const m = TERMINAL.exec(tail)
      if (m !== null && id !== null) return { id, end: m[1]! }
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
}
/** A run's id in its `run` frame. */
const RUN_ID = /"id":"(run_[0-9a-z]+)"/

/** POST /v1/runs, then the run's SSE stream up to its terminal event: the run's id and how it ended. */
const runOnce = (stack: Serve.Stack): RunBatch.RunOnce => async () => {
  const run = await stack.call("POST", "/v1/runs", { agentName: AGENT, input: INPUT })
  const id = run.id as string
  const r = await fetch(`${stack.url}/v1/runs/${id}/stream`, { headers: Serve.authorization })
  return toTerminal(r, `GET /v1/runs/${id}/stream`, id)
}

/** POST /v1/runs/stream: the run started and followed in one request (ADR 0082), `run` frame first. */
const oneRequest = (stack: Serve.Stack): RunBatch.RunOnce => async () =>
  toTerminal(
    await fetch(`${stack.url}/v1/runs/stream`, {
      method: "POST",
      headers: { ...Serve.authorization, "content-type": "application/json" },
      body: JSON.stringify({ agentName: AGENT, input: INPUT })
    }),
    "POST /v1/runs/stream"
  )

/** The agent's runs, sequential then IN_FLIGHT at a time, then the raw floor on the same server. */
const measure = (stack: Serve.Stack, scale: number) =>
  Effect.gen(function*() {
    const seq = scaled(SEQUENTIAL, scale, 10)
    const batch = scaled(THROUGHPUT, scale, IN_FLIGHT)
    const sse = runOnce(stack)
    yield* Effect.promise(() =>
      stack.call("POST", "/v1/agents", {
        name: AGENT,
        spec: {
          systemPrompt: "Call the tools the user names, then report their results.",
          model: "auto",
          maxTurns: 4,
          tools: DECLARED.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters }))
        }
      })
    )
    // the shape of a run, from its journal
    const probe = yield* Effect.promise(async () => {
      const { id, end } = await sse()
      if (end !== "RunSucceeded") throw new Error(`run ${id} ended with ${end}`)
      const events: ReadonlyArray<{ type: string; payload: any }> =
        (await stack.call("GET", `/v1/runs/${id}/events`)).items
      // a StepsCompleted is its steps' completions (ADR 0067)
      const completed = events.flatMap(Completions.expand).filter((e) => e.type === "StepCompleted")
      return {
        steps: completed.length,
        // a tool step's result says it was one, whether it was started first or journaled once (ADR 0032)
        toolCalls: completed.filter((e) => e.payload?.result?._tag === "tool").length,
        events: events.length
      }
    })
    yield* progress(`a run is ${probe.steps} steps (${probe.toolCalls} tool calls), ${probe.events} events`)

    const cold = scaled(SEQUENTIAL_COLD, scale, 10)
    yield* progress(`${cold} sequential runs on the fresh serve, then ${seq} after ${SEQUENTIAL_WARMUP} in all`)
    const sequential = yield* RunBatch.interleaved(stack, cold, seq, sse, FLOOR_PUBLISHES, probe.events)
    yield* progress(`${seq} sequential runs started and followed in one request (POST /v1/runs/stream)`)
    const sequentialOneRequest = yield* RunBatch.oneAtATime(seq, ONE_REQUEST_WARMUP, oneRequest(stack))

    yield* progress(`${batch} runs at ${IN_FLIGHT} in flight (after ${IN_FLIGHT}), SSE client`)
    yield* Effect.promise(() => RunBatch.pool(IN_FLIGHT, IN_FLIGHT, async () => void (await sse())))
    const loadThroughput = loadavg()[0]!
    const throughput = yield* RunBatch.batchOf(batch, stack, sse)
    yield* progress(`${batch} runs at ${IN_FLIGHT} in flight, POST only, ends watched on the bus`)
    const ends = yield* RunBatch.watchEnds
    const engineOnly = yield* RunBatch.batchOf(batch, stack, async () => {
      const { id } = await stack.call("POST", "/v1/runs", { agentName: AGENT, input: INPUT })
      return { id, end: await ends(id) }
    })

    const settledSeconds = yield* RunBatch.settled(stack)
    yield* progress(`serve idle ${settledSeconds.toFixed(1)} s after the last run ended`)
    yield* progress(`raw floor: runs of ${FLOOR_PUBLISHES} sequential publishes, alone and ${IN_FLIGHT} in flight`)
    const floor = yield* RunBatch.floor(FLOOR_PUBLISHES, sequential, batch)
    return {
      natsServer: stack.nats.version,
      database: stack.database,
      syncAlways: stack.nats.syncAlways,
      stepsPerRun: probe.steps,
      eventsPerRun: probe.events,
      toolCallsPerRun: probe.toolCalls,
      sequentialCold: sequential.cold,
      sequential: sequential.runs,
      sequentialOneRequest,
      throughput,
      engineOnly,
      floor,
      settledSeconds,
      loadAverage: { sequential: sequential.loadAverage, throughput: loadThroughput }
    } satisfies Result
  })

/** Runs the run-path measurements on a nats-server and `lantern serve` of their own. */
export const run = (scale: number) => Serve.withStack("runpath", {}, progress, (stack) => measure(stack, scale))

/** Sequential p50 over the floor's p50 of twelve sequential publishes. */
export const latencyRatio = (r: Result) => p(r.sequential, 0.5) / p(r.floor.sequential, 0.5)

export const render = (r: Result): string => {
  const t = r.throughput
  const e = r.engineOnly
  const ratio = latencyRatio(r)
  const target = (label: string, goal: string, ok: (t: Throughput) => boolean, f: (t: Throughput) => string) => [
    label,
    goal,
    f(t),
    met(ok(t)),
    f(e),
    met(ok(e))
  ]
  return [
    `Run path (bench/RunPath.ts, issue 11): \`lantern serve\` (offline provider, ${r.database}) on its own nats-server ${r.natsServer}${
      r.syncAlways ? " (sync_interval: always)" : ""
    }`,
    `   a run = ${r.stepsPerRun} steps (model, ${r.toolCallsPerRun} built-in tool calls, model), ${r.eventsPerRun} journal events`,
    "   SSE client = POST /v1/runs, then the run's SSE stream (GET /v1/runs/{id}/stream) to its terminal event;",
    "   one request = POST /v1/runs/stream, the run started and followed to its terminal event in one exchange;",
    "   POST only = POST /v1/runs, the end seen by one core subscription of the bench to lantern.run.> (no request per run)",
    `   raw floor = ${FLOOR_PUBLISHES} sequential JetStream publishes-with-ack of ${r.floor.payloadBytes} B (the mean LANTERN_RUNS message) on one subject, same server, same run;`,
    `   one at a time, the floor's runs alternate with Lantern's in blocks of ${RunBatch.INTERLEAVE} (each block once serve is idle), so both see the machine as it is then`,
    `   load average (1 min) before: sequential ${r.loadAverage.sequential.toFixed(2)}, ${IN_FLIGHT} in flight ${
      r.loadAverage.throughput.toFixed(2)
    }`,
    `   serve idle ${
      r.settledSeconds.toFixed(1)
    } s after the last run ended (its projectors caught up); the in-flight floor is measured after`,
    table(
      ["figure", "Lantern run", `raw floor (${FLOOR_PUBLISHES} publishes)`, "Lantern / floor"],
      [
        [
          `sequential p50 ms (${r.sequential.length} after ${SEQUENTIAL_WARMUP} / ${r.floor.sequential.length}), SSE client`,
          ms(p(r.sequential, 0.5)),
          ms(p(r.floor.sequential, 0.5)),
          `${ratio.toFixed(2)}x`
        ],
        [
          `sequential p50 ms, first ${r.sequentialCold.length} runs after start (JIT cold), SSE client`,
          ms(p(r.sequentialCold, 0.5)),
          ms(p(r.floor.sequential, 0.5)),
          `${(p(r.sequentialCold, 0.5) / p(r.floor.sequential, 0.5)).toFixed(2)}x`
        ],
        [
          `sequential p50 ms (${r.sequentialOneRequest.length} after the above), one request`,
          ms(p(r.sequentialOneRequest, 0.5)),
          ms(p(r.floor.sequential, 0.5)),
          `${(p(r.sequentialOneRequest, 0.5) / p(r.floor.sequential, 0.5)).toFixed(2)}x`
        ],
        [
          "sequential p90 ms, SSE client",
          ms(p(r.sequential, 0.9)),
          ms(p(r.floor.sequential, 0.9)),
          `${(p(r.sequential, 0.9) / p(r.floor.sequential, 0.9)).toFixed(2)}x`
        ],
        ...[t, e].map((x) => [
          `runs/s at ${IN_FLIGHT} in flight (${x.runs} runs), ${x === t ? "SSE client" : "POST only"}`,
          x.runsPerSecond.toFixed(1),
          r.floor.runsPerSecond.toFixed(1),
          `${(x.runsPerSecond / r.floor.runsPerSecond).toFixed(2)}x`
        ])
      ]
    ),
    RunBatch.runWritesLine(r.floor, r.sequential),
    table(
      [`per run at ${IN_FLIGHT} in flight`, "SSE client", "POST only"],
      RunBatch.costRows([t, e])
    ),
    table(
      ["issue 11 target", "goal", "SSE client", "status", "POST only", "status"],
      [
        [
          "sequential p50 / floor p50",
          `<= ${TARGETS.latencyRatio.toFixed(2)}x`,
          `${ratio.toFixed(2)}x`,
          met(ratio <= TARGETS.latencyRatio),
          "",
          ""
        ],
        target(
          `runs/s at ${IN_FLIGHT} in flight`,
          `>= ${TARGETS.runsPerSecond}`,
          (x) => x.runsPerSecond >= TARGETS.runsPerSecond,
          (x) => x.runsPerSecond.toFixed(1)
        ),
        target(
          "engine CPU ms / run",
          `<= ${TARGETS.engineCpuMsPerRun}`,
          (x) => x.cpuMsPerRun.engine <= TARGETS.engineCpuMsPerRun,
          (x) => x.cpuMsPerRun.engine.toFixed(2)
        ),
        target(
          "bus requests / run (in_msgs)",
          `<= ${TARGETS.busRequestsPerRun}`,
          (x) => x.inMsgsPerRun <= TARGETS.busRequestsPerRun,
          (x) => per(x.inMsgsPerRun)
        )
      ]
    ),
    "   in_msgs counts every message a client sent the server (publishes, JetStream API and KV requests, acks, pull",
    "   requests), by lantern serve and by this process: it approximates round trips. With the SSE client it includes",
    "   what serve does to follow each run's journal for its stream; POST only leaves that out.",
    RunBatch.cpuCeilingLine(e, TARGETS.runsPerSecond, "POST-only run")
  ].join("\n")
}

/** The figures as one `BENCH_RUNPATH_JSON {...}` line. */
export const json = (r: Result): string => {
  return `BENCH_RUNPATH_JSON ${
    JSON.stringify({
      database: r.database,
      stepsPerRun: r.stepsPerRun,
      eventsPerRun: r.eventsPerRun,
      sequential: {
        runs: r.sequential.length,
        after: SEQUENTIAL_WARMUP,
        p50Ms: round(p(r.sequential, 0.5)),
        p90Ms: round(p(r.sequential, 0.9))
      },
      sequentialCold: { runs: r.sequentialCold.length, p50Ms: round(p(r.sequentialCold, 0.5)) },
      sequentialOneRequest: {
        runs: r.sequentialOneRequest.length,
        p50Ms: round(p(r.sequentialOneRequest, 0.5)),
        p90Ms: round(p(r.sequentialOneRequest, 0.9))
      },
      floorSequential: { p50Ms: round(p(r.floor.sequential, 0.5)), p90Ms: round(p(r.floor.sequential, 0.9)) },
      latencyRatio: round(latencyRatio(r), 3),
      inFlight: IN_FLIGHT,
      throughput: RunBatch.batchJson(r.throughput),
      engineOnly: RunBatch.batchJson(r.engineOnly),
      floorRunsPerSecond: round(r.floor.runsPerSecond, 1),
      busRunWrites: RunBatch.runWritesJson(r.floor),
      cpuCeiling: RunBatch.cpuCeilingJson(r.engineOnly, TARGETS.runsPerSecond),
      settledSeconds: round(r.settledSeconds, 1),
      floorPayloadBytes: r.floor.payloadBytes,
      loadAverage: { sequential: round(r.loadAverage.sequential), throughput: round(r.loadAverage.throughput) }
    })
  }`
}
