// Consumer against a real nats-server: every message acked, nak'ed or terminated by its handler, bounded
// concurrency, and in-progress acks keeping long handlers' messages from being redelivered.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { RetentionPolicy, StorageType } from "@nats-io/jetstream"
import { Cause, Duration, Effect, Exit, Fiber, ManagedRuntime, Stream } from "effect"
import { startServer, type TestServer } from "../tests/support/Bus.ts"
import { eventually } from "../tests/support/Stack.ts"
import * as Consumer from "./Consumer.ts"
import { type Connection, Nats } from "./Nats.ts"

const STREAM = "TEST_WORK"

interface Delivery {
  readonly subject: string
  readonly deliveryCount: number
  readonly redelivered: boolean
  readonly at: number
}

/** Every delivery a handler saw, by message subject (each test message has its own subject). */
class Deliveries {
  readonly all: Array<Delivery> = []
  record(m: Consumer.Message): Delivery {
    const d = { subject: m.subject, deliveryCount: m.deliveryCount, redelivered: m.redelivered, at: Date.now() }
    this.all.push(d)
    return d
  }
  of(subject: string): Array<Delivery> {
    return this.all.filter((d) => d.subject === subject)
  }
  count(subject: string): number {
    return this.of(subject).length
  }
}

/** Fails as soon as `check` throws during `ms`: for "this never happens" assertions, polled, not slept. */
const holdsFor = async (ms: number, check: () => void) => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    check()
    await new Promise((r) => setTimeout(r, 25))
  }
  check()
}

let server: TestServer
let rt: ManagedRuntime.ManagedRuntime<Nats, unknown>
let bus: Connection

beforeAll(async () => {
  server = await startServer("lantern-consumer")
  rt = ManagedRuntime.make(Nats.layerUrl(server.handle.url, "consumer-test"))
  bus = await rt.runPromise(Effect.gen(function*() {
    return yield* Nats
  }))
  await bus.jsm.streams.add({
    name: STREAM,
    subjects: ["test.work.>"],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File
  })
})

afterAll(async () => {
  await rt?.dispose()
  await server?.cleanup()
})

/** A durable on its own slice of the work queue (work-queue consumers may not overlap). */
const durable = (name: string, overrides: Partial<Consumer.Durable> = {}): Consumer.Durable => ({
  stream: STREAM,
  durable: name,
  filterSubject: `test.work.${name}.>`,
  ackWait: "30 seconds",
  maxAckPending: 100,
  ackPolicy: "explicit",
  ...overrides
})

const publish = async (name: string, count: number): Promise<Array<string>> => {
  const subjects = Array.from({ length: count }, (_, i) => `test.work.${name}.${i}`)
  for (const s of subjects) await bus.js.publish(s, JSON.stringify({ s }))
  return subjects
}

/** Runs `effect` in the background; `stop` interrupts it. `check` throws if it ended on its own. */
const background = <E>(effect: Effect.Effect<void, E, Nats>) => {
  const fiber = rt.runFork(effect)
  return {
    check: () => {
      const exit = fiber.pollUnsafe()
      if (exit !== undefined)
        throw new Error(`consumer ended: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "done"}`)
    },
    stop: () => rt.runPromise(Fiber.interrupt(fiber))
  }
}

const consumerInfo = (name: string) => bus.jsm.consumers.info(STREAM, name)

/** Waits until the server holds nothing for the durable: every delivery settled, nothing left to deliver. */
const settled = (name: string) =>
  eventually(
    async () => {
      const info = await consumerInfo(name)
      return info.num_ack_pending === 0 && info.num_pending === 0 ? info : null
    },
    20_000,
    `${name} to have no pending messages`
  )

const subjectCount = async (name: string) =>
  (await bus.jsm.streams.info(STREAM, { subjects_filter: `test.work.${name}.>` })).state.num_subjects ?? 0

