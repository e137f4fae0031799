// Journals are JetStream subjects, one per actor instance. Appends are optimistic (expected last subject
// sequence) and deduplicated (msgID = the event's idempotency key); reads decode every event, loudly.
import { DeliverPolicy, JetStreamApiError, type MsgRequest, PubHeaders } from "@nats-io/jetstream"
import { headers, type MsgHdrsImpl, type NatsConnection } from "@nats-io/nats-core"
import { Context, Effect, Layer, Schedule, Stream } from "effect"
import * as Envelope from "../schema/Envelope.ts"
import {
  AppendConflict,
  BusUnavailable,
  type CorruptEvent,
  EventTooLarge,
  type UnknownEventVersion
} from "../schema/Errors.ts"
import * as Follow from "./Follow.ts"
import { Nats, unavailable } from "./Nats.ts"
import * as Ordered from "./Ordered.ts"
import * as Retry from "./Retry.ts"
import * as Tap from "./Tap.ts"
import { streamOf } from "./Topology.ts"

export const subjectOf = (a: Envelope.ActorAddress): string => `lantern.${a.type}.${a.tenant}.${a.id}`

const WRONG_LAST_SEQUENCE = 10071

export type ReadError = BusUnavailable | UnknownEventVersion | CorruptEvent

export interface Appended {
  /** Stream sequence of the last appended event: the expected sequence of the next append. */
  readonly lastSeq: number
  /** Stream sequence of each appended event, in order. */
  readonly seqs: ReadonlyArray<number>
  /** How many of the events were already in the journal (a re-sent append the duplicate window dropped). */
  readonly duplicates: number
  /** Each event's journal text as published, in order (what a reader of the stream gets). */
  readonly texts: ReadonlyArray<string>
}

/** The end of an instance's journal: the events after some sequence, and where the journal ends. */
export interface Tail {
  /** Stream sequence of the instance's last event, 0 when it has none. */
  readonly lastSeq: number
  readonly events: ReadonlyArray<Envelope.Stored>
}

export interface Service {
  /**
   * Appends events to one actor's journal, each expecting the previous one to be last on the subject, the
   * first expecting `expectedSeq` (0 = the subject must be empty).
   */
  readonly append: (
    address: Envelope.ActorAddress,
    envelopes: ReadonlyArray<Envelope.Envelope>,
    expectedSeq: number
  ) => Effect.Effect<Appended, AppendConflict | BusUnavailable | EventTooLarge>
  /** Every event of one actor instance, in order. */
  readonly read: (address: Envelope.ActorAddress) => Effect.Effect<ReadonlyArray<Envelope.Stored>, ReadError>
  /**
   * The instance's events after stream sequence `afterSeq`, in order (a snapshot's tail). A `lastSeq` below
   * `afterSeq` means the journal does not reach that far: the sequence belongs to another journal.
   */
  readonly readFrom: (address: Envelope.ActorAddress, afterSeq: number) => Effect.Effect<Tail, ReadError>
  /** The stream sequence of the last event of an actor instance, 0 when it has none. */
  readonly lastSeq: (address: Envelope.ActorAddress) => Effect.Effect<number, BusUnavailable>
  /**
   * Whether the instance has an event: without a request when this process appended to it lately (journals are
   * never deleted), else by its last sequence.
   */
  readonly exists: (address: Envelope.ActorAddress) => Effect.Effect<boolean, BusUnavailable>
  /** The instance's events from `afterSeq` on, then live as they are appended. Never ends by itself. */
  readonly follow: (address: Envelope.ActorAddress, afterSeq: number) => Stream.Stream<Envelope.Stored, ReadError>
}

const utf8 = new TextEncoder()

/** The largest stream sequence (2^64 - 1): the longest value the expected-sequence header can take. */
const LONGEST_SEQ = "18446744073709551615"

/** The headers an append of `envelope` publishes with: ours, and the two JetStream reads (dedupe, OCC). */
const headersOf = (envelope: Envelope.Envelope, expected: string): MsgHdrsImpl => {
  const h = headers() as MsgHdrsImpl
  h.set("Lantern-Event-Type", envelope.type)
  if (envelope.traceparent !== null) h.set("traceparent", envelope.traceparent)
  // js.publish sets these two itself from msgID and expect; setting them here too makes `h` the exact header
  // block that goes on the wire
  h.set(PubHeaders.MsgIdHdr, envelope.idempotencyKey)
  h.set(PubHeaders.ExpectedLastSubjectSequenceHdr, expected)
  return h
}

/** Bytes of one `name: value` line of a header block (the client writes `\r\nname: value` for each). */
const lineBytes = (name: string, value: string) => 4 + name.length + Buffer.byteLength(value, "utf8")

