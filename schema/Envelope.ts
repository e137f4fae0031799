// The envelope every stored event travels in: identity, tenant, actor address, causation and correlation,
// trace context, time and idempotency key around a versioned payload.
import { Effect, Exit, Schema } from "effect"
import { CorruptEvent, UnknownEventVersion } from "./Errors.ts"
import { type Event, registry } from "./Events.ts"
import * as Issues from "./Issues.ts"

const ACTOR_TYPES = [
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
] as const
export const ActorType = Schema.Literals(ACTOR_TYPES)
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

/**
 * An envelope as the journal's JSON text, exactly as `Schema.encodeSync(EnvelopeJson)` writes it (the schema's
 * fields in its order, the payload as it is) without walking the schema: every append encodes each of its events.
 */
export const encodeJson = (e: Envelope): string =>
  JSON.stringify({
    eventId: e.eventId,
    type: e.type,
    version: e.version,
    tenant: e.tenant,
    actor: { type: e.actor.type, tenant: e.actor.tenant, id: e.actor.id },
    causationId: e.causationId,
    correlationId: e.correlationId,
    traceparent: e.traceparent,
    at: e.at,
    idempotencyKey: e.idempotencyKey,
    payload: e.payload
  })

/** The schema's decoder, for the slow path: it says what is wrong with an envelope. */
const decodeEnvelope = Schema.decodeUnknownEffect(EnvelopeJson)

/** Each event codec's decoder, made once (a decoder is a closure over the codec's compiled parser). */
const payloadDecoders = new Map<Schema.Codec<Event, unknown>, (input: unknown) => Exit.Exit<Event, unknown>>()
const payloadDecoderOf = (codec: Schema.Codec<Event, unknown>) => {
  let decoder = payloadDecoders.get(codec)
  if (decoder === undefined) {
    decoder = Schema.decodeUnknownExit(codec)
    payloadDecoders.set(codec, decoder)
  }
  return decoder
}

const actorTypes: ReadonlySet<unknown> = new Set(ACTOR_TYPES)
const isString = (u: unknown): u is string => typeof u === "string"
const isNullOrString = (u: unknown): u is string | null => u === null || typeof u === "string"

/**
 * The envelope in `o` when it plainly has the schema's shape, built as the schema's decoder builds it (a fresh
 * object of the schema's fields); undefined when it does not, for the schema to say why.
 */
const envelopeOf = (o: unknown): Envelope | undefined => {
  if (o === null || typeof o !== "object" || Array.isArray(o)) return undefined
  const e = o as Record<string, unknown>
  const a = e["actor"] as Record<string, unknown> | null | undefined
  if (
    !isString(e["eventId"]) || !isString(e["type"]) || !Number.isSafeInteger(e["version"]) ||
    !isString(e["tenant"]) || a === null || typeof a !== "object" || Array.isArray(a) ||
    !actorTypes.has(a["type"]) || !isString(a["tenant"]) || !isString(a["id"]) ||
    !isNullOrString(e["causationId"]) || !isString(e["correlationId"]) || !isNullOrString(e["traceparent"]) ||
    !isString(e["at"]) || !isString(e["idempotencyKey"]) || !("payload" in e)
  ) return undefined
  return {
    eventId: e["eventId"],
    type: e["type"],
    version: e["version"] as number,
    tenant: e["tenant"],
    actor: { type: a["type"] as ActorType, tenant: a["tenant"], id: a["id"] },
    causationId: e["causationId"],
    correlationId: e["correlationId"],
    traceparent: e["traceparent"],
    at: e["at"],
    idempotencyKey: e["idempotencyKey"],
    payload: e["payload"]
  }
}

/**
 * The stored event of well-formed journal bytes, decoded without an effect: undefined for anything else (bad
 * JSON, an envelope or payload the schemas refuse, an unknown type or version), which `decode` then decodes
 * through the schemas to say what is wrong. Every projected and every read event passes here.
 */
const decodeWellFormed = (subject: string, seq: number, data: string): Stored | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    return undefined
  }
  const envelope = envelopeOf(parsed)
  if (envelope === undefined) return undefined
  const codec = registry[envelope.type]?.[envelope.version]
  if (codec === undefined) return undefined
  const payload = envelope.payload !== null && typeof envelope.payload === "object" ? envelope.payload : {}
  const event = payloadDecoderOf(codec)({ ...payload, _tag: envelope.type })
  return Exit.isSuccess(event) ? { seq, subject, envelope, event: event.value } : undefined
}

/**
 * How many events `decode` keeps: about 1.5 s of a busy host's appends (250 runs/s of 5 events), so the projectors,
 * about a second behind under load (ADR 0081), still find them; some 10 MB.
 */
export const DECODED_KEPT = 2048

// the events decoded or appended lately, by subject and sequence, with their text: one event is read by each of its
// readers in this process (the follower of its journal from the tap, the projector from its consumer), each with
// the same text; a hit whose text differs (another stream's sequence) is decoded again
const decoded = new Map<string, { readonly data: string; readonly stored: Stored }>()

const keep = (key: string, data: string, stored: Stored) => {
  decoded.delete(key)
  decoded.set(key, { data, stored })
  if (decoded.size > DECODED_KEPT) decoded.delete(decoded.keys().next().value!)
}

/**
 * An event this process has just appended, typed as it decided it, with `text`, its journal text: `decode` of that
 * text at that position then answers it without decoding. (An event's schemas only check and copy: decoding its text
 * gives the same values, which Envelope.test checks on a run's events.)
 */
export const remember = (stored: Stored, text: string): void => keep(`${stored.seq} ${stored.subject}`, text, stored)

/** Decodes raw journal bytes into a typed event; unknown (type, version) pairs and bad payloads fail loudly. */
export const decode = (
  subject: string,
  seq: number,
  data: string
): Effect.Effect<Stored, UnknownEventVersion | CorruptEvent> => {
  const key = `${seq} ${subject}`
  const kept = decoded.get(key)
  if (kept !== undefined && kept.data === data) return Effect.succeed(kept.stored)
  const stored = decodeWellFormed(subject, seq, data)
  if (stored === undefined) return decodeThroughSchemas(subject, seq, data)
  keep(key, data, stored)
  return Effect.succeed(stored)
}

/** `decode` through the schemas alone, every time: what its quick path for well-formed events must agree with. */
export const decodeThroughSchemas = (
  subject: string,
  seq: number,
  data: string
): Effect.Effect<Stored, UnknownEventVersion | CorruptEvent> =>
  Effect.gen(function*() {
    const envelope = yield* decodeEnvelope(data).pipe(
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
