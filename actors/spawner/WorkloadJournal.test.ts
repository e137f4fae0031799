// The spawner's workload journal keeps each workload's last state in memory (ADR 0073): a report is decided on it
// without reading the journal back, and a host that wrote since is caught by the append's expected sequence, so
// nothing is lost or journaled twice when two hosts report for one workload.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ConfigProvider, Effect, Layer, ManagedRuntime } from "effect"
import { Journal } from "../../bus/Journal.ts"
import type { Snapshots } from "../../bus/Snapshots.ts"
import * as Topology from "../../bus/Topology.ts"
import type { WorkloadSpec } from "../../schema/Workload.ts"
import { busLayer, startServer, type TestServer } from "../../tests/support/Bus.ts"
import { Audit } from "../audit/Audit.ts"
import { Ids } from "../kernel/Ids.ts"
import { Receipts } from "../receipts/Receipts.ts"
import * as WorkloadJournal from "./WorkloadJournal.ts"

const TENANT = "t_wj"
const spec: WorkloadSpec = {
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name: "w" },
  spec: {
    command: ["true"],
    isolation: "trusted",
    limits: { vcpu: 1, memoryMb: 128, timeoutSeconds: 10 },
    network: "none"
  }
}
const output = (text: string) => ({
  _tag: "Report" as const,
  reports: [{ _tag: "output" as const, stream: "stdout" as const, text }]
})

let nats: TestServer
let dir: string
type Services = Journal | Receipts | Ids | Snapshots
let runtime: ManagedRuntime.ManagedRuntime<Services, unknown>

beforeAll(async () => {
  nats = await startServer("lantern-workload-journal")
  dir = mkdtempSync(join(tmpdir(), "lantern-wj-"))
  const config = ConfigProvider.layer(ConfigProvider.fromUnknown({
    LANTERN_KEK: Buffer.alloc(32, 7).toString("base64"),
    LANTERN_HOME: dir
  }))
  const layer = Receipts.layer.pipe(
    Layer.provideMerge(Audit.layer),
    Layer.provideMerge(Ids.layer),
    Layer.provideMerge(Layer.effectDiscard(Topology.apply)),
    Layer.provideMerge(busLayer(nats.handle.url)),
    Layer.provide(config)
  )
  runtime = ManagedRuntime.make(layer as Layer.Layer<Services, unknown>)
}, 120_000)

afterAll(async () => {
  await runtime?.dispose()
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

describe("the workload journal's remembered state", () => {
  it("decides a report on what it remembers, and reads the journal again when another host wrote since", async () => {
    const id = "wl_remembered000000000000001"
    const { types, lastSeq, seqs } = await runtime.runPromise(Effect.gen(function*() {
      // two hosts: each its own memory, one bus
      const a = yield* WorkloadJournal.make
      const b = yield* WorkloadJournal.make
      yield* a.execute(TENANT, id, { _tag: "Schedule", spec, input: null, by: "test" }, `${id}:schedule`)
      yield* a.execute(TENANT, id, { _tag: "Place", backend: "process" }, `${id}:place`)
      const spawned = yield* a.execute(
        TENANT,
        id,
        { _tag: "Spawned", host: "h1", pid: 7, enforced: ["timeout"] },
        `${id}:spawned`
      )
      // host b journals a report: a's memory is now one event behind the journal
      yield* b.execute(TENANT, id, output("from b"), `${id}:report:1`)
      const fromA = yield* a.execute(TENANT, id, output("from a"), `${id}:report:2`)
      // and a again, on what its last command left
      const again = yield* a.execute(TENANT, id, output("from a again"), `${id}:report:3`)
      const stored = yield* (yield* Journal).read(WorkloadJournal.addressOf(TENANT, id))
      return {
        types: stored.map((s) => [s.event._tag, (s.event as { text?: string }).text ?? null]),
        lastSeq: stored[stored.length - 1]!.seq,
        seqs: [spawned.loaded.seq, fromA.loaded.seq, again.loaded.seq]
      }
    }))
    expect(types).toEqual([
      ["WorkloadScheduled", null],
      ["WorkloadPlaced", null],
      ["WorkloadSpawned", null],
      ["WorkloadOutput", "from b"],
      ["WorkloadOutput", "from a"],
      ["WorkloadOutput", "from a again"]
    ])
    // what a remembered after each command is where the journal stood
    expect(seqs[2]).toBe(lastSeq)
    expect(seqs[1]).toBe(lastSeq - 1)
  }, 60_000)

  it("journals a re-sent report once, and the next report still lands after it", async () => {
    const id = "wl_remembered000000000000002"
    const types = await runtime.runPromise(Effect.gen(function*() {
      const a = yield* WorkloadJournal.make
      yield* a.execute(TENANT, id, { _tag: "Schedule", spec, input: null, by: "test" }, `${id}:schedule`)
      yield* a.execute(TENANT, id, output("once"), `${id}:report:1`)
      // the harness did not see the acknowledgement and sends the same batch again
      const resent = yield* a.execute(TENANT, id, output("once"), `${id}:report:1`)
      expect(resent.duplicates).toBe(1)
      yield* a.execute(TENANT, id, {
        _tag: "Report",
        reports: [{ _tag: "exited", code: 0, usage: { wallMs: 1, cpuMs: 1, peakRssKb: null } }]
      }, `${id}:report:2`)
      const stored = yield* (yield* Journal).read(WorkloadJournal.addressOf(TENANT, id))
      return stored.map((s) => s.event._tag)
    }))
    expect(types).toEqual(["WorkloadScheduled", "WorkloadOutput", "WorkloadExited"])
  }, 60_000)
})
