// The watchdog: every host mirrors the lease bucket and, every LANTERN_WATCHDOG_INTERVAL, queues the runs that
// are due: a holder's lease expired (its host died or lost the bus), a parked run's timer fired, or a run's
// starter died before queueing it. Queued runs are taken by whichever host's driver gets the message; the
// lease decides who drives. Wake-ups are deduplicated per lease revision across hosts by the work stream.
import { Clock, Config, Duration, Effect, Layer, Schedule, Stream } from "effect"
import { decodeEntry, type Entry, Leases } from "../../bus/Leases.ts"
import { unavailable } from "../../bus/Nats.ts"
import { Runs } from "./Runs.ts"

interface Known {
  readonly entry: Entry
  readonly revision: number
}

/** How long after queueing a due run the watchdog queues it again if nothing happened to its lease. */
const REQUEUE_AFTER_MS = 30_000

/** The runs due at `now` among `known`, skipping those queued recently at the same revision. */
export const due = (
  known: ReadonlyMap<string, Known>,
  queued: ReadonlyMap<string, { readonly revision: number; readonly at: number }>,
  now: number
): ReadonlyArray<{ readonly key: string; readonly revision: number }> => {
  const out: Array<{ key: string; revision: number }> = []
  for (const [key, { entry, revision }] of known) {
    if (entry.dueAt > now) continue
    const q = queued.get(key)
    if (q !== undefined && q.revision === revision && now - q.at < REQUEUE_AFTER_MS) continue
    out.push({ key, revision })
  }
  return out
}

export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const leases = yield* Leases
    const runs = yield* Runs
    const interval = yield* Config.Duration("LANTERN_WATCHDOG_INTERVAL").pipe(Config.withDefault(Duration.seconds(1)))
    const known = new Map<string, Known>()
    const queued = new Map<string, { revision: number; at: number }>()

    const mirror = Effect.gen(function*() {
      const watcher = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => leases.bucket.watch(), catch: unavailable("watch leases") }),
        (w) => Effect.sync(() => w.stop())
      )
      yield* Stream.fromAsyncIterable(watcher, unavailable("watch leases")).pipe(
        Stream.runForEach((e) =>
          Effect.sync(() => {
            const entry = e.operation === "PUT" ? decodeEntry(e.string()) : null
            if (entry === null) {
              known.delete(e.key)
              queued.delete(e.key)
            } else known.set(e.key, { entry, revision: e.revision })
          })
        )
      )
    }).pipe(Effect.scoped)

    const sweep = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const { key, revision } of due(known, queued, now)) {
        const dot = key.indexOf(".")
        const tenant = key.slice(0, dot)
        const runId = key.slice(dot + 1)
        yield* runs.enqueue(tenant, runId, `wake:${runId}:${revision}`).pipe(
          Effect.tap(() => Effect.sync(() => queued.set(key, { revision, at: now }))),
          Effect.catch((e) => Effect.logWarning(`watchdog cannot queue ${runId}: ${e.message}`))
        )
      }
    })

    yield* Effect.forkScoped(mirror.pipe(
      Effect.tapCause((c) => Effect.logWarning("lease watch stopped; watching again", c)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forever
    ))
    yield* Effect.forkScoped(sweep.pipe(Effect.repeat(Schedule.spaced(interval))))
  })
)
