// Run throughput with 1, 2 and 4 `lantern worker` processes on one nats-server: a fixed batch of offline runs
// (model, calculator, model) queued at once when every worker drives, timed to the last terminal event.
import { availableParallelism, loadavg } from "node:os"
import { Effect } from "effect"
import type * as NatsServer from "../bus/NatsServer.ts"
import type { Stored } from "../schema/Envelope.ts"
import * as Events from "../schema/Events.ts"
import * as Hosts from "./Hosts.ts"
import { type Level as RawLevel, table } from "./Report.ts"
import * as Stats from "./Stats.ts"

/** Worker counts; runs per measured batch (BENCH_SCALE=1) and per warm-up batch. */
export const COUNTS = [1, 2, 4] as const
const RUNS = 400
const WARMUP = 20
/** Runs this process journals (or starts, in warm-ups) at once. */
const STARTERS = 32

export interface Level {
  readonly workers: number
  readonly runs: number
  readonly succeeded: number
  /** From queueing the batch to the last terminal event's `at`. */
  readonly wallMs: number
  /** How long this process took to queue the batch. */
  readonly queueMs: number
  readonly runsPerSecond: number
  readonly stepsPerSecond: number
  /**
   * StepStarted `at` to the `at` of the event carrying the step's completion: the StepStarted append round trip plus
   * the step's effect. Local steps (journaled once, with no StepStarted) have none.
   */
  readonly steps: Stats.Summary
  /** From queueing the batch to the run's terminal event's `at`. */
  readonly latency: Stats.Summary
  /** JetStream messages stored per run (journal, work queue, leases, snapshots), by stream sequence difference. */
  readonly writesPerRun: number
  /** Runs each worker drove (first lease holder), in worker start order. */
  readonly perWorker: ReadonlyArray<number>
  /** Runs whose lease more than one worker held. */
  readonly shared: number
  /** The machine's 1-minute load average before the batch: other work on the machine shows here. */
  readonly loadAverage: number
  /** CPU used while the batch ran, in % of one core: all workers, nats-server, this process. */
  readonly cpu: { readonly workers: number; readonly server: number; readonly bench: number }
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

/** CPU ms used so far by `pids` together, and by this process. */
const cpuNow = (pids: ReadonlyArray<number>, serverPid: number) => {
  const own = process.cpuUsage()
  return {
    workers: pids.reduce((sum, p) => sum + Hosts.cpuMs(p), 0),
    server: Hosts.cpuMs(serverPid),
    bench: (own.user + own.system) / 1000
  }
}

/**
 * A run journal's steps: how many completed, and for each step that was started first, from its StepStarted `at` to
 * the `at` of the event that carries its completion (a StepCompleted, a StepsCompleted or the RunSucceeded: ADR 0067,
 * 0075, 0077). A local step is journaled once, with its completion alone: it counts, with no duration.
 */
export const stepTimes = (journal: ReadonlyArray<Stored>) => {
  const started = new Map<string, number>()
  const durations: Array<number> = []
  let completed = 0
  for (const s of journal) {
    for (const event of Events.expand(s.event)) {
      if (event._tag === "StepStarted") started.set(event.stepId, Hosts.atOf(s))
      else if (event._tag === "StepCompleted") {
        completed++
        const from = started.get(event.stepId)
        if (from !== undefined) durations.push(Hosts.atOf(s) - from)
      }
    }
  }
  return { completed, durations }
}

/** One measured batch with `workers` running; `pids` in start order. */
const level = (log: Hosts.LeaseLog, pids: ReadonlyArray<number>, serverPid: number, runs: number) =>
  Effect.gen(function*() {
    const loadAverage = loadavg()[0]!
    const before = yield* Hosts.writes
    const runIds = yield* Hosts.journalRuns(runs, STARTERS)
    const cpuBefore = cpuNow(pids, serverPid)
    const began = Date.now()
    yield* Hosts.queue(runIds)
    const queueMs = Date.now() - began
    yield* Hosts.awaitEnded(log, runIds, 120_000)
    const cpuAfter = cpuNow(pids, serverPid)
    const busyMs = Date.now() - began
    const percent = (k: keyof typeof cpuBefore) => (100 * (cpuAfter[k] - cpuBefore[k])) / busyMs
    const after = yield* Hosts.writes
    const stored = yield* Hosts.journals(runIds)

    const steps: Array<number> = []
    let completed = 0
    const latency: Array<number> = []
    let last = began
    let succeeded = 0
    for (const journal of stored) {
      const times = stepTimes(journal)
      steps.push(...times.durations)
      completed += times.completed
      const end = journal.at(-1)!
      if (!Hosts.TERMINAL.has(end.event._tag))
        return yield* Effect.die(new Error(`run ${end.envelope.actor.id} ended with ${end.event._tag}`))
      if (end.event._tag === "RunSucceeded") succeeded++
      last = Math.max(last, Hosts.atOf(end))
      latency.push(Hosts.atOf(end) - began)
    }
    const wallMs = last - began

    const perWorker = pids.map(() => 0)
    let shared = 0
    for (const r of runIds) {
      const holders = new Set(
        (log.history.get(r) ?? []).flatMap((e) => (e.holder === null ? [] : [Hosts.pidOf(e.holder)]))
      )
      const first = (log.history.get(r) ?? []).find((e) => e.holder !== null)
      const i = first === undefined ? -1 : pids.indexOf(Hosts.pidOf(first.holder)!)
      if (i >= 0) perWorker[i]!++
      if (holders.size > 1) shared++
    }
    return {
      workers: pids.length,
      runs,
      succeeded,
      wallMs,
      queueMs,
      runsPerSecond: (runs * 1000) / wallMs,
      stepsPerSecond: (completed * 1000) / wallMs,
      steps: Stats.summarize(steps, wallMs),
      latency: Stats.summarize(latency, wallMs),
      writesPerRun: (after - before) / runs,
      perWorker,
      shared,
      loadAverage,
      cpu: { workers: percent("workers"), server: percent("server"), bench: percent("bench") }
    } satisfies Level
  })

/** Starts workers up to each of COUNTS (they stay for the next level), warms them up, then measures a batch. */
export const run = (server: NatsServer.Handle, scale: number) =>
  Effect.gen(function*() {
    const runs = Math.max(10, Math.round(RUNS * scale))
    yield* Hosts.ensureAgent
    const log = yield* Hosts.watchLeases
    const workers: Array<Hosts.Worker> = []
    const levels: Array<Level> = []
    for (const count of COUNTS) {
      yield* progress(`workers: ${count} worker process${count === 1 ? "" : "es"}, ${runs} runs`)
      const pulls = yield* Hosts.waitingPulls
      const added = count - workers.length
      while (workers.length < count) workers.push(yield* Hosts.worker(server.url, {}))
      yield* Hosts.ready(workers, pulls + added, 15_000)
      yield* Hosts.warmUp(log, workers, WARMUP)
      yield* Hosts.awaitEnded(log, yield* Hosts.startRuns(WARMUP, STARTERS), 60_000)
      levels.push(yield* level(log, workers.map((w) => w.pid), server.process.pid ?? -1, runs))
    }
    return levels
  }).pipe(Effect.scoped, Effect.provide(Hosts.commandSide))

const ms = (x: number) => x.toFixed(1)
const rate = (x: number) => Math.round(x).toLocaleString("en-US")

/** Section 6 of the report, beside the best raw publishes/s of section 1 (`raw`). */
export const render = (levels: ReadonlyArray<Level>, raw: ReadonlyArray<RawLevel>): string => {
  const best = raw.reduce((a, b) => (b.raw.perSecond > a.raw.perSecond ? b : a))
  const rawPerSecond = best.raw.perSecond
  return [
    `6. Throughput with N \`lantern worker\` processes (one nats-server; ${
      levels[0]?.runs ?? 0
    } offline runs of 3 steps each: model, calculator, model)`,
    "   each batch is journaled first (lease entry + RunStarted, as Runs.start does), then queued at once when every worker",
    "   has driven a warm-up run; timed from queueing to the last terminal event",
    table(
      [
        "workers",
        "runs/s",
        "steps/s",
        "wall s",
        "step median ms",
        "step p99 ms",
        "run median ms",
        "run max ms",
        "JS writes/run",
        "limit runs/s",
        "runs/s ratio",
        "CPU % workers/nats/bench",
        "runs per worker"
      ],
      levels.map((l) => [
        String(l.workers),
        rate(l.runsPerSecond),
        rate(l.stepsPerSecond),
        (l.wallMs / 1000).toFixed(2),
        ms(l.steps.medianMs),
        ms(l.steps.p99Ms),
        ms(l.latency.medianMs),
        ms(l.latency.maxMs),
        l.writesPerRun.toFixed(1),
        rate(rawPerSecond / l.writesPerRun),
        `${(l.runsPerSecond / (rawPerSecond / l.writesPerRun)).toFixed(2)}x`,
        [l.cpu.workers, l.cpu.server, l.cpu.bench].map((x) => x.toFixed(0)).join("/"),
        l.perWorker.join("/")
      ])
    ),
    `   limit runs/s = raw publishes/s at ${best.inFlight} publishers (${
      rate(rawPerSecond)
    }, section 1) / JetStream writes per run; runs/s ratio = runs/s / limit`,
    "   step = StepStarted `at` to the `at` of the event with its completion (the StepStarted append plus the step's effect;",
    "   the calculator, a local step, has no StepStarted and no duration, but counts in steps/s); run = queued to its end;",
    "   runs per worker = runs whose lease each worker took first; CPU % = CPU time while the batch ran over its wall time, in %",
    `   of one core, for all workers together, nats-server and this bench process (which journals, queues and watches): ${availableParallelism()} CPUs in all;`,
    `   1-minute load average before each batch: ${
      levels.map((l) => l.loadAverage.toFixed(1)).join(" / ")
    } (anything else running on the machine counts in it)`,
    ...levels.flatMap((l) => [
      ...(l.succeeded === l.runs ? [] : [`   ${l.workers} workers: only ${l.succeeded} of ${l.runs} runs succeeded`]),
      ...(l.shared === 0 ? [] : [`   ${l.workers} workers: ${l.shared} runs were driven by more than one worker`]),
      ...(l.perWorker.some((n) => n === 0) ? [`   ${l.workers} workers: a worker drove no run`] : [])
    ])
  ].join("\n")
}

const round = (x: number, digits: number) => Number(x.toFixed(digits))

/** The figures as one `BENCH_WORKERS_JSON {...}` line. */
export const json = (levels: ReadonlyArray<Level>): string =>
  `BENCH_WORKERS_JSON ${
    JSON.stringify(levels.map((l) => ({
      workers: l.workers,
      runs: l.runs,
      succeeded: l.succeeded,
      runsPerSecond: round(l.runsPerSecond, 1),
      stepsPerSecond: round(l.stepsPerSecond, 1),
      wallMs: round(l.wallMs, 0),
      queueMs: round(l.queueMs, 0),
      stepMedianMs: round(l.steps.medianMs, 1),
      stepP99Ms: round(l.steps.p99Ms, 1),
      runMedianMs: round(l.latency.medianMs, 1),
      writesPerRun: round(l.writesPerRun, 2),
      loadAverage: round(l.loadAverage, 2),
      cpuPercent: { workers: round(l.cpu.workers, 0), server: round(l.cpu.server, 0), bench: round(l.cpu.bench, 0) },
      perWorker: l.perWorker
    })))
  }`
