// Durable JetStream consumers as Effect streams with explicit back-pressure: bounded concurrency, and every
// message acked, nak'ed or terminated in the scope of its handler. Long handlers keep their message with
// in-progress acks, so redelivery only happens when the host that held it is gone.
import { AckPolicy, type ConsumerConfig, DeliverPolicy, type JsMsg } from "@nats-io/jetstream"
import { nanos } from "@nats-io/nats-core"
import { Cause, Data, Duration, Effect, Fiber, Schedule, Stream } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { Nats, unavailable } from "./Nats.ts"

export interface Durable {
  readonly stream: string
  readonly durable: string
  readonly filterSubject?: string
  /** How long a delivered message may go without an ack or in-progress signal before redelivery. */
  readonly ackWait: Duration.Input
  readonly maxAckPending: number
  /** `all`: acking a message acks every earlier one (projectors); `explicit`: each its own (work queues). */
  readonly ackPolicy: "explicit" | "all"
  /** First stream sequence to deliver when the consumer is created; all messages when absent. */
  readonly startSeq?: number
}

/** What the handler decided for a message. */
export type Decision = Data.TaggedEnum<{
  Ack: {}
  Nak: { readonly delay: Duration.Input }
  Term: { readonly reason: string }
}>
export const Decision = Data.taggedEnum<Decision>()

/** A delivered message as a handler sees it: the handler decides, `run` acks, nak's or terminates. */
export interface Message {
  readonly subject: string
  /** Its sequence in the stream. */
  readonly seq: number
  /** 1 on the first delivery, counting up with each redelivery. */
  readonly deliveryCount: number
  readonly redelivered: boolean
  /** A header's value, undefined when the message has none (or an empty one). */
  readonly header: (name: string) => string | undefined
  /** The payload as UTF-8 text. */
  readonly text: () => string
  /** The payload's bytes, as published. */
  readonly data: Uint8Array
}

/** The handler's view of a JetStream message. */
export const messageOf = (m: JsMsg): Message => ({
  subject: m.subject,
  seq: m.seq,
  deliveryCount: m.info.deliveryCount,
  redelivered: m.info.redelivered,
  header: (name) => m.headers?.get(name) || undefined,
  text: () => m.string(),
  data: m.data
})

const configOf = (d: Durable): Partial<ConsumerConfig> => ({
  durable_name: d.durable,
  ack_policy: d.ackPolicy === "all" ? AckPolicy.All : AckPolicy.Explicit,
  ack_wait: nanos(Duration.toMillis(Duration.fromInputUnsafe(d.ackWait))),
  max_ack_pending: d.maxAckPending,
  ...(d.startSeq === undefined || d.startSeq <= 1
    ? { deliver_policy: DeliverPolicy.All }
    : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: d.startSeq }),
  ...(d.filterSubject === undefined ? {} : { filter_subject: d.filterSubject })
})

/** Creates the durable consumer, or updates its settings when it exists. Idempotent. */
export const ensure = (d: Durable) =>
  Effect.gen(function*() {
    const { jsm } = yield* Nats
    const config = configOf(d)
    yield* Effect.tryPromise({
      try: async () => {
        const existing = await jsm.consumers.info(d.stream, d.durable).catch(() => null)
        if (existing === null) await jsm.consumers.add(d.stream, config)
        else {
          const { durable_name: _, deliver_policy: __, opt_start_seq: ___, ...update } = config
          await jsm.consumers.update(d.stream, d.durable, update)
        }
      },
      catch: unavailable(`ensure consumer ${d.stream}/${d.durable}`)
    })
  })

/**
 * How long one pull waits on the server. A pull lives only on the consumer's leader: when that node dies, the
 * client notices only after two missed idle heartbeats (half of this each) and then pulls again from the new
 * leader. With the client's default of 30 s, a dead leader stopped deliveries for 30 to 45 s.
 */
export const PULL_EXPIRES_MS = 5_000

/** The consumer's messages as a stream; notifications (missed heartbeats, deleted consumer) are logged. */
export const messages = (d: Durable, batch = 256): Stream.Stream<JsMsg, BusUnavailable, Nats> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const { js } = yield* Nats
      yield* ensure(d)
      const iter = yield* Effect.tryPromise({
        try: async () =>
          (await js.consumers.get(d.stream, d.durable)).consume({ max_messages: batch, expires: PULL_EXPIRES_MS }),
        catch: unavailable(`consume ${d.stream}/${d.durable}`)
      })
      const statusFiber = yield* Effect.forkDetach(
        Stream.fromAsyncIterable(iter.status(), unavailable("consumer status")).pipe(
          Stream.runForEach((s) =>
            s.type === "heartbeats_missed" || s.type === "consumer_deleted" || s.type === "consumer_not_found" ||
              s.type === "stream_not_found"
              ? Effect.logWarning(`consumer ${d.stream}/${d.durable}: ${s.type}`)
              : Effect.void
          ),
          Effect.ignore
        )
      )
      return Stream.fromAsyncIterable(iter, unavailable(`consume ${d.stream}/${d.durable}`)).pipe(
        Stream.ensuring(
          Effect.andThen(
            Fiber.interrupt(statusFiber),
            // stop, not close (bus/Ordered.ts `stop`): close() may wait for ever on a reader that ended early
            Effect.sync(() => iter.stop())
          )
        )
      )
    })
  )

/**
 * Runs `handler` over the consumer's messages with at most `concurrency` in flight. A handler failure or
 * defect is logged and the message nak'ed with a delay (redelivered later), never silently acked. Every
 * message this host holds, running or still waiting in the client's buffer, is kept with in-progress acks,
 * so the server redelivers only what a dead host held.
 */
export const run = <E, R>(
  d: Durable,
  concurrency: number,
  handler: (m: Message) => Effect.Effect<Decision, E, R>
): Effect.Effect<void, BusUnavailable, R | Nats> =>
  Effect.gen(function*() {
    const held = new Set<JsMsg>()
    const every = Duration.toMillis(Duration.fromInputUnsafe(d.ackWait)) / 3
    yield* Effect.forkScoped(
      Effect.repeat(Effect.sync(() => held.forEach((m) => m.working())), Schedule.spaced(Duration.millis(every)))
    )
    yield* messages(d, concurrency).pipe(
      Stream.tap((m) => Effect.sync(() => held.add(m))),
      Stream.mapEffect(
        (m) =>
          handler(messageOf(m)).pipe(
            Effect.catchCause((cause) =>
              Cause.hasInterruptsOnly(cause)
                ? Effect.failCause(cause)
                : Effect.as(
                  Effect.logError(
                    `handler for ${m.subject} #${m.seq} failed; will be redelivered`,
                    Cause.pretty(cause)
                  ),
                  Decision.Nak({ delay: "1 second" })
                )
            ),
            Effect.tap((decision) =>
              Effect.sync(() =>
                Decision.$match(decision, {
                  Ack: () => m.ack(),
                  Nak: ({ delay }) => m.nak(Duration.toMillis(Duration.fromInputUnsafe(delay))),
                  Term: () => m.term()
                })
              )
            ),
            Effect.ensuring(Effect.sync(() => held.delete(m)))
          ),
        { concurrency, unordered: true }
      ),
      Stream.runDrain
    )
  }).pipe(Effect.scoped) as Effect.Effect<void, BusUnavailable, R | Nats>
