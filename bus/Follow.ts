// Following one journal with no consumer on the bus (ADR 0074): the journal is read once, then each event this
// process appends comes from the tap as its append is acknowledged, and anything else wakes a read.
import type { NatsConnection } from "@nats-io/nats-core"
import { Effect, Queue, Stream } from "effect"
import type * as Envelope from "../schema/Envelope.ts"
import type { BusUnavailable } from "../schema/Errors.ts"
import * as Tap from "./Tap.ts"

/** How long a follower waits with no news before it asks the bus whether its journal grew (a safety net). */
export const IDLE_CHECK_MS = 5_000

/** The journal's reads a follower makes, failing with `E` (Journal's ReadError). */
export interface Reads<E extends { readonly _tag: string }> {
  /** The events after `afterSeq` one read gets at once: all of them, or on a lagging replica some first ones. */
  readonly available: (address: Envelope.ActorAddress, afterSeq: number) => Effect.Effect<
    ReadonlyArray<Envelope.Stored>,
    E | BusUnavailable
  >
  /** The events after `afterSeq` up to the last one the stream leader has, retried while the bus is briefly away. */
  readonly upToLeader: (
    address: Envelope.ActorAddress,
    afterSeq: number
  ) => Effect.Effect<{ readonly events: ReadonlyArray<Envelope.Stored> }, E | BusUnavailable>
  readonly decode: (tapped: Tap.Tapped) => Effect.Effect<Envelope.Stored, E>
}

/**
 * The journal at `subject` from after `afterSeq` on, then live, never ending by itself. The follower listens to
 * the tap and to the subject itself (core NATS, no stream state on the server) before it reads, so nothing
 * appended meanwhile is missed: an event from the tap that follows the last one delivered is delivered as it is;
 * a gap, a message on the subject that this process did not append, a reconnect or a quiet IDLE_CHECK_MS makes it
 * read the journal through the stream leader from the last event it delivered. Each event is delivered once, in
 * order.
 */
export const live = <E extends { readonly _tag: string }>(
  nc: NatsConnection,
  tap: Tap.Tap,
  reads: Reads<E>,
  address: Envelope.ActorAddress,
  subject: string,
  afterSeq: number
): Stream.Stream<Envelope.Stored, E | BusUnavailable> =>
  Stream.callback<Envelope.Stored, E | BusUnavailable>((out) =>
    Effect.gen(function*() {
      const signals = yield* Queue.unbounded<Tap.Signal>()
      const push = (signal: Tap.Signal) => void Queue.offerUnsafe(signals, signal)
      yield* Effect.acquireRelease(
        Effect.sync(() => tap.listen(subject, push)),
        (stop) => Effect.sync(stop)
      )
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          nc.subscribe(subject, {
            callback: (err, m) => {
              if (err !== null || !tap.isOwn(m.headers)) push(Tap.WAKE)
            }
          })
        ),
        (sub) => Effect.sync(() => sub.unsubscribe())
      )
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const statuses = nc.status()[Symbol.asyncIterator]()
          void (async () => {
            for (let s = await statuses.next(); !s.done; s = await statuses.next()) {
              // what was published while the connection was away never reached the subscription
              if (s.value.type === "reconnect") push(Tap.WAKE)
            }
          })().catch(() => undefined)
          return statuses
        }),
        (statuses) => Effect.sync(() => void statuses.return?.())
      )

      let last = afterSeq
      const deliver = (stored: Envelope.Stored) =>
        stored.seq > last
          ? Effect.andThen(Queue.offer(out, stored), Effect.sync(() => (last = stored.seq)))
          : Effect.void
      const deliverAll = (events: ReadonlyArray<Envelope.Stored>) => Effect.forEach(events, deliver, { discard: true })
      const catchUp = Effect.suspend(() => reads.upToLeader(address, last)).pipe(
        Effect.flatMap((tail) => deliverAll(tail.events))
      )

      const handle = (batch: ReadonlyArray<Tap.Signal>) =>
        Effect.gen(function*() {
          let gap = false
          for (const signal of batch) {
            if (signal._tag === "Wake") gap = true
            else if (signal.tapped.seq <= last) continue
            else if (signal.tapped.prev === last && !gap) yield* deliver(yield* reads.decode(signal.tapped))
            else gap = true
          }
          if (gap) yield* catchUp
        })

      const run = Effect.gen(function*() {
        yield* Effect.suspend(() => reads.available(address, last)).pipe(
          Effect.flatMap(deliverAll),
          Effect.catchTag("BusUnavailable", () => catchUp)
        )
        for (;;) {
          const batch = yield* Queue.takeAll(signals).pipe(Effect.timeoutOption(IDLE_CHECK_MS))
          yield* batch._tag === "Some" ? handle(batch.value) : catchUp
        }
      })
      yield* run.pipe(
        Effect.catch((e) => Queue.fail(out, e)),
        Effect.forkScoped
      )
    })
  )
