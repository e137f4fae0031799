// The Effect shell of every actor: load an instance by folding its journal, decide, append the events with
// optimistic concurrency, and on a conflict (and only on a conflict) reload and decide again.
import { Clock, Effect, Option, Result, Tracer } from "effect"
import { Journal, type ReadError } from "../../bus/Journal.ts"
import type { ActorAddress, Envelope, Stored } from "../../schema/Envelope.ts"
import { payloadOf } from "../../schema/Envelope.ts"
import { AppendConflict, type BusUnavailable } from "../../schema/Errors.ts"
import { CURRENT_VERSION, type Event } from "../../schema/Events.ts"
import { type Decider, fold } from "./Decider.ts"
import { Ids } from "./Ids.ts"

/** An actor instance as this host knows it: its state and the sequence of its last event. */
export interface Loaded<S> {
  readonly address: ActorAddress
  readonly state: S
  readonly seq: number
  readonly events: number
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
}

const MAX_CONFLICT_RETRIES = 16

/**
 * Captures the journal and id services once, for actor shells whose methods run actor effects: returns a
 * function that provides both to such an effect.
 */
export const provider = Effect.gen(function*() {
  const journal = yield* Journal
  const ids = yield* Ids
  return <A, E>(effect: Effect.Effect<A, E, Journal | Ids>): Effect.Effect<A, E> =>
    effect.pipe(Effect.provideService(Journal, journal), Effect.provideService(Ids, ids))
})

/** The W3C traceparent of the current span, or null outside any span. */
export const traceparent = Effect.map(
  Effect.option(Effect.currentSpan),
  Option.match({
    onNone: () => null,
    onSome: (span) => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
  })
)

export const make = <S, C, E extends Event, Err>(decider: Decider<S, C, E, Err>) => {
  const load = (address: ActorAddress): Effect.Effect<Loaded<S>, ReadError, Journal> =>
    Effect.gen(function*() {
      const journal = yield* Journal
      const stored = yield* journal.read(address)
      return fromStored(address, stored)
    })

  const fromStored = (address: ActorAddress, stored: ReadonlyArray<Stored>): Loaded<S> => ({
    address,
    state: fold(decider, stored.map((s) => s.event as E)),
    seq: stored.length === 0 ? 0 : stored[stored.length - 1]!.seq,
    events: stored.length
  })

  const envelopes = (address: ActorAddress, events: ReadonlyArray<E>, meta: Meta, expectedSeq: number) =>
    Effect.gen(function*() {
      const key = typeof meta.idempotencyKey === "string" ? meta.idempotencyKey : meta.idempotencyKey(expectedSeq)
      const ids = yield* Ids
      const now = yield* Clock.currentTimeMillis
      const tp = yield* traceparent
      const out: Array<Envelope> = []
      for (const [i, event] of events.entries()) {
        out.push({
          eventId: yield* ids.next("evt"),
          type: event._tag,
          version: CURRENT_VERSION,
          tenant: address.tenant,
          actor: address,
          causationId: meta.causationId ?? null,
          correlationId: meta.correlationId,
          traceparent: tp,
          at: new Date(now).toISOString(),
          idempotencyKey: events.length === 1 ? key : `${key}#${i}`,
          payload: payloadOf(event)
        })
      }
      return out
    })

  /**
   * Decides `command` against `loaded` and appends the result. On an append conflict the instance is
   * reloaded from its journal and the command decided again; any other failure is returned as is.
   */
  const executeOn = (
    loaded: Loaded<S>,
    command: C,
    meta: Meta
  ): Effect.Effect<Outcome<S, E>, Err | AppendConflict | BusUnavailable | ReadError, Journal | Ids> =>
    Effect.gen(function*() {
      const journal = yield* Journal
      let current = loaded
      for (let attempt = 0; ; attempt++) {
        const decided = decider.decide(command, current.state)
        if (Result.isFailure(decided)) return yield* Effect.fail(decided.failure)
        const events = decided.success
        if (events.length === 0) return { loaded: current, appended: [] }
        const batch = yield* envelopes(current.address, events, meta, current.seq)
        const result = yield* Effect.result(journal.append(current.address, batch, current.seq))
        if (Result.isSuccess(result)) {
          const state = events.reduce(decider.evolve, current.state)
          return {
            loaded: { address: current.address, state, seq: result.success.lastSeq, events: current.events + events.length },
            appended: events
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

  return { decider, load, fromStored, executeOn, execute }
}

export type { ReadError } from "../../bus/Journal.ts"
/** Everything `execute` can fail with besides the decider's own refusals. */
export type ExecuteError<Err> = Err | AppendConflict | BusUnavailable | ReadError

/** The parent span a W3C `traceparent` header names, if it is well-formed. */
export const parentSpan = (header: string | undefined) => {
  const m = header === undefined ? null : /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(header)
  return m === null ? null : Tracer.externalSpan({ traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 })
}