/**
 * Bytes of the header block `headersOf(envelope, expected)` encodes to ("NATS/1.0", a line per header, a blank
 * line), counted without building it: every append measures its messages before publishing them.
 */
const headerBytes = (envelope: Envelope.Envelope, expected: string): number =>
  12 + lineBytes("Lantern-Event-Type", envelope.type) +
  (envelope.traceparent === null ? 0 : lineBytes("traceparent", envelope.traceparent)) +
  lineBytes(PubHeaders.MsgIdHdr, envelope.idempotencyKey) +
  lineBytes(PubHeaders.ExpectedLastSubjectSequenceHdr, expected)

/** An envelope encoded once, to be measured and then published. */
interface Message {
  readonly envelope: Envelope.Envelope
  /** The journal bytes, and the same as text (what this process's followers decode, ADR 0074). */
  readonly text: string
  readonly data: Uint8Array
}

const messageOf = (envelope: Envelope.Envelope): Message => {
  const text = Envelope.encodeJson(envelope)
  return { envelope, text, data: utf8.encode(text) }
}

/**
 * Bytes an append puts on the bus, counted as the client counts them against the server's `max_payload`
 * (payload and header block). Measured with the longest expected sequence, so whether an event fits does not
 * depend on how far its stream has come.
 */
const sizeOfMessage = (m: Message): number => m.data.length + headerBytes(m.envelope, LONGEST_SEQ)

/** The header block an append of `envelope` expecting `expected` publishes (what `headerBytes` counts). */
export const encodedHeaders = (envelope: Envelope.Envelope, expected: string): Uint8Array =>
  headersOf(envelope, expected).encode()

/** Bytes an append of `envelope` puts on the bus (see `checkSizes`). */
export const sizeOf = (envelope: Envelope.Envelope): number => sizeOfMessage(messageOf(envelope))

/** The largest message the connected server accepts, or null while the connection knows no server. */
export const limitOf = (nc: NatsConnection): number | null => nc.info?.max_payload ?? null

/**
 * Fails with EventTooLarge when one of `envelopes` cannot fit in a message of the bus: an append that can
 * never succeed, refused before anything is published (nothing of the batch is appended).
 */
export const checkSizes = (
  nc: NatsConnection,
  envelopes: ReadonlyArray<Envelope.Envelope>
): Effect.Effect<void, EventTooLarge> => Effect.suspend(() => checkMessages(nc, envelopes.map(messageOf)))

const checkMessages = (nc: NatsConnection, messages: ReadonlyArray<Message>): Effect.Effect<void, EventTooLarge> => {
  const limit = limitOf(nc)
  if (limit === null) return Effect.void // not connected: the publish waits for a server, and the client checks then
  for (const m of messages) {
    const size = sizeOfMessage(m)
    if (size > limit) return Effect.fail(new EventTooLarge({ size, limit }))
  }
  return Effect.void
}

/**
 * Whether a foreign error says the message was over the payload limit: the client's own check
 * ("'payload' max_payload size exceeded") or the server's ("Maximum Payload Violation").
 */
const isMaxPayload = (e: unknown): boolean => {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 4; c = c.cause, depth++) {
    if (/max(imum)?[ _]payload/i.test(c.message)) return true
  }
  return false
}

/** Bounded retry for a bus that is briefly away (reconnecting, leader election): about 30 s in all. */
export const busRetry = Schedule.min([Schedule.exponential("100 millis", 1.5), Schedule.spaced("3 seconds")])
export const BUS_RETRIES = 20

/** The failures busRetry is for: the bus away, never an answer it gave. */
export const isBusUnavailable = (e: { readonly _tag: string }): boolean => e._tag === "BusUnavailable"

