// Runs through a bench section's own `lantern serve` (Serve.ts), one at a time and many in flight, with what they
// cost (serve and nats-server CPU, /varz traffic, JetStream writes), beside the raw JetStream floor measured on the
// same server in the same run. Shared by the run path (RunPath.ts) and code-first workflows (Workflows.ts).
import { availableParallelism, loadavg } from "node:os"
import { Effect } from "effect"
import { Nats, unavailable } from "../bus/Nats.ts"
import * as Topology from "../bus/Topology.ts"
import * as Hosts from "./Hosts.ts"
import * as RawPublish from "./RawPublish.ts"
import * as Stats from "./Stats.ts"
import type { Stack } from "./Serve.ts"

/** Runs in flight for the throughput figures. */
export const IN_FLIGHT = 200

export interface Throughput {
  readonly runs: number
  readonly succeeded: number
  readonly wallMs: number
  readonly runsPerSecond: number
  /** Start to end of each run, while IN_FLIGHT ran, ms. */
  readonly latencyMs: ReadonlyArray<number>
  /** CPU ms per run: the `lantern serve` process, nats-server, this (client) process. */
  readonly cpuMsPerRun: { readonly engine: number; readonly server: number; readonly client: number }
  /**
   * The whole machine while the batch ran (/proc/stat: every process and the kernel): CPU ms per run, and the share of
   * its `cores` that was busy.
   */
  readonly machine: { readonly cpuMsPerRun: number; readonly busy: number; readonly cores: number }
  /** Per run, by /varz difference: messages clients sent to the server, and the server sent to clients. */
  readonly inMsgsPerRun: number
  readonly outMsgsPerRun: number
  /** JetStream API requests per run (/varz jetstream.stats.api.total); NaN when the server does not say. */
  readonly jsApiPerRun: number
  /** JetStream messages stored per run, every stream (journal, work queue, leases, projections' checkpoints). */
  readonly writesPerRun: number
}

/** What a section measured of runs through its `lantern serve`, beside the raw floor. */
export interface Measured {
  readonly natsServer: string
  /** Where serve's read models were (Serve.Stack's `database`). */
  readonly database: string
  readonly syncAlways: boolean
  readonly stepsPerRun: number
  readonly eventsPerRun: number
  /** Start to end of each run, one run at a time, ms. */
  readonly sequential: ReadonlyArray<number>
  /** IN_FLIGHT at a time, started and followed as the section's client does. */
  readonly throughput: Throughput
  readonly floor: Floor
  /** The machine's 1-minute load average before the sequential and throughput phases. */
  readonly loadAverage: { readonly sequential: number; readonly throughput: number }
}

/** One run from its start to its end: its id and the type of its terminal event. */
export type RunOnce = () => Promise<{ readonly id: string; readonly end: string }>

export const scaled = (n: number, scale: number, min: number) => Math.max(min, Math.round(n * scale))

/** `total` calls of `one`, `inFlight` at a time. */
export const pool = async (total: number, inFlight: number, one: () => Promise<void>) => {
  let started = 0
  await Promise.all(Array.from({ length: Math.min(total, inFlight) }, async () => {
    while (started < total) {
      started++
      await one()
    }
  }))
}

/** Start-to-end times (ms) of `count` runs one after the other, after `warmup` unmeasured ones. */
export const oneAtATime = (count: number, warmup: number, runOnce: RunOnce) =>
  Effect.promise(async () => {
    for (let i = 0; i < warmup; i++) await runOnce()
    const samples: Array<number> = []
    for (let i = 0; i < count; i++) {
      const t = performance.now()
      await runOnce()
      samples.push(performance.now() - t)
    }
    return samples
  })

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

