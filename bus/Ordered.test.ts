// Ordered readers against a real nats-server: a reader that stops early (its scope closed, its fiber interrupted)
// while the client still holds messages it pulled must end at once. The client's close() waits for its iterator to
// reach the stop it queues behind those messages, which nobody reads any more: awaiting it hung the task index's
// shutdown (the 10,000-task bench) for ever.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Fiber, type Layer, ManagedRuntime, Stream } from "effect"
import { busLayer, startServer, type TestServer } from "../tests/support/Bus.ts"
import { Nats } from "./Nats.ts"
import * as Ordered from "./Ordered.ts"
import * as Topology from "./Topology.ts"

/** Resolves with `promise`, or rejects once `ms` have passed: a bound on a wait, not a pause. */
const within = <A>(promise: Promise<A>, ms: number, what: string) =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms)
    promise.then((a) => {
      clearTimeout(timer)
      resolve(a)
    }, (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })

describe("Ordered.fromSeq (real nats-server)", () => {
  let server: TestServer
  let rt: ManagedRuntime.ManagedRuntime<Nats, unknown>
  const MESSAGES = 3_000

  beforeAll(async () => {
    server = await startServer()
    rt = ManagedRuntime.make(busLayer(server.handle.url) as Layer.Layer<Nats, unknown>)
    await rt.runPromise(Effect.gen(function*() {
      yield* Topology.apply
      const { js } = yield* Nats
      yield* Effect.promise(() =>
        Promise.all(Array.from({ length: MESSAGES }, (_, i) => js.publish(`lantern.task.t.m${i % 50}`, `{"i":${i}}`)))
      )
    }))
  }, 60_000)
  afterAll(async () => {
    await rt.dispose()
    await server.cleanup()
  })

  it("stop lets go at once of a consumer whose iterator is parked at a message, more buffered behind it", async () => {
    // close() would not settle here: the client queues its stop behind the buffered messages, which nobody reads
    const { nc } = await rt.runPromise(Nats)
    const subscriptions = () =>
      (nc as unknown as { protocol: { subscriptions: { size: () => number } } }).protocol.subscriptions.size()
    const before = subscriptions()
    const messages = await Ordered.consume(nc, Topology.TASKS, {}, 1_000)
    const iterator = messages[Symbol.asyncIterator]()
    expect((await iterator.next()).done).toBe(false)
    expect(subscriptions()).toBeGreaterThan(before)
    Ordered.stop(messages)
    expect(subscriptions()).toBe(before)
  })

  it("a reader that takes a few of a long backlog and stops ends at once", async () => {
    const taken = await within(
      rt.runPromise(
        Ordered.fromSeq(Topology.TASKS, 1, 1_000, "a short reader").pipe(
          Stream.take(5),
          Stream.map((m) => m.seq),
          Stream.runCollect
        )
      ),
      15_000,
      "a reader that took 5 messages"
    )
    expect(taken).toEqual([1, 2, 3, 4, 5])
  }, 30_000)

  it("hands a slow reader every message that arrived since its last pull at once, in order (ADR 0081)", async () => {
    // one message per pull cost a turn of the event loop each on a busy host: a projector fell behind by thousands
    const chunks = await within(
      rt.runPromise(
        Ordered.fromSeq(Topology.TASKS, 1, 1_000, "a slow reader").pipe(
          Stream.chunks,
          // slow at first, as a reader busy with a batch is: the backlog arrives meanwhile
          Stream.tap((chunk) => chunk[0]!.seq === 1 ? Effect.sleep("200 millis") : Effect.void),
          Stream.map((chunk) => chunk.map((m) => m.seq)),
          Stream.takeUntil((seqs) => seqs[seqs.length - 1]! >= MESSAGES),
          Stream.runCollect
        )
      ),
      15_000,
      "a slow reader of the whole backlog"
    )
    expect(chunks.flat()).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1))
    expect(chunks.length).toBeLessThan(MESSAGES / 10)
  }, 30_000)

  /** Reads from the start with `handle` per message, interrupts the reader once `until` holds, and counts. */
  const interruptWhen = (reader: string, handle: Effect.Effect<void>, until: (seen: number) => boolean) => {
    let seen = 0
    return within(
      rt.runPromise(Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(
          Ordered.fromSeq(Topology.TASKS, 1, 1_000, reader).pipe(
            Stream.runForEach(() => Effect.andThen(Effect.sync(() => void seen++), handle))
          )
        )
        while (!until(seen)) yield* Effect.sleep("5 millis")
        yield* Fiber.interrupt(fiber)
        return seen
      })),
      15_000,
      reader
    )
  }

  it("a reader interrupted while it handles a message, the client holding more, ends at once", async () => {
    // a slow handler: the reader is interrupted in it, not while it waits for the next message
    const seen = await interruptWhen("an interrupted reader", Effect.sleep("20 millis"), (n) => n >= 3)
    expect(seen).toBeGreaterThanOrEqual(3)
    expect(seen).toBeLessThan(MESSAGES)
  }, 30_000)

  it("a reader interrupted once it caught up (waiting for more) ends at once", async () => {
    expect(await interruptWhen("an idle reader", Effect.void, (n) => n >= MESSAGES)).toBe(MESSAGES)
  }, 30_000)
})
