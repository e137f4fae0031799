import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import { busLayer, startServer, testEnvelope, testRun, type TestServer } from "../tests/support/Bus.ts"
import { encodedHeaders, Journal, sizeOf, subjectOf } from "./Journal.ts"
import { encodeJson } from "../schema/Envelope.ts"
import { Nats } from "./Nats.ts"
import * as Topology from "./Topology.ts"
import type { Envelope } from "../schema/Envelope.ts"

const address = testRun
const envelope = testEnvelope

describe("Journal (real nats-server)", () => {
  let server: TestServer
  let rt: ManagedRuntime.ManagedRuntime<Journal | import("./Nats.ts").Nats, unknown>
  beforeAll(async () => {
    server = await startServer()
    rt = ManagedRuntime.make(busLayer(server.handle.url) as Layer.Layer<Journal | import("./Nats.ts").Nats, unknown>)
    await rt.runPromise(Topology.apply)
  })
  afterAll(async () => {
    await rt.dispose()
    await server.cleanup()
  })

  it("appends in order and reads the instance's events back in order", async () => {
    const a = address("ordered")
    const events = [1, 2, 3, 4, 5].map((n) => envelope("ordered", `e${n}`, { n }))
    const result = await rt.runPromise(
      Effect.gen(function*() {
        const j = yield* Journal
        yield* j.append(address("other"), [envelope("other", "x")], 0)
        const appended = yield* j.append(a, events.slice(0, 2), 0)
        yield* j.append(a, events.slice(2), appended.lastSeq)
        return yield* j.read(a)
      })
    )
    expect(result.map((s) => (s.envelope.payload as { output: { n: number } }).output.n)).toEqual([1, 2, 3, 4, 5])
    expect(result.every((s) => s.subject === subjectOf(a))).toBe(true)
    const seqs = result.map((s) => s.seq)
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs)
  })

  it("rejects an append with a stale expected sequence as a typed AppendConflict", async () => {
    const a = address("occ")
    const exit = await rt.runPromiseExit(
      Effect.gen(function*() {
        const j = yield* Journal
        const first = yield* j.append(a, [envelope("occ", "a")], 0)
        yield* j.append(a, [envelope("occ", "b")], first.lastSeq)
        // a second writer that loaded before "b" was appended
        return yield* j.append(a, [envelope("occ", "c")], first.lastSeq)
      })
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("AppendConflict")
    const events = await rt.runPromise(Effect.gen(function*() {
      return yield* (yield* Journal).read(a)
    }))
    expect(events.map((e) => e.envelope.idempotencyKey)).toEqual(["occ:a", "occ:b"])
  })

  it("an empty subject accepts only expected sequence 0", async () => {
    const exit = await rt.runPromiseExit(
      Effect.gen(function*() {
        return yield* (yield* Journal).append(address("empty"), [envelope("empty", "a")], 7)
      })
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const events = await rt.runPromise(Effect.gen(function*() {
      return yield* (yield* Journal).read(address("empty"))
    }))
    expect(events).toEqual([])
  })

  it("drops a re-sent append with the same idempotency key (duplicate window)", async () => {
    const a = address("dupe")
    const { first, again, events } = await rt.runPromise(
      Effect.gen(function*() {
        const j = yield* Journal
        const first = yield* j.append(a, [envelope("dupe", "a")], 0)
        // the same append re-sent, as after a lost ack: same msgID, same expectation
        const again = yield* j.append(a, [envelope("dupe", "a")], 0)
        const events = yield* j.read(a)
        return { first, again, events }
      })
    )
    expect(again.duplicates).toBe(1)
    expect(again.lastSeq).toBe(first.lastSeq)
    expect(events).toHaveLength(1)
  })

  it("fails loudly on an unknown event version", async () => {
    const a = address("future")
    const exit = await rt.runPromiseExit(
      Effect.gen(function*() {
        const j = yield* Journal
        yield* j.append(a, [{ ...envelope("future", "a"), version: 99 }], 0)
        return yield* j.read(a)
      })
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("UnknownEventVersion")
  })

  it("refuses at once, without retrying, an append with an event over the server's max_payload, appending none of its batch", async () => {
    const a = address("huge")
    const began = Date.now()
    const exit = await rt.runPromiseExit(
      Effect.gen(function*() {
        const { nc } = yield* Nats
        const limit = nc.info!.max_payload
        return yield* (yield* Journal).append(a, [
          envelope("huge", "a"),
          envelope("huge", "b", { text: "x".repeat(limit) })
        ], 0)
      })
    )
    expect(Date.now() - began).toBeLessThan(1_000) // not the ~30 s of retries a bus outage gets
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) {
      const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error as {
        _tag: string
        size: number
        limit: number
        message: string
      }
      expect(error._tag).toBe("EventTooLarge")
      expect(error.limit).toBe(1024 * 1024)
      expect(error.size).toBeGreaterThan(error.limit)
      expect(error.message).not.toContain(subjectOf(a))
      expect(error.message).not.toContain("t1")
    }
    const events = await rt.runPromise(Effect.gen(function*() {
      return yield* (yield* Journal).read(a)
    }))
    expect(events).toEqual([]) // the small event before it was not appended either
  })

  it("measures an event as the bus counts it: one of exactly the limit is appended, one byte more is refused", async () => {
    const { limit, exact, over } = await rt.runPromise(Effect.gen(function*() {
      const { nc } = yield* Nats
      const limit = nc.info!.max_payload
      const base = sizeOf(envelope("fit1", "a", { text: "" }))
      return {
        limit,
        exact: envelope("fit1", "a", { text: "x".repeat(limit - base) }),
        over: envelope("fit2", "a", { text: "x".repeat(limit - base + 1) })
      }
    }))
    expect(sizeOf(exact)).toBe(limit)
    const appended = await rt.runPromise(Effect.gen(function*() {
      return yield* (yield* Journal).append(address("fit1"), [exact], 0)
    }))
    expect(appended.seqs).toHaveLength(1)
    const exit = await rt.runPromiseExit(Effect.gen(function*() {
      return yield* (yield* Journal).append(address("fit2"), [over], 0)
    }))
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain(
      `the event would be ${limit + 1} bytes, over the bus's limit of ${limit} bytes`
    )
  })

  it("counts an event's bytes as the client writes them: its JSON and its header block at the longest sequence", () => {
    const longest = "18446744073709551615"
    const cases: Array<Envelope> = [
      envelope("size1", "a"),
      {
        ...envelope("size2", "b", { text: "é ☃ 𝄞" }),
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
      },
      { ...envelope("size3", "c"), idempotencyKey: "run_x:ünïcödé:☃:1" }
    ]
    for (const e of cases) {
      expect(sizeOf(e)).toBe(new TextEncoder().encode(encodeJson(e)).length + encodedHeaders(e, longest).length)
    }
  })
})
