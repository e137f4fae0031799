// Suffixes: costs summed in memory print exactly as Postgres' numeric sum of the same JSON numbers does (PGlite).
import * as fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, ManagedRuntime } from "effect"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import { Sql } from "./Sql.ts"
import * as Suffixes from "./Suffixes.ts"

describe("Suffixes", () => {
  let rt: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>
  beforeAll(() => {
    rt = ManagedRuntime.make(Sql.layerPglite(null))
  })
  afterAll(() => rt.dispose())

  /** What `cost_usd + (x->>'costUsd')::numeric` folds event by event: 0 plus each cost, as numeric. */
  const numericSum = (xs: ReadonlyArray<number>) =>
    rt.runPromise(Effect.gen(function*() {
      const rows = yield* (yield* Sql).query<{ sum: string }>(
        `select (0::numeric + coalesce((select sum((v #>> '{}')::numeric) from jsonb_array_elements($1::jsonb) v), 0))::text as sum`,
        [JSON.stringify(xs)]
      )
      return rows[0]!.sum
    }))

  it("sums costs exactly, with numeric's scale", async () => {
    expect(Suffixes.decimalSum([0.1, 0.2])).toBe("0.3")
    expect(Suffixes.decimalSum([1e-7, 0.0012])).toBe("0.0012001")
    expect(Suffixes.decimalSum([])).toBe("0")
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.constantFrom(0, 0.0012, 0.1, 0.2, 1e-7, 0.000412, 1e21, -0.5),
            fc.double({ min: -1e9, max: 1e9, noNaN: true, noDefaultInfinity: true })
          ),
          { maxLength: 12 }
        ),
        async (xs) => {
          expect(Suffixes.decimalSum(xs)).toBe(await numericSum(xs))
        }
      ),
      { numRuns: 200 }
    )
  })

  it("gives each run one suffix per event, the latest ending of each, and the run's last event", () => {
    const at = (n: number) => `2026-11-21T05:00:0${n}.000Z`
    const suffixes = Suffixes.of([
      { tenant: "t", id: "a", seq: 3, at: at(1), completed: [{ tokensIn: 1, tokensOut: 2, costUsd: 0.1 }] },
      { tenant: "t", id: "b", seq: 4, at: at(2) },
      { tenant: "t", id: "a", seq: 5, at: at(3), ended: { status: "succeeded", output: 1, error: null } },
      { tenant: "t", id: "a", seq: 9, at: at(4), completed: [{ tokensIn: 3, tokensOut: 4, costUsd: 0.2 }] }
    ])
    expect(suffixes.map((s) => [s.id, s.after, s.from, s.steps, s.tokensIn, s.costUsd, s.lastSeq, s.status])).toEqual([
      ["a", 0, 3, 2, 4, "0.3", 9, "succeeded"],
      ["a", 3, 5, 1, 3, "0.2", 9, "succeeded"],
      ["a", 5, 9, 1, 3, "0.2", 9, undefined],
      ["b", 0, 4, 0, 0, "0", 4, undefined]
    ])
    expect(suffixes[1]).toMatchObject({ at: at(4), output: 1, error: null, finishedAt: at(3) })
  })
})
