// Projector.run end to end: events appended to a real nats-server's journals show up in the read models, a
// restart resumes from the checkpoint, outages lose nothing, replays converge, unknown versions are dead letters.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import { Journal } from "../bus/Journal.ts"
import type { Nats } from "../bus/Nats.ts"
import * as Topology from "../bus/Topology.ts"
import type { ActorAddress, Envelope } from "../schema/Envelope.ts"
import { DatabaseUnavailable } from "../schema/Errors.ts"
import { busLayer, startServer, type TestServer } from "../tests/support/Bus.ts"
import { probeUntil } from "../tests/support/Poll.ts"
import * as DeadLetters from "./DeadLetters.ts"
import * as Fixtures from "./Fixtures.ts"
import * as Migrations from "./Migrations.ts"
import * as Projector from "./Projector.ts"
import * as Queries from "./Queries.ts"
import { Sql } from "./Sql.ts"

type Services = Sql | Nats | Journal
const TENANT = "e2e"

let appendedCount = 0
/**
 * Appends entries to their journals in order, each instance's events expecting the previous one. Every event
 * gets a fresh idempotency key: a reused one would be dropped by the stream's duplicate window.
 */
const append = (entries: ReadonlyArray<Fixtures.Entry>) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const last = new Map<string, number>()
    for (const entry of entries) {
      const key = `${entry.address.type}/${entry.address.id}`
      const expected = last.get(key) ?? (yield* journal.lastSeq(entry.address))
      const appended = yield* journal.append(
        entry.address,
        [Fixtures.envelopeOf(entry, `live-${++appendedCount}`)],
        expected
      )
      expect(appended.duplicates).toBe(0)
      last.set(key, appended.lastSeq)
    }
  })

/** A Sql whose next `outage.left` transactions fail as if the database were down. */
const flakySql = (outage: { left: number }) =>
  Layer.effect(
    Sql,
    Effect.gen(function*() {
      const inner = yield* Sql
      return Sql.of({
        ...inner,
        transaction: (f) =>
          Effect.suspend(() =>
            outage.left-- > 0
              ? Effect.fail(new DatabaseUnavailable({ operation: "begin", reason: "injected outage" }))
              : inner.transaction(f)
          )
      })
    })
  ).pipe(Layer.provide(Sql.layerPglite(null)))

const dump = Effect.gen(function*() {
  const sql = yield* Sql
  return {
    agents: yield* sql.query(`select * from agents order by tenant_id, name`),
    versions: yield* sql.query(`select * from agent_versions order by tenant_id, name, version`),
    runs: yield* sql.query(`select * from runs order by tenant_id, id`),
    steps: yield* sql.query(`select * from steps order by tenant_id, run_id, step_id, attempt`)
  }
})

