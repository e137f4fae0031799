// NATS and JetStream: connection, topology, journals (append with OCC + dedupe, ordered read, follow),
// durable consumers as streams, the typed KV port, and the local nats-server launcher.
export * as Consumer from "./Consumer.ts"
export * as Journal from "./Journal.ts"
export * as Kv from "./Kv.ts"
export * as Nats from "./Nats.ts"
export * as NatsServer from "./NatsServer.ts"
export * as Topology from "./Topology.ts"
