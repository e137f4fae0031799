// The typed KV port against a real nats-server: create is first-writer-wins, update is compare-and-set on the
// revision, an undecodable value is CorruptValue, and a stopped server is BusUnavailable, never a lost race.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, ManagedRuntime, Option, Schema, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Kv from "./Kv.ts"
import { Nats } from "./Nats.ts"
import * as NatsServer from "./NatsServer.ts"

const Counter = Schema.Struct({ n: Schema.Int })
const counters = Kv.bucket({ name: "test-counters", value: Schema.fromJsonString(Counter) })
const raw = Kv.bucket({ name: "test-counters", value: Schema.String })

let dir: string
let server: NatsServer.Handle
let rt: ManagedRuntime.ManagedRuntime<Nats, unknown>

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lantern-kv-"))
  server = await NatsServer.start({ storeDir: join(dir, "js") })
  // reconnects for ever, so the outage case sees what a live host sees
  rt = ManagedRuntime.make(Layer.fresh(Nats.layerUrl(server.url, "lantern-kv-test")))
}, 30_000)

afterAll(async () => {
  await rt?.dispose()
  await server?.kill()
  rmSync(dir, { recursive: true, force: true })
})

const run = <A, E>(effect: Effect.Effect<A, E, Nats>) => rt.runPromise(effect)

