// The projection store's contract, run against every driver of the SQL port: migrations, folding a realistic
// journal, idempotent redelivery, replay from zero, tenant isolation, paging, tokens and transactions.
import * as fc from "fast-check"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { Effect, Exit, ManagedRuntime } from "effect"
import { AGENTS, RUNS } from "../bus/Topology.ts"
import { CorruptEvent, type DatabaseUnavailable } from "../schema/Errors.ts"
import * as Drivers from "../tests/support/Drivers.ts"
import type * as Envelope from "../schema/Envelope.ts"
import * as DeadLetters from "./DeadLetters.ts"
import * as Fixtures from "./Fixtures.ts"
import * as Fold from "./Fold.ts"
import * as Migrations from "./Migrations.ts"
import * as Projector from "./Projector.ts"
import * as Queries from "./Queries.ts"
import * as RunJournals from "./RunJournals.ts"
import { Sql, type SqlPort } from "./Sql.ts"
import * as Tokens from "./Tokens.ts"

const drivers = Drivers.sql()

const TABLES = [
  "agents",
  "agent_versions",
  "runs",
  "steps",
  "projector_checkpoints",
  "api_tokens",
  "projector_dead_letters"
]
const KEYS: Record<string, string> = {
  agents: "tenant_id, name",
  agent_versions: "tenant_id, name, version",
  runs: "tenant_id, id",
  steps: "tenant_id, run_id, step_id, attempt",
  projector_checkpoints: "projector, stream"
}

const withSql = <A, E>(f: (sql: SqlPort) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    return yield* f(yield* Sql)
  })

/** Every row of every read model, ordered by key: what "identical rows" means. */
const dump = Effect.gen(function*() {
  const sql = yield* Sql
  const out: Record<string, ReadonlyArray<unknown>> = {}
  for (const [table, key] of Object.entries(KEYS))
    out[table] = yield* sql.query(`select * from ${table} order by ${key}`)
  return out
})

const applyAll = (tenant: string, batchSize = 1000) =>
  Effect.gen(function*() {
    const agents = Fixtures.storedOf(Fixtures.agentEntries(tenant))
    const runs = Fixtures.storedOf(Fixtures.runEntries(tenant))
    for (let i = 0; i < agents.length; i += batchSize)
      yield* Projector.apply("projector-agents", AGENTS, agents.slice(i, i + batchSize))
    for (let i = 0; i < runs.length; i += batchSize)
      yield* Projector.apply("projector-runs", RUNS, runs.slice(i, i + batchSize))
    return { agents, runs }
  })

