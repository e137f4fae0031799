// Run leases in a KV bucket (ADR 0012, ADR 0036): a host drives a run only while the run's entry names it as holder.
// An entry is not renewed: it holds as long as its holder lives (bus/Hosts.ts), and another host takes it over only
// after probing the holder dead, with a revision-checked write, so at most one host wins; the journal's optimistic
// concurrency stays the final guard. Every host mirrors the bucket: a driving host stops as soon as its entry moves
// to another holder. The bucket doubles as the registry of runs that are not finished: a parked or queued run's
// entry has no holder and says when someone must look at it again (`dueAt`: a timer, an approval, a child).
import { type KV, Kvm } from "@nats-io/kv"
import { Clock, Config, Context, Deferred, Duration, Effect, Layer, Schedule, Schema, Stream } from "effect"
import { BusUnavailable } from "../schema/Errors.ts"
import { Hosts } from "./Hosts.ts"
import * as Kv from "./Kv.ts"
import { Nats, unavailable } from "./Nats.ts"
import { LEASE_BUCKET, LEASE_MARKER_TTL_MS } from "./Topology.ts"

/** The `Nats-TTL` of a removed lease's marker (ADR 0091). */
export const MARKER_TTL = Kv.ttlText(LEASE_MARKER_TTL_MS)

/** What the bucket holds per run: who drives it (null: parked or queued) and when it is due for a look. */
export interface Entry {
  readonly holder: string | null
  readonly dueAt: number
}

export interface Lease {
  readonly key: string
  readonly revision: number
  readonly holder: string
}

/** An entry as the mirror last saw it. */
export interface Known {
  readonly entry: Entry
  readonly revision: number
}

/** The lease moved on: another host took the run over, or it was parked or released under us. */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", { key: Schema.String }) {
  override get message() {
    return `lease ${this.key} is held by another host now`
  }
}

export type Acquired =
  | { readonly _tag: "Acquired"; readonly lease: Lease }
  /** Another host holds the run and lives; try again after `retryInMs`. */
  | { readonly _tag: "Busy"; readonly retryInMs: number }

export const keyOf = (tenant: string, runId: string) => `${tenant}.${runId}`

/** JetStream's answer that the entry moved past the expected revision (its API error code, never its text). */
const isRevisionMismatch = Kv.isWrongLastSequence

export const decodeEntry = (text: string): Entry | null => {
  try {
    const v = JSON.parse(text) as Entry
    return typeof v.dueAt === "number" && (v.holder === null || typeof v.holder === "string") ? v : null
  } catch {
    return null
  }
}

const encodeEntry = (e: Entry) => JSON.stringify(e)

export interface Settings {
  /** How long claims of a dead host (budget reservations, a start it never queued) outlive it at most. */
  readonly grace: Duration.Duration
}

export const settingsConfig = Config.all({
  grace: Config.Duration("LANTERN_CLAIM_GRACE").pipe(Config.withDefault(Duration.seconds(15)))
})

