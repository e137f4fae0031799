// Projector batches against every driver (ADR 0037): a batch holding one event the database refuses dead-letters
// exactly that event and applies the others as if it were not there, and a batch cut short at any statement (an
// outage, an interruption: what a crash does to a transaction) leaves rows, checkpoint and dead letters as they
// were, so that applying it again from the checkpoint gives the same rows as an uninterrupted apply.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import { RUNS } from "../bus/Topology.ts"
import type * as Envelope from "../schema/Envelope.ts"
import { DatabaseUnavailable } from "../schema/Errors.ts"
import * as Drivers from "../tests/support/Drivers.ts"
import * as DeadLetters from "./DeadLetters.ts"
import * as Fixtures from "./Fixtures.ts"
import * as Fold from "./Fold.ts"
import * as Migrations from "./Migrations.ts"
import * as Projector from "./Projector.ts"
import { Sql, type SqlPort } from "./Sql.ts"

const TENANT = "tb"

/** `runs` runs, the second with a poisoned tool output; the stream as stored, and where the poison is. */
const journal = (runs: number) => {
  const stored = Fixtures.storedOf(Fixtures.tenStepRuns(TENANT, runs))
  const poison = stored.find((s) =>
    s.event._tag === "StepsCompleted" && JSON.stringify(s.event.steps).includes("\\u0000")
  )!
  return { stored, poison }
}

/** Every row the runs projector owns or moves, ordered by key (a dead letter's time left out: it is the clock's). */
const dump = Effect.gen(function*() {
  const sql = yield* Sql
  return {
    runs: yield* sql.query(`select * from runs order by tenant_id, id`),
    steps: yield* sql.query(`select * from steps order by tenant_id, run_id, step_id, attempt`),
    checkpoints: yield* sql.query(`select * from projector_checkpoints order by projector, stream`),
    deadLetters: yield* sql.query(
      `select projector, stream, seq, tenant_id, subject, event_type, reason from projector_dead_letters
       order by projector, stream, seq`
    )
  }
})

const reset = Effect.gen(function*() {
  const sql = yield* Sql
  for (const table of ["steps", "runs", "projector_checkpoints", "projector_dead_letters"])
    yield* sql.query(`delete from ${table}`)
})

/** The reference: each event through Fold.event in stream order, in one transaction, on an empty database. */
const oneByOne = (stored: ReadonlyArray<Envelope.Stored>) =>
  Effect.gen(function*() {
    yield* reset
    const sql = yield* Sql
    yield* sql.transaction((tx) => Effect.forEach(stored, (s) => Fold.event(tx, s), { discard: true }))
    const rows = yield* dump
    yield* reset
    return { runs: rows.runs, steps: rows.steps }
  })

/**
 * Where a transaction is cut: statements inside transactions are counted from `count`, and the `at`-th one fails
 * as a lost connection does (no SQLSTATE: an outage, never a dead letter) or interrupts the apply. 0: none is cut.
 */
const cut = { at: 0, count: 0, how: "outage" as "outage" | "interrupt" }
/** Calls of a transaction's port (`query` or `queries`): each is one round trip to the database. */
const trips = { count: 0 }

const cutting = (layer: Layer.Layer<Sql, DatabaseUnavailable>): Layer.Layer<Sql, DatabaseUnavailable> =>
  Layer.effect(
    Sql,
    Effect.gen(function*() {
      const inner = yield* Sql
      const wrap = (tx: SqlPort): SqlPort => ({
        dialect: tx.dialect,
        query: <T>(text: string, params?: ReadonlyArray<unknown>) =>
          Effect.suspend(() => {
            trips.count++
            if (++cut.count !== cut.at) return tx.query<T>(text, params)
            return cut.how === "outage"
              ? Effect.fail(new DatabaseUnavailable({ operation: "query", reason: "connection lost (injected)" }))
              : Effect.interrupt
          }),
        // one by one, so a cut can fall on any statement of a pipeline
        queries: (statements) =>
          Effect.suspend(() => {
            trips.count++
            const before = trips.count
            return Effect.forEach(statements, (s) => wrap(tx).query(s.text, s.params)).pipe(
              Effect.ensuring(Effect.sync(() => (trips.count = before)))
            )
          }),
        transaction: (f) => tx.transaction((sp) => f(wrap(sp)))
      })
      return Sql.of({ ...inner, transaction: (f) => inner.transaction((tx) => f(wrap(tx))) })
    })
  ).pipe(Layer.provide(layer))

