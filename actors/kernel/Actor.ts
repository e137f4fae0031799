// The Effect shell of every actor: load an instance by folding its journal (from its last snapshot on, when
// its decider is snapshotted), decide, append the events with optimistic concurrency, and on a conflict (and
// only on a conflict) reload and decide again.
import { Context, Effect, Option, Result, Tracer } from "effect"
import { Journal, type ReadError, subjectOf } from "../../bus/Journal.ts"
import * as Snapshots from "../../bus/Snapshots.ts"
import * as Envelope from "../../schema/Envelope.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import { AppendConflict, type BusUnavailable, type EventTooLarge } from "../../schema/Errors.ts"
import type { Event } from "../../schema/Events.ts"
import { type Decider, fold } from "./Decider.ts"
import * as Envelopes from "./Envelopes.ts"
import { Ids } from "./Ids.ts"

/** An actor instance as this host knows it: its state and the sequence of its last event. */
export interface Loaded<S> {
  readonly address: ActorAddress
  readonly state: S
  readonly seq: number
  /** How many events the instance has in all. */
  readonly events: number
  /** `events` when its last snapshot was taken (or tried): the next one is due `Snapshots.every` events later. */
  readonly snapshotEvents: number
}

/** Where a command came from: carried into every envelope it produces. */
export interface Meta {
  /**
   * Idempotency key of the command; event i gets `${key}#${i}` as its msgID. A function receives the
   * expected sequence, for commands whose only identity is their position in the journal.
   */
  readonly idempotencyKey: string | ((expectedSeq: number) => string)
  readonly correlationId: string
  readonly causationId?: string | null
}

export interface Outcome<S, E> {
  readonly loaded: Loaded<S>
  readonly appended: ReadonlyArray<E>
  /** The appended events as stored (their envelopes and sequences): what a read of them back would give. */
  readonly stored: ReadonlyArray<Stored>
  /**
   * How many of them the journal already had (a re-sent append): `loaded` then folds them onto what memory had,
   * which may be behind the journal; read the instance again before trusting it.
   */
  readonly duplicates: number
}

const MAX_CONFLICT_RETRIES = 16

/** The services every actor effect runs with. */
export type Services = Journal | Ids | Snapshots.Snapshots

/**
 * Captures the journal, id and snapshot services once, for actor shells whose methods run actor effects:
 * returns a function that provides them to such an effect. A fiber of the stack that captured them already has
 * them (a drive, a request): its context is then left as it is, since each service added to a fiber's context is
 * one more entry every later lookup may pass, and every 8 of them a copy of the whole context (effect's Context).
 */
export const provider = Effect.gen(function*() {
  const journal = yield* Journal
  const ids = yield* Ids
  const snapshots = yield* Snapshots.Snapshots
  const withServices = (context: Context.Context<never>): Context.Context<Services> =>
    Context.getOrUndefined(context, Journal) === journal && Context.getOrUndefined(context, Ids) === ids &&
      Context.getOrUndefined(context, Snapshots.Snapshots) === snapshots
      ? context as Context.Context<Services>
      : Context.add(Context.add(Context.add(context, Journal, journal), Ids, ids), Snapshots.Snapshots, snapshots)
  return <A, E>(effect: Effect.Effect<A, E, Services>): Effect.Effect<A, E> =>
    Effect.updateContext(effect, withServices)
})

/** The W3C traceparent of the current span (envelopes are stamped with it), for callers of the actor shell. */
export { traceparent } from "./Envelopes.ts"