export class Leases extends Context.Service<Leases, {
  /** This host's identity as a lease holder (Hosts.id). */
  readonly host: string
  /** How long a dead host's claims may outlive it (budget reservations, starts it never queued). */
  readonly graceMs: number
  readonly bucket: KV
  /** The entries of the bucket as last seen by this host's watch. */
  readonly known: ReadonlyMap<string, Known>
  /** The same entries by holder: the keys of the runs each host holds (parked and queued runs have none). */
  readonly held: ReadonlyMap<string, ReadonlySet<string>>
  /** Records a run about to start, so a host dying before the run is queued leaves it to the watchdog. */
  readonly register: (tenant: string, runId: string) => Effect.Effect<void, BusUnavailable>
  /**
   * Writes a new run's entry naming this host as its holder, before its start is journaled; null when the entry
   * exists (a retried start: the run goes the usual way).
   */
  readonly claim: (tenant: string, runId: string) => Effect.Effect<Lease | null, BusUnavailable>
  /** Takes the run: free, already this host's, or held by a host found dead; Busy while its holder lives. */
  readonly acquire: (tenant: string, runId: string) => Effect.Effect<Acquired, BusUnavailable>
  /** Completes once the mirror sees the lease move to another holder (or leave the bucket under us). */
  readonly lost: (lease: Lease) => Effect.Effect<void>
  /** Gives the run up until `dueAt`: nobody drives it, the watchdog queues it then (or earlier work does). */
  readonly park: (lease: Lease, dueAt: number) => Effect.Effect<void, LeaseLost | BusUnavailable>
  /** Removes the entry of a finished run. */
  readonly release: (lease: Lease) => Effect.Effect<void, LeaseLost | BusUnavailable>
  /** Removes a run's entry whoever holds it: a start that never began (its RunStarted refused as too large). */
  readonly discard: (tenant: string, runId: string) => Effect.Effect<void, BusUnavailable>
}>()("lantern/bus/Leases") {
  static readonly layer = Layer.effect(
    Leases,
    Effect.gen(function*() {
      const { js } = yield* Nats
      const hosts = yield* Hosts
      const settings = yield* settingsConfig
      const graceMs = Duration.toMillis(settings.grace)
      const bucket = yield* Effect.tryPromise({
        try: () => new Kvm(js).open(LEASE_BUCKET),
        catch: unavailable("open lease bucket")
      })
      const host = hosts.id

      const known = new Map<string, Known>()
      const held = new Map<string, Set<string>>()
      /** Drives on this host waiting to hear that their lease moved: key → the revision they hold, and the signal. */
      const watching = new Map<string, { revision: number; lost: Deferred.Deferred<void> }>()

      const seen = (key: string, entry: Entry | null, revision: number) => {
        const before = known.get(key)?.entry.holder ?? null
        const after = entry?.holder ?? null
        if (entry === null) known.delete(key)
        else known.set(key, { entry, revision })
        if (before !== after) {
          if (before !== null) {
            const keys = held.get(before)
            keys?.delete(key)
            if (keys?.size === 0) held.delete(before)
          }
          if (after !== null) {
            const keys = held.get(after)
            if (keys === undefined) held.set(after, new Set([key]))
            else keys.add(key)
          }
        }
        const w = watching.get(key)
        if (w !== undefined && revision > w.revision && (entry === null || entry.holder !== host)) {
          watching.delete(key)
          Deferred.doneUnsafe(w.lost, Effect.void)
        }
      }

      const mirror = Effect.gen(function*() {
        const watcher = yield* Effect.acquireRelease(
          Effect.tryPromise({ try: () => bucket.watch(), catch: unavailable("watch leases") }),
          (w) => Effect.sync(() => w.stop())
        )
        yield* Stream.fromAsyncIterable(watcher, unavailable("watch leases")).pipe(
          Stream.runForEach((e) =>
            Effect.sync(() => seen(e.key, e.operation === "PUT" ? decodeEntry(e.string()) : null, e.revision))
          )
        )
      }).pipe(Effect.scoped)
      yield* Effect.forkScoped(mirror.pipe(
        Effect.tapCause((c) => Effect.logWarning("lease watch stopped; watching again", c)),
        Effect.retry(Schedule.spaced("1 second")),
        Effect.forever
      ))

      const call = <A>(operation: string, f: () => Promise<A>) =>
        Effect.tryPromise({ try: f, catch: unavailable(operation) })

      /** Runs a revision-checked write: a mismatch is LeaseLost, anything else the bus being unavailable. */
      const checked = <A>(key: string, operation: string, f: () => Promise<A>) =>
        Effect.tryPromise({
          try: f,
          catch: (e) => (isRevisionMismatch(e) ? new LeaseLost({ key }) : unavailable(operation)(e))
        })

      const register = (tenant: string, runId: string) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const key = keyOf(tenant, runId)
          yield* call(`register ${key}`, async () => {
            try {
              await bucket.create(key, encodeEntry({ holder: null, dueAt: now + graceMs }))
            } catch (e) {
              if (!isRevisionMismatch(e)) throw e
            }
          })
        })

      const claim = (tenant: string, runId: string) =>
        Effect.gen(function*() {
          const key = keyOf(tenant, runId)
          return yield* call(`claim ${key}`, async (): Promise<Lease | null> => {
            try {
              const revision = await bucket.create(key, encodeEntry({ holder: host, dueAt: 0 }))
              return { key, revision, holder: host }
            } catch (e) {
              if (isRevisionMismatch(e)) return null
              throw e
            }
          })
        })

      const acquire = (tenant: string, runId: string) =>
        Effect.gen(function*() {
          const key = keyOf(tenant, runId)
          const mine = encodeEntry({ holder: host, dueAt: 0 })
          const lease = (revision: number): Acquired => ({ _tag: "Acquired", lease: { key, revision, holder: host } })
          const current = yield* call(`acquire ${key}`, () => bucket.get(key))
          const entry = current !== null && current.operation === "PUT" ? decodeEntry(current.string()) : null
          if (entry !== null && entry.holder === host) return lease(current!.revision)
          if (entry !== null && entry.holder !== null && (yield* hosts.probe(entry.holder)) === "alive") {
            return { _tag: "Busy", retryInMs: 1_000 } as Acquired
          }
          return yield* call(`acquire ${key}`, async (): Promise<Acquired> => {
            try {
              if (current === null || current.operation !== "PUT") return lease(await bucket.create(key, mine))
              return lease(await bucket.update(key, mine, current.revision))
            } catch (e) {
              // another host took it first: it drives
              if (isRevisionMismatch(e)) return { _tag: "Busy", retryInMs: 0 }
              throw e
            }
          })
        })

      const lost = (lease: Lease) =>
        Effect.gen(function*() {
          const signal = yield* Deferred.make<void>()
          watching.set(lease.key, { revision: lease.revision, lost: signal })
          // the mirror may already be past the lease
          const now = known.get(lease.key)
          if (now !== undefined && now.revision > lease.revision && now.entry.holder !== host) {
            watching.delete(lease.key)
            return
          }
          yield* Deferred.await(signal).pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                if (watching.get(lease.key)?.lost === signal) watching.delete(lease.key)
              })
            )
          )
        })

      const park = (lease: Lease, dueAt: number) =>
        Effect.asVoid(
          checked(lease.key, `park ${lease.key}`, () =>
            bucket.update(lease.key, encodeEntry({ holder: null, dueAt }), lease.revision))
        )

      // purged with a marker that expires (ADR 0091): the key leaves the bucket instead of keeping a marker for ever
      const release = (lease: Lease) =>
        checked(
          lease.key,
          `release ${lease.key}`,
          () => bucket.purge(lease.key, { previousSeq: lease.revision, ttl: MARKER_TTL })
        )

      const discard = (tenant: string, runId: string) =>
        call(`discard ${keyOf(tenant, runId)}`, () => bucket.purge(keyOf(tenant, runId), { ttl: MARKER_TTL }))

      return Leases.of({ host, graceMs, bucket, known, held, register, claim, acquire, lost, park, release, discard })
    })
  )
}
