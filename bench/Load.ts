// What a host pays to pick up a run: `Actor.load` of run journals of 100, 1,000 and 10,000 events by full
// replay and from a snapshot (bus/Snapshots.ts), beside a raw JetStream read of the same messages.
import { DeliverPolicy } from "@nats-io/jetstream"
import { Effect } from "effect"
import * as Actor from "../actors/kernel/Actor.ts"
import * as RunDecider from "../actors/run/Decider.ts"
import { Journal, subjectOf } from "../bus/Journal.ts"
import { Nats, unavailable } from "../bus/Nats.ts"
import * as Snapshots from "../bus/Snapshots.ts"
import * as Topology from "../bus/Topology.ts"
import * as Envelope from "../schema/Envelope.ts"
import type { RunStarted } from "../schema/Events.ts"
import * as Fixture from "./Fixture.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

/** Journal lengths, and measured loads of each at BENCH_SCALE=1. */
const SIZES = [
  { events: 100, loads: 40 },
  { events: 1_000, loads: 20 },
  { events: 10_000, loads: 6 }
] as const

/** Events after the snapshot: half of LANTERN_SNAPSHOT_EVERY's default 100, the mean tail a host finds. */
export const TAIL = 50

const { snapshot: _ignored, ...plainDecider } = RunDecider.decider
const replaying = Actor.make(plainDecider)
const snapshotted = Actor.make({ ...plainDecider, snapshot: { version: 1 } })

export interface Level {
  readonly events: number
  /** Ordered-consumer fetch of every message of the subject, nothing decoded: the physical floor of a replay. */
  readonly raw: Stats.Summary
  readonly replay: Stats.Summary
  readonly snapshot: Stats.Summary
  /** Journal events the snapshot load read. */
  readonly tailRead: number
  readonly snapshotBytes: number
  readonly snapshotWriteMs: number
}

/** The run's events: RunStarted, then StepStarted and StepCompleted of one model step after another. */
const envelopes = (run: string, count: number): ReadonlyArray<Envelope.Envelope> => {
  const out: Array<Envelope.Envelope> = []
  const first = Fixture.stepStarted(run, 0)
  const started: RunStarted = {
    _tag: "RunStarted",
    runId: run,
    agentName: "bench",
    agentVersion: 1,
    agentDigest: "sha256:bench",
    spec: { systemPrompt: "You are a benchmark.", model: "bench/echo", maxTurns: 100_000, tools: [] },
    input: { question: "How long does a long run take to load?" },
    requestDigest: "bench"
  }
  out.push({ ...first, type: started._tag, idempotencyKey: `${run}:start`, payload: Envelope.payloadOf(started) })
  for (let n = 0; out.length < count; n++) {
    const s = Fixture.stepStarted(run, n)
    out.push(s)
    if (out.length < count) out.push(Fixture.stepCompleted(run, n, s.eventId))
  }
  return out
}

const append = (address: Envelope.ActorAddress, batch: ReadonlyArray<Envelope.Envelope>, seq: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    let last = seq
    for (let i = 0; i < batch.length; i += 1000)
      last = (yield* journal.append(address, batch.slice(i, i + 1000), last)).lastSeq
    return last
  })

const rawRead = (address: Envelope.ActorAddress, expected: number) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    const got = yield* Effect.tryPromise({
      try: async () => {
        const consumer = await js.consumers.get(Topology.streamOf[address.type], {
          filter_subjects: subjectOf(address),
          deliver_policy: DeliverPolicy.All
        })
        let n = 0
        while (n < expected) {
          for await (const m of await consumer.fetch({ max_messages: 1000, expires: 5000 })) {
            m.string()
            if (++n >= expected) break
          }
        }
        await consumer.delete().catch(() => undefined)
        return n
      },
      catch: unavailable("raw read")
    })
    if (got !== expected) return yield* Effect.die(new Error(`raw read got ${got} messages, expected ${expected}`))
  })

const timed = <A, E, R>(times: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    yield* effect
    yield* effect
    const samples: Array<number> = []
    const began = performance.now()
    for (let i = 0; i < times; i++) {
      const t = performance.now()
      yield* effect
      samples.push(performance.now() - t)
    }
    return Stats.summarize(samples, performance.now() - began)
  })

