// Ordered consumers that notice when their server went away. The client does not always recover an ordered
// consumer whose server died (a restarted single server, a cluster node that held it): it may wait forever
// or report missed heartbeats forever. Here the iterator is stopped on missed heartbeats or on a reconnect,
// so the caller subscribes again from the last sequence it saw.
import {
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  type JsMsg,
  type OrderedConsumerOptions
} from "@nats-io/jetstream"
import type { NatsConnection } from "@nats-io/transport-node"
import { Effect, Queue, Stream } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { Nats, unavailable } from "./Nats.ts"

/** How long one pull waits on the server: short, so a consumer lost with its server is noticed quickly. */
export const PULL_EXPIRES_MS = 5_000

/** What `stop` lets go of beside the consumer: the watch of the connection's status `consume` keeps. */
const releases = new WeakMap<ConsumerMessages, () => void>()

/**
 * Stops what `consume` started, at once. Not `close()`: it resolves when the client's iterator reaches the stop it
 * queues behind the messages it already pulled, and a reader that ended early (interrupted, or took what it
 * wanted) may never get there: awaiting it hung the task index's shutdown for ever.
 */
export const stop = (messages: ConsumerMessages): void => {
  messages.stop()
  releases.get(messages)?.()
}

/**
 * An ordered consumer of `stream` with its pulls of `maxMessages` under way: an iterator of its messages, or, given
 * `callback`, each message handed to it as the connection reads it (the iterator then yields nothing).
 */
export const consume = async (
  nc: NatsConnection,
  stream: string,
  options: Partial<OrderedConsumerOptions>,
  maxMessages: number,
  callback?: (m: JsMsg) => void
): Promise<ConsumerMessages> => {
  const messages = await (await jetstream(nc).consumers.get(stream, options)).consume({
    max_messages: maxMessages,
    expires: PULL_EXPIRES_MS,
    ...(callback === undefined ? {} : { callback })
  })
  void (async () => {
    for await (const s of messages.status()) {
      if (s.type === "heartbeats_missed") {
        messages.stop()
        return
      }
    }
  })().catch(() => undefined)
  const statuses = nc.status()[Symbol.asyncIterator]()
  const release = () => void statuses.return?.()
  releases.set(messages, release)
  void messages.closed().then(release, release)
  void (async () => {
    for (let s = await statuses.next(); !s.done; s = await statuses.next()) {
      if (s.value.type === "reconnect") {
        messages.stop()
        return
      }
    }
  })().catch(() => undefined)
  return messages
}

/** A stored message as a reader sees it. */
export interface Message {
  readonly subject: string
  readonly seq: number
  /** The payload as UTF-8 text. */
  readonly string: () => string
}

/**
 * The whole stream's messages from sequence `from` on, in order, through an ordered consumer (`consume`): it ends
 * on missed heartbeats or a reconnect, and the reader subscribes again from where it got to. (nats-server 2.9
 * placed new consumers on dead cluster nodes, so creates had a short timeout and a fallback through the stream
 * leader; 2.12+ places them on live peers, ADR 0031.) `reader` names the reader in errors and logs.
 */
export const fromSeq = (
  stream: string,
  from: number,
  maxMessages: number,
  reader: string
): Stream.Stream<Message, BusUnavailable, Nats> =>
  // The messages are handed over as the connection reads them, and each pull of the stream takes every one that
  // arrived since the last (Stream.callback): one hand-over per chunk, not per message. A fiber waiting on an
  // effect queue is woken through the scheduler's next setImmediate, a turn of the event loop, which on a busy
  // host (200 runs in flight) is tens of milliseconds: a message at a time, a projector fell behind by thousands.
  Stream.callback<Message, BusUnavailable, Nats>((queue) =>
    Effect.gen(function*() {
      const { nc } = yield* Nats
      const what = `consume ${stream} for ${reader}`
      const messages = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            consume(
              nc,
              stream,
              from <= 1
                ? { deliver_policy: DeliverPolicy.All }
                : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from },
              maxMessages,
              (m) => void Queue.offerUnsafe(queue, m)
            ),
          catch: unavailable(what)
        }),
        (messages) => Effect.sync(() => stop(messages))
      )
      // stopped (missed heartbeats, a reconnect, the connection closed): the stream ends, or fails with the reason
      const error = yield* Effect.promise(() => messages.closed())
      if (error instanceof Error) return yield* Effect.fail(unavailable(what)(error))
      yield* Queue.end(queue)
    })
  )
