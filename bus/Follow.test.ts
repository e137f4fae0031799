import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Fiber, Layer, ManagedRuntime, Stream } from "effect"
import { busLayer, startServer, testEnvelope, testRun, type TestServer } from "../tests/support/Bus.ts"
import { Journal } from "./Journal.ts"
import type { Nats } from "./Nats.ts"
import * as Topology from "./Topology.ts"
import type { Stored } from "../schema/Envelope.ts"

const address = testRun
const envelope = (id: string, n: number) => testEnvelope(id, `${id}${n}`, { n })

const numberOf = (s: Stored) => (s.envelope.payload as { output: { n: number } }).output.n

type Runtime = ManagedRuntime.ManagedRuntime<Journal | Nats, unknown>

/** Up to `count` events of the journal's follow from `afterSeq`, collected in the background. */
const following = (rt: Runtime, id: string, afterSeq: number, count: number) =>
  rt.runFork(
    Effect.gen(function*() {
      const j = yield* Journal
      return yield* Stream.runCollect(Stream.take(j.follow(address(id), afterSeq), count))
    })
  )

const joined = (rt: Runtime, fiber: Fiber.Fiber<ReadonlyArray<Stored>, unknown>) =>
  rt.runPromise(Fiber.join(fiber).pipe(Effect.timeout("60 seconds")))

describe("Journal.follow of one journal (real nats-server, ADR 0074)", () => {
  let server: TestServer
  // two processes' worth of bus: each has its own connection and its own tap
  let here: Runtime
  let there: Runtime
  beforeAll(async () => {
    server = await startServer()
    here = ManagedRuntime.make(busLayer(server.handle.url) as Layer.Layer<Journal | Nats, unknown>)
    there = ManagedRuntime.make(busLayer(server.handle.url) as Layer.Layer<Journal | Nats, unknown>)
    await here.runPromise(Topology.apply)
  })
  afterAll(async () => {
    await here.dispose()
    await there.dispose()
    await server.cleanup()
  })

  const append = (rt: Runtime, id: string, ns: ReadonlyArray<number>, expected: number) =>
    rt.runPromise(Effect.gen(function*() {
      return yield* (yield* Journal).append(address(id), ns.map((n) => envelope(id, n)), expected)
    }))

  it("delivers what was journaled, then each event appended here, once and in order", async () => {
    const first = await append(here, "local", [1, 2], 0)
    const fiber = following(here, "local", 0, 6)
    let last = first.lastSeq
    for (const n of [3, 4, 5, 6]) last = (await append(here, "local", [n], last)).lastSeq
    const got = await joined(here, fiber)
    expect(got.map(numberOf)).toEqual([1, 2, 3, 4, 5, 6])
    expect(got.at(-1)?.seq).toBe(last)
  })

  it("delivers the events another process appends (they never pass this process's tap)", async () => {
    const first = await append(there, "foreign", [1], 0)
    const fiber = following(here, "foreign", 0, 5)
    let last = first.lastSeq
    for (const n of [2, 3]) last = (await append(there, "foreign", [n], last)).lastSeq
    // this process appends too: the chain from the tap has a gap, which a read of the journal fills
    last = (await append(here, "foreign", [4], last)).lastSeq
    await append(there, "foreign", [5], last)
    expect((await joined(here, fiber)).map(numberOf)).toEqual([1, 2, 3, 4, 5])
  })

  it("starts after the given sequence", async () => {
    const first = await append(here, "after", [1, 2, 3], 0)
    const fiber = following(here, "after", first.seqs[1]!, 2)
    await append(here, "after", [4], first.lastSeq)
    expect((await joined(here, fiber)).map(numberOf)).toEqual([3, 4])
  })

  it("delivers neither a refused append nor a re-sent one", async () => {
    const first = await append(here, "refused", [1], 0)
    const fiber = following(here, "refused", 0, 3)
    const second = await append(here, "refused", [2], first.lastSeq)
    // a stale expected sequence: refused, and nothing is delivered for it
    const stale = await here.runPromiseExit(
      Effect.gen(function*() {
        return yield* (yield* Journal).append(address("refused"), [envelope("refused", 9)], first.lastSeq)
      })
    )
    expect(stale._tag).toBe("Failure")
    // the same event again (its ack was lost, say): stored once, delivered once
    const again = await append(here, "refused", [2], first.lastSeq)
    expect(again.duplicates).toBe(1)
    await append(here, "refused", [3], second.lastSeq)
    expect((await joined(here, fiber)).map(numberOf)).toEqual([1, 2, 3])
  })

  it("follows a journal that has no events yet", async () => {
    const fiber = following(here, "empty", 0, 2)
    const first = await append(there, "empty", [1], 0)
    await append(here, "empty", [2], first.lastSeq)
    expect((await joined(here, fiber)).map(numberOf)).toEqual([1, 2])
  })
  it("says whether a journal exists: at once for one appended here, by its last sequence otherwise", async () => {
    const exists = (rt: Runtime, id: string) =>
      rt.runPromise(Effect.gen(function*() {
        return yield* (yield* Journal).exists(address(id))
      }))
    expect(await exists(here, "exists-none")).toBe(false)
    await append(there, "exists-there", [1], 0)
    // appended by the other process: this one asks the bus
    expect(await exists(here, "exists-there")).toBe(true)
    expect(await exists(there, "exists-there")).toBe(true)
    await append(here, "exists-here", [1], 0)
    expect(await exists(here, "exists-here")).toBe(true)
    // a refused append tells nothing about the journal
    const refused = await here.runPromiseExit(
      Effect.gen(function*() {
        return yield* (yield* Journal).append(address("exists-refused"), [envelope("exists-refused", 1)], 5)
      })
    )
    expect(refused._tag).toBe("Failure")
    expect(await exists(here, "exists-refused")).toBe(false)
  })
})
