// Run leases in a KV bucket: a host drives a run only while it holds the run's lease, renewed with
// revision-checked updates (the journal's optimistic concurrency stays the final guard). The bucket doubles as
// the registry of runs that are not finished: every such run has an entry saying when someone must look at it
// again (`dueAt`): its holder's lease expiry, or the wake-up time of a parked run (timer, approval, child).
import { hostname } from "node:os"
import { randomBytes } from "node:crypto"
import { Kvm, type KV } from "@nats-io/kv"
import { Clock, Config, Context, Duration, Effect, Layer, Schema } from "effect"
import { BusUnavailable } from "../schema/Errors.ts"
import * as Kv from "./Kv.ts"
import { Nats, unavailable } from "./Nats.ts"
import { LEASE_BUCKET } from "./Topology.ts"

/** What the bucket holds per run: who drives it (null: parked or queued) and when it is due for a look. */
export interface Entry {
  readonly holder: string | null
  readonly dueAt: number
}

export interface Lease {
  readonly key: string
  readonly revision: number
  readonly holder: string
  readonly expiresAt: number
}

/** The lease moved on: another host took the run over, or it was parked or released under us. */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", { key: Schema.String }) {
  override get message() {
    return `lease ${this.key} is held by another host now`
  }
}

export type Acquired =
  | { readonly _tag: "Acquired"; readonly lease: Lease }
  /** Another host holds a live lease; try again after `retryInMs`. */
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
  readonly ttl: Duration.Duration
}

export const settingsConfig = Config.all({
  ttl: Config.Duration("LANTERN_LEASE_TTL").pipe(Config.withDefault(Duration.seconds(15)))
})

export class Leases extends Context.Service<Leases, {
  /** This host's identity as a lease holder. */
  readonly host: string
  readonly ttlMs: number
  readonly bucket: KV
  /** Records a run about to start, so a host dying before the run is queued leaves it to the watchdog. */
  readonly register: (tenant: string, runId: string) => Effect.Effect<void, BusUnavailable>
  readonly acquire: (tenant: string, runId: string) => Effect.Effect<Acquired, BusUnavailable>
  readonly renew: (lease: Lease) => Effect.Effect<Lease, LeaseLost | BusUnavailable>
  /** Gives the run up until `dueAt`: nobody drives it, the watchdog queues it then (or earlier work does). */
  readonly park: (lease: Lease, dueAt: number) => Effect.Effect<void, LeaseLost | BusUnavailable>
  /** Removes the entry of a finished run. */
  readonly release: (lease: Lease) => Effect.Effect<void, LeaseLost | BusUnavailable>
}>()("lantern/bus/Leases") {
  static readonly layer = Layer.effect(
    Leases,
    Effect.gen(function*() {
      const { js } = yield* Nats
      const settings = yield* settingsConfig
      const ttlMs = Duration.toMillis(settings.ttl)
      const bucket = yield* Effect.tryPromise({
        try: () => new Kvm(js).open(LEASE_BUCKET),
        catch: unavailable("open lease bucket")
      })
      const host = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`

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
              await bucket.create(key, encodeEntry({ holder: null, dueAt: now + ttlMs }))
            } catch (e) {
              if (!isRevisionMismatch(e)) throw e
            }
          })
        })

      const acquire = (tenant: string, runId: string) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const key = keyOf(tenant, runId)
          const mine = encodeEntry({ holder: host, dueAt: now + ttlMs })
          return yield* call(`acquire ${key}`, async (): Promise<Acquired> => {
            const current = await bucket.get(key)
            const lease = (revision: number): Acquired => ({
              _tag: "Acquired",
              lease: { key, revision, holder: host, expiresAt: now + ttlMs }
            })
            try {
              if (current === null || current.operation !== "PUT") return lease(await bucket.create(key, mine))
              const entry = decodeEntry(current.string())
              if (entry !== null && entry.holder !== null && entry.holder !== host && entry.dueAt > now) {
                return { _tag: "Busy", retryInMs: entry.dueAt - now }
              }
              return lease(await bucket.update(key, mine, current.revision))
            } catch (e) {
              if (isRevisionMismatch(e)) return { _tag: "Busy", retryInMs: 0 }
              throw e
            }
          })
        })

      const renew = (lease: Lease) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const revision = yield* checked(lease.key, `renew ${lease.key}`, () =>
            bucket.update(lease.key, encodeEntry({ holder: host, dueAt: now + ttlMs }), lease.revision))
          return { ...lease, revision, expiresAt: now + ttlMs }
        })

      const park = (lease: Lease, dueAt: number) =>
        Effect.asVoid(
          checked(lease.key, `park ${lease.key}`, () =>
            bucket.update(lease.key, encodeEntry({ holder: null, dueAt }), lease.revision))
        )

      const release = (lease: Lease) =>
        checked(lease.key, `release ${lease.key}`, () => bucket.delete(lease.key, { previousSeq: lease.revision }))

      return Leases.of({ host, ttlMs, bucket, register, acquire, renew, park, release })
    })
  )
}