export class Journal extends Context.Service<Journal, Service>()("lantern/bus/Journal") {
  static readonly layer = Layer.effect(
    Journal,
    Effect.gen(function*() {
      const { js, jsm, nc } = yield* Nats
      const tap = Tap.make()

      // only BusUnavailable is retried here: an EventTooLarge can never succeed, an AppendConflict needs a reload
      const publishOne = (subject: string, m: Message, expected: number) =>
        Effect.tryPromise({
          try: async () => {
            tap.sending(m.envelope.idempotencyKey)
            try {
              return await js.publish(subject, m.data, {
                msgID: m.envelope.idempotencyKey,
                expect: { lastSubjectSequence: expected },
                headers: headersOf(m.envelope, String(expected))
              })
            } finally {
              tap.settled(m.envelope.idempotencyKey)
            }
          },
          catch: (e): AppendConflict | BusUnavailable | EventTooLarge =>
            e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE
              ? new AppendConflict({ subject, expected })
              : isMaxPayload(e)
              ? new EventTooLarge({ size: sizeOfMessage(m), limit: limitOf(nc) ?? sizeOfMessage(m) - 1 })
              : unavailable(`append to ${subject}`)(e)
        }).pipe(
          (e) => Retry.afterFailure(e, { schedule: busRetry, times: BUS_RETRIES, while: isBusUnavailable }),
          // the message a client may see names no subject (BusUnavailable hides it): the log keeps it
          Effect.tapError((e) =>
            e._tag === "BusUnavailable"
              ? Effect.logWarning(`append to ${subject} failed after retries: ${e.reason}`)
              : Effect.void
          )
        )

      /**
       * After a wrong-last-sequence answer: whether the message that follows `expected` on the subject is this one
       * (same Nats-Msg-Id), appended by an earlier try whose ack was lost. nats-server >= 2.12 checks the expected
       * sequence before the duplicate window, so a re-sent append is answered as a conflict, not as a duplicate.
       */
      const alreadyAppended = (stream: string, subject: string, m: Message, expected: number) =>
        Effect.tryPromise({
          try: () =>
            // the stream API takes next_by_subj with seq (the first message of the subject at or after it); the
            // client types only list it for direct gets
            jsm.streams.getMessage(stream, { seq: expected + 1, next_by_subj: subject } as { seq: number }),
          catch: unavailable(`read back ${subject}`)
        }).pipe(
          Effect.flatMap((stored) =>
            stored !== null && stored.header?.get("Nats-Msg-Id") === m.envelope.idempotencyKey
              ? Effect.succeed({ seq: stored.seq, duplicate: true })
              : Effect.fail(new AppendConflict({ subject, expected }))
          )
        )

      const append: Service["append"] = (address, envelopes, expectedSeq) =>
        Effect.gen(function*() {
          const subject = subjectOf(address)
          const messages = envelopes.map(messageOf)
          yield* checkMessages(nc, messages)
          let expected = expectedSeq
          let duplicates = 0
          const seqs: Array<number> = []
          for (const m of messages) {
            const ack = yield* publishOne(subject, m, expected).pipe(
              Effect.catchTag("AppendConflict", (conflict) =>
                Effect.catchTag(
                  alreadyAppended(streamOf[address.type], subject, m, expected),
                  "AppendConflict",
                  () => Effect.fail(conflict)
                )),
              // followers here get the event now, whatever happens to this fiber next; they read the journal for a
              // re-sent one (stored before, in an order they do not know) and after a failure or an interruption
              // (the message may be stored, and they took it on the bus for one of ours)
              Effect.onExit((exit) =>
                Effect.sync(() =>
                  exit._tag === "Success" && !exit.value.duplicate
                    ? tap.appended({ subject, prev: expected, seq: exit.value.seq, text: m.text })
                    : tap.wake(subject)
                )
              )
            )
            if (ack.duplicate) duplicates++
            seqs.push(ack.seq)
            expected = ack.seq
          }
          return { lastSeq: expected, seqs, duplicates, texts: messages.map((m) => m.text) }
        }).pipe(
          Effect.withSpan("Journal.append", {
            attributes: { "lantern.actor": subjectOf(address), "lantern.events": envelopes.length }
          }, { captureStackTrace: false })
        )

      const lastSeq: Service["lastSeq"] = (address) =>
        Effect.tryPromise({
          try: async () => {
            // through the stream leader, not a direct get: with replicas, any replica may answer a direct get,
            // and a lagging one would hide the latest event (read-your-writes, and a needless OCC conflict)
            const m = await jsm.streams.getMessage(streamOf[address.type], { last_by_subj: subjectOf(address) })
            return m === null ? 0 : m.seq
          },
          catch: unavailable(`last sequence of ${subjectOf(address)}`)
        })

      /**
       * The subject's messages in (afterSeq, last], one STREAM.MSG.GET `next_by_subj` each, answered by the
       * stream leader: slower than a consumer's batches, but independent of where a consumer would be placed.
       * (nats.js types the request without `next_by_subj`, which nats-server accepts since 2.9.)
       */
      const readThroughLeader = async (stream: string, subject: string, afterSeq: number, last: number) => {
        const out: Array<{ seq: number; subject: string; data: string }> = []
        for (let seq = afterSeq + 1; seq <= last;) {
          const m = await jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as unknown as MsgRequest)
          if (m === null || m.seq > last) throw new Error(`journal ${subject} ended before sequence ${last}`)
          out.push({ seq: m.seq, subject: m.subject, data: m.string() })
          seq = m.seq + 1
        }
        return out
      }

      /** The subject's messages after `afterSeq` (up to `last`) that one batched direct get answers with. */
      const directBatch = async (stream: string, subject: string, afterSeq: number, last = Infinity) => {
        const out: Array<{ seq: number; subject: string; data: string }> = []
        const batch = await jsm.direct.getBatch(stream, { seq: afterSeq + 1, next_by_subj: subject, batch: 10_000 })
        for await (const m of batch) {
          if (m.seq > last) break
          out.push({ seq: m.seq, subject: m.subject, data: m.string() })
        }
        return out
      }

      /** The subject's messages in (afterSeq, last] by one batched direct get; null when it cannot give them all. */
      const readDirect = (stream: string, subject: string, afterSeq: number, last: number) =>
        directBatch(stream, subject, afterSeq, last).then(
          (out) => out.length > 0 && out[out.length - 1]!.seq === last ? out : null,
          () => null
        )

      const decodeAll = (raw: ReadonlyArray<{ seq: number; subject: string; data: string }>) =>
        Effect.forEach(raw, (m) => Envelope.decode(m.subject, m.seq, m.data))

      const readFrom: Service["readFrom"] = (address, afterSeq) =>
        Effect.gen(function*() {
          const subject = subjectOf(address)
          const last = yield* lastSeq(address)
          if (last <= afterSeq) return { lastSeq: last, events: [] }
          // one batched direct get (nats-server >= 2.11) reads the whole journal in one request; any replica may
          // answer it, so it counts only when it reaches `last`, which the stream leader gave
          const direct = yield* Effect.promise(() => readDirect(streamOf[address.type], subject, afterSeq, last))
          if (direct !== null) return { lastSeq: last, events: yield* decodeAll(direct) }
          // a replica behind the leader answered: once more (it catches up in moments), then through the leader
          const again = yield* Effect.promise(() => readDirect(streamOf[address.type], subject, afterSeq, last))
          if (again !== null) return { lastSeq: last, events: yield* decodeAll(again) }
          const raw = yield* Effect.tryPromise({
            try: () => readThroughLeader(streamOf[address.type], subject, afterSeq, last),
            catch: unavailable(`read ${subject}`)
          })
          return { lastSeq: last, events: yield* decodeAll(raw) }
        }).pipe(
          Effect.withSpan("Journal.read", {
            attributes: { "lantern.actor": subjectOf(address), "lantern.after_seq": afterSeq }
          }, { captureStackTrace: false })
        )

      const read: Service["read"] = (address) => Effect.map(readFrom(address, 0), (tail) => tail.events)

      /** What one batched direct get has after `afterSeq` (a lagging replica may have fewer: see Follow). */
      const available = (address: Envelope.ActorAddress, afterSeq: number) =>
        Effect.tryPromise({
          try: () => directBatch(streamOf[address.type], subjectOf(address), afterSeq),
          catch: unavailable(`read ${subjectOf(address)}`)
        }).pipe(Effect.flatMap(decodeAll))

      const reads: Follow.Reads<ReadError> = {
        available,
        upToLeader: (address, afterSeq) =>
          readFrom(address, afterSeq).pipe(
            (e) => Retry.afterFailure(e, { schedule: busRetry, times: BUS_RETRIES, while: isBusUnavailable })
          ),
        decode: (t) => Envelope.decode(t.subject, t.seq, t.text)
      }

      // a wildcard address (every run of a tenant, say) is followed by an ordered consumer; when it stops (its
      // server went away) the next one starts after the last event delivered, so a follower never misses or
      // repeats an event
      const followMany = (
        address: Envelope.ActorAddress,
        afterSeq: number
      ): Stream.Stream<Envelope.Stored, ReadError> =>
        Stream.suspend(() => {
          let last = afterSeq
          const subscription = Stream.unwrap(
            Effect.tryPromise({
              try: () =>
                Ordered.consume(nc, streamOf[address.type], {
                  filter_subjects: subjectOf(address),
                  ...(afterSeq > 0
                    ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 }
                    : { deliver_policy: DeliverPolicy.All })
                }, 256),
              catch: unavailable(`follow ${subjectOf(address)}`)
            }).pipe(
              Effect.map((messages) =>
                Stream.fromAsyncIterable(messages, unavailable(`follow ${subjectOf(address)}`)).pipe(
                  Stream.mapEffect((m) => Envelope.decode(m.subject, m.seq, m.string())),
                  Stream.tap((stored) => Effect.sync(() => (last = stored.seq))),
                  Stream.ensuring(Effect.sync(() => Ordered.stop(messages)))
                )
              )
            )
          )
          return Stream.concat(subscription, Stream.suspend(() => followMany(address, last)))
        })

      const follow: Service["follow"] = (address, afterSeq) => {
        const subject = subjectOf(address)
        return /[*>]/.test(subject)
          ? followMany(address, afterSeq)
          : Follow.live(nc, tap, reads, address, subject, afterSeq)
      }

      const exists: Service["exists"] = (address) =>
        tap.hasAppended(subjectOf(address)) ? Effect.succeed(true) : Effect.map(lastSeq(address), (last) => last > 0)

      return Journal.of({ append, read, readFrom, lastSeq, exists, follow })
    })
  )
}