/** `runs` runs by `runOnce`, IN_FLIGHT at a time, with the CPU and bus traffic they cost. */
export const batchOf = (runs: number, stack: Stack, runOnce: RunOnce) =>
  Effect.gen(function*() {
    const serverPid = stack.nats.process.pid ?? -1
    const writesBefore = yield* Hosts.writes
    const measured = yield* Effect.promise(async () => {
      const v0 = await varz(stack.monitorPort)
      const engine0 = Hosts.cpuMs(stack.enginePid)
      const server0 = Hosts.cpuMs(serverPid)
      const own0 = process.cpuUsage()
      const machine0 = Hosts.machineCpu()
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
      const machine1 = Hosts.machineCpu()
      const v1 = await varz(stack.monitorPort)
      return {
        runs,
        succeeded,
        wallMs,
        runsPerSecond: (runs * 1000) / wallMs,
        latencyMs,
        cpuMsPerRun: {
          engine: (Hosts.cpuMs(stack.enginePid) - engine0) / runs,
          server: (Hosts.cpuMs(serverPid) - server0) / runs,
          client: (own.user + own.system) / 1000 / runs
        },
        machine: {
          cpuMsPerRun: (machine1.busyMs - machine0.busyMs) / runs,
          busy: (machine1.busyMs - machine0.busyMs) / (machine1.allMs - machine0.allMs),
          cores: availableParallelism()
        },
        inMsgsPerRun: (v1.inMsgs - v0.inMsgs) / runs,
        outMsgsPerRun: (v1.outMsgs - v0.outMsgs) / runs,
        jsApiPerRun: (v1.jsApi - v0.jsApi) / runs
      }
    })
    return { ...measured, writesPerRun: ((yield* Hosts.writes) - writesBefore) / runs } satisfies Throughput
  })

/** How long `settled` watches the engine's CPU at a time, and the share of a core below which it counts as idle. */
const SETTLE_WINDOW_MS = 250
const SETTLE_IDLE_SHARE = 0.1

/**
 * Waits until `lantern serve` is idle (under a tenth of a core over 250 ms): its projectors have caught up with
 * the runs just measured, so that what it still owes them does not slow the raw floor measured next on the same
 * machine. The seconds it took; it gives up after `deadlineMs`.
 */
export const settled = (stack: Stack, deadlineMs = 60_000) =>
  Effect.promise(async () => {
    const began = performance.now()
    for (;;) {
      const before = Hosts.cpuMs(stack.enginePid)
      await new Promise((resolve) => setTimeout(resolve, SETTLE_WINDOW_MS))
      const busy = (Hosts.cpuMs(stack.enginePid) - before) / SETTLE_WINDOW_MS
      // NaN: serve is gone, and waiting will not bring it back
      if (!(busy >= SETTLE_IDLE_SHARE) || performance.now() - began > deadlineMs) break
    }
    return (performance.now() - began) / 1000
  })

const TERMINAL_TYPE = /"type":"(RunSucceeded|RunFailed|RunCanceled)"/

/**
 * One core subscription to every run's journal subject (`lantern.run.<tenant>.<id>`) for the rest of the scope:
 * a function that resolves with how a run ended. It adds no request to the bus per run.
 */