describe("Projector.run (real nats-server, PGlite)", () => {
  let server: TestServer
  let bus: Layer.Layer<Nats | Journal, unknown>
  const runtimes: Array<ManagedRuntime.ManagedRuntime<Services, unknown>> = []
  const runtime = async (sql: Layer.Layer<Sql, DatabaseUnavailable>) => {
    const rt = ManagedRuntime.make(Layer.mergeAll(bus, sql) as Layer.Layer<Services, unknown>)
    runtimes.push(rt)
    await rt.runPromise(Migrations.migrate)
    return rt
  }
  let firstPass: unknown
  /** Projectors forked by a test, interrupted after it even when it fails. */
  const running: Array<() => Promise<unknown>> = []
  const start = (rt: ManagedRuntime.ManagedRuntime<Services, unknown>) => {
    const fiber = rt.runFork(Projector.run)
    const stop = () => rt.runPromise(Fiber.interrupt(fiber))
    running.push(stop)
    return stop
  }
  afterEach(async () => {
    for (const stop of running.splice(0)) await stop()
  })

  beforeAll(async () => {
    server = await startServer("lantern-projector")
    bus = busLayer(server.handle.url) as Layer.Layer<Nats | Journal, unknown>
    const setup = ManagedRuntime.make(bus)
    await setup.runPromise(Topology.apply)
    await setup.dispose()
  })
  afterAll(async () => {
    for (const rt of runtimes) await rt.dispose()
    await server.cleanup()
  })

  it("folds what is appended, before and after it starts", async () => {
    const rt = await runtime(Sql.layerPglite(null))
    await rt.runPromise(append([...Fixtures.agentEntries(TENANT), ...Fixtures.runEntries(TENANT).slice(0, 9)]))
    const stop = start(rt)
    const run1 = await probeUntil(
      () => rt.runPromise(Queries.getRun(TENANT, Fixtures.runId(1))),
      (r) => r?.status === "succeeded"
    )
    expect(run1).toMatchObject({ status: "succeeded", steps: 3, tokensIn: 250, costUsd: 0.003 })
    const agents = await probeUntil(() => rt.runPromise(Queries.listAgents(TENANT)), (a) => a.length === 2)
    expect(agents.map((a) => [a.name, a.latestVersion])).toEqual([["support", 2], ["triage", 1]])

    // appended while the projector runs
    await rt.runPromise(append(Fixtures.runEntries(TENANT).slice(9, 13)))
    await probeUntil(() => rt.runPromise(Queries.getRun(TENANT, Fixtures.runId(3))), (r) => r !== null)
    // appended while it is stopped: a restart goes on from its checkpoint
    await stop()
    await rt.runPromise(append(Fixtures.runEntries(TENANT).slice(13)))
    start(rt)
    const page = await probeUntil(
      () => rt.runPromise(Queries.listRuns(TENANT)),
      (p) => p.items.map((r) => r.status).join() === "canceled,failed,succeeded"
    )
    expect(page.items.map((r) => r.status)).toEqual(["canceled", "failed", "succeeded"])
    const runsSeq = await rt.runPromise(Effect.gen(function*() {
      return yield* (yield* Journal).lastSeq({ type: "run", tenant: TENANT, id: Fixtures.runId(3) })
    }))
    expect(await rt.runPromise(Projector.checkpoint("projector-runs", Topology.RUNS))).toBeGreaterThanOrEqual(runsSeq)
    firstPass = await rt.runPromise(dump)
  })

  it("retries a batch while the database is down, then converges on a replay from zero", async () => {
    const outage = { left: 0 }
    const rt = await runtime(flakySql(outage))
    outage.left = 3
    // a fresh database: the projectors start again from the first event
    const stop = start(rt)
    // the edge's reads are transactions too (row-level security): read once the projector went through the outage
    await probeUntil(async () => outage.left, (left) => left < 0)
    await probeUntil(() => rt.runPromise(Queries.getRun(TENANT, Fixtures.runId(3))), (r) => r?.status === "canceled")
    await probeUntil(() => rt.runPromise(Queries.listVersions(TENANT, "support")), (v) => v.length === 2)
    expect(outage.left).toBeLessThan(0)
    expect(await rt.runPromise(dump)).toEqual(firstPass)
    await stop()
  })

  it("dead-letters an event it cannot read and goes on with the ones after it", async () => {
    const rt = await runtime(Sql.layerPglite(null))
    const address: ActorAddress = { type: "run", tenant: TENANT, id: Fixtures.runId(7) }
    const good = Fixtures.envelopeOf(Fixtures.startedRuns(TENANT, 1, 7)[0]!, "future-0")
    const future: Envelope = {
      ...Fixtures.envelopeOf({ address, at: Fixtures.at(200), event: { _tag: "RunSucceeded", output: 1 } }, "future-1"),
      version: 99
    }
    const seqs = await rt.runPromise(Effect.gen(function*() {
      return (yield* (yield* Journal).append(address, [good, future], 0)).seqs
    }))
    await rt.runPromise(append(Fixtures.startedRuns(TENANT, 1, 8)))
    start(rt)
    await probeUntil(() => rt.runPromise(Queries.getRun(TENANT, Fixtures.runId(8))), (r) => r !== null)
    expect(await rt.runPromise(Queries.getRun(TENANT, Fixtures.runId(7)))).toMatchObject({ status: "running" })
    expect(await rt.runPromise(Queries.getRun(TENANT, Fixtures.runId(1)))).toMatchObject({ status: "succeeded" })
    expect(await rt.runPromise(Projector.checkpoint("projector-runs", Topology.RUNS))).toBeGreaterThan(seqs[1]!)
    expect((await rt.runPromise(DeadLetters.list())).map((d) => [d.seq, d.eventType, d.reason])).toEqual([
      [seqs[1], "RunSucceeded", "unknown event version: RunSucceeded v99 is not known to this version of Lantern"]
    ])
  })
})
