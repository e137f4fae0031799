// The envelope every stored event travels in: identity, tenant, actor address, causation and correlation,
// trace context, time and idempotency key around a versioned payload.
import { Effect, Schema } from "effect"
import { CorruptEvent, UnknownEventVersion } from "./Errors.ts"
import { type Event, registry } from "./Events.ts"
import * as Issues from "./Issues.ts"

export const ActorType = Schema.Literals([
  "agent",
  "run",
  "budget",
  "audit",
  "workload",
  "eval",
  "channel",
  "session",
  "task",
  "schedule",
  "sensor",
  "queueflow"
])
export type ActorType = typeof ActorType.Type

/** An actor instance: one journal subject per address. */
export const ActorAddress = Schema.Struct({ type: ActorType, tenant: Schema.String, id: Schema.String })
export type ActorAddress = typeof ActorAddress.Type

export const Envelope = Schema.Struct({
  eventId: Schema.String,
  type: Schema.String,
  version: Schema.Int,
  tenant: Schema.String,
  actor: ActorAddress,
  causationId: Schema.NullOr(Schema.String),
  correlationId: Schema.String,
  traceparent: Schema.NullOr(Schema.String),
  at: Schema.String,
  idempotencyKey: Schema.String,
  payload: Schema.Unknown
})
export type Envelope = typeof Envelope.Type

export const EnvelopeJson = Schema.fromJsonString(Envelope)

/** An envelope as read back from a journal, with its stream position. */
export interface Stored {
  readonly seq: number
  readonly subject: string
  readonly envelope: Envelope
  readonly event: Event
}

/** Decodes raw journal bytes into a typed event; unknown (type, version) pairs and bad payloads fail loudly. */
export const decode = (
  subject: string,
  seq: number,
  data: string
): Effect.Effect<Stored, UnknownEventVersion | CorruptEvent> =>
  Effect.gen(function*() {
    const envelope = yield* Schema.decodeUnknownEffect(EnvelopeJson)(data).pipe(
      Effect.mapError((e) => new CorruptEvent({ subject, seq, reason: Issues.toText(e.issue) }))
    )
    const codec = registry[envelope.type]?.[envelope.version]
    if (codec === undefined) {
      return yield* new UnknownEventVersion({ type: envelope.type, version: envelope.version, subject })
    }
    const payload = envelope.payload !== null && typeof envelope.payload === "object" ? envelope.payload : {}
    const event = yield* Schema.decodeUnknownEffect(codec)({ ...payload, _tag: envelope.type }).pipe(
      Effect.mapError((e) => new CorruptEvent({ subject, seq, reason: Issues.toText(e.issue) }))
    )
    return { seq, subject, envelope, event }
  })

/** The payload stored for an event: its fields without the `_tag`, which lives in the envelope's `type`. */
export const payloadOf = (event: Event): Record<string, unknown> => {
  const { _tag, ...rest } = event as Event & Record<string, unknown>
  return rest
}