for (const driver of Drivers.sql()) {
  describe.skipIf(driver.skip)(`projector batches: ${driver.title}`, () => {
    let rt: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>
    let stop: () => Promise<void> = async () => {}
    const run = <A, E>(effect: Effect.Effect<A, E, Sql>) => rt.runPromise(effect)

    beforeAll(async () => {
      const started = await driver.start()
      stop = started.stop
      rt = ManagedRuntime.make(cutting(started.layer))
      await run(Migrations.migrate)
    })
    afterAll(async () => {
      await rt?.dispose()
      await stop()
    })
    beforeEach(async () => {
      cut.at = 0
      await run(reset)
    })

    it("writes a batch in two round trips whatever its size: the checkpoint lock, then one pipeline (ADR 0081)", async () => {
      for (const runs of [1, 30]) {
        await run(reset)
        const stored = journal(runs).stored.filter((s) => !JSON.stringify(s.event).includes("\\u0000"))
        trips.count = 0
        const applied = await run(Projector.apply("projector-runs", RUNS, stored))
        expect(applied.applied).toBe(stored.length)
        expect(trips.count).toBe(2)
      }
    })

    it("dead-letters exactly the refused event in the middle of a batch and applies the others as without it", async () => {
      const { stored, poison } = journal(4)
      expect(poison.seq).toBeGreaterThan(stored.length / 4)
      expect(poison.seq).toBeLessThan(stored.length * 3 / 4)
      const expected = await run(oneByOne(stored.filter((s) => s !== poison)))

      const applied = await run(Projector.apply("projector-runs", RUNS, stored))
      expect(applied.applied).toBe(stored.length - 1)
      expect(applied.checkpoint).toBe(stored.length)
      expect(applied.deadLetters.map((d) => [d.seq, d.tenant, d.eventType])).toEqual([
        [poison.seq, TENANT, "StepsCompleted"]
      ])
      expect(applied.deadLetters[0]!.reason).toMatch(/^SQLSTATE 22P05: /)
      const rows = await run(dump)
      expect({ runs: rows.runs, steps: rows.steps }).toEqual(expected)
      expect(rows.deadLetters.map((d) => d.seq)).toEqual([poison.seq])
      expect((await run(DeadLetters.list())).map((d) => d.seq)).toEqual([poison.seq])
      // the poisoned run is projected to its end, short of the nine steps its refused StepsCompleted held (the first
      // answer and the eight tool calls it asked for, ADR 0075)
      const runs = rows.runs as ReadonlyArray<{ id: string; status: string; steps: number }>
      expect(runs.map((r) => [r.id, r.status, r.steps])).toEqual([1, 2, 3, 4].map((n) => [
        Fixtures.runId(n),
        "succeeded",
        n === 2 ? 1 : 10
      ]))

      // redelivered whole, or from the middle: nothing changes, nothing is dead-lettered again
      expect(await run(Projector.apply("projector-runs", RUNS, stored, stored.length))).toMatchObject({
        applied: 0,
        skipped: stored.length,
        deadLetters: []
      })
      expect(await run(dump)).toEqual(rows)
    })

    it("leaves rows, checkpoint and dead letters as they were when a batch is cut at any statement", async () => {
      const { stored, poison } = journal(2)
      // two runs of five events, interleaved: the batch holds both StepsCompleted (the second poisoned) and the ends
      const split = 4
      const first = stored.slice(0, split)
      const batch = stored.slice(split)
      expect(batch).toContain(poison)

      await run(Projector.apply("projector-runs", RUNS, first))
      const before = await run(dump)
      cut.count = 0
      await run(Projector.apply("projector-runs", RUNS, batch, split))
      // the whole batch's statements, then the database refuses it and the event-by-event ones follow
      const statements = cut.count
      const after = await run(dump)
      expect(after.checkpoints).toEqual([{ projector: "projector-runs", stream: RUNS, last_seq: stored.length }])
      expect(after.deadLetters.map((d) => d.seq)).toEqual([poison.seq])
      expect(statements).toBeGreaterThan(batch.length)

      for (let at = 1; at <= statements; at++) {
        // an outage at every statement; an interruption (the rollback runs uninterruptibly) at every fourth
        for (const how of at % 4 === 0 ? ["outage", "interrupt"] as const : ["outage"] as const) {
          cut.at = 0
          await run(reset)
          await run(Projector.apply("projector-runs", RUNS, first))
          Object.assign(cut, { at, how, count: 0 })
          const exit = await rt.runPromiseExit(Projector.apply("projector-runs", RUNS, batch, split))
          cut.at = 0
          expect(Exit.isFailure(exit), `cut at statement ${at} of ${statements} (${how})`).toBe(true)
          expect(await run(dump), `cut at statement ${at} of ${statements} (${how})`).toEqual(before)
          // the reader subscribes again from the checkpoint it finds: the same batch, applied whole
          await run(Projector.apply("projector-runs", RUNS, batch, split))
          expect(await run(dump), `applied again after a cut at ${at} (${how})`).toEqual(after)
        }
      }
    })
  })
}
