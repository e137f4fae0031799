// Host liveness and run leases against a real nats-server (2.12+, per-message TTL): slots that survive restarts,
// probes answered by "no responders" once a host is gone, liveness keys the server expires; one lease holder at a
// time, takeover only from a dead host, the old holder told at once; parking and release; and the watchdog's
// choice of due runs and of hosts to probe.
import { Kvm } from "@nats-io/kv"
import type { JetStreamClient } from "@nats-io/jetstream"
import { ConfigProvider, Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { due, toTakeOver } from "../actors/run/Watchdog.ts"
import { startServer, type TestServer } from "../tests/support/Bus.ts"
import { until } from "../tests/support/Poll.ts"
import { holderOf, Hosts, probeSubject, tokenOf } from "./Hosts.ts"
import { decodeEntry, type Lease, Leases, MARKER_TTL } from "./Leases.ts"
import { Nats } from "./Nats.ts"
import * as Topology from "./Topology.ts"
import { HOSTS_BUCKET, LEASE_BUCKET, LEASE_MARKER_TTL_MS } from "./Topology.ts"

let nats: TestServer

beforeAll(async () => {
  nats = await startServer("lantern-leases")
}, 30_000)

afterAll(async () => {
  await nats?.cleanup()
})

/** Writes a host's slot key as a host does, naming `incarnation`, with a per-message TTL. */
const writeSlot = (js: JetStreamClient, slot: string, incarnation: string, ttl: string) =>
  Effect.promise(() =>
    js.publish(
      `$KV.${HOSTS_BUCKET}.${tokenOf(slot)}`,
      JSON.stringify({ incarnation, pid: Number(incarnation.split("-")[0]) }),
      { ttl }
    )
  )

interface Host {
  readonly hosts: Hosts["Service"]
  readonly leases: Leases["Service"]
  /** Stops the host cleanly: its probe subscription goes, its slot is freed. */
  readonly stop: Effect.Effect<void>
}

/**
 * Runs `f` with a way to start hosts named `name`, each a build of Hosts + Leases with its own connection in its own
 * scope.
 */
const withHosts = <A, E>(name: string, f: (start: Effect.Effect<Host>) => Effect.Effect<A, E, Nats>) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    yield* Effect.promise(() => new Kvm(js).create(LEASE_BUCKET, { history: 1, markerTTL: LEASE_MARKER_TTL_MS }))
    yield* Effect.promise(() => new Kvm(js).create(HOSTS_BUCKET, { history: 1, markerTTL: 60_000 }))
    const context = yield* Effect.context<Nats>()
    const start = Effect.gen(function*() {
      const scope = yield* Scope.make()
      // a connection of its own, as each process has
      const own = Nats.layerUrl(nats.handle.url, `lantern-leases-test-${name}`)
      const layer = Leases.layer.pipe(Layer.provideMerge(Hosts.layer), Layer.provide(own))
      const built = yield* Layer.buildWithScope(layer, scope).pipe(
        Effect.provide(context),
        Effect.orDie
      )
      return {
        hosts: Context.get(built, Hosts),
        leases: Context.get(built, Leases),
        stop: Scope.close(scope, Exit.void)
      }
    })
    return yield* f(start)
  }).pipe(
    Effect.provide(Nats.layerUrl(nats.handle.url, "lantern-leases-test")),
    Effect.provide(
      ConfigProvider.layer(ConfigProvider.fromUnknown({ LANTERN_HOST_ID: name, LANTERN_HOST_TTL: "1 second" }))
    ),
    Effect.scoped,
    (e) => Effect.runPromise(e as Effect.Effect<A, E>)
  )

const acquired = (r: { _tag: string; lease?: Lease }) => {
  expect(r._tag).toBe("Acquired")
  return r.lease!
}

