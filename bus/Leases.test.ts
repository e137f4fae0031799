// Run leases against a real nats-server, with lease time on a test clock: one holder at a time, takeover only
// after expiry, revision-checked renewal that detects a takeover, parking and release; and the watchdog's
// choice of due runs.
import { Kvm } from "@nats-io/kv"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { due } from "../actors/run/Watchdog.ts"
import { startServer, type TestServer } from "../tests/support/Bus.ts"
import { decodeEntry, type Lease, Leases } from "./Leases.ts"
import { Nats } from "./Nats.ts"
import { LEASE_BUCKET } from "./Topology.ts"

let nats: TestServer

beforeAll(async () => {
  nats = await startServer("lantern-leases")
}, 30_000)

afterAll(async () => {
  await nats?.cleanup()
})

/** Two hosts' lease services on one bus (each its own host id), with a short time to live. */
const twoHosts = <A, E>(f: (a: Leases["Service"], b: Leases["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    yield* Effect.promise(() => new Kvm(js).create(LEASE_BUCKET, { history: 1 }))
    // each build of the layer is one host, with its own host id
    const a = Context.get(yield* Layer.build(Leases.layer), Leases)
    const b = Context.get(yield* Layer.build(Leases.layer), Leases)
    return yield* f(a, b)
  }).pipe(
    Effect.provide(Nats.layerUrl(nats.handle.url, "lantern-leases-test")),
    Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ LANTERN_LEASE_TTL: "300 millis" }))),
    Effect.provide(TestClock.layer()),
    Effect.scoped,
    (e) => Effect.runPromise(e as Effect.Effect<A, E>)
  )

const acquired = (r: { _tag: string; lease?: Lease }) => {
  expect(r._tag).toBe("Acquired")
  return r.lease!
}

describe("Leases", () => {
  it("gives a run to one host at a time and to another only after the lease expired", () =>
    twoHosts((a, b) =>
      Effect.gen(function*() {
        expect(a.host).not.toBe(b.host)
        const lease = acquired(yield* a.acquire("t1", "run_a"))
        const busy = yield* b.acquire("t1", "run_a")
        expect(busy._tag).toBe("Busy")
        expect(busy._tag === "Busy" && busy.retryInMs).toBeGreaterThan(0)
        // the holder renews: still busy for the other host
        const renewed = yield* a.renew(lease)
        expect(renewed.revision).toBeGreaterThan(lease.revision)
        expect((yield* b.acquire("t1", "run_a"))._tag).toBe("Busy")
        // the holder goes silent: after the time to live (on the test clock) the other host takes over
        yield* TestClock.adjust("400 millis")
        const taken = acquired(yield* b.acquire("t1", "run_a"))
        expect(taken.holder).toBe(b.host)
        // the old holder's next renewal finds out it lost the lease
        const late = yield* Effect.flip(a.renew(renewed))
        expect(late._tag).toBe("LeaseLost")
      })
    ))

  it("parks a run until it is due and removes a finished one", () =>
    twoHosts((a, b) =>
      Effect.gen(function*() {
        const lease = acquired(yield* a.acquire("t1", "run_p"))
        yield* a.park(lease, 123)
        const entry = yield* Effect.promise(() => a.bucket.get("t1.run_p"))
        expect(decodeEntry(entry!.string())).toEqual({ holder: null, dueAt: 123 })
        // a parked run is free: any host may take it when work for it arrives
        const taken = acquired(yield* b.acquire("t1", "run_p"))
        // a stale lease cannot park or release what another host holds now
        expect((yield* Effect.flip(a.park(lease, 456)))._tag).toBe("LeaseLost")
        expect((yield* Effect.flip(a.release(lease)))._tag).toBe("LeaseLost")
        yield* b.release(taken)
        const gone = yield* Effect.promise(() => a.bucket.get("t1.run_p"))
        expect(gone?.operation).not.toBe("PUT")
        // a finished run's key can be leased again (a new run never reuses an id, but the bucket allows it)
        acquired(yield* a.acquire("t1", "run_p"))
      })
    ))

  it("registers a run once, without taking it from a holder", () =>
    twoHosts((a, b) =>
      Effect.gen(function*() {
        yield* a.register("t1", "run_r")
        const lease = acquired(yield* b.acquire("t1", "run_r"))
        yield* a.register("t1", "run_r")
        const entry = yield* Effect.promise(() => a.bucket.get("t1.run_r"))
        expect(entry!.revision).toBe(lease.revision)
        expect(decodeEntry(entry!.string())?.holder).toBe(b.host)
      })
    ))

  it("lets exactly one of many concurrent hosts acquire a free run", () =>
    twoHosts((a, b) =>
      Effect.gen(function*() {
        const results = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).acquire("t1", "run_race")),
          { concurrency: "unbounded" }
        )
        // the same host may win twice (it renews its own lease), but never both hosts
        const winners = new Set(results.flatMap((r) => (r._tag === "Acquired" ? [r.lease.holder] : [])))
        expect(winners.size).toBe(1)
      })
    ))
})

describe("Watchdog.due", () => {
  const known = new Map([
    ["t.run_expired", { entry: { holder: "h1", dueAt: 100 }, revision: 5 }],
    ["t.run_live", { entry: { holder: "h1", dueAt: 10_000 }, revision: 6 }],
    ["t.run_timer", { entry: { holder: null, dueAt: 900 }, revision: 7 }],
    ["t.run_later", { entry: { holder: null, dueAt: 5_000 }, revision: 8 }]
  ])

  it("queues runs whose lease expired or whose wake-up time came", () => {
    expect(due(known, new Map(), 1_000)).toEqual([{ key: "t.run_expired", revision: 5 }, {
      key: "t.run_timer",
      revision: 7
    }])
  })

  it("does not queue the same revision again soon, but does after a while or after a change", () => {
    // run_timer was queued at an older revision: it changed since, so it is queued again at once
    const queued = new Map([["t.run_expired", { revision: 5, at: 1_000 }], ["t.run_timer", { revision: 6, at: 1_000 }]])
    expect(due(known, queued, 2_000).map((d) => d.key)).toEqual(["t.run_timer"])
    expect(due(known, queued, 40_000).map((d) => d.key)).toEqual([
      "t.run_expired",
      "t.run_live",
      "t.run_timer",
      "t.run_later"
    ])
  })
})