describe("Kv", () => {
  it("creates once: a second create is AlreadyExists with the first writer's revision", async () => {
    const [first, second, read] = await run(Effect.gen(function*() {
      const kv = yield* Kv.open(counters)
      const first = yield* kv.create("a", { n: 1 })
      const second = yield* kv.create("a", { n: 2 })
      return [first, second, yield* kv.get("a")] as const
    }))
    expect(first._tag).toBe("Created")
    expect(second).toEqual({ _tag: "AlreadyExists", revision: (first as Kv.Created).revision })
    expect(read).toEqual(Option.some({ value: { n: 1 }, revision: (first as Kv.Created).revision }))
  })

  it("updates only from the current revision: a stale one is LostRace and changes nothing", async () => {
    const [won, lost, read] = await run(Effect.gen(function*() {
      const kv = yield* Kv.open(counters)
      const c = yield* kv.create("b", { n: 1 })
      if (c._tag !== "Created") throw new Error("not created")
      const won = yield* kv.update("b", { n: 2 }, c.revision)
      const lost = yield* kv.update("b", { n: 3 }, c.revision)
      return [won, lost, yield* kv.get("b")] as const
    }))
    expect(won._tag).toBe("Updated")
    expect(lost).toEqual(Kv.lostRace)
    expect(Option.getOrThrow(read)).toEqual({ value: { n: 2 }, revision: (won as Kv.Updated).revision })
  })

  it("deletes and purges with an expected revision; a deleted key can be created again", async () => {
    const outcome = await run(Effect.gen(function*() {
      const kv = yield* Kv.open(counters)
      const c = yield* kv.create("c", { n: 1 })
      const stale = yield* kv.delete("c", c.revision + 100)
      const deleted = yield* kv.delete("c", c.revision)
      const gone = yield* kv.get("c")
      const again = yield* kv.create("c", { n: 5 })
      const purged = yield* kv.purge("c")
      return { stale, deleted, gone, again: again._tag, purged, keys: yield* kv.keys() }
    }))
    expect(outcome).toMatchObject({
      stale: Kv.lostRace,
      deleted: { _tag: "Deleted" },
      gone: Option.none(),
      again: "Created",
      purged: { _tag: "Deleted" }
    })
    expect(outcome.keys).not.toContain("c")
  })

  it(
    "purges with a marker that expires when the bucket declares a marker TTL, and gives an existing bucket one (ADR 0091)",
    async () => {
      const name = "test-markers"
      const outcome = await run(Effect.gen(function*() {
        const { jsm } = yield* Nats
        // made first without markers, as a bucket from before the declaration was
        yield* Kv.open(Kv.bucket({ name, value: Schema.fromJsonString(Counter) }))
        const before = yield* Effect.promise(() => jsm.streams.info(`KV_${name}`))
        const kv = yield* Kv.open(Kv.bucket({ name, value: Schema.fromJsonString(Counter), markerTtl: "1 second" }))
        const after = yield* Effect.promise(() => jsm.streams.info(`KV_${name}`))
        const c = yield* kv.create("k", { n: 1 })
        const stale = yield* kv.purge("k", c.revision + 100)
        const purged = yield* kv.purge("k", c.revision)
        const subject = `$KV.${name}.k`
        const marker = yield* Effect.promise(() => jsm.streams.getMessage(`KV_${name}`, { last_by_subj: subject }))
        // the server removes the marker, then its own marker of that: the key leaves the stream (deadline polling)
        const deadline = Date.now() + 30_000
        let left = -1
        for (;;) {
          left = (yield* Effect.promise(() => jsm.streams.info(`KV_${name}`, { subjects_filter: subject }))).state
            .messages
          if (left === 0 || Date.now() > deadline) break
          yield* Effect.sleep("100 millis")
        }
        return {
          before: before.config.allow_msg_ttl,
          after: [after.config.allow_msg_ttl, after.config.subject_delete_marker_ttl],
          stale,
          purged,
          marker: [marker?.header.get("KV-Operation"), marker?.header.get("Nats-TTL")],
          left,
          again: (yield* kv.create("k", { n: 2 }))._tag
        }
      }))
      expect(outcome).toEqual({
        before: false,
        after: [true, 1_000_000_000],
        stale: Kv.lostRace,
        purged: { _tag: "Deleted" },
        marker: ["PURGE", "1s"],
        left: 0,
        again: "Created"
      })
    },
    60_000
  )

  it("reads an undecodable value as CorruptValue, and watch reports it without stopping", async () => {
    const [corrupt, changes] = await run(Effect.gen(function*() {
      yield* (yield* Kv.open(raw)).put("d", "not json")
      const kv = yield* Kv.open(counters)
      yield* kv.put("e", { n: 7 })
      const corrupt = yield* Effect.flip(kv.get("d"))
      const changes = yield* kv.watch({ key: "d" }).pipe(Stream.take(1), Stream.runCollect, Effect.scoped)
      return [corrupt, changes] as const
    }))
    expect(corrupt).toBeInstanceOf(Kv.CorruptValue)
    expect(corrupt).toMatchObject({ bucket: "test-counters", key: "d" })
    expect(Array.from(changes).map((c) => c._tag)).toEqual(["Corrupt"])
  })

  it(
    "liveKeys keeps the keys with a live value by one watch: keys already there, puts, deletes, purges, across a server restart",
    async () => {
      const live = Kv.bucket({ name: "test-live", value: Schema.fromJsonString(Counter) })
      /** Polls until the watch shows exactly `keys` (deadline polling, no fixed wait). */
      const shows = (l: Kv.LiveKeys, keys: ReadonlyArray<string>) =>
        Effect.gen(function*() {
          const deadline = Date.now() + 30_000
          const seen = () => [...(l.current() ?? ["(not running)"])].sort().join(",")
          while (seen() !== [...keys].sort().join(",")) {
            if (Date.now() > deadline) return yield* Effect.die(new Error(`liveKeys shows ${seen()}, not ${keys}`))
            yield* Effect.sleep("20 millis")
          }
        })
      await run(Effect.scoped(Effect.gen(function*() {
        const kv = yield* Kv.open(live)
        yield* kv.put("before", { n: 1 })
        yield* kv.put("gone-before", { n: 1 })
        yield* kv.delete("gone-before")
        const keys = yield* kv.liveKeys
        yield* shows(keys, ["before"])
        yield* kv.put("a", { n: 1 })
        yield* kv.put("b", { n: 1 })
        yield* kv.put("b", { n: 2 })
        yield* kv.delete("before")
        yield* kv.purge("a")
        yield* shows(keys, ["b"])
        // the watch outlives the server: after a restart it shows what changed meanwhile
        const port = server.port
        yield* Effect.promise(() => server.stop())
        server = yield* Effect.promise(() => NatsServer.start({ storeDir: join(dir, "js"), port }))
        yield* kv.put("c", { n: 1 }).pipe(Effect.retry({ while: (e) => e._tag === "BusUnavailable", times: 40 }))
        yield* kv.delete("b")
        yield* shows(keys, ["c"])
        expect([...(yield* kv.keys())]).toEqual(["c"])
      })))
    },
    60_000
  )

  it(
    "fails every operation with BusUnavailable while the server is down, never LostRace; works again after",
    async () => {
      const kv = await run(Kv.open(counters))
      const c = await run(kv.create("f", { n: 1 }))
      if (c._tag !== "Created") throw new Error("not created")
      const port = server.port
      await server.stop()
      try {
        const failures = await run(Effect.all([
          Effect.flip(kv.create("g", { n: 1 })),
          Effect.flip(kv.update("f", { n: 2 }, c.revision)),
          Effect.flip(kv.get("f")),
          Effect.flip(kv.delete("f", c.revision))
        ], { concurrency: "unbounded" }))
        expect(failures.map((f) => f._tag)).toEqual([
          "BusUnavailable",
          "BusUnavailable",
          "BusUnavailable",
          "BusUnavailable"
        ])
      } finally {
        server = await NatsServer.start({ storeDir: join(dir, "js"), port })
      }
      // the client reconnects by itself; the CAS picks up where it was
      const after = await run(Effect.gen(function*() {
        const retried = yield* kv.update("f", { n: 2 }, c.revision).pipe(
          Effect.retry({ while: (e) => e._tag === "BusUnavailable", times: 40 })
        )
        return [retried, yield* kv.create("g", { n: 1 })] as const
      }))
      expect(after.map((a) => a._tag)).toEqual(["Updated", "Created"])
    },
    60_000
  )
})