describe("Hosts", () => {
  it("gives each live process of one name its own slot, and a restarted one its old slot back", () =>
    withHosts("slots", (start) =>
      Effect.gen(function*() {
        const a = yield* start
        const b = yield* start
        expect(a.hosts.slot).toBe("slots")
        expect(b.hosts.slot).toBe("slots-2")
        expect(yield* b.hosts.probe(a.hosts.id)).toBe("alive")
        expect(yield* a.hosts.probe(b.hosts.id)).toBe("alive")
        yield* a.stop
        // gone: nothing answers its probe subject any more
        expect(yield* b.hosts.probe(a.hosts.id)).toBe("dead")
        const again = yield* start
        expect(again.hosts.slot).toBe("slots")
        expect(again.hosts.id).not.toBe(a.hosts.id)
        // an earlier incarnation of its own slot is asked like any host: its connection is gone
        expect(yield* again.hosts.probe(holderOf("slots", "1-00000000"))).toBe("dead")
        yield* b.stop
        yield* again.stop
      })))

  it(
    "gives hosts of one name starting at the same moment a slot each, and each finds every other alive",
    () =>
      withHosts("burst", (start) =>
        Effect.gen(function*() {
          for (let round = 0; round < 20; round++) {
            const all = yield* Effect.all(Array.from({ length: 6 }, () => start), { concurrency: "unbounded" })
            expect(new Set(all.map((h) => h.hosts.slot)).size).toBe(all.length)
            for (const a of all) {
              for (const b of all) expect(yield* a.hosts.probe(b.hosts.id)).toBe("alive")
            }
            yield* Effect.forEach(all, (h) => h.stop, { concurrency: "unbounded" })
          }
        })),
    60_000
  )

  it(
    "judges a holder that does not answer by its liveness key, which the server expires",
    () =>
      withHosts("silent", (start) =>
        Effect.gen(function*() {
          const { nc, js } = yield* Nats
          const a = yield* start
          // a stalled host: its probe subject is subscribed but never answered, its key written once with a 1 s TTL
          const stalled = holderOf("stalled", "42-abcdef01")
          const sub = nc.subscribe(probeSubject(stalled), { callback: () => undefined })
          yield* writeSlot(js, "stalled", "42-abcdef01", "1s")
          expect(yield* a.hosts.probe(stalled)).toBe("alive")
          yield* until(
            () => Effect.map(a.hosts.probe(stalled), (v) => v === "dead"),
            "the stalled key to expire",
            20_000
          )
          sub.unsubscribe()
          yield* a.stop
        })),
    30_000
  )

  it(
    "finds a holder dead in the probe it was killed during: asked again, its gone subscription says so",
    () =>
      withHosts("killed", (start) =>
        Effect.gen(function*() {
          const { nc, js } = yield* Nats
          const a = yield* start
          // a host killed as a probe reached it: its subscription takes the probe, never answers, and is gone after;
          // its key, written a moment before with a long TTL, still names it
          const killed = holderOf("killed", "43-abcdef02")
          const sub = nc.subscribe(probeSubject(killed), { max: 1, callback: () => undefined })
          yield* Effect.promise(() => nc.flush())
          yield* writeSlot(js, "killed", "43-abcdef02", "1h")
          // the key alone would say alive; the second ask gets "no responders"
          expect(yield* a.hosts.probe(killed)).toBe("dead")
          expect(sub.isClosed()).toBe(true)
          yield* a.stop
        })),
    30_000
  )
})

