// The envelope an event is journaled in, stamped in one place for every actor and for the audit recorder: a fresh
// event id, the time, the current trace, and where the event came from (correlation, causation, idempotency key).
import { Clock, Effect, Option } from "effect"
import { type ActorAddress, type Envelope, payloadOf } from "../../schema/Envelope.ts"
import { type Event, versionOf } from "../../schema/Events.ts"
import { Ids } from "./Ids.ts"

/** The W3C traceparent of the current span, or null outside any span. */
export const traceparent = Effect.map(
  Effect.option(Effect.currentSpan),
  Option.match({
    onNone: () => null,
    onSome: (span) => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
  })
)

/** Where a batch of events came from: carried into each of their envelopes. */
export interface Origin {
  readonly correlationId: string
  readonly causationId: string | null
  /** The batch's key; event i of several gets `${key}#${i}`, so a re-sent append is dropped as a duplicate. */
  readonly idempotencyKey: string
}

/** The envelopes the `events` of the actor at `address` are appended in, stamped now, in the current span. */
export const make = (
  address: ActorAddress,
  events: ReadonlyArray<Event>,
  origin: Origin
): Effect.Effect<Array<Envelope>, never, Ids> =>
  Effect.gen(function*() {
    const ids = yield* Ids
    const at = new Date(yield* Clock.currentTimeMillis).toISOString()
    const tp = yield* traceparent
    const out: Array<Envelope> = []
    for (const [i, event] of events.entries()) {
      out.push({
        eventId: yield* ids.next("evt"),
        type: event._tag,
        version: versionOf(event),
        tenant: address.tenant,
        actor: address,
        causationId: origin.causationId,
        correlationId: origin.correlationId,
        traceparent: tp,
        at,
        idempotencyKey: events.length === 1 ? origin.idempotencyKey : `${origin.idempotencyKey}#${i}`,
        payload: payloadOf(event)
      })
    }
    return out
  })
