// How long a run stands still when the host driving it dies: a worker armed with a failpoint SIGKILLs itself
// mid-run, and a healthy worker, on default settings, finds it dead by probing it (ADR 0038) and takes its runs.
import { Effect } from "effect"
import * as Hosts from "./Hosts.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

export const FAILPOINT = "after-step-start:turn-2"

/** Default settings: nothing is tuned for the bench. */
const ENV = {}

/**
 * Crashes at BENCH_SCALE=1, and runs started at once per batch: the armed worker takes some of a batch and still
 * holds them all when it dies on the first to reach turn 2.
 */
const CRASHES = 4
const BATCH = 10

/** One run the dead worker held when it died. */
export interface Sample {
  /** When the bench saw the lease entry move to another host. */
  readonly taken: number
  /** When the crash was seen (the failing process's exit). */
  readonly killed: number
  /** `at` of the first step event (StepStarted, or the StepCompleted / StepsCompleted of local steps) after the kill. */
  readonly moved: number
  /** The pid of the host that took the run over. */
  readonly takenBy: number | null
  readonly succeeded: boolean
}

export interface Result {
  readonly crashes: number
  readonly samples: ReadonlyArray<Sample>
  readonly healthyPid: number
  /** Runs each crash left behind. */
  readonly perCrash: ReadonlyArray<number>
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

/** The samples of one crash: every run whose lease the dead worker held, read back from the lease log and journal. */
const samplesOf = (log: Hosts.LeaseLog, runIds: ReadonlyArray<string>, deadPid: number, killed: number) =>
  Effect.gen(function*() {
    const held = runIds.filter((r) => (log.history.get(r) ?? []).some((e) => Hosts.pidOf(e.holder) === deadPid))
    const stored = yield* Hosts.journals(held)
    return held.map((runId, i): Sample => {
      const history = log.history.get(runId)!
      // the dead host journaled everything before it died; the next host after
      const next = stored[i]!.find((s) =>
        (s.event._tag === "StepStarted" || s.event._tag === "StepCompleted" || s.event._tag === "StepsCompleted") &&
        Hosts.atOf(s) >= killed
      )
      const taker = history.find((e) =>
        e.op === "PUT" && e.holder !== null && Hosts.pidOf(e.holder) !== deadPid && e.at >= killed
      )
      const end = stored[i]!.at(-1)
      return {
        taken: taker === undefined ? Number.NaN : taker.at,
        killed,
        moved: next === undefined ? Number.NaN : Hosts.atOf(next),
        takenBy: taker === undefined ? null : Hosts.pidOf(taker.holder),
        succeeded: end?.event._tag === "RunSucceeded"
      }
    })
  })

/**
 * CRASHES (scaled) rounds against one healthy worker: start a failpoint-armed worker, start BATCH runs at once,
 * wait for the armed worker to die and for every run to finish, and take one sample per run it held.
 */
export const run = (natsUrl: string, scale: number) =>
  Effect.gen(function*() {
    const crashes = Math.max(2, Math.round(CRASHES * scale))
    yield* Hosts.ensureAgent
    yield* progress(`recovery: 1 healthy worker, ${crashes} crashes at ${FAILPOINT}, default settings`)
    const log = yield* Hosts.watchLeases
    const healthy = yield* Hosts.worker(natsUrl, ENV)
    yield* Hosts.ready([healthy], 1)
    yield* Hosts.warmUp(log, [healthy], BATCH)
    const samples: Array<Sample> = []
    const perCrash: Array<number> = []
    for (let crash = 0; crash < crashes; crash++) {
      const samplesSoFar = samples.length
      yield* Effect.scoped(Effect.gen(function*() {
        const pulls = yield* Hosts.waitingPulls
        const doomed = yield* Hosts.worker(natsUrl, { ...ENV, LANTERN_FAILPOINTS: FAILPOINT })
        yield* Hosts.ready([healthy, doomed], pulls + 1, 15_000)
        // the healthy worker may take a whole batch: start more until the armed one has died on one of its own
        const runIds: Array<string> = []
        for (let batch = 0; doomed.alive(); batch++) {
          if (batch === 20)
            return yield* Effect.die(new Error(`the armed worker got no run in 20 batches:\n${doomed.output()}`))
          runIds.push(...(yield* Hosts.startRuns(BATCH, BATCH)))
          yield* Effect.race(
            Effect.promise(() => doomed.exited),
            Effect.sleep("1 second")
          )
        }
        const exit = yield* Effect.promise(() => doomed.exited)
        if (exit.signal !== "SIGKILL")
          return yield* Effect.die(
            new Error(`the armed worker exited with ${exit.code ?? exit.signal}:\n${doomed.output()}`)
          )
        yield* Hosts.awaitEnded(log, runIds, 30_000)
        samples.push(...(yield* samplesOf(log, runIds, doomed.pid, exit.at)))
      }))
      perCrash.push(samples.length - samplesSoFar)
    }
    const missing = samples.filter((s) => Number.isNaN(s.moved) || !s.succeeded)
    if (missing.length > 0)
      return yield* Effect.die(new Error(`${missing.length} orphaned runs did not move again or did not succeed`))
    return { crashes, samples, healthyPid: healthy.pid, perCrash } satisfies Result
  }).pipe(Effect.scoped, Effect.provide(Hosts.commandSide))

const ms = (x: number) => x.toFixed(0)

/** A table row; `rawMs` (the raw publish-with-ack median) only where the bus could be what limits the interval. */
const row = (label: string, values: ReadonlyArray<number>, rawMs?: number) => {
  const s = Stats.summarize(values, 0)
  return [
    label,
    String(s.count),
    ms(Math.min(...values)),
    ms(s.medianMs),
    ms(s.maxMs),
    rawMs === undefined ? "-" : (s.medianMs / rawMs).toFixed(0)
  ]
}

/** Section 5 of the report; `rawPublishMs` is the raw publish-with-ack median at 1 in flight (section 1). */
export const render = (r: Result, rawPublishMs: number): string => {
  const total = r.samples.map((s) => s.moved - s.killed)
  const taken = r.samples.map((s) => s.taken - s.killed)
  const moving = r.samples.map((s) => s.moved - s.taken)
  const byHealthy = r.samples.filter((s) => s.takenBy === r.healthyPid).length
  const p50 = Stats.summarize(total, 0).medianMs
  const max = Math.max(...total)
  return [
    `5. Recovery: a worker SIGKILLs itself mid-run (LANTERN_FAILPOINTS=${FAILPOINT}); one healthy worker takes its runs over`,
    "   default settings: LANTERN_HOST_PROBE_INTERVAL=100 millis, LANTERN_HOST_TTL=3 seconds (ADR 0038)",
    table(
      ["interval", "runs", "min ms", "median ms", "max ms", "raw RTTs"],
      [
        row("kill -> lease taken over", taken),
        row("lease taken -> next step", moving, rawPublishMs),
        row("kill -> next step", total)
      ]
    ),
    `   target: kill -> next step p50 <= 300 ms (${p50 <= 300 ? "met" : "missed"}), max <= 1000 ms (${
      max <= 1_000 ? "met" : "missed"
    })`,
    `   ${r.crashes} crashes left ${r.samples.length} runs held by a dead host (${
      r.perCrash.join(" / ")
    }); ${byHealthy} taken over by the healthy worker, all succeeded.`,
    "   kill = when the crashed process was seen exiting; lease taken = when the bench's watch of lantern-leases saw",
    "   the entry move to the healthy worker; next step = the envelope `at` of the first StepStarted/StepCompleted",
    `   after the kill. raw RTTs = median / raw publish-with-ack median (${rawPublishMs.toFixed(2)} ms, 1 in flight).`
  ].join("\n")
}

const round = (x: number) => Number(x.toFixed(1))

/** The figures as one `BENCH_RECOVERY_JSON {...}` line. */
export const json = (r: Result): string => {
  const fig = (values: ReadonlyArray<number>) => {
    const s = Stats.summarize(values, 0)
    return { medianMs: round(s.medianMs), maxMs: round(s.maxMs) }
  }
  return `BENCH_RECOVERY_JSON ${
    JSON.stringify({
      crashes: r.crashes,
      runs: r.samples.length,
      killToTaken: fig(r.samples.map((s) => s.taken - s.killed)),
      takenToMoving: fig(r.samples.map((s) => s.moved - s.taken)),
      killToMoving: fig(r.samples.map((s) => s.moved - s.killed))
    })
  }`
}
