// Test support: a mirror of the lease bucket kept from the test's own NATS connection, so a fault-injection
// test sees which process held a run's lease, in which order, and when the run's entry went away.
import { jetstream } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { pidOfHolder } from "../../bus/Hosts.ts"
import { decodeEntry, keyOf } from "../../bus/Leases.ts"
import { LEASE_BUCKET } from "../../bus/Topology.ts"

interface Change {
  readonly key: string
  /** The holder written, null for a queued or parked run; undefined when the entry was deleted (run ended). */
  readonly holder: string | null | undefined
}

export interface LeaseWatch {
  /**
   * The pids that held the run's lease, in the order they first took it, from its first entry up to its first
   * deletion (or up to now while it lives): the hosts that drove the run.
   */
  readonly holders: (runId: string) => ReadonlyArray<number>
  /** Whether the run's entry was deleted: a host released it after journaling the run's end. */
  readonly released: (runId: string) => boolean
  /** Every pid that ever held a lease. */
  readonly allHolders: () => ReadonlySet<number>
  readonly close: () => Promise<void>
}

/** Holders are `<slot>/<pid>-<random>` (bus/Hosts.ts): the pid tells which process held a lease. */
export const pidOf = (holder: string) => pidOfHolder(holder) ?? Number.NaN

/** Starts mirroring the lease bucket of the bus at `url` (the bucket must exist: start a Lantern host first). */
export const start = async (url: string, tenant: string): Promise<LeaseWatch> => {
  const nc = await connect({ servers: url, name: "lease-watch" })
  const kv = await new Kvm(jetstream(nc)).open(LEASE_BUCKET)
  const changes: Array<Change> = []
  const iter = await kv.watch()
  void (async () => {
    for await (const e of iter) {
      changes.push({
        key: e.key,
        holder: e.operation === "PUT" ? (decodeEntry(e.string())?.holder ?? null) : undefined
      })
    }
  })()
  const lifeOf = (runId: string) => {
    const mine = changes.filter((c) => c.key === keyOf(tenant, runId))
    const end = mine.findIndex((c) => c.holder === undefined)
    return end < 0 ? mine : mine.slice(0, end + 1)
  }
  const pids = (cs: ReadonlyArray<Change>) => cs.flatMap((c) => (typeof c.holder === "string" ? [pidOf(c.holder)] : []))
  return {
    holders: (runId) => [...new Set(pids(lifeOf(runId)))],
    released: (runId) => lifeOf(runId).some((c) => c.holder === undefined),
    allHolders: () => new Set(pids(changes)),
    close: async () => {
      iter.stop()
      await nc.close()
    }
  }
}
