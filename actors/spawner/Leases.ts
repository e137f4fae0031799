// Workload leases (`lantern-workload-leases`: which host holds a workload and its harness's pid) and the tenant
// quotas counted from them, checked before a start makes any side effect.
import { Clock, Data, Duration, Effect, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import type { Settings } from "./Settings.ts"

/** How often the holder pings its harnesses, listing the lease bucket as it goes. */
export const PING_EVERY = Duration.seconds(1)

const Lease = Schema.Struct({ host: Schema.String, harnessPid: Schema.Int, since: Schema.String })
export const leaseBucket = Kv.bucket({
  name: "lantern-workload-leases",
  value: Schema.fromJsonString(Lease),
  what: "a workload lease",
  // a released lease's marker expires (ADR 0091): the liveness loop lists the bucket every PING_EVERY, and kept
  // markers, one per workload ever run, made each listing longer
  markerTtl: "1 minute"
})

export const leaseKey = (tenant: string, id: string) => `${tenant}.${id}`

/** Too many workloads for the tenant right now (the edge answers 429 with Retry-After). */
export class WorkloadQuotaExceeded extends Data.TaggedError("WorkloadQuotaExceeded")<{
  readonly reason: string
  readonly retryAfterSeconds: number
}> {
  override get message() {
    return this.reason
  }
}

export const make = (settings: Settings) =>
  Effect.gen(function*() {
    const kv = yield* Kv.open(leaseBucket)

    /**
     * The lease bucket's keys as the liveness loop last listed them (every PING_EVERY), so that a start does not
     * list the bucket itself (a consumer made and deleted: tens of milliseconds on a busy host). Leases this host
     * writes meanwhile count from their start until a listing has had time to include them; those it deletes stop
     * counting at once. A listing older than LISTING_STALE_MS is not trusted: the bucket is listed then, as before.
     */
    let listed: { readonly at: number; readonly keys: Set<string> } | null = null
    const startedHere = new Map<string, number>()
    const LISTING_STALE_MS = 10 * Duration.toMillis(PING_EVERY)
    const activeLeases = (tenant: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const keys = listed !== null && now - listed.at < LISTING_STALE_MS
          ? [...listed.keys].filter((k) => k.startsWith(`${tenant}.`))
          : yield* kv.keys(`${tenant}.*`)
        const active = new Set(keys)
        for (const [key, at] of startedHere) {
          if (now - at > 2 * LISTING_STALE_MS) startedHere.delete(key)
          else if (key.startsWith(`${tenant}.`)) active.add(key)
        }
        return active.size
      })
    /** Removes a workload's lease (its marker expires), and stops counting it at once. */
    const releaseLease = (tenant: string, id: string) =>
      Effect.suspend(() => {
        startedHere.delete(leaseKey(tenant, id))
        listed?.keys.delete(leaseKey(tenant, id))
        return kv.purge(leaseKey(tenant, id))
      })
    /** A workload being started on this host counts from `at` on, before its lease is listed. */
    const startingHere = (tenant: string, id: string, at: number) => {
      startedHere.set(leaseKey(tenant, id), at)
    }
    /** The liveness loop's listing of the bucket, made `at`. */
    const noteListing = (at: number, keys: ReadonlyArray<string>) => {
      listed = { at, keys: new Set(keys) }
    }

    const spawnTimes = new Map<string, Array<number>>()
    const quota = (tenant: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const recent = (spawnTimes.get(tenant) ?? []).filter((t) => now - t < 60_000)
        if (recent.length >= settings.spawnsPerMinute) {
          return yield* new WorkloadQuotaExceeded({
            reason:
              `the tenant started ${recent.length} workloads in the last minute (at most ${settings.spawnsPerMinute})`,
            retryAfterSeconds: Math.max(1, Math.ceil((60_000 - (now - recent[0]!)) / 1000))
          })
        }
        const active = yield* activeLeases(tenant)
        if (active >= settings.maxConcurrent) {
          return yield* new WorkloadQuotaExceeded({
            reason: `the tenant has ${active} workloads running (at most ${settings.maxConcurrent})`,
            retryAfterSeconds: 5
          })
        }
        recent.push(now)
        spawnTimes.set(tenant, recent)
      })

    return { kv, releaseLease, startingHere, noteListing, quota }
  })

export type Leases = Effect.Success<ReturnType<typeof make>>
