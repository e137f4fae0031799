// Ordered consumers that notice when their server went away. The client does not always recover an ordered
// consumer whose server died (a restarted single server, a cluster node that held it): it may wait forever
// or report missed heartbeats forever. Here the iterator is stopped on missed heartbeats or on a reconnect,
// so the caller subscribes again from the last sequence it saw.
import type { ConsumerMessages, JetStreamClient, OrderedConsumerOptions } from "@nats-io/jetstream"
import type { NatsConnection } from "@nats-io/transport-node"

/** How long one pull waits on the server: short, so a consumer lost with its server is noticed quickly. */
export const PULL_EXPIRES_MS = 5_000

export const consume = async (
  nc: NatsConnection,
  js: JetStreamClient,
  stream: string,
  options: Partial<OrderedConsumerOptions>,
  maxMessages: number
): Promise<ConsumerMessages> => {
  const messages = await (await js.consumers.get(stream, options)).consume({ max_messages: maxMessages, expires: PULL_EXPIRES_MS })
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