/** Builds one run journal of `events` events with a snapshot TAIL events behind its head, then times loads. */
const level = (events: number, loads: number) =>
  Effect.gen(function*() {
    const run = Fixture.runId()
    const address = Fixture.address(run)
    const all = envelopes(run, events)
    const head = events - TAIL
    const seq = yield* append(address, all.slice(0, head), 0)
    const before = yield* replaying.load(address)
    if (before.events !== head || before.seq !== seq)
      return yield* Effect.die(new Error(`loaded ${before.events} events, expected ${head}`))
    const snapshot: Snapshots.Snapshot = {
      format: Snapshots.FORMAT,
      deciderVersion: 1,
      seq,
      events: head,
      state: before.state
    }
    const snapshots = yield* Snapshots.Snapshots
    const w = performance.now()
    yield* snapshots.write(address, snapshot)
    const snapshotWriteMs = performance.now() - w
    const snapshotBytes = (yield* Snapshots.encode(snapshot)).length
    yield* append(address, all.slice(head), seq)

    // the journal must count the tail the snapshot load reads
    const journal = yield* Journal
    let tailRead = 0
    const counting: typeof journal = {
      ...journal,
      readFrom: (a, after) =>
        Effect.tap(journal.readFrom(a, after), (t) => Effect.sync(() => (tailRead = t.events.length)))
    }
    const full = yield* replaying.load(address)
    const fast = yield* snapshotted.load(address).pipe(Effect.provideService(Journal, counting))
    if (
      full.events !== events || fast.events !== events || JSON.stringify(full.state) !== JSON.stringify(fast.state) ||
      tailRead !== TAIL
    ) {
      return yield* Effect.die(
        new Error(
          `load check failed at ${events} events: replay ${full.events}, snapshot ${fast.events}, tail ${tailRead}`
        )
      )
    }

    const raw = yield* timed(loads, rawRead(address, events))
    const replay = yield* timed(loads, replaying.load(address))
    const fromSnapshot = yield* timed(loads, snapshotted.load(address))
    return { events, raw, replay, snapshot: fromSnapshot, tailRead, snapshotBytes, snapshotWriteMs } satisfies Level
  })

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

/** Every journal length of SIZES, loads scaled by `scale` (at least 3 each). */
export const run = (scale: number) =>
  Effect.forEach(SIZES, (size) => {
    const loads = Math.max(3, Math.round(size.loads * scale))
    return Effect.andThen(
      progress(`load: ${size.events}-event journal, ${loads} loads each way`),
      level(size.events, loads)
    )
  })

const ms = (x: number) => x.toFixed(2)
const ratio = (x: number) => `${x.toFixed(2)}x`

/** Section 4 of the report; `rawPublishMs` is the raw publish-with-ack median at 1 in flight (section 1). */
export const render = (levels: ReadonlyArray<Level>, rawPublishMs: number): string =>
  [
    `4. Actor load time (Actor.load of a run journal; snapshot ${TAIL} events behind the head, as with LANTERN_SNAPSHOT_EVERY=100 on average)`,
    table(
      [
        "events",
        "raw read ms",
        "replay ms",
        "replay/raw",
        "snapshot ms",
        "snapshot/raw",
        "replay/snapshot",
        "snapshot RTTs",
        "tail read",
        "snapshot KB",
        "write ms"
      ],
      levels.map((l) => [
        l.events.toLocaleString("en-US"),
        ms(l.raw.medianMs),
        ms(l.replay.medianMs),
        ratio(l.replay.medianMs / l.raw.medianMs),
        ms(l.snapshot.medianMs),
        ratio(l.snapshot.medianMs / l.raw.medianMs),
        ratio(l.replay.medianMs / l.snapshot.medianMs),
        (l.snapshot.medianMs / rawPublishMs).toFixed(1),
        String(l.tailRead),
        (l.snapshotBytes / 1024).toFixed(1),
        ms(l.snapshotWriteMs)
      ])
    ),
    "   medians. raw read = ordered-consumer fetch of the run's messages, undecoded (the floor of a full replay);",
    "   replay = Actor.load without a snapshot (read, decode, fold); snapshot = Actor.load from the stored snapshot;",
    `   snapshot RTTs = snapshot ms / raw publish-with-ack median (${ms(rawPublishMs)} ms, 1 in flight)`
  ].join("\n")

const round = (x: number, digits: number) => Number(x.toFixed(digits))

/** The figures as one `BENCH_LOAD_JSON {...}` line. */
export const json = (levels: ReadonlyArray<Level>): string =>
  `BENCH_LOAD_JSON ${
    JSON.stringify(levels.map((l) => ({
      events: l.events,
      rawReadMedianMs: round(l.raw.medianMs, 3),
      replayMedianMs: round(l.replay.medianMs, 3),
      replayP99Ms: round(l.replay.p99Ms, 3),
      snapshotMedianMs: round(l.snapshot.medianMs, 3),
      snapshotP99Ms: round(l.snapshot.p99Ms, 3),
      tailRead: l.tailRead,
      snapshotBytes: l.snapshotBytes,
      snapshotWriteMs: round(l.snapshotWriteMs, 3)
    })))
  }`
