import { randomBytes } from "node:crypto"
import { Kvm } from "@nats-io/kv"
import * as fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import * as Actor from "../actors/kernel/Actor.ts"
import { accept, type Decider } from "../actors/kernel/Decider.ts"
import { Ids } from "../actors/kernel/Ids.ts"
import * as RunDecider from "../actors/run/Decider.ts"
import type { ActorAddress } from "../schema/Envelope.ts"
import { BusUnavailable } from "../schema/Errors.ts"
import type { RunEvent } from "../schema/Events.ts"
import { busLayer, startServer, type TestServer } from "../tests/support/Bus.ts"
import { Journal } from "./Journal.ts"
import { Nats } from "./Nats.ts"
import * as Snapshots from "./Snapshots.ts"
import * as Topology from "./Topology.ts"

// The run actor's own state and evolve, driven by a command that appends the events it carries, so the
// journals here are real run journals of any length without a model or a driver.
interface Append {
  readonly events: ReadonlyArray<RunEvent>
}
const plain: Decider<RunDecider.State, Append, RunEvent, never> = {
  initialState: RunDecider.initialState,
  decide: (command) => accept(...command.events),
  evolve: RunDecider.evolve
}
const snapshotted = { ...plain, snapshot: { version: 1 } }
const replaying = Actor.make(plain)
const actor = Actor.make(snapshotted)

const address = (id: string): ActorAddress => ({ type: "run", tenant: "t1", id })

/** Event `i` of a run: RunStarted, then StepStarted and StepCompleted of one model step after another. */
const eventAt = (runId: string, i: number): RunEvent => {
  if (i === 0) {
    return {
      _tag: "RunStarted",
      runId,
      agentName: "a",
      agentVersion: 1,
      agentDigest: "sha256:0",
      spec: { systemPrompt: "be brief", model: "auto", maxTurns: 8, tools: [] },
      input: { question: "why?" },
      requestDigest: "d"
    }
  }
  const step = `turn-${Math.ceil(i / 2)}`
  if (i % 2 === 1)
    return { _tag: "StepStarted", stepId: step, attempt: 1, request: { _tag: "model", model: "auto", turn: i } }
  return {
    _tag: "StepCompleted",
    stepId: step,
    attempt: 1,
    result: {
      _tag: "model",
      answer: { content: `answer ${i}`, toolCalls: [], finishReason: "stop", provider: "offline", model: "m" }
    },
    tokensIn: 3,
    tokensOut: 5,
    costUsd: 0.0001,
    durationMs: 1
  }
}

/** Appends events `from` until `to` (exclusive) to a run through `shell`, `chunk` events per command. */
const grow = (shell: typeof actor, runId: string, from: number, to: number, chunk = 10) =>
  Effect.gen(function*() {
    let loaded = yield* shell.load(address(runId))
    for (let i = from; i < to; i += chunk) {
      const events = Array.from({ length: Math.min(chunk, to - i) }, (_, k) => eventAt(runId, i + k))
      const outcome = yield* shell.executeOn(loaded, { events }, {
        idempotencyKey: `${runId}:${i}`,
        correlationId: runId
      })
      loaded = outcome.loaded
    }
    return loaded
  })

/** Loads through `shell` with a journal that counts the events it hands out. */
const loadCounting = (shell: typeof actor, a: ActorAddress) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    let read = 0
    const counting: typeof journal = {
      ...journal,
      read: (x) => Effect.tap(journal.read(x), (events) => Effect.sync(() => (read += events.length))),
      readFrom: (x, after) =>
        Effect.tap(journal.readFrom(x, after), (tail) => Effect.sync(() => (read += tail.events.length)))
    }
    const loaded = yield* shell.load(a).pipe(Effect.provideService(Journal, counting))
    return { loaded, read }
  })

const storedSnapshot = (a: ActorAddress) =>
  Effect.gen(function*() {
    return yield* (yield* Snapshots.Snapshots).read(a)
  })

