// Test support: a three-node nats-server JetStream cluster on loopback (free client, route and monitoring
// ports, one store directory per node, configs generated like infra/nats/cluster/*.conf) for failover tests.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { jetstreamManager } from "@nats-io/jetstream"
import * as NatsServer from "../../bus/NatsServer.ts"
import { eventually } from "./Stack.ts"

export const CLUSTER_NAME = "lantern-test"

export interface Node {
  /** server_name, as JetStream reports stream and meta leaders. */
  readonly name: string
  readonly port: number
  readonly url: string
  readonly routePort: number
  readonly httpPort: number
  readonly storeDir: string
}

export interface Cluster {
  readonly nodes: ReadonlyArray<Node>
  /** Every node's client URL, comma-separated: a NATS_URL for Lantern. */
  readonly urls: string
  readonly dir: string
  /** Whether the node's process is running. */
  readonly running: (node: NodeRef) => boolean
  /** SIGKILLs the node, as a crash. */
  readonly kill: (node: NodeRef) => Promise<void>
  /** Starts a stopped or killed node again on the same ports with the same store. */
  readonly restart: (node: NodeRef) => Promise<void>
  /** The name of the node leading the JetStream meta group, once one is elected. */
  readonly metaLeader: (deadlineMs?: number) => Promise<string>
  /** The name of the node leading `stream`'s raft group, once one is elected. */
  readonly streamLeader: (stream: string, deadlineMs?: number) => Promise<string>
  /** Stops every node and removes the stores. */
  readonly stop: () => Promise<void>
}

/** A node by index (0, 1, 2) or by server name. */
export type NodeRef = number | string

interface Jsz {
  readonly meta_cluster?: {
    readonly leader?: string
    readonly cluster_size?: number
    readonly replicas?: ReadonlyArray<{ readonly name: string; readonly current?: boolean; readonly offline?: boolean }>
  }
}

const routesBlock = (nodes: ReadonlyArray<Node>, self: Node) =>
  [
    "cluster {",
    `  name: ${CLUSTER_NAME}`,
    `  listen: 127.0.0.1:${self.routePort}`,
    "  routes: [",
    ...nodes.map((n) => `    nats-route://127.0.0.1:${n.routePort}`),
    "  ]",
    "}",
    `http: 127.0.0.1:${self.httpPort}`
  ].join("\n")

/** The node's view of the meta group from its monitoring endpoint. */
const jsz = async (node: Node): Promise<Jsz> => {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/jsz`, { signal: AbortSignal.timeout(2000) })
  return (await r.json()) as Jsz
}

/**
 * Starts three nodes at once (JetStream in a cluster answers only once a quorum has elected a meta leader,
 * so they cannot come up one by one) and waits until every node sees the same meta leader.
 */
export const start = async (prefix = "lantern-cluster"): Promise<Cluster> => {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`))
  const nodes: Array<Node> = []
  const taken = new Set<number>()
  const port = async () => {
    for (;;) {
      const p = await NatsServer.freePort()
      if (!taken.has(p)) {
        taken.add(p)
        return p
      }
    }
  }
  for (let i = 1; i <= 3; i++) {
    const p = await port()
    nodes.push({
      name: `n${i}`,
      port: p,
      url: `nats://127.0.0.1:${p}`,
      routePort: await port(),
      httpPort: await port(),
      storeDir: join(dir, `n${i}`)
    })
  }
  const handles = new Map<string, NatsServer.Handle>()
  const nodeOf = (ref: NodeRef): Node => {
    const node = typeof ref === "number" ? nodes[ref] : nodes.find((n) => n.name === ref)
    if (node === undefined) throw new Error(`no node ${ref} in the cluster (${nodes.map((n) => n.name).join(", ")})`)
    return node
  }
  const launch = async (node: Node) => {
    const h = await NatsServer.start({
      storeDir: node.storeDir,
      port: node.port,
      serverName: node.name,
      extraConfig: routesBlock(nodes, node)
    })
    handles.set(node.name, h)
  }
  const running = (ref: NodeRef) => {
    const p = handles.get(nodeOf(ref).name)?.process
    return p !== undefined && p.exitCode === null && p.signalCode === null
  }
  const live = () => nodes.filter((n) => running(n.name))

  // A leader alone is not enough: until its followers are current, JetStream API calls that need the meta
  // group (creating a replicated stream) can time out.
  const metaLeader = (deadlineMs = 20_000) =>
    eventually(
      async () => {
        const nodesUp = live()
        const views = await Promise.all(nodesUp.map((n) => jsz(n).then((j) => j.meta_cluster, () => undefined)))
        const leader = views[0]?.leader
        if (leader === undefined || leader === "" || !running(leader)) return null
        if (!views.every((v) => v?.leader === leader)) return null
        const followers = views[nodesUp.findIndex((n) => n.name === leader)]?.replicas ?? []
        const current = nodesUp.filter((n) => n.name !== leader).every((n) =>
          followers.some((f) => f.name === n.name && f.current === true && f.offline !== true)
        )
        return current ? leader : null
      },
      deadlineMs,
      "a JetStream meta leader that every running node agrees on, with current followers"
    )

  const streamLeader = (stream: string, deadlineMs = 20_000) =>
    eventually(
      async () => {
        const nc = await connect({ servers: live().map((n) => n.url), reconnect: false, timeout: 2000 })
        try {
          const info = await (await jetstreamManager(nc, { timeout: 2000 })).streams.info(stream)
          const leader = info.cluster?.leader
          return leader !== undefined && leader !== "" && running(leader) ? leader : null
        } finally {
          await nc.close()
        }
      },
      deadlineMs,
      `a leader of stream ${stream}`
    )

  const stop = async () => {
    await Promise.all([...handles.values()].map((h) => h.stop()))
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    await Promise.all(nodes.map(launch))
    await metaLeader()
  } catch (e) {
    await Promise.all([...handles.values()].map((h) => h.kill()))
    rmSync(dir, { recursive: true, force: true })
    throw e
  }

  return {
    nodes,
    urls: nodes.map((n) => n.url).join(","),
    dir,
    running,
    kill: async (ref) => {
      await handles.get(nodeOf(ref).name)?.kill()
    },
    restart: async (ref) => {
      const node = nodeOf(ref)
      if (running(node.name)) throw new Error(`node ${node.name} is still running`)
      await launch(node)
    },
    metaLeader,
    streamLeader,
    stop
  }
}
