// Ordered consumers that notice when their server went away. The client does not always recover an ordered
// consumer whose server died (a restarted single server, a cluster node that held it): it may wait forever
// or report missed heartbeats forever. Here the iterator is stopped on missed heartbeats or on a reconnect,
// so the caller subscribes again from the last sequence it saw.
import { type ConsumerMessages, jetstream, type JetStreamClient, type OrderedConsumerOptions } from "@nats-io/jetstream"
import type { NatsConnection } from "@nats-io/transport-node"

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