describe("Consumer.run (real nats-server)", () => {
  it("handles and acks every message exactly once when the handler returns Ack", async () => {
    const name = "acked"
    const subjects = await publish(name, 40)
    const seen = new Deliveries()
    const consumer = background(
      Consumer.run(durable(name), 4, (m) => Effect.sync(() => seen.record(m)).pipe(Effect.as(Consumer.Decision.Ack())))
    )
    try {
      await eventually(
        async () => {
          consumer.check()
          return subjects.every((s) => seen.count(s) >= 1)
        },
        20_000,
        "every message to be handled"
      )
      const info = await settled(name)
      expect(info.num_redelivered).toBe(0)
      expect(subjects.map((s) => seen.count(s))).toEqual(subjects.map(() => 1))
      expect(seen.all.every((d) => d.deliveryCount === 1)).toBe(true)
      // acked work-queue messages leave the stream
      await eventually(async () => (await subjectCount(name)) === 0, 10_000, "acked messages to leave the stream")
    } finally {
      await consumer.stop()
    }
  })

  it("redelivers a message nak'ed with a delay after about that delay", async () => {
    const name = "naked"
    const [subject] = await publish(name, 1)
    const seen = new Deliveries()
    const consumer = background(
      Consumer.run(durable(name), 2, (m) =>
        Effect.sync(() => seen.record(m)).pipe(
          Effect.map((d) =>
            d.deliveryCount < 3 ? Consumer.Decision.Nak({ delay: "1 second" }) : Consumer.Decision.Ack()
          )
        ))
    )
    try {
      await eventually(
        async () => {
          consumer.check()
          return seen.count(subject!) >= 3
        },
        20_000,
        "two redeliveries after naks"
      )
      await settled(name)
      const ds = seen.of(subject!)
      expect(ds.map((d) => d.deliveryCount)).toEqual([1, 2, 3])
      expect(ds.map((d) => d.redelivered)).toEqual([false, true, true])
      // the delay is honoured (ackWait is 30 s, so these are the naks, not ack timeouts)
      for (const [prev, next] of [[ds[0]!, ds[1]!], [ds[1]!, ds[2]!]] as const) {
        expect(next.at - prev.at).toBeGreaterThanOrEqual(900)
        expect(next.at - prev.at).toBeLessThan(5_000)
      }
      expect((await consumerInfo(name)).num_redelivered).toBe(0) // nothing left in redelivery
    } finally {
      await consumer.stop()
    }
  })

  it.each(
    [
      ["fails", () => Effect.fail(new Error("handler failed"))],
      ["dies", () => Effect.die(new Error("handler defect"))]
    ] as const
  )("nak's and redelivers a message whose handler %s, and keeps consuming", async (label, broken) => {
    const name = `broken-${label}`
    const [first, second] = await publish(name, 2)
    const seen = new Deliveries()
    const consumer = background(
      Consumer.run(durable(name), 2, (m) =>
        Effect.suspend(() => {
          const d = seen.record(m)
          return d.subject === first && d.deliveryCount === 1 ? broken() : Effect.succeed(Consumer.Decision.Ack())
        }))
    )
    try {
      await eventually(
        async () => {
          consumer.check()
          return seen.count(first!) >= 2 && seen.count(second!) >= 1
        },
        20_000,
        "the broken message to be redelivered"
      )
      await settled(name)
      const ds = seen.of(first!)
      expect(ds.map((d) => d.deliveryCount)).toEqual([1, 2])
      expect(ds[1]!.redelivered).toBe(true)
      // nak'ed with a delay (1 s), well before the 30 s ack wait would have redelivered it
      expect(ds[1]!.at - ds[0]!.at).toBeGreaterThanOrEqual(900)
      expect(ds[1]!.at - ds[0]!.at).toBeLessThan(10_000)
      expect(seen.count(second!)).toBe(1)
      consumer.check()
    } finally {
      await consumer.stop()
    }
  })

  it("never redelivers a terminated message", async () => {
    const name = "termed"
    const [subject] = await publish(name, 1)
    const seen = new Deliveries()
    const ackWait = 1_000
    const consumer = background(
      Consumer.run(
        durable(name, { ackWait: Duration.millis(ackWait) }),
        2,
        (m) => Effect.sync(() => seen.record(m)).pipe(Effect.as(Consumer.Decision.Term({ reason: "poison" })))
      )
    )
    try {
      await eventually(async () => seen.count(subject!) >= 1, 20_000, "the message to be delivered")
      const info = await settled(name)
      expect(info.num_redelivered).toBe(0)
      // well past the ack wait and any redelivery, still one delivery
      await holdsFor(3 * ackWait, () => {
        consumer.check()
        expect(seen.count(subject!)).toBe(1)
      })
      expect((await consumerInfo(name)).num_ack_pending).toBe(0)
    } finally {
      await consumer.stop()
    }
  })

  it("runs at most `concurrency` handlers at once", async () => {
    const name = "bounded"
    const subjects = await publish(name, 12)
    const seen = new Deliveries()
    let inFlight = 0
    let maxInFlight = 0
    let open: () => void = () => {}
    const latch = new Promise<void>((r) => (open = r))
    const consumer = background(
      Consumer.run(durable(name), 3, (m) =>
        Effect.acquireUseRelease(
          Effect.sync(() => {
            seen.record(m)
            inFlight++
            maxInFlight = Math.max(maxInFlight, inFlight)
          }),
          () => Effect.promise(() => latch),
          () => Effect.sync(() => inFlight--)
        ).pipe(Effect.as(Consumer.Decision.Ack())))
    )
    try {
      await eventually(
        async () => {
          consumer.check()
          return inFlight === 3
        },
        20_000,
        "three handlers blocked on the latch"
      )
      // saturated: no fourth handler starts while the three are blocked
      await holdsFor(500, () => expect(inFlight).toBe(3))
      expect(seen.all).toHaveLength(3)
      open()
      await eventually(async () => subjects.every((s) => seen.count(s) === 1), 20_000, "every message to be handled")
      await settled(name)
      expect(maxInFlight).toBe(3)
      expect(seen.all).toHaveLength(subjects.length)
    } finally {
      open()
      await consumer.stop()
    }
  })

  it("keeps a message whose handler outlives the ack wait (in-progress acks): not redelivered while it works", async () => {
    const name = "kept"
    const [subject] = await publish(name, 1)
    const seen = new Deliveries()
    let done = 0
    const consumer = background(
      Consumer.run(durable(name, { ackWait: "1 second" }), 2, (m) =>
        Effect.sync(() => seen.record(m)).pipe(
          Effect.andThen(Effect.sleep("2500 millis")), // the work: longer than two ack waits
          Effect.andThen(Effect.sync(() => done++)),
          Effect.as(Consumer.Decision.Ack())
        ))
    )
    try {
      await eventually(
        async () => {
          consumer.check()
          return done >= 1
        },
        20_000,
        "the long handler to finish"
      )
      const info = await settled(name)
      expect(seen.count(subject!)).toBe(1)
      expect(info.num_redelivered).toBe(0)
      expect(info.delivered.consumer_seq).toBe(1)
    } finally {
      await consumer.stop()
    }
  })

  it("redelivers a message left unacked after the ack wait (outside Consumer.run)", async () => {
    const name = "unkept"
    const [subject] = await publish(name, 1)
    const seen = new Deliveries()
    const consumer = background(
      Consumer.messages(durable(name, { ackWait: "1 second" })).pipe(
        Stream.runForEach((m) => Effect.sync(() => void seen.record(Consumer.messageOf(m)))) // never acks, never signals progress
      )
    )
    try {
      await eventually(
        async () => {
          consumer.check()
          return seen.count(subject!) >= 2
        },
        20_000,
        "the unacked message to be redelivered"
      )
      const [a, b] = seen.of(subject!)
      expect([a!.deliveryCount, b!.deliveryCount]).toEqual([1, 2])
      expect(b!.redelivered).toBe(true)
      expect(b!.at - a!.at).toBeGreaterThanOrEqual(900)
    } finally {
      await consumer.stop()
    }
  })

  // messages still waiting in the client's buffer behind a long handler are kept alive too: the server
  // redelivers only what a dead host held
  it("does not redeliver a message that waits in the buffer behind a long handler", async () => {
    const name = "queued"
    const subjects = await publish(name, 2)
    const seen = new Deliveries()
    let done = 0
    const consumer = background(
      Consumer.run(durable(name, { ackWait: "1 second" }), 1, (m) =>
        Effect.sync(() => seen.record(m)).pipe(
          Effect.andThen(Effect.sleep("2500 millis")),
          Effect.andThen(Effect.sync(() => done++)),
          Effect.as(Consumer.Decision.Ack())
        ))
    )
    try {
      await eventually(
        async () => {
          consumer.check()
          return done >= 2
        },
        30_000,
        "both long handlers to finish"
      )
      await settled(name)
      // any further (stale, buffered) delivery would start right after the second handler: give it one run
      await holdsFor(3_000, () => {
        for (const s of subjects) expect(seen.count(s), `handler runs for ${s}`).toBe(1)
      })
    } finally {
      await consumer.stop()
    }
  })
})

describe("Consumer.ensure", () => {
  it("is idempotent and updates the settings of an existing consumer", async () => {
    const d = durable("ensured", { maxAckPending: 10, ackWait: "5 seconds" })
    await rt.runPromise(Consumer.ensure(d))
    await rt.runPromise(Consumer.ensure(d))
    const before = await consumerInfo("ensured")
    expect(before.config.max_ack_pending).toBe(10)
    await rt.runPromise(Consumer.ensure({ ...d, maxAckPending: 20, ackWait: "7 seconds" }))
    const after = await consumerInfo("ensured")
    expect(after.config.max_ack_pending).toBe(20)
    expect(after.config.ack_wait).toBe(7_000_000_000)
    expect(after.config.filter_subject).toBe("test.work.ensured.>")
    expect(after.created).toBe(before.created) // updated in place, not re-created
    const names: Array<string> = []
    for await (const c of bus.jsm.consumers.list(STREAM)) names.push(c.name)
    expect(names.filter((n) => n === "ensured")).toHaveLength(1)
  })
})