export const make = <S, C, E extends Event, Err>(decider: Decider<S, C, E, Err>) => {
  const snapshotVersion = decider.snapshot?.version

  const replay = (address: ActorAddress) =>
    Effect.gen(function*() {
      const journal = yield* Journal
      return fromStored(address, yield* journal.read(address))
    })

  /**
   * The instance as its journal says: its snapshot (when its decider declares one and a usable one is
   * stored) with the events after it folded on, or else every event folded from the initial state.
   */
  const load = (address: ActorAddress): Effect.Effect<Loaded<S>, ReadError, Journal | Snapshots.Snapshots> =>
    Effect.gen(function*() {
      if (snapshotVersion === undefined) return yield* replay(address)
      const journal = yield* Journal
      const snapshots = yield* Snapshots.Snapshots
      const key = Snapshots.keyOf(address)
      const found = yield* snapshots.read(address).pipe(
        Effect.catch((e) =>
          Effect.as(
            Effect.logWarning(`${e.message}; replaying the whole journal of ${key}`),
            Option.none<Snapshots.Snapshot>()
          )
        )
      )
      if (Option.isNone(found)) return yield* replay(address)
      const snapshot = found.value
      if (snapshot.deciderVersion !== snapshotVersion) {
        yield* Effect.logDebug(
          `snapshot ${key} is of decider version ${snapshot.deciderVersion}, not ${snapshotVersion}: replaying`
        )
        return yield* replay(address)
      }
      const tail = yield* journal.readFrom(address, snapshot.seq)
      if (tail.lastSeq < snapshot.seq) {
        // the journal ends before the snapshot: the stream was recreated or restored from an older backup
        yield* Effect.logWarning(
          `snapshot ${key} is at sequence ${snapshot.seq} but the journal ends at ${tail.lastSeq}; ignoring it and replaying the whole journal`
        )
        return yield* replay(address)
      }
      // a state whose shape changed without a version bump may make evolve throw: replay rather than die
      const state = yield* Effect.try(() => fold(decider, tail.events.map((s) => s.event as E), snapshot.state as S))
        .pipe(
          Effect.option
        )
      if (Option.isNone(state)) {
        yield* Effect.logWarning(
          `snapshot ${key} does not fold (its state has another shape?); replaying the whole journal`
        )
        return yield* replay(address)
      }
      yield* Effect.annotateCurrentSpan({
        "lantern.snapshot.seq": snapshot.seq,
        "lantern.replayed": tail.events.length
      })
      const last = tail.events[tail.events.length - 1]
      return {
        address,
        state: state.value,
        seq: last === undefined ? snapshot.seq : last.seq,
        events: snapshot.events + tail.events.length,
        snapshotEvents: snapshot.events
      }
    }).pipe(
      Effect.withSpan("Actor.load", { attributes: { "lantern.actor": Snapshots.keyOf(address) } }, {
        captureStackTrace: false
      })
    )

  const fromStored = (address: ActorAddress, stored: ReadonlyArray<Stored>): Loaded<S> => ({
    address,
    state: fold(decider, stored.map((s) => s.event as E)),
    seq: stored.length === 0 ? 0 : stored[stored.length - 1]!.seq,
    events: stored.length,
    snapshotEvents: 0
  })

  /**
   * Writes the instance's snapshot when `Snapshots.every` events have been appended since its last one. Best
   * effort: a failed write is logged, and the next is tried `every` events later.
   */
  const snapshotIfDue = (loaded: Loaded<S>): Effect.Effect<Loaded<S>, never, Snapshots.Snapshots> =>
    Effect.gen(function*() {
      if (snapshotVersion === undefined) return loaded
      const snapshots = yield* Snapshots.Snapshots
      if (snapshots.every <= 0 || loaded.events - loaded.snapshotEvents < snapshots.every) return loaded
      yield* snapshots.write(loaded.address, {
        format: Snapshots.FORMAT,
        deciderVersion: snapshotVersion,
        seq: loaded.seq,
        events: loaded.events,
        state: loaded.state
      }).pipe(
        // anything, a defect included (a state JSON cannot encode), only costs the snapshot
        Effect.catchCause((cause) =>
          Effect.logWarning(`snapshot of ${Snapshots.keyOf(loaded.address)} not written`, cause)
        )
      )
      return { ...loaded, snapshotEvents: loaded.events }
    })

  /** The envelopes `events` are appended in (also to measure them against the bus's limit before deciding to act). */
  const envelopes = (address: ActorAddress, events: ReadonlyArray<E>, meta: Meta, expectedSeq: number) =>
    Envelopes.make(address, events, {
      correlationId: meta.correlationId,
      causationId: meta.causationId ?? null,
      idempotencyKey: typeof meta.idempotencyKey === "string" ? meta.idempotencyKey : meta.idempotencyKey(expectedSeq)
    })

  /**
   * Decides `command` against `loaded` and appends the result. On an append conflict the instance is
   * reloaded from its journal and the command decided again; any other failure is returned as is (an event
   * too large for the bus, above all: deciding again would produce it again).
   */
  const executeOn = (
    loaded: Loaded<S>,
    command: C,
    meta: Meta
  ): Effect.Effect<Outcome<S, E>, ExecuteError<Err>, Services> =>
    Effect.gen(function*() {
      const journal = yield* Journal
      let current = loaded
      for (let attempt = 0;; attempt++) {
        const decided = decider.decide(command, current.state)
        if (Result.isFailure(decided)) return yield* Effect.fail(decided.failure)
        const events = decided.success
        if (events.length === 0) return { loaded: current, appended: [], stored: [], duplicates: 0 }
        const batch = yield* envelopes(current.address, events, meta, current.seq)
        const result = yield* Effect.result(journal.append(current.address, batch, current.seq))
        if (Result.isSuccess(result)) {
          const state = events.reduce(decider.evolve, current.state)
          const next: Loaded<S> = {
            ...current,
            state,
            seq: result.success.lastSeq,
            events: current.events + events.length
          }
          // a re-sent append the journal already had leaves memory unsure of the journal: no snapshot of it
          const subject = subjectOf(current.address)
          const stored = batch.map((envelope, i): Stored => ({
            seq: result.success.seqs[i]!,
            subject,
            envelope,
            event: events[i]!
          }))
          // this process's readers of these events (a run's stream, the projectors) get them without decoding the
          // text again; a re-sent append's stored text is not known for sure to be this one
          if (result.success.duplicates === 0) {
            for (let i = 0; i < stored.length; i++) Envelope.remember(stored[i]!, result.success.texts[i]!)
          }
          return {
            loaded: result.success.duplicates === 0 ? yield* snapshotIfDue(next) : next,
            appended: events,
            stored,
            duplicates: result.success.duplicates
          }
        }
        if (!(result.failure instanceof AppendConflict) || attempt >= MAX_CONFLICT_RETRIES) {
          return yield* Effect.fail(result.failure)
        }
        current = yield* load(current.address)
      }
    })

  const execute = (address: ActorAddress, command: C, meta: Meta) =>
    Effect.flatMap(load(address), (loaded) => executeOn(loaded, command, meta))

  return { decider, load, fromStored, envelopes, executeOn, execute }
}

export type { ReadError } from "../../bus/Journal.ts"
/** Everything `execute` can fail with besides the decider's own refusals. */
export type ExecuteError<Err> = Err | AppendConflict | BusUnavailable | EventTooLarge | ReadError

/** The parent span a W3C `traceparent` header names, if it is well-formed. */
export const parentSpan = (header: string | undefined) => {
  const m = header === undefined ? null : /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(header)
  return m === null
    ? null
    : Tracer.externalSpan({ traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 })
}
