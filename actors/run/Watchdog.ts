// The watchdog (ADR 0036): every host reads the lease bucket's mirror (bus/Leases.ts) and
// - every LANTERN_HOST_PROBE_INTERVAL probes each other host that holds runs (bus/Hosts.ts: one request, answered
//   by "no responders" the moment a killed host's connection is gone) and queues every run of a dead one;
// - every LANTERN_WATCHDOG_INTERVAL queues the parked runs that are due (a timer fired, a starter died before
//   queueing its run).
// Queued runs are taken by whichever host's driver gets the message; the lease decides who drives. Wake-ups are
// deduplicated per lease revision across hosts by the work stream.
import { Clock, Config, Duration, Effect, Layer, Schedule } from "effect"
import { Hosts } from "../../bus/Hosts.ts"
import { type Known, Leases } from "../../bus/Leases.ts"
import { Runs } from "./Runs.ts"

/** How long after queueing a due run the watchdog queues it again if nothing happened to its lease. */
const REQUEUE_AFTER_MS = 30_000

/** Runs queued at once (a dead host's, or parked ones due together). */
const QUEUE_CONCURRENCY = 32

type Queued = ReadonlyMap<string, { readonly revision: number; readonly at: number }>

const recentlyQueued = (queued: Queued, key: string, revision: number, now: number) => {
  const q = queued.get(key)
  return q !== undefined && q.revision === revision && now - q.at < REQUEUE_AFTER_MS
}

/** The parked runs due at `now` among `known`, skipping those queued recently at the same revision. */
export const due = (
  known: ReadonlyMap<string, Known>,
  queued: Queued,
  now: number
): ReadonlyArray<{ readonly key: string; readonly revision: number }> => {
  const out: Array<{ key: string; revision: number }> = []
  for (const [key, { entry, revision }] of known) {
    if (entry.holder !== null || entry.dueAt > now) continue
    if (recentlyQueued(queued, key, revision, now)) continue
    out.push({ key, revision })
  }
  return out
}

/**
 * The runs among `keys` (a dead holder's, as the mirror shows them) to queue for a takeover: those the mirror still
 * knows, not queued recently at the revision it shows (until a new holder takes them, every probe finds the same).
 */
export const toTakeOver = (
  keys: Iterable<string>,
  known: ReadonlyMap<string, Known>,
  queued: Queued,
  now: number
): ReadonlyArray<{ readonly key: string; readonly revision: number }> =>
  [...keys].flatMap((key) => {
    const k = known.get(key)
    return k === undefined || recentlyQueued(queued, key, k.revision, now) ? [] : [{ key, revision: k.revision }]
  })

const split = (key: string) => {
  const dot = key.indexOf(".")
  return { tenant: key.slice(0, dot), runId: key.slice(dot + 1) }
}

export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const leases = yield* Leases
    const hosts = yield* Hosts
    const runs = yield* Runs
    const interval = yield* Config.Duration("LANTERN_WATCHDOG_INTERVAL").pipe(Config.withDefault(Duration.seconds(1)))
    const probeEvery = yield* Config.Duration("LANTERN_HOST_PROBE_INTERVAL").pipe(
      Config.withDefault(Duration.millis(100))
    )
    const queued = new Map<string, { revision: number; at: number }>()
    /** Hosts being probed now: a slow answer is not asked for again meanwhile. */
    const probing = new Set<string>()

    const queue = (key: string, revision: number, why: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (recentlyQueued(queued, key, revision, now)) return
        const { tenant, runId } = split(key)
        yield* runs.enqueue(tenant, runId, `${why}:${runId}:${revision}`).pipe(
          Effect.tap(() => Effect.sync(() => queued.set(key, { revision, at: now }))),
          Effect.catch((e) => Effect.logWarning(`watchdog cannot queue ${runId}: ${e.message}`))
        )
      })

    const sweep = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const key of queued.keys()) if (!leases.known.has(key)) queued.delete(key)
      yield* Effect.forEach(due(leases.known, queued, now), ({ key, revision }) => queue(key, revision, "wake"), {
        concurrency: QUEUE_CONCURRENCY,
        discard: true
      })
    })

    /** Probes one holder; when it is dead, queues every run it holds now. */
    const check = (holder: string) =>
      Effect.gen(function*() {
        const verdict = yield* hosts.probe(holder)
        if (verdict === "alive") return
        const now = yield* Clock.currentTimeMillis
        const mine = toTakeOver(leases.held.get(holder) ?? [], leases.known, queued, now)
        if (mine.length > 0) yield* Effect.logWarning(`host ${holder} is gone; taking over its ${mine.length} run(s)`)
        // queued together, not one append after another: a restarted host takes its previous life's runs back
        // in one round trip's time, and the next probe of the holder (skipped while this one queues) comes sooner
        yield* Effect.forEach(mine, ({ key, revision }) => queue(key, revision, "takeover"), {
          concurrency: QUEUE_CONCURRENCY,
          discard: true
        })
      }).pipe(
        Effect.catch((e) => Effect.logWarning(`cannot probe host ${holder}: ${e.message}`)),
        Effect.ensuring(Effect.sync(() => probing.delete(holder)))
      )

    const probeAll = Effect.gen(function*() {
      for (const holder of leases.held.keys()) {
        if (holder === leases.host || probing.has(holder)) continue
        probing.add(holder)
        yield* Effect.forkDetach(check(holder))
      }
    })

    yield* Effect.forkScoped(probeAll.pipe(Effect.repeat(Schedule.spaced(probeEvery))))
    yield* Effect.forkScoped(sweep.pipe(Effect.repeat(Schedule.spaced(interval))))
  })
)