for (const driver of drivers) {
  describe.skipIf(driver.skip)(`projection store contract: ${driver.title}`, () => {
    let rt: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>
    let stop: () => Promise<void> = async () => {}
    const run = <A, E>(effect: Effect.Effect<A, E, Sql>) => rt.runPromise(effect)

    beforeAll(async () => {
      const started = await driver.start()
      stop = started.stop
      rt = ManagedRuntime.make(started.layer)
      await run(Migrations.migrate)
    })
    afterAll(async () => {
      await rt?.dispose()
      await stop()
    })
    beforeEach(async () => {
      await run(Effect.gen(function*() {
        const sql = yield* Sql
        for (const table of TABLES) yield* sql.query(`delete from ${table}`)
      }))
    })

    it("migrations are idempotent", async () => {
      await run(Migrations.migrate)
      await run(Migrations.migrate)
      const applied = await run(withSql((sql) => sql.query(`select id, name from lantern_migrations order by id`)))
      expect(applied).toEqual(Migrations.migrations.map((m) => ({ id: m.id, name: m.name })))
    })

    it("folds a realistic journal into agents, versions, runs and steps", async () => {
      const { runs } = await run(applyAll("t1", 4))
      const agents = await run(Queries.listAgents("t1"))
      expect(agents).toEqual([
        {
          name: "support",
          description: "Answers customers, politely",
          latestVersion: 2,
          digest: "sha256:bbb",
          spec: Fixtures.spec("v2"),
          createdAt: "2026-11-21T05:00:00.000Z",
          updatedAt: "2026-11-21T05:00:10.000Z"
        },
        {
          name: "triage",
          description: "Sorts tickets",
          latestVersion: 1,
          digest: "sha256:ttt",
          spec: Fixtures.spec("triage"),
          createdAt: "2026-11-21T05:00:05.000Z",
          updatedAt: "2026-11-21T05:00:05.000Z"
        }
      ])
      expect(await run(Queries.getAgent("t1", "support"))).toEqual(agents[0])
      expect(await run(Queries.getAgent("t1", "nobody"))).toBeNull()
      expect(await run(Queries.listVersions("t1", "support"))).toEqual([
        {
          name: "support",
          version: 1,
          digest: "sha256:aaa",
          description: "Answers customers",
          spec: Fixtures.spec("v1"),
          createdAt: Fixtures.at(0)
        },
        {
          name: "support",
          version: 2,
          digest: "sha256:bbb",
          description: "Answers customers, politely",
          spec: Fixtures.spec("v2"),
          createdAt: Fixtures.at(10)
        }
      ])

      const succeeded = {
        id: Fixtures.runId(1),
        status: "succeeded",
        agentName: "support",
        agentVersion: 2,
        input: { question: "What time is it?" },
        output: { answer: "It is 05:00." },
        error: null,
        steps: 3,
        tokensIn: 250,
        tokensOut: 50,
        costUsd: 0.003,
        createdAt: "2026-11-21T05:00:20.000Z",
        updatedAt: "2026-11-21T05:00:27.000Z",
        finishedAt: "2026-11-21T05:00:27.000Z",
        waiting: null,
        experiment: null,
        evalRunId: null
      }
      const failed = {
        id: Fixtures.runId(2),
        status: "failed",
        agentName: "triage",
        agentVersion: 1,
        input: "sort this",
        output: null,
        error: { code: "step_failed", message: "turn-1 failed twice" },
        steps: 0,
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        createdAt: "2026-11-21T05:00:23.500Z",
        updatedAt: "2026-11-21T05:00:35.000Z",
        finishedAt: "2026-11-21T05:00:35.000Z",
        waiting: null,
        experiment: null,
        evalRunId: null
      }
      const canceled = {
        id: Fixtures.runId(3),
        status: "canceled",
        agentName: "support",
        agentVersion: 2,
        input: null,
        output: null,
        error: { code: "canceled", message: "no longer needed" },
        steps: 0,
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        createdAt: "2026-11-21T05:00:33.500Z",
        updatedAt: "2026-11-21T05:00:42.000Z",
        finishedAt: "2026-11-21T05:00:42.000Z",
        waiting: null,
        experiment: null,
        evalRunId: null
      }
      expect(await run(Queries.getRun("t1", Fixtures.runId(1)))).toEqual(succeeded)
      expect(await run(Queries.getRun("t1", Fixtures.runId(2)))).toEqual(failed)
      expect(await run(Queries.getRun("t1", Fixtures.runId(3)))).toEqual(canceled)
      expect(await run(Queries.getRun("t1", Fixtures.runId(9)))).toBeNull()
      expect(await run(Queries.listRuns("t1"))).toEqual({ items: [canceled, failed, succeeded], nextCursor: null })
      expect(await run(Queries.listRuns("t1", { status: "failed" }))).toEqual({ items: [failed], nextCursor: null })
      expect(await run(Queries.listRuns("t1", { agentName: "support" }))).toEqual({
        items: [canceled, succeeded],
        nextCursor: null
      })
      expect(await run(Queries.listRuns("t1", { agentName: "support", status: "running" }))).toEqual({
        items: [],
        nextCursor: null
      })

      const steps1 = await run(Queries.listSteps("t1", Fixtures.runId(1)))
      expect(steps1.map((s) => [s.stepId, s.kind, s.status, s.tokensIn, s.costUsd])).toEqual([
        ["turn-1", "model", "completed", 100, 0.0012],
        ["turn-1:call_1", "tool", "completed", 0, 0],
        ["turn-2", "model", "completed", 150, 0.0018]
      ])
      expect(steps1[1]).toEqual({
        runId: Fixtures.runId(1),
        stepId: "turn-1:call_1",
        attempt: 1,
        kind: "tool",
        status: "completed",
        request: { _tag: "tool", call: { id: "call_1", name: "clock", arguments: {} } },
        result: { _tag: "tool", callId: "call_1", output: "05:00" },
        error: null,
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        startedAt: Fixtures.at(23),
        finishedAt: Fixtures.at(24)
      })
      const steps2 = await run(Queries.listSteps("t1", Fixtures.runId(2)))
      expect(steps2.map((s) => [s.stepId, s.attempt, s.status, s.error, s.finishedAt])).toEqual([
        ["turn-1", 1, "failed", { code: "provider_unavailable", message: "HTTP 503" }, Fixtures.at(32)],
        ["turn-1", 2, "failed", { code: "provider_unavailable", message: "HTTP 503" }, Fixtures.at(34)]
      ])
      const steps3 = await run(Queries.listSteps("t1", Fixtures.runId(3)))
      expect(steps3.map((s) => [s.status, s.result, s.finishedAt])).toEqual([["started", null, null]])
      expect(await run(Projector.checkpoint("projector-runs", RUNS))).toBe(runs.length)
    })

    it("lists runs newest first by creation time, not by id (child runs' ids are not time-ordered), and pages by cursor", async () => {
      // [run number (its id's order), seconds after T0]: ids and times disagree; 40 and 41 start in the same millisecond
      const made: ReadonlyArray<readonly [number, number]> = [[50, 100], [10, 400], [30, 200], [41, 300], [40, 300], [
        20,
        150
      ], [60, 50]]
      const entries = made.map(([n, t]) => ({ ...Fixtures.startedRuns("t1", 1, n)[0]!, at: Fixtures.at(t) }))
      await run(Projector.apply("projector-runs", RUNS, Fixtures.storedOf(entries)))
      const newestFirst = [10, 41, 40, 30, 20, 50, 60].map(Fixtures.runId)
      const all = await run(Queries.listRuns("t1"))
      expect(all.items.map((r) => r.id)).toEqual(newestFirst)
      const pages: Array<string> = []
      let cursor: string | null = null
      do {
        const page: Queries.RunPage = await run(
          Queries.listRuns("t1", { limit: 2, ...(cursor === null ? {} : { cursor }) })
        )
        pages.push(...page.items.map((r) => r.id))
        cursor = page.nextCursor
        if (cursor !== null) expect(cursor).toMatch(/^[0-9]{1,17}\.run_[0-9a-z]{26}$/)
      } while (cursor !== null)
      expect(pages).toEqual(newestFirst)
      // the cursor before issue 10, a bare run id, continues below that run's (created_at, id)
      expect((await run(Queries.listRuns("t1", { cursor: Fixtures.runId(41) }))).items.map((r) => r.id)).toEqual(
        newestFirst.slice(2)
      )
      expect((await run(Queries.listRuns("t1", { cursor: Fixtures.runId(99) }))).items).toEqual([])
      // a cursor is the tenant's own: another tenant's run id continues nowhere
      expect((await run(Queries.listRuns("t2", { cursor: Fixtures.runId(41) }))).items).toEqual([])
    })

    it("a redelivered batch (sequences at or below the checkpoint) changes nothing", async () => {
      const { agents, runs } = await run(applyAll("t1", 5))
      const before = await run(dump)
      const again = await run(Projector.apply("projector-runs", RUNS, runs))
      expect(again).toEqual({ applied: 0, skipped: runs.length, checkpoint: runs.length, deadLetters: [] })
      await run(Projector.apply("projector-runs", RUNS, runs.slice(3, 9)))
      await run(Projector.apply("projector-agents", AGENTS, agents))
      expect(await run(dump)).toEqual(before)
    })

    it("dead-letters what the database refuses or nobody can decode, and applies the rest of the batch", async () => {
      const clean = Fixtures.runEntries("t1")
      const poison = (n: number, input: unknown): Fixtures.Entry => {
        const started = Fixtures.startedRuns("t1", 1, n)[0]!
        return { ...started, event: { ...started.event, input } as Fixtures.Entry["event"] }
      }
      // a NUL and a lone surrogate in a run's input, amid another run's events, and a step of the refused run
      const entries = [...clean.slice(0, 5), poison(8, { q: "a\u0000b" }), poison(9, "\ud800"), ...clean.slice(5)]
      const stored = Fixtures.storedOf(entries)
      const undecodable: DeadLetters.Undecodable = {
        seq: stored.length + 1,
        subject: "lantern.run.t2.run_x",
        type: "RunStarted",
        error: new CorruptEvent({
          subject: "lantern.run.t2.run_x",
          seq: stored.length + 1,
          reason: "input: Missing key"
        })
      }
      const applied = await run(Projector.apply("projector-runs", RUNS, [...stored, undecodable]))
      expect(applied.applied).toBe(clean.length)
      expect(applied.checkpoint).toBe(stored.length + 1)
      expect(applied.deadLetters.map((d) => [d.seq, d.tenant, d.eventType])).toEqual([
        [6, "t1", "RunStarted"],
        [7, "t1", "RunStarted"],
        [stored.length + 1, "t2", "RunStarted"]
      ])
      expect(applied.deadLetters[0]!.reason).toMatch(/^SQLSTATE 22P05: /)
      expect(applied.deadLetters[1]!.reason).toMatch(/^SQLSTATE 22P02: /)
      expect(applied.deadLetters[2]!.reason).toBe("undecodable event: input: Missing key")
      expect((await run(DeadLetters.list())).map((d) => d.seq).sort((a, b) => a - b)).toEqual([6, 7, stored.length + 1])
      // the other runs are exactly as without the refused ones
      const page = await run(Queries.listRuns("t1"))
      expect(page.items.map((r) => [r.id, r.status, r.steps])).toEqual([
        [Fixtures.runId(3), "canceled", 0],
        [Fixtures.runId(2), "failed", 0],
        [Fixtures.runId(1), "succeeded", 3]
      ])
      // redelivered: nothing applied, nothing dead-lettered again
      const again = await run(Projector.apply("projector-runs", RUNS, [...stored, undecodable]))
      expect(again).toEqual({ applied: 0, skipped: stored.length + 1, checkpoint: stored.length + 1, deadLetters: [] })
      expect(await run(DeadLetters.count)).toBe(3)
    })

    it("projects a step of every kind a run journals, a workflow's code and timer steps included", async () => {
      const address = { type: "run" as const, tenant: "t1", id: Fixtures.runId(1) }
      const call = { id: "call_1", name: "clock", arguments: {} }
      const requests: ReadonlyArray<Extract<Fixtures.Entry["event"], { _tag: "StepStarted" }>["request"]> = [
        { _tag: "model", model: "auto", turn: 1 },
        { _tag: "tool", call },
        { _tag: "sleep", call, seconds: 1 },
        { _tag: "approval", call },
        { _tag: "code", kind: "step" },
        { _tag: "timer", ms: 10 }
      ]
      const entries: ReadonlyArray<Fixtures.Entry> = [
        Fixtures.startedRuns("t1", 1)[0]!,
        ...requests.map((request, i): Fixtures.Entry => ({
          address,
          at: Fixtures.at(200 + i),
          event: { _tag: "StepStarted", stepId: `s${i}`, attempt: 1, request }
        }))
      ]
      const applied = await run(Projector.apply("projector-runs", RUNS, Fixtures.storedOf(entries)))
      expect(applied.deadLetters).toEqual([])
      const kinds = await run(withSql((sql) => sql.query<{ kind: string }>(`select kind from steps order by seq`)))
      expect(kinds.map((k) => k.kind)).toEqual(requests.map((r) => r._tag))
    })

    it("folds any batching of run and audit events into exactly the rows of folding them one by one", async () => {
      const rows = withSql((sql) =>
        Effect.all({
          runs: sql.query(`select * from runs order by tenant_id, id`),
          steps: sql.query(`select * from steps order by tenant_id, run_id, step_id, attempt`),
          audit: sql.query(`select * from audit_events order by tenant_id, id`)
        })
      )
      const reset = withSql((sql) =>
        Effect.forEach(
          ["runs", "steps", "audit_events", "projector_checkpoints"],
          (t) => sql.query(`delete from ${t}`),
          { discard: true }
        )
      )
      /** The reference: each event through Fold.event, in stream order, in one transaction. */
      const oneByOne = (stored: ReadonlyArray<Envelope.Stored>) =>
        withSql((sql) => sql.transaction((tx) => Effect.forEach(stored, (e) => Fold.event(tx, e), { discard: true })))
      const inBatches = (stored: ReadonlyArray<Envelope.Stored>, sizes: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          let i = 0
          for (let k = 0; i < stored.length; k++) {
            const n = Math.max(1, sizes.length === 0 ? stored.length : sizes[k % sizes.length]!)
            yield* Projector.apply("projector-runs", RUNS, stored.slice(i, i + n))
            i += n
          }
        })
      await fc.assert(
        fc.asyncProperty(
          RunJournals.journal,
          fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 4 }),
          fc.nat(),
          async (entries, sizes, back) => {
            const stored = Fixtures.storedOf(entries)
            await run(reset)
            await run(oneByOne(stored))
            const expected = await run(rows)
            await run(reset)
            await run(inBatches(stored, sizes))
            expect(await run(rows)).toEqual(expected)
            // the checkpoint goes back (a restored database): the events after it come again onto rows that hold them
            const from = back % (stored.length + 1)
            await run(oneByOne(stored.slice(from)))
            const again = await run(rows)
            await run(withSql((sql) => sql.query(`update projector_checkpoints set last_seq = $1`, [from])))
            await run(inBatches(stored, [...sizes].reverse()))
            expect(await run(rows)).toEqual(again)
          }
        ),
        { numRuns: 40 }
      )
    })

    it("refuses to apply on a checkpoint that went back behind what the reader committed", async () => {
      const { runs } = await run(applyAll("t1", 5))
      const committed = runs.length
      // the database comes back without its last commits (a failover to a lagging replica, a restore)
      await run(Effect.gen(function*() {
        yield* (yield* Sql).query(`update projector_checkpoints set last_seq = 3 where projector = 'projector-runs'`)
      }))
      const refused = await run(Effect.flip(Projector.apply("projector-runs", RUNS, runs.slice(-1), committed)))
      expect(refused._tag).toBe("CheckpointWentBack")
      expect(refused.message).toContain(`from #${committed} to #3`)
      // a reader starting again from the database's checkpoint applies the lost events again
      const again = await run(Projector.apply("projector-runs", RUNS, runs.slice(3), 3))
      expect(again.applied).toBe(runs.length - 3)
    })

    it("rebuild, then a replay from zero, yields identical rows", async () => {
      await run(applyAll("t1", 3))
      await run(applyAll("t2", 7))
      const first = await run(dump)
      await run(Projector.rebuild("projector-runs"))
      await run(Projector.rebuild("projector-agents"))
      const empty = await run(dump)
      expect(Object.values(empty).every((rows) => rows.length === 0)).toBe(true)
      expect(await run(Projector.checkpoint("projector-runs", RUNS))).toBe(0)
      // the same events in differently sized batches
      await run(applyAll("t1", 1000))
      await run(applyAll("t2", 2))
      expect(await run(dump)).toEqual(first)
    })

    it("keeps tenants apart, even with the same ids", async () => {
      await run(Effect.gen(function*() {
        yield* Projector.apply("projector-agents", AGENTS, Fixtures.storedOf(Fixtures.agentEntries("a")))
        yield* Projector.apply("projector-runs", RUNS, Fixtures.storedOf(Fixtures.runEntries("a")))
        yield* Projector.apply("projector-runs", RUNS, Fixtures.storedOf(Fixtures.startedRuns("b", 1), 100))
      }))
      expect(await run(Queries.listAgents("b"))).toEqual([])
      expect(await run(Queries.getAgent("b", "support"))).toBeNull()
      expect(await run(Queries.listVersions("b", "support"))).toEqual([])
      expect(await run(Queries.listSteps("b", Fixtures.runId(1)))).toEqual([])
      const b = await run(Queries.getRun("b", Fixtures.runId(1)))
      expect(b).toMatchObject({ status: "running", input: { n: 1 }, steps: 0 })
      expect((await run(Queries.listRuns("b"))).items.map((r) => r.id)).toEqual([Fixtures.runId(1)])
      expect(await run(Queries.getRun("a", Fixtures.runId(1)))).toMatchObject({ status: "succeeded", steps: 3 })
      expect(await run(Queries.listRuns("nobody"))).toEqual({ items: [], nextCursor: null })
    })

    it("pages runs newest first with a cursor", async () => {
      await run(Projector.apply("projector-runs", RUNS, Fixtures.storedOf(Fixtures.startedRuns("t1", 5))))
      const ids = [5, 4, 3, 2, 1].map(Fixtures.runId)
      const page1 = await run(Queries.listRuns("t1", { limit: 2 }))
      expect(page1.items.map((r) => r.id)).toEqual(ids.slice(0, 2))
      // opaque, but it ends with the page's last run: (created_at in µs).(id)
      expect(page1.nextCursor).toMatch(new RegExp(`^[0-9]+\\.${ids[1]}$`))
      const page2 = await run(Queries.listRuns("t1", { limit: 2, cursor: page1.nextCursor! }))
      expect(page2.items.map((r) => r.id)).toEqual(ids.slice(2, 4))
      expect(page2.nextCursor).toMatch(new RegExp(`^[0-9]+\\.${ids[3]}$`))
      const page3 = await run(Queries.listRuns("t1", { limit: 2, cursor: page2.nextCursor! }))
      expect(page3.items.map((r) => r.id)).toEqual(ids.slice(4))
      expect(page3.nextCursor).toBeNull()
      // a page that ends exactly at the last run has no next page
      expect((await run(Queries.listRuns("t1", { limit: 5 }))).nextCursor).toBeNull()
      const support = await run(Queries.listRuns("t1", { agentName: "support", limit: 2 }))
      expect(support.items.map((r) => r.id)).toEqual([Fixtures.runId(5), Fixtures.runId(3)])
      expect(
        (await run(Queries.listRuns("t1", { agentName: "support", limit: 2, cursor: support.nextCursor! }))).items.map((
          r
        ) => r.id)
      )
        .toEqual([Fixtures.runId(1)])
    })

    it("authenticates tokens by hash only", async () => {
      await run(Tokens.ensure("t1", "owner", "lt_secret_one"))
      await run(Tokens.ensure("t1", "owner", "lt_secret_one"))
      await run(Tokens.ensure("t1", "ci", "lt_secret_ci", ["runs:write"]))
      expect(await run(Tokens.authenticate("lt_secret_one"))).toEqual({
        tenant: "t1",
        name: "owner",
        scopes: ["*"],
        keyId: null,
        expiresAt: null
      })
      expect(await run(Tokens.authenticate("lt_secret_ci"))).toEqual({
        tenant: "t1",
        name: "ci",
        scopes: ["runs:write"],
        keyId: null,
        expiresAt: null
      })
      expect(await run(Tokens.authenticate("lt_unknown"))).toBeNull()
      expect(await run(Tokens.authenticate(""))).toBeNull()
      expect(await run(Tokens.anyForTenant("t1"))).toBe(true)
      expect(await run(Tokens.anyForTenant("t2"))).toBe(false)
      const stored = await run(withSql((sql) => sql.query<{ token_hash: string }>(`select token_hash from api_tokens`)))
      expect(stored.map((r) => r.token_hash)).not.toContain("lt_secret_one")
      expect(stored.map((r) => r.token_hash)).toContain(Tokens.hash("lt_secret_one"))
      // a new token under the same name replaces the old one
      await run(Tokens.ensure("t1", "owner", "lt_secret_two"))
      expect(await run(Tokens.authenticate("lt_secret_one"))).toBeNull()
      expect(await run(Tokens.authenticate("lt_secret_two"))).toMatchObject({ tenant: "t1", name: "owner" })
      // one tenant's token cannot be claimed by another
      const exit = await rt.runPromiseExit(Tokens.ensure("t2", "owner", "lt_secret_two"))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("InvalidCommand")
      expect(String(exit)).not.toContain("lt_secret_two")
      expect(await run(Tokens.authenticate("lt_secret_two"))).toMatchObject({ tenant: "t1" })
    })

    it("commits, rolls back, and refuses to commit a transaction a failed statement aborted", async () => {
      const count = withSql((sql) => sql.query<{ n: number }>(`select count(*) as n from api_tokens`))
      const insert = (tx: SqlPort, name: string) =>
        tx.query(`insert into api_tokens values ($1, 't', $1, '{}', $2::timestamptz)`, [name, Fixtures.at(0)])
      const results = await run(Effect.gen(function*() {
        const sql = yield* Sql
        yield* sql.transaction((tx) => insert(tx, "a"))
        const failed = yield* Effect.exit(
          sql.transaction((tx) => Effect.andThen(insert(tx, "b"), Effect.fail("boom" as const)))
        )
        // a duplicate key, caught inside: the transaction is still aborted and nothing commits
        const aborted = yield* Effect.exit(
          sql.transaction((tx) => Effect.andThen(insert(tx, "c"), Effect.ignore(insert(tx, "a"))))
        )
        // the same failure inside a nested transaction (a savepoint) leaves the outer one healthy
        yield* sql.transaction((tx) =>
          Effect.andThen(insert(tx, "d"), Effect.ignore(tx.transaction((inner) => insert(inner, "a"))))
        )
        const names = yield* sql.query<{ name: string }>(`select name from api_tokens order by name`)
        return { failed, aborted, names: names.map((r) => r.name), count: (yield* count)[0]!.n }
      }))
      expect(Exit.isFailure(results.failed)).toBe(true)
      expect(String(results.aborted)).toContain("DatabaseUnavailable")
      expect(results.names).toEqual(["a", "d"])
      expect(results.count).toBe(2)
    })

    it("runs a pipeline of statements in order, and stops or aborts at the first that fails", async () => {
      const row = (name: string) => ({
        text: `insert into api_tokens values ($1, 't', $1, '{}', $2::timestamptz)`,
        params: [name, Fixtures.at(0)]
      })
      const names = `select name from api_tokens order by name`
      const results = await run(Effect.gen(function*() {
        const sql = yield* Sql
        // each statement sees the ones before it; the rows of each come back in order
        const outside = yield* sql.queries([row("a"), { text: names }, row("b"), { text: names }])
        // outside a transaction the statements before a failure stay, the ones after it never run
        const stopped = yield* Effect.flip(sql.queries([row("c"), row("a"), row("d")]))
        // in a transaction (whose BEGIN goes out with its first statements) nothing of it commits
        const aborted = yield* Effect.exit(sql.transaction((tx) => tx.queries([row("e"), row("b"), row("f")])))
        const committed = yield* sql.transaction((tx) =>
          Effect.andThen(tx.queries([row("g"), { text: names }]), tx.queries([row("h")]))
        )
        // a transaction that runs no statement sends none, and still answers
        const empty = yield* sql.transaction(() => Effect.succeed("nothing to do"))
        const after = yield* sql.query<{ name: string }>(names)
        return { outside, stopped, aborted, committed, empty, after: after.map((r) => r.name) }
      }))
      expect(results.outside.map((rows) => rows.map((r) => (r as { name: string }).name))).toEqual([
        [],
        ["a"],
        [],
        ["a", "b"]
      ])
      // the failure names the statement that failed (the duplicate key), not the first of the pipeline
      expect(results.stopped._tag).toBe("DatabaseUnavailable")
      expect(results.stopped.operation).toContain("insert into api_tokens")
      expect(results.stopped.reason).toMatch(/duplicate key/)
      expect(String(results.aborted)).toContain("DatabaseUnavailable")
      expect(results.committed).toEqual([[]])
      expect(results.empty).toBe("nothing to do")
      expect(results.after).toEqual(["a", "b", "c", "g", "h"])
    })
  })
}