describe("Snapshots (real nats-server)", () => {
  let server: TestServer
  let rt: ManagedRuntime.ManagedRuntime<Journal | Nats | Snapshots.Snapshots | Ids, unknown>
  beforeAll(async () => {
    server = await startServer()
    rt = ManagedRuntime.make(
      Layer.merge(busLayer(server.handle.url), Ids.layerTest) as Layer.Layer<
        Journal | Nats | Snapshots.Snapshots | Ids,
        unknown
      >
    )
    await rt.runPromise(Topology.apply)
  })
  afterAll(async () => {
    await rt.dispose()
    await server.cleanup()
  })

  it("a 1,000-event journal loads to the same state with and without snapshots", async () => {
    const a = address("long")
    const result = await rt.runPromise(
      Effect.gen(function*() {
        const written = yield* grow(actor, "long", 0, 1000)
        // 37 more events through a shell that never snapshots: the snapshot stays at event 1,000
        yield* grow(replaying, "long", 1000, 1037)
        const full = yield* loadCounting(replaying, a)
        const fromSnapshot = yield* loadCounting(actor, a)
        return { written, full, fromSnapshot, snapshot: yield* storedSnapshot(a) }
      })
    )
    expect(result.written.snapshotEvents).toBe(1000)
    expect(Option.map(result.snapshot, (s) => [s.events, s.deciderVersion, s.seq])).toEqual(
      Option.some([1000, 1, result.written.seq])
    )
    expect(result.full.read).toBe(1037)
    expect(result.fromSnapshot.read).toBe(37)
    expect(result.fromSnapshot.loaded.state).toEqual(result.full.loaded.state)
    expect(result.fromSnapshot.loaded.state.steps).toHaveLength(518)
    expect(result.fromSnapshot.loaded.seq).toBe(result.full.loaded.seq)
    expect(result.fromSnapshot.loaded.events).toBe(1037)
    expect(result.full.loaded.events).toBe(1037)
    expect(result.fromSnapshot.loaded.snapshotEvents).toBe(1000)
  })

  it("writes a snapshot every LANTERN_SNAPSHOT_EVERY (100) events and loads only the journal after it", async () => {
    const a = address("tail")
    const result = await rt.runPromise(
      Effect.gen(function*() {
        const afterFirst = yield* grow(actor, "tail", 0, 99, 1)
        const first = yield* storedSnapshot(a)
        const loaded = yield* grow(actor, "tail", 99, 250, 1)
        return { first, afterFirst, loaded, counted: yield* loadCounting(actor, a), snapshot: yield* storedSnapshot(a) }
      })
    )
    expect(Option.isNone(result.first)).toBe(true)
    expect(result.afterFirst.snapshotEvents).toBe(0)
    expect(result.loaded.snapshotEvents).toBe(200)
    expect(Option.map(result.snapshot, (s) => s.events)).toEqual(Option.some(200))
    expect(result.counted.read).toBe(50)
    expect(result.counted.loaded.events).toBe(250)
    expect(result.counted.loaded.state).toEqual(result.loaded.state)
    expect(result.counted.loaded.seq).toBe(result.loaded.seq)
  })

  describe("an unusable snapshot is ignored: the whole journal is replayed", () => {
    const check = (
      id: string,
      spoil: (a: ActorAddress, seq: number) => Effect.Effect<void, unknown, Nats | Snapshots.Snapshots>
    ) =>
      rt.runPromise(
        Effect.gen(function*() {
          const a = address(id)
          const written = yield* grow(actor, id, 0, 150)
          yield* spoil(a, written.seq)
          const counted = yield* loadCounting(actor, a)
          const full = yield* loadCounting(replaying, a)
          // the next append writes a good snapshot over the bad one
          const healed = yield* actor.executeOn(counted.loaded, { events: [eventAt(id, 150)] }, {
            idempotencyKey: `${id}:heal`,
            correlationId: id
          })
          return { counted, full, healed: healed.loaded, snapshot: yield* storedSnapshot(a) }
        })
      ).then((r) => {
        expect(r.counted.read).toBe(150)
        expect(r.counted.loaded.state).toEqual(r.full.loaded.state)
        expect(r.counted.loaded.events).toBe(150)
        expect(r.counted.loaded.seq).toBe(r.full.loaded.seq)
        expect(r.counted.loaded.snapshotEvents).toBe(0)
        expect(r.healed.snapshotEvents).toBe(151)
        expect(Option.map(r.snapshot, (s) => [s.deciderVersion, s.events])).toEqual(Option.some([1, 151]))
      })

    const overwrite = (a: ActorAddress, snapshot: Snapshots.Snapshot) =>
      Effect.gen(function*() {
        yield* (yield* Snapshots.Snapshots).write(a, snapshot)
      })
    const putRaw = (a: ActorAddress, bytes: Uint8Array | string) =>
      Effect.gen(function*() {
        const { js } = yield* Nats
        yield* Effect.promise(async () =>
          (await new Kvm(js).open(Topology.SNAPSHOTS_BUCKET)).put(Snapshots.keyOf(a), bytes)
        )
      })
    const bogus = { status: "succeeded", steps: "not an array" }

    it("of another decider version", () =>
      check("version", (a, seq) => overwrite(a, { format: 1, deciderVersion: 2, seq, events: 150, state: bogus })))

    it("that is not JSON", () => check("corrupt", (a) => putRaw(a, "{\"format\":1,\"deciderVersion\":1,\"seq")))

    it("that is gzip garbage", () => check("gzip", (a) => putRaw(a, new Uint8Array([0x1f, 0x8b, 1, 2, 3]))))

    it("of another format", () =>
      check(
        "format",
        (a, seq) => putRaw(a, JSON.stringify({ format: 2, deciderVersion: 1, seq, events: 150, state: bogus }))
      ))

    it("newer than the journal (the stream was recreated or restored)", () =>
      check(
        "newer",
        (a, seq) => overwrite(a, { format: 1, deciderVersion: 1, seq: seq + 1000, events: 9999, state: bogus })
      ))
  })

  it("a snapshot that cannot be written never fails the command", async () => {
    const failing = Snapshots.Snapshots.of({
      every: 1,
      read: () => Effect.succeed(Option.none()),
      write: () => Effect.fail(new BusUnavailable({ operation: "write snapshot", reason: "bucket gone" }))
    })
    const loaded = await rt.runPromise(
      grow(actor, "unwritable", 0, 5, 1).pipe(Effect.provideService(Snapshots.Snapshots, failing))
    )
    expect(loaded.events).toBe(5)
    // the next write is tried `every` events after the failed one, not on every append
    expect(loaded.snapshotEvents).toBe(5)
  })

  it("reads a snapshot it has just written, before its watch has seen it", async () => {
    const found = await rt.runPromise(
      Effect.gen(function*() {
        const snapshots = yield* Snapshots.Snapshots
        return yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => address(`fresh-${i}`)),
          (a) =>
            Effect.andThen(
              snapshots.write(a, { format: 1, deciderVersion: 1, seq: 1, events: 1, state: { n: 1 } }),
              Effect.map(snapshots.read(a), Option.isSome)
            )
        )
      })
    )
    expect(found.filter((f) => !f)).toEqual([])
  })

  it("refuses a snapshot over the bus's message limit, and stores a large one gzipped", async () => {
    const a = address("size")
    // random base64 gzips to about its 6 bits a character: still over 1 MiB
    const random = randomBytes(1_200_000).toString("base64")
    const repetitive = {
      steps: Array.from({ length: 20_000 }, (_, i) => ({ stepId: `turn-${i}`, status: "completed" }))
    }
    const result = await rt.runPromise(
      Effect.gen(function*() {
        const snapshots = yield* Snapshots.Snapshots
        const tooLarge = yield* Effect.flip(
          snapshots.write(a, { format: 1, deciderVersion: 1, seq: 1, events: 1, state: random })
        )
        yield* snapshots.write(a, { format: 1, deciderVersion: 1, seq: 2, events: 2, state: repetitive })
        const { js } = yield* Nats
        const raw = yield* Effect.promise(async () =>
          (await new Kvm(js).open(Topology.SNAPSHOTS_BUCKET)).get(Snapshots.keyOf(a))
        )
        return { tooLarge, raw: raw?.value, read: yield* snapshots.read(a) }
      })
    )
    expect(result.tooLarge._tag).toBe("SnapshotTooLarge")
    expect(Array.from(result.raw!.slice(0, 2))).toEqual([0x1f, 0x8b])
    expect(result.raw!.length).toBeLessThan(JSON.stringify(repetitive).length / 10)
    expect(Option.map(result.read, (s) => s.state)).toEqual(Option.some(repetitive))
  })
})

describe("Snapshots codec", () => {
  it("decode(encode(s)) = s for any JSON state, small or gzipped", async () => {
    const large = fc.jsonValue().map((v) => ({ pad: "x".repeat(Snapshots.COMPRESS_ABOVE), v }))
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), large), fc.nat(), fc.nat(), async (state, seq, events) => {
        const snapshot: Snapshots.Snapshot = { format: 1, deciderVersion: 3, seq, events, state }
        const back = await Effect.runPromise(
          Effect.flatMap(Snapshots.encode(snapshot), (bytes) => Snapshots.decode("k", bytes))
        )
        expect(back).toEqual({ ...snapshot, state: JSON.parse(JSON.stringify(state)) })
      }),
      { numRuns: 60 }
    )
  })
})