export const watchEnds = Effect.gen(function*() {
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

/** The mean stored size of a LANTERN_RUNS message: what the raw floor publishes. */
export const meanMessageBytes = Effect.gen(function*() {
  const { jsm } = yield* Nats
  return yield* Effect.tryPromise({
    try: async () => {
      const { state } = await jsm.streams.info(Topology.RUNS)
      return state.messages === 0 ? 256 : Math.round(state.bytes / state.messages)
    },
    catch: unavailable(`stream info ${Topology.RUNS}`)
  })
})

export interface Floor {
  /** Bytes of each publish: the mean stored size of a LANTERN_RUNS message after the warm-up runs. */
  readonly payloadBytes: number
  /** `publishes` sequential publishes-with-ack, one "run" at a time, interleaved with the runs (`interleaved`), ms. */
  readonly sequential: ReadonlyArray<number>
  /** IN_FLIGHT concurrent publishers, each awaiting its own acks. */
  readonly publish: Stats.Summary
  /** `publish` as runs of `publishes` publishes a second. */
  readonly runsPerSecond: number
  /**
   * The bus's limit for the writes the section's run makes (RawPublish.runWrites), raw, IN_FLIGHT at a time, runs a
   * second: its journal on one stream as Lantern's is, and spread over RawPublish.RUN_SHARDS streams. `oneAtATime`:
   * the same writes of one run after another, each run's ms, measured beside the sequential runs (`interleaved`).
   */
  readonly runWrites: {
    readonly appends: number
    readonly oneStream: number
    readonly spread: number
    readonly oneAtATime: ReadonlyArray<number>
  }
}

/**
 * Runs measured one at a time right after a section's first one, at BENCH_SCALE=1: a `serve` just started, its JIT
 * still cold.
 */
export const SEQUENTIAL_COLD = 30
/**
 * Runs one at a time before the warm ones are measured, the cold ones included. A run's p50 falls from about 28 ms
 * over the first 30 runs to about 14 ms after 250 (V8 optimising the run path's code): the targets are a server's
 * steady state.
 */
export const SEQUENTIAL_WARMUP = 300

/** Runs one at a time, and the raw floor's "runs" measured in the same minutes (`interleaved`). */
export interface Interleaved {
  /** Start to end of each of the first runs on the fresh serve (its JIT cold), ms. */
  readonly cold: ReadonlyArray<number>
  /** Start to end of each run after SEQUENTIAL_WARMUP, ms. */
  readonly runs: ReadonlyArray<number>
  /** `publishes` sequential publishes-with-ack each, ms. */
  readonly floor: ReadonlyArray<number>
  /** The journal appends of the section's run, which its raw run writes make. */
  readonly appends: number
  /** A run's own writes (RawPublish.runWrites with `appends` journal appends), raw, one run at a time, ms each. */
  readonly writes: ReadonlyArray<number>
  /** The copies of the streams a run writes to, for the raw run writes (RawPublish.ensureRunStreams). */
  readonly streams: RawPublish.RunStreams
  /** Bytes of each publish: the mean stored size of a LANTERN_RUNS message after the warm-up runs. */
  readonly payloadBytes: number
  /** The machine's 1-minute load average before the warm runs. */
  readonly loadAverage: number
}

/** Runs (and as many floor "runs", and as many raw runs of their writes) measured back to back before the next kind's turn. */
export const INTERLEAVE = 10

/**
 * `cold` runs one at a time on a fresh serve, then `count` after SEQUENTIAL_WARMUP in all, in blocks of INTERLEAVE,
 * each block followed by as many raw floor "runs" of `publishes` sequential publishes-with-ack on the same server,
 * then as many raw runs of a run's own writes with `appends` journal appends (RawPublish.runWrites, one at a time):
 * what the bus alone takes for the writes a run cannot do without, in its order. This machine's speed drifts
 * by tens of percent within minutes (bench/Machine.ts), so a floor measured minutes after the runs made the ratio
 * swing with it; measured in the same minutes, both see the same machine. Each floor block starts once serve is
 * idle (a run's receipt and the projectors trail its end), so the floor is not slowed by the runs before it.
 */
export const interleaved = (
  stack: Stack,
  cold: number,
  count: number,
  runOnce: RunOnce,
  publishes: number,
  appends: number
) =>
  Effect.gen(function*() {
    const coldRuns = yield* oneAtATime(cold, 0, runOnce)
    const loadAverage = loadavg()[0]!
    yield* oneAtATime(0, Math.max(0, SEQUENTIAL_WARMUP - cold), runOnce)
    const payloadBytes = yield* meanMessageBytes
    yield* RawPublish.ensureStream
    const streams = yield* RawPublish.ensureRunStreams
    const payload = RawPublish.payloadOf(payloadBytes)
    // one raw run of a run's writes, its ms; each on subjects of its own (its lease and identity are created)
    let written = 0
    const writeOnce = Effect.map(
      Effect.suspend(() => RawPublish.runWrites(streams, appends, 1, 1, 1, `q${written++}-`)),
      (perSecond) => 1000 / perSecond
    )
    yield* settled(stack)
    for (let i = 0; i < INTERLEAVE; i++) {
      yield* RawPublish.run(1, publishes, payload, "rpw")
      yield* writeOnce
    }
    const runs: Array<number> = []
    const floor: Array<number> = []
    const writes: Array<number> = []
    while (runs.length < count) {
      const n = Math.min(INTERLEAVE, count - runs.length)
      runs.push(...(yield* oneAtATime(n, 0, runOnce)))
      yield* settled(stack)
      for (let i = 0; i < n; i++) floor.push((yield* RawPublish.run(1, publishes, payload, "rps")).wallMs)
      for (let i = 0; i < n; i++) writes.push(yield* writeOnce)
    }
    return { cold: coldRuns, runs, floor, appends, writes, streams, payloadBytes, loadAverage } satisfies Interleaved
  })

/**
 * The raw JetStream floor of runs of `publishes` journal writes, on the server the runs used, after them: `runs` of
 * them at IN_FLIGHT, beside the sequential ones `interleaved` measured (with their payload).
 */
export const floor = (publishes: number, sequential: Interleaved, runs: number) =>
  Effect.gen(function*() {
    const { appends, streams } = sequential
    const payload = RawPublish.payloadOf(sequential.payloadBytes)
    yield* RawPublish.run(IN_FLIGHT, IN_FLIGHT * publishes, payload, "rpw")
    const publish = yield* RawPublish.run(IN_FLIGHT, runs * publishes, payload, "rpt")
    // the run's own writes, alternating one journal stream and several, twice, so both see the machine alike
    yield* RawPublish.runWrites(streams, appends, IN_FLIGHT, IN_FLIGHT, 1, "w")
    const half = Math.max(IN_FLIGHT, Math.round(runs / 2))
    const one: Array<number> = []
    const spread: Array<number> = []
    for (let i = 0; i < 2; i++) {
      one.push(yield* RawPublish.runWrites(streams, appends, half, IN_FLIGHT, 1, `o${i}-`))
      spread.push(yield* RawPublish.runWrites(streams, appends, half, IN_FLIGHT, RawPublish.RUN_SHARDS, `s${i}-`))
    }
    const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
    return {
      payloadBytes: sequential.payloadBytes,
      sequential: sequential.floor,
      publish,
      runsPerSecond: publish.perSecond / publishes,
      runWrites: { appends, oneStream: mean(one), spread: mean(spread), oneAtATime: sequential.writes }
    } satisfies Floor
  })

/**
 * The lines each section prints under its table: what the bus alone takes for the run's own writes, one run at a
 * time beside `runs` (the section's sequential runs, ms) and the floor, and how many runs a second it allows.
 */
export const runWritesLine = (f: Floor, runs: ReadonlyArray<number>) => {
  const writes = p(f.runWrites.oneAtATime, 0.5)
  const floor = p(f.sequential, 0.5)
  return [
    `   the bus alone with a run's own writes, raw (bench/RawPublish.ts runWrites: lease and identity, ${f.runWrites.appends} journal appends, lease release and receipt, audit):`,
    `   one run at a time, p50 ${ms(writes)} ms (${
      (writes / floor).toFixed(2)
    }x the floor's p50; Lantern's run p50 is ${
      (p(runs, 0.5) / writes).toFixed(2)
    }x these writes, measured in the same blocks); ${IN_FLIGHT} in flight, ${
      f.runWrites.oneStream.toFixed(1)
    } runs/s with the journal on one stream, as Lantern's is, ${
      f.runWrites.spread.toFixed(1)
    } with runs spread over ${RawPublish.RUN_SHARDS} journal streams`
  ].join("\n")
}

/** `runWritesLine`'s figures for a section's JSON. */
export const runWritesJson = (f: Floor) => ({
  appends: f.runWrites.appends,
  oneStreamRunsPerSecond: round(f.runWrites.oneStream, 1),
  spreadRunsPerSecond: round(f.runWrites.spread, 1),
  oneAtATime: { runs: f.runWrites.oneAtATime.length, p50Ms: round(p(f.runWrites.oneAtATime, 0.5)) },
  shards: RawPublish.RUN_SHARDS
})

/**
 * What the machine's CPU allows a batch's runs: runs/s with every core busy at the batch's whole-machine cost per run,
 * and the CPU per run left to serve at `goal` runs/s once the rest of the machine's share per run (nats-server, the
 * client, the kernel) is taken out as the batch measured it.
 */
export const cpuCeiling = (t: Throughput, goal: number) => {
  const { cores, cpuMsPerRun } = t.machine
  return {
    runsPerSecond: (cores * 1000) / cpuMsPerRun,
    serveRoomMs: (cores * 1000) / goal - (cpuMsPerRun - t.cpuMsPerRun.engine)
  }
}

/** `cpuCeiling` as a line under a section's table of costs. */
export const cpuCeilingLine = (t: Throughput, goal: number, what: string) => {
  const c = cpuCeiling(t, goal)
  return [
    `   the whole machine spent ${t.machine.cpuMsPerRun.toFixed(2)} ms of CPU per ${what} (${
      (t.machine.busy * 100).toFixed(0)
    }% of its ${t.machine.cores} cores busy): at that cost its cores allow at most ${
      c.runsPerSecond.toFixed(0)
    } ${what}s/s;`,
    `   ${goal}/s would leave serve ${c.serveRoomMs.toFixed(2)} ms of CPU per ${what} (it used ${
      t.cpuMsPerRun.engine.toFixed(2)
    }), with nats-server, the client and the kernel as they were`
  ].join("\n")
}

/** `cpuCeiling`'s figures for a section's JSON. */
export const cpuCeilingJson = (t: Throughput, goal: number) => {
  const c = cpuCeiling(t, goal)
  return { goal, runsPerSecond: round(c.runsPerSecond, 1), serveRoomMs: round(c.serveRoomMs) }
}

/** Nearest-rank percentile of unsorted samples. */
export const p = (xs: ReadonlyArray<number>, q: number) => Stats.percentile([...xs].sort((a, b) => a - b), q)
export const ms = (x: number) => x.toFixed(1)
export const per = (x: number) => (Number.isNaN(x) ? "n/a" : x.toFixed(1))
export const met = (ok: boolean) => (ok ? "met" : "NOT MET")
export const round = (x: number, d = 2) => (Number.isNaN(x) ? null : Number(x.toFixed(d)))

/** Rows of what each run cost, one column per batch. */
export const costRows = (batches: ReadonlyArray<Throughput>): ReadonlyArray<ReadonlyArray<string>> => {
  const row = (label: string, f: (t: Throughput) => string) => [label, ...batches.map(f)]
  return [
    row("run p50 / p90 ms (start to end)", (x) => `${ms(p(x.latencyMs, 0.5))} / ${ms(p(x.latencyMs, 0.9))}`),
    row("lantern serve CPU ms", (x) => x.cpuMsPerRun.engine.toFixed(2)),
    row("nats-server CPU ms", (x) => x.cpuMsPerRun.server.toFixed(2)),
    row("bench client CPU ms", (x) => x.cpuMsPerRun.client.toFixed(2)),
    row("whole machine CPU ms (/proc/stat: every process, kernel)", (x) => x.machine.cpuMsPerRun.toFixed(2)),
    row("machine busy (share of its cores)", (x) => `${(x.machine.busy * 100).toFixed(0)}% of ${x.machine.cores}`),
    row("bus messages in (clients -> server, /varz in_msgs)", (x) => per(x.inMsgsPerRun)),
    row("bus messages out (server -> clients, /varz out_msgs)", (x) => per(x.outMsgsPerRun)),
    row("JetStream API requests (/varz jetstream.stats.api.total)", (x) => per(x.jsApiPerRun)),
    row("JetStream messages stored (every stream)", (x) => per(x.writesPerRun)),
    row("runs succeeded", (x) => `${x.succeeded} / ${x.runs}`)
  ]
}

export const batchJson = (t: Throughput) => ({
  runs: t.runs,
  succeeded: t.succeeded,
  runsPerSecond: round(t.runsPerSecond, 1),
  p50Ms: round(p(t.latencyMs, 0.5), 1),
  p90Ms: round(p(t.latencyMs, 0.9), 1),
  engineCpuMsPerRun: round(t.cpuMsPerRun.engine),
  serverCpuMsPerRun: round(t.cpuMsPerRun.server),
  clientCpuMsPerRun: round(t.cpuMsPerRun.client),
  machineCpuMsPerRun: round(t.machine.cpuMsPerRun),
  machineBusy: round(t.machine.busy),
  cores: t.machine.cores,
  inMsgsPerRun: round(t.inMsgsPerRun),
  outMsgsPerRun: round(t.outMsgsPerRun),
  jsApiPerRun: round(t.jsApiPerRun),
  writesPerRun: round(t.writesPerRun)
})