describe("Leases", () => {
  it("gives a run to one host at a time, to another only once the holder is dead, and tells the old holder", () =>
    withHosts("take", (start) =>
      Effect.gen(function*() {
        const a = yield* start
        const b = yield* start
        const lease = acquired(yield* a.leases.acquire("t1", "run_a"))
        expect(lease.holder).toBe(a.hosts.id)
        // the holder lives: busy for the other host, and again for the holder itself it is its own
        expect((yield* b.leases.acquire("t1", "run_a"))._tag).toBe("Busy")
        expect(acquired(yield* a.leases.acquire("t1", "run_a")).revision).toBe(lease.revision)
        const watching = yield* Effect.forkChild(a.leases.lost(lease))
        yield* a.stop
        const taken = acquired(yield* b.leases.acquire("t1", "run_a"))
        expect(taken.holder).toBe(b.hosts.id)
        // the old holder's mirror saw the entry move (its scope closed, so its watch ended: it is interrupted or done)
        yield* Fiber.interrupt(watching)
        yield* b.stop
      })))

  it("stops a driving host the moment another host takes its run over", () =>
    withHosts("fence", (start) =>
      Effect.gen(function*() {
        const a = yield* start
        const b = yield* start
        const lease = acquired(yield* a.leases.acquire("t1", "run_f"))
        const watching = yield* Effect.forkChild(a.leases.lost(lease))
        // b wrongly believes a dead (a bus partition): it overwrites the entry by revision; a must hear of it
        yield* Effect.promise(() =>
          b.leases.bucket.update("t1.run_f", JSON.stringify({ holder: b.hosts.id, dueAt: 0 }), lease.revision)
        )
        yield* Fiber.join(watching).pipe(Effect.timeout("10 seconds"))
        // and its stale lease can neither park nor release the run
        expect((yield* Effect.flip(a.leases.park(lease, 1)))._tag).toBe("LeaseLost")
        expect((yield* Effect.flip(a.leases.release(lease)))._tag).toBe("LeaseLost")
        yield* a.stop
        yield* b.stop
      })))

  it("parks a run until it is due and removes a finished one", () =>
    withHosts("park", (start) =>
      Effect.gen(function*() {
        const a = yield* start
        const b = yield* start
        const lease = acquired(yield* a.leases.acquire("t1", "run_p"))
        yield* a.leases.park(lease, 123)
        const entry = yield* Effect.promise(() => a.leases.bucket.get("t1.run_p"))
        expect(decodeEntry(entry!.string())).toEqual({ holder: null, dueAt: 123 })
        // a parked run is free: any host may take it when work for it arrives
        const taken = acquired(yield* b.leases.acquire("t1", "run_p"))
        // a stale lease cannot park or release what another host holds now
        expect((yield* Effect.flip(a.leases.park(lease, 456)))._tag).toBe("LeaseLost")
        expect((yield* Effect.flip(a.leases.release(lease)))._tag).toBe("LeaseLost")
        yield* b.leases.release(taken)
        const gone = yield* Effect.promise(() => a.leases.bucket.get("t1.run_p"))
        expect(gone?.operation).not.toBe("PUT")
        // the removal's marker expires (ADR 0091): the key leaves the bucket instead of keeping a marker for ever
        const { jsm } = yield* Nats
        const marker = yield* Effect.promise(() =>
          jsm.streams.getMessage(`KV_${LEASE_BUCKET}`, { last_by_subj: `$KV.${LEASE_BUCKET}.t1.run_p` })
        )
        expect(marker?.header.get("KV-Operation")).toBe("PURGE")
        expect(marker?.header.get("Nats-TTL")).toBe(MARKER_TTL)
        // a finished run's key can be leased again (a new run never reuses an id, but the bucket allows it)
        acquired(yield* a.leases.acquire("t1", "run_p"))
        yield* a.stop
        yield* b.stop
      })))

  it("registers a run once, without taking it from a holder", () =>
    withHosts("register", (start) =>
      Effect.gen(function*() {
        const a = yield* start
        const b = yield* start
        yield* a.leases.register("t1", "run_r")
        const lease = acquired(yield* b.leases.acquire("t1", "run_r"))
        yield* a.leases.register("t1", "run_r")
        const entry = yield* Effect.promise(() => a.leases.bucket.get("t1.run_r"))
        expect(entry!.revision).toBe(lease.revision)
        expect(decodeEntry(entry!.string())?.holder).toBe(b.hosts.id)
        yield* a.stop
        yield* b.stop
      })))

  it("indexes the mirror by holder: the runs each host holds, none once parked or released", () =>
    withHosts("held", (start) =>
      Effect.gen(function*() {
        const a = yield* start
        const b = yield* start
        const one = acquired(yield* a.leases.acquire("t1", "run_h1"))
        const two = acquired(yield* a.leases.acquire("t1", "run_h2"))
        const heldBy = (holder: string) => [...(b.leases.held.get(holder) ?? [])].sort()
        yield* until(() => heldBy(a.hosts.id).join() === "t1.run_h1,t1.run_h2", "b's mirror to see a hold both", 10_000)
        yield* a.leases.park(one, 1)
        yield* a.leases.release(two)
        yield* until(() => !b.leases.held.has(a.hosts.id), "a to hold nothing", 10_000)
        yield* a.stop
        yield* b.stop
      })))

  it("lets exactly one of many concurrent hosts acquire a free run", () =>
    withHosts("race", (start) =>
      Effect.gen(function*() {
        const a = yield* start
        const b = yield* start
        const results = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).leases.acquire("t1", "run_race")),
          { concurrency: "unbounded" }
        )
        const winners = new Set(results.flatMap((r) => (r._tag === "Acquired" ? [r.lease.holder] : [])))
        expect(winners.size).toBe(1)
        yield* a.stop
        yield* b.stop
      })))
})

