// The run path of issue 11: a real `lantern serve` (offline provider, PGlite) on its own nats-server, driving
// runs of ten durable steps (model, eight built-in tool calls, model) through the HTTP API, beside the raw
// JetStream floor (twelve sequential publishes-with-ack per "run") measured on the same server in the same run.
import { mkdtempSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import * as Tools from "../actors/model/Tools.ts"
import { Nats, unavailable } from "../bus/Nats.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Topology from "../bus/Topology.ts"
import { type LanternProcess, spawnLantern } from "../tests/support/Stack.ts"
import * as Hosts from "./Hosts.ts"
import * as RawPublish from "./RawPublish.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

/** The goals for the run path. */
export const TARGETS = {
  /** Sequential run p50 over the p50 of twelve sequential raw publishes. */
  latencyRatio: 2,
  runsPerSecond: 400,
  engineCpuMsPerRun: 10,
  busRequestsPerRun: 15
} as const

/** Runs in flight for the throughput figures. */
export const IN_FLIGHT = 200
/** Sequential publishes a raw "run" makes: about the journal writes of a ten-step run. */
export const FLOOR_PUBLISHES = 12
/** Counts at BENCH_SCALE=1. */
const SEQUENTIAL = 30
const SEQUENTIAL_WARMUP = 10
const THROUGHPUT = 600
const FLOOR_SEQUENTIAL = 100

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

export interface Throughput {
  readonly runs: number
  readonly succeeded: number
  readonly wallMs: number
  readonly runsPerSecond: number
  /** POST to terminal event of each run, while IN_FLIGHT ran, ms. */
  readonly latencyMs: ReadonlyArray<number>
  /** CPU ms per run: the `lantern serve` process, nats-server, this (client) process. */
  readonly cpuMsPerRun: { readonly engine: number; readonly server: number; readonly client: number }
  /** Per run, by /varz difference: messages clients sent to the server, and the server sent to clients. */
  readonly inMsgsPerRun: number
  readonly outMsgsPerRun: number
  /** JetStream API requests per run (/varz jetstream.stats.api.total); NaN when the server does not say. */
  readonly jsApiPerRun: number
  /** JetStream messages stored per run, every stream (journal, work queue, leases, projections' checkpoints). */
  readonly writesPerRun: number
}

export interface Result {
  readonly natsServer: string
  readonly syncAlways: boolean
  readonly stepsPerRun: number
  readonly eventsPerRun: number
  readonly toolCallsPerRun: number
  /** POST /v1/runs to the terminal event on the run's SSE stream, one run at a time, ms. */
  readonly sequential: ReadonlyArray<number>
  /** The client: POST, then the run's SSE stream. */
  readonly throughput: Throughput
  /** POST only; ends seen by one core subscription of this process to the journal subjects (no SSE follows). */
  readonly engineOnly: Throughput
  /** Bytes of the raw floor's payload: the mean stored size of a LANTERN_RUNS message after the runs. */
  readonly floorPayloadBytes: number
  /** Twelve sequential raw publishes-with-ack, one "run" at a time, ms. */
  readonly floorSequential: ReadonlyArray<number>
  /** IN_FLIGHT concurrent publishers, each awaiting its own acks, as "runs" of twelve publishes. */
  readonly floorRunsPerSecond: number
  readonly floorPublish: Stats.Summary
  /** The machine's 1-minute load average before the sequential and throughput phases. */
  readonly loadAverage: { readonly sequential: number; readonly throughput: number }
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: runpath: ${text}\n`))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "lantern-bench-runpath-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A nats-server with its monitoring endpoint (/varz) on `monitorPort`. */
const server = (storeDir: string, monitorPort: number) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => NatsServer.start({ storeDir, extraConfig: `http: "127.0.0.1:${monitorPort}"` }),
      catch: (e) => e
    }),
    (h) => Effect.promise(() => h.stop())
  )

const TOKEN = "lt_bench_run_path_token"

/** `lantern serve` as shipped (scripts/lantern.mjs), on `port`, until the scope closes; ready when it returns. */
const serve = (natsUrl: string, home: string, port: number) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawnLantern(["serve", "--port", String(port)], {
        NATS_URL: natsUrl,
        LANTERN_HOME: home,
        LANTERN_API_TOKEN: TOKEN,
        LANTERN_CHECK_RESPONSES: "false",
        // BENCH_SERVE_NODE_OPTIONS=--cpu-prof profiles the engine under this load
        ...(process.env["BENCH_SERVE_NODE_OPTIONS"] === undefined
          ? {}
          : { NODE_OPTIONS: process.env["BENCH_SERVE_NODE_OPTIONS"] })
      })
    ),
    (p) => Effect.promise(() => p.stop())
  ).pipe(Effect.tap((p) => Effect.promise(() => awaitReady(p, `http://127.0.0.1:${port}`))))

const awaitReady = async (p: LanternProcess, url: string) => {
  const deadline = Date.now() + 300_000
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`lantern serve exited before it was ready:\n${p.output()}`)
    if (Date.now() > deadline) throw new Error(`lantern serve not ready after 300 s:\n${p.output()}`)
    const ok = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The HTTP client of the measurements: what an SDK does to start a run and wait for its end. */
const client = (url: string) => {
  const auth = { authorization: `Bearer ${TOKEN}` }
  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? auth : { ...auth, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await r.text()
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`)
    return JSON.parse(text)
  }
  /** POST /v1/runs, then the run's SSE stream up to its terminal event: the run's id and how it ended. */
  const runOnce = async (): Promise<{ readonly id: string; readonly end: string }> => {
    const run = await call("POST", "/v1/runs", { agentName: AGENT, input: INPUT })
    const id = run.id as string
    const r = await fetch(`${url}/v1/runs/${id}/stream`, { headers: auth })
    if (!r.ok || r.body === null) throw new Error(`GET /v1/runs/${id}/stream: ${r.status} ${await r.text()}`)
    const reader = r.body.getReader()
    const decoder = new TextDecoder()
    let tail = ""
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) throw new Error(`the stream of ${id} ended before its terminal event`)
        // a frame may arrive in pieces: keep enough of the previous chunk for a split `event:` line
        tail = tail.slice(-64) + decoder.decode(value, { stream: true })
        const m = TERMINAL.exec(tail)
        if (m !== null) return { id, end: m[1]! }
      }
    } finally {
      await reader.cancel().catch(() => undefined)
    }
  }
  return { call, runOnce }
}

/** `total` calls of `one`, `inFlight` at a time. */
const pool = async (total: number, inFlight: number, one: () => Promise<void>) => {
  let started = 0
  await Promise.all(Array.from({ length: Math.min(total, inFlight) }, async () => {
    while (started < total) {
      started++
      await one()
    }
  }))
}

interface Varz {
  readonly inMsgs: number
  readonly outMsgs: number
  readonly jsApi: number
}

const varz = async (monitorPort: number): Promise<Varz> => {
  const v: any = await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()
  const api = v?.jetstream?.stats?.api?.total
  return { inMsgs: Number(v.in_msgs), outMsgs: Number(v.out_msgs), jsApi: typeof api === "number" ? api : Number.NaN }
}

const scaled = (n: number, scale: number, min: number) => Math.max(min, Math.round(n * scale))

/** `runs` runs by `runOnce`, IN_FLIGHT at a time, with the CPU and bus traffic they cost. */
const batchOf = (
  runs: number,
  monitorPort: number,
  enginePid: number,
  serverPid: number,
  runOnce: () => Promise<{ readonly end: string }>
) =>
  Effect.gen(function*() {
    const writesBefore = yield* Hosts.writes
    const measured = yield* Effect.promise(async () => {
      const v0 = await varz(monitorPort)
      const engine0 = Hosts.cpuMs(enginePid)
      const server0 = Hosts.cpuMs(serverPid)
      const own0 = process.cpuUsage()
      const latencyMs: Array<number> = []
      let succeeded = 0
      const began = performance.now()
      await pool(runs, IN_FLIGHT, async () => {
        const t = performance.now()
        const { end } = await runOnce()
        latencyMs.push(performance.now() - t)
        if (end === "RunSucceeded") succeeded++
      })
      const wallMs = performance.now() - began
      const own = process.cpuUsage(own0)
      const v1 = await varz(monitorPort)
      return {
        runs,
        succeeded,
        wallMs,
        runsPerSecond: (runs * 1000) / wallMs,
        latencyMs,
        cpuMsPerRun: {
          engine: (Hosts.cpuMs(enginePid) - engine0) / runs,
          server: (Hosts.cpuMs(serverPid) - server0) / runs,
          client: (own.user + own.system) / 1000 / runs
        },
        inMsgsPerRun: (v1.inMsgs - v0.inMsgs) / runs,
        outMsgsPerRun: (v1.outMsgs - v0.outMsgs) / runs,
        jsApiPerRun: (v1.jsApi - v0.jsApi) / runs
      }
    })
    return { ...measured, writesPerRun: ((yield* Hosts.writes) - writesBefore) / runs } satisfies Throughput
  })

const TERMINAL_TYPE = /"type":"(RunSucceeded|RunFailed|RunCanceled)"/

/**
 * One core subscription to every run's journal subject (`lantern.run.<tenant>.<id>`) for the rest of the scope:
 * a function that resolves with how a run ended. It adds no request to the bus per run.
 */
const watchEnds = Effect.gen(function*() {
  const { nc } = yield* Nats
  const ended = new Map<string, string>()
  const waiting = new Map<string, (end: string) => void>()
  yield* Effect.acquireRelease(
    Effect.sync(() =>
      nc.subscribe("lantern.run.>", {
        callback: (_error, m) => {
          const type = TERMINAL_TYPE.exec(m.string())?.[1]
          if (type === undefined) return
          const id = m.subject.slice(m.subject.lastIndexOf(".") + 1)
          const resolve = waiting.get(id)
          if (resolve === undefined) ended.set(id, type)
          else {
            waiting.delete(id)
            resolve(type)
          }
        }
      })
    ),
    (sub) => Effect.sync(() => sub.unsubscribe())
  )
  yield* Effect.promise(() => nc.flush())
  return (id: string): Promise<string> => {
    const end = ended.get(id)
    if (end !== undefined) {
      ended.delete(id)
      return Promise.resolve(end)
    }
    return new Promise((resolve) => waiting.set(id, resolve))
  }
})

/** The agent's runs, sequential then IN_FLIGHT at a time, then the raw floor on the same server. */
const measure = (
  api: ReturnType<typeof client>,
  nats: NatsServer.Handle,
  monitorPort: number,
  enginePid: number,
  scale: number
) =>
  Effect.gen(function*() {
    const seq = scaled(SEQUENTIAL, scale, 10)
    const batch = scaled(THROUGHPUT, scale, IN_FLIGHT)
    const serverPid = nats.process.pid ?? -1
    yield* Effect.promise(() =>
      api.call("POST", "/v1/agents", {
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
      const { id, end } = await api.runOnce()
      if (end !== "RunSucceeded") throw new Error(`run ${id} ended with ${end}`)
      const events: ReadonlyArray<{ type: string; payload: any }> =
        (await api.call("GET", `/v1/runs/${id}/events`)).items
      return {
        steps: events.filter((e) => e.type === "StepCompleted").length,
        // a tool step's result says it was one, whether it was started first or journaled once (ADR 0032)
        toolCalls: events.filter((e) => e.type === "StepCompleted" && e.payload?.result?._tag === "tool").length,
        events: events.length
      }
    })
    yield* progress(`a run is ${probe.steps} steps (${probe.toolCalls} tool calls), ${probe.events} events`)

    yield* progress(`${seq} sequential runs (after ${SEQUENTIAL_WARMUP})`)
    const loadSequential = loadavg()[0]!
    const sequential = yield* Effect.promise(async () => {
      for (let i = 0; i < SEQUENTIAL_WARMUP; i++) await api.runOnce()
      const samples: Array<number> = []
      for (let i = 0; i < seq; i++) {
        const t = performance.now()
        await api.runOnce()
        samples.push(performance.now() - t)
      }
      return samples
    })

    yield* progress(`${batch} runs at ${IN_FLIGHT} in flight (after ${IN_FLIGHT}), SSE client`)
    yield* Effect.promise(() => pool(IN_FLIGHT, IN_FLIGHT, async () => void (await api.runOnce())))
    const loadThroughput = loadavg()[0]!
    const throughput = yield* batchOf(batch, monitorPort, enginePid, serverPid, api.runOnce)
    yield* progress(`${batch} runs at ${IN_FLIGHT} in flight, POST only, ends watched on the bus`)
    const ends = yield* watchEnds
    const engineOnly = yield* batchOf(batch, monitorPort, enginePid, serverPid, async () => {
      const { id } = await api.call("POST", "/v1/runs", { agentName: AGENT, input: INPUT })
      return { id, end: await ends(id) }
    })

    yield* progress(`raw floor: runs of ${FLOOR_PUBLISHES} sequential publishes, alone and ${IN_FLIGHT} in flight`)
    const floorPayloadBytes = yield* meanMessageBytes
    yield* RawPublish.ensureStream
    const payload = RawPublish.payloadOf(floorPayloadBytes)
    for (let i = 0; i < SEQUENTIAL_WARMUP; i++) yield* RawPublish.run(1, FLOOR_PUBLISHES, payload, "rpw")
    const floorSequential: Array<number> = []
    for (let i = 0; i < scaled(FLOOR_SEQUENTIAL, scale, 20); i++)
      floorSequential.push((yield* RawPublish.run(1, FLOOR_PUBLISHES, payload, "rps")).wallMs)
    yield* RawPublish.run(IN_FLIGHT, IN_FLIGHT * FLOOR_PUBLISHES, payload, "rpw")
    const floorPublish = yield* RawPublish.run(IN_FLIGHT, batch * FLOOR_PUBLISHES, payload, "rpt")
    return {
      natsServer: nats.version,
      syncAlways: nats.syncAlways,
      stepsPerRun: probe.steps,
      eventsPerRun: probe.events,
      toolCallsPerRun: probe.toolCalls,
      sequential,
      throughput,
      engineOnly,
      floorPayloadBytes,
      floorSequential,
      floorRunsPerSecond: floorPublish.perSecond / FLOOR_PUBLISHES,
      floorPublish,
      loadAverage: { sequential: loadSequential, throughput: loadThroughput }
    } satisfies Result
  })

/** Runs the run-path measurements on a nats-server and `lantern serve` of their own. */
export const run = (scale: number) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const monitorPort = yield* Effect.promise(() => NatsServer.freePort())
    const nats = yield* server(join(dir, "js"), monitorPort)
    const port = yield* Effect.promise(() => NatsServer.freePort())
    yield* progress(`nats-server ${nats.version} at ${nats.url} (monitor ${monitorPort}); starting lantern serve`)
    const lantern = yield* serve(nats.url, join(dir, "home"), port)
    const api = client(`http://127.0.0.1:${port}`)
    return yield* measure(api, nats, monitorPort, lantern.child.pid ?? -1, scale).pipe(
      Effect.provide(Nats.layerUrl(nats.url, "lantern-bench-runpath"))
    )
  }).pipe(Effect.scoped)

/** The mean stored size of a LANTERN_RUNS message: what the raw floor publishes. */
const meanMessageBytes = Effect.gen(function*() {
  const { jsm } = yield* Nats
  return yield* Effect.tryPromise({
    try: async () => {
      const { state } = await jsm.streams.info(Topology.RUNS)
      return state.messages === 0 ? 256 : Math.round(state.bytes / state.messages)
    },
    catch: unavailable(`stream info ${Topology.RUNS}`)
  })
})

const p = (xs: ReadonlyArray<number>, q: number) => Stats.percentile([...xs].sort((a, b) => a - b), q)
const ms = (x: number) => x.toFixed(1)
const per = (x: number) => (Number.isNaN(x) ? "n/a" : x.toFixed(1))
const met = (ok: boolean) => (ok ? "met" : "NOT MET")

/** Sequential p50 over the floor's p50 of twelve sequential publishes. */
export const latencyRatio = (r: Result) => p(r.sequential, 0.5) / p(r.floorSequential, 0.5)

export const render = (r: Result): string => {
  const t = r.throughput
  const e = r.engineOnly
  const ratio = latencyRatio(r)
  const both = (label: string, f: (t: Throughput) => string) => [label, f(t), f(e)]
  const target = (label: string, goal: string, ok: (t: Throughput) => boolean, f: (t: Throughput) => string) => [
    label,
    goal,
    f(t),
    met(ok(t)),
    f(e),
    met(ok(e))
  ]
  return [
    `Run path (bench/RunPath.ts, issue 11): \`lantern serve\` (offline provider, PGlite) on its own nats-server ${r.natsServer}${
      r.syncAlways ? " (sync_interval: always)" : ""
    }`,
    `   a run = ${r.stepsPerRun} steps (model, ${r.toolCallsPerRun} built-in tool calls, model), ${r.eventsPerRun} journal events`,
    "   SSE client = POST /v1/runs, then the run's SSE stream (GET /v1/runs/{id}/stream) to its terminal event;",
    "   POST only = POST /v1/runs, the end seen by one core subscription of the bench to lantern.run.> (no request per run)",
    `   raw floor = ${FLOOR_PUBLISHES} sequential JetStream publishes-with-ack of ${r.floorPayloadBytes} B (the mean LANTERN_RUNS message) on one subject, same server, same run`,
    `   load average (1 min) before: sequential ${r.loadAverage.sequential.toFixed(2)}, ${IN_FLIGHT} in flight ${
      r.loadAverage.throughput.toFixed(2)
    }`,
    table(
      ["figure", "Lantern run", `raw floor (${FLOOR_PUBLISHES} publishes)`, "Lantern / floor"],
      [
        [
          `sequential p50 ms (${r.sequential.length} / ${r.floorSequential.length}), SSE client`,
          ms(p(r.sequential, 0.5)),
          ms(p(r.floorSequential, 0.5)),
          `${ratio.toFixed(2)}x`
        ],
        [
          "sequential p90 ms, SSE client",
          ms(p(r.sequential, 0.9)),
          ms(p(r.floorSequential, 0.9)),
          `${(p(r.sequential, 0.9) / p(r.floorSequential, 0.9)).toFixed(2)}x`
        ],
        ...[t, e].map((x) => [
          `runs/s at ${IN_FLIGHT} in flight (${x.runs} runs), ${x === t ? "SSE client" : "POST only"}`,
          x.runsPerSecond.toFixed(1),
          r.floorRunsPerSecond.toFixed(1),
          `${(x.runsPerSecond / r.floorRunsPerSecond).toFixed(2)}x`
        ])
      ]
    ),
    table(
      [`per run at ${IN_FLIGHT} in flight`, "SSE client", "POST only"],
      [
        both("run p50 / p90 ms (POST to end)", (x) => `${ms(p(x.latencyMs, 0.5))} / ${ms(p(x.latencyMs, 0.9))}`),
        both("lantern serve CPU ms", (x) => x.cpuMsPerRun.engine.toFixed(2)),
        both("nats-server CPU ms", (x) => x.cpuMsPerRun.server.toFixed(2)),
        both("bench client CPU ms", (x) => x.cpuMsPerRun.client.toFixed(2)),
        both("bus messages in (clients -> server, /varz in_msgs)", (x) => per(x.inMsgsPerRun)),
        both("bus messages out (server -> clients, /varz out_msgs)", (x) => per(x.outMsgsPerRun)),
        both("JetStream API requests (/varz jetstream.stats.api.total)", (x) => per(x.jsApiPerRun)),
        both("JetStream messages stored (every stream)", (x) => per(x.writesPerRun)),
        both("runs succeeded", (x) => `${x.succeeded} / ${x.runs}`)
      ]
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
    "   what serve does to follow each run's journal for its stream; POST only leaves that out."
  ].join("\n")
}

const round = (x: number, d = 2) => (Number.isNaN(x) ? null : Number(x.toFixed(d)))

const batchJson = (t: Throughput) => ({
  runs: t.runs,
  succeeded: t.succeeded,
  runsPerSecond: round(t.runsPerSecond, 1),
  p50Ms: round(p(t.latencyMs, 0.5), 1),
  p90Ms: round(p(t.latencyMs, 0.9), 1),
  engineCpuMsPerRun: round(t.cpuMsPerRun.engine),
  serverCpuMsPerRun: round(t.cpuMsPerRun.server),
  clientCpuMsPerRun: round(t.cpuMsPerRun.client),
  inMsgsPerRun: round(t.inMsgsPerRun),
  outMsgsPerRun: round(t.outMsgsPerRun),
  jsApiPerRun: round(t.jsApiPerRun),
  writesPerRun: round(t.writesPerRun)
})

/** The figures as one `BENCH_RUNPATH_JSON {...}` line. */
export const json = (r: Result): string => {
  return `BENCH_RUNPATH_JSON ${
    JSON.stringify({
      stepsPerRun: r.stepsPerRun,
      eventsPerRun: r.eventsPerRun,
      sequential: { runs: r.sequential.length, p50Ms: round(p(r.sequential, 0.5)), p90Ms: round(p(r.sequential, 0.9)) },
      floorSequential: { p50Ms: round(p(r.floorSequential, 0.5)), p90Ms: round(p(r.floorSequential, 0.9)) },
      latencyRatio: round(latencyRatio(r), 3),
      inFlight: IN_FLIGHT,
      throughput: batchJson(r.throughput),
      engineOnly: batchJson(r.engineOnly),
      floorRunsPerSecond: round(r.floorRunsPerSecond, 1),
      floorPayloadBytes: r.floorPayloadBytes,
      loadAverage: { sequential: round(r.loadAverage.sequential), throughput: round(r.loadAverage.throughput) }
    })
  }`
}
