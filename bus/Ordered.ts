// Ordered consumers that notice when their server went away. The client does not always recover an ordered
// consumer whose server died (a restarted single server, a cluster node that held it): it may wait forever
// or report missed heartbeats forever. Here the iterator is stopped on missed heartbeats or on a reconnect,
// so the caller subscribes again from the last sequence it saw.
import {
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  type OrderedConsumerOptions
} from "@nats-io/jetstream"
import { errors } from "@nats-io/nats-core"
import type { NatsConnection } from "@nats-io/transport-node"
import { Effect, Stream } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { Nats, unavailable } from "./Nats.ts"

/** How long one pull waits on the server: short, so a consumer lost with its server is noticed quickly. */
export const PULL_EXPIRES_MS = 5_000

/**
 * How long creating an ordered consumer may take before the caller gives up and tries again. nats-server 2.9
 * places a new one-replica consumer on any peer of the stream, a dead node included (a node that crashed is
 * not taken for offline): the create then never gets an answer, and about one create in three waited out the
 * client's whole 10 s API timeout while a node of a three-node cluster was down. Elsewhere a create takes
 * milliseconds, so a failed one is noticed early and the next try is placed again.
 */
export const CREATE_TIMEOUT_MS = 2_000

/** A JetStream client for ordered consumers: creating one (and recreating it on a gap) gives up after CREATE_TIMEOUT_MS. */
export const client = (nc: NatsConnection): JetStreamClient => jetstream(nc, { timeout: CREATE_TIMEOUT_MS })

export const consume = async (
  nc: NatsConnection,
  stream: string,
  options: Partial<OrderedConsumerOptions>,
  maxMessages: number
): Promise<ConsumerMessages> => {
  const messages = await (await client(nc).consumers.get(stream, options)).consume({
    max_messages: maxMessages,
    expires: PULL_EXPIRES_MS
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
  void messages.closed().then(() => statuses.return?.(), () => statuses.return?.())
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

/** The stream's messages from `from` to its last one now, one get each through the stream leader (no consumer). */
const throughLeader = (jsm: JetStreamManager, stream: string, from: number): AsyncIterable<Message> => ({
  async *[Symbol.asyncIterator]() {
    const last = (await jsm.streams.info(stream)).state.last_seq
    for (let seq = from; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq })
      if (m !== null) yield m
    }
  }
})

/**
 * The whole stream's messages from sequence `from` on, in order, through an ordered consumer (`consume`): it ends
 * on missed heartbeats or a reconnect, and the reader subscribes again from where it got to. When no consumer
 * can be created in time (CREATE_TIMEOUT_MS: while a node is down, nats-server 2.9 places a share of new
 * consumers on it), the messages up to the stream's last one now are read one by one through the stream
 * leader instead, which needs no consumer, and the stream ends there too. `reader` names the reader in errors
 * and logs.
 */
export const fromSeq = (
  stream: string,
  from: number,
  maxMessages: number,
  reader: string
): Stream.Stream<Message, BusUnavailable, Nats> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const { nc, jsm } = yield* Nats
      const messages = yield* Effect.tryPromise({
        try: () =>
          consume(
            nc,
            stream,
            from <= 1
              ? { deliver_policy: DeliverPolicy.All }
              : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from },
            maxMessages
          ).catch((e: unknown) => e instanceof errors.TimeoutError ? null : Promise.reject(e)),
        catch: unavailable(`consume ${stream} for ${reader}`)
      })
      if (messages === null) {
        yield* Effect.logWarning(`${reader}: no consumer on ${stream} in time; catching up through the stream leader`)
        return Stream.fromAsyncIterable(
          throughLeader(jsm, stream, from),
          unavailable(`catch up on ${stream} for ${reader}`)
        )
      }
      return Stream.fromAsyncIterable(messages, unavailable(`consume ${stream} for ${reader}`)).pipe(
        Stream.ensuring(Effect.promise(() => messages.close().then(() => undefined, () => undefined)))
      )
    })
  )