describe("the lease bucket (ADR 0091)", () => {
  it("is made with markers that expire, and a bucket made before is given them", async () => {
    const own = await startServer("lantern-lease-bucket")
    try {
      await Effect.runPromise(
        Effect.gen(function*() {
          const { js, jsm } = yield* Nats
          // as Topology.apply made it before: one entry per key, no per-message TTL
          yield* Effect.promise(() => new Kvm(js).create(LEASE_BUCKET, { history: 1 }))
          const before = yield* Effect.promise(() => jsm.streams.info(`KV_${LEASE_BUCKET}`))
          expect(before.config.allow_msg_ttl).toBe(false)
          yield* Topology.apply
          const after = yield* Effect.promise(() => jsm.streams.info(`KV_${LEASE_BUCKET}`))
          expect(after.config.allow_msg_ttl).toBe(true)
          expect(after.config.subject_delete_marker_ttl).toBe(LEASE_MARKER_TTL_MS * 1_000_000)
          expect(after.config.max_msgs_per_subject).toBe(1)
          // and once more, on a bucket that has them: nothing changes
          yield* Topology.apply
          const again = yield* Effect.promise(() => jsm.streams.info(`KV_${LEASE_BUCKET}`))
          expect(again.config).toEqual(after.config)
          // a removal whose marker carries a TTL is taken now (the server refused it before: TTLs were off)
          const kv = yield* Effect.promise(() => new Kvm(js).open(LEASE_BUCKET))
          const revision = yield* Effect.promise(() => kv.create("t1.run_x", "{}"))
          yield* Effect.promise(() => kv.purge("t1.run_x", { previousSeq: revision, ttl: MARKER_TTL }))
          expect((yield* Effect.promise(() => kv.get("t1.run_x")))?.operation).toBe("PURGE")
        }).pipe(Effect.provide(Nats.layerUrl(own.handle.url, "lantern-lease-bucket-test")))
      )
    } finally {
      await own.cleanup()
    }
  }, 60_000)
})

describe("Watchdog", () => {
  const known = new Map([
    ["t.run_held", { entry: { holder: "h1", dueAt: 0 }, revision: 5 }],
    ["t.run_mine", { entry: { holder: "me", dueAt: 0 }, revision: 6 }],
    ["t.run_timer", { entry: { holder: null, dueAt: 900 }, revision: 7 }],
    ["t.run_later", { entry: { holder: null, dueAt: 5_000 }, revision: 8 }]
  ])

  it("queues parked runs whose wake-up time came, never held ones", () => {
    expect(due(known, new Map(), 1_000)).toEqual([{ key: "t.run_timer", revision: 7 }])
  })

  it("does not queue the same revision again soon, but does after a while or after a change", () => {
    expect(due(known, new Map([["t.run_timer", { revision: 7, at: 1_000 }]]), 2_000)).toEqual([])
    expect(due(known, new Map([["t.run_timer", { revision: 6, at: 1_000 }]]), 2_000)).toHaveLength(1)
    expect(due(known, new Map([["t.run_timer", { revision: 7, at: 1_000 }]]), 40_000)).toHaveLength(2)
  })

  it("takes a dead holder's runs over once per revision, and only those the mirror still knows", () => {
    const keys = ["t.run_held", "t.run_gone"]
    expect(toTakeOver(keys, known, new Map(), 1_000)).toEqual([{ key: "t.run_held", revision: 5 }])
    // the next probe, before a new holder took it: nothing to say or queue again
    expect(toTakeOver(keys, known, new Map([["t.run_held", { revision: 5, at: 1_000 }]]), 1_100)).toEqual([])
    // a later revision (it moved meanwhile) is queued again
    expect(toTakeOver(keys, known, new Map([["t.run_held", { revision: 4, at: 1_000 }]]), 1_100)).toHaveLength(1)
  })
})
