// The SQL port's driver-specific promises: a connection string's password never reaches an error, and a
// PGlite data directory keeps its rows across a close and a reopen, in a worker thread and on this one (ADR 0078),
// with Postgres' failures, types and transactions the same in both.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Effect, Exit, Layer } from "effect"
import { isDataError, redactUrl, Sql, sqlState } from "./Sql.ts"

const withSql = <A, E>(layer: Layer.Layer<Sql, E>, f: (sql: Sql["Service"]) => Effect.Effect<A, E>) =>
  Effect.runPromiseExit(
    Effect.gen(function*() {
      return yield* f(yield* Sql)
    }).pipe(Effect.provide(layer))
  )

describe("Sql", () => {
  it("redacts the password of a connection string", () => {
    expect(redactUrl("postgres://bob:hunter2@db.example:5432/app")).toBe("postgres://bob:***@db.example:5432/app")
    expect(redactUrl("postgres://db.example/app")).toBe("postgres://db.example/app")
    expect(redactUrl("not a url hunter2")).not.toContain("hunter2")
  })

  it("fails to start on an unreachable Postgres with an error that names the host but not the password", async () => {
    const exit = await withSql(Sql.layerPg("postgres://bob:hunter2@127.0.0.1:1/app"), (sql) => sql.query("select 1"))
    expect(Exit.isFailure(exit)).toBe(true)
    const text = String(exit)
    expect(text).toContain("DatabaseUnavailable")
    expect(text).toContain("bob:***@127.0.0.1:1")
    expect(text).not.toContain("hunter2")
  })

  for (const placement of ["worker", "main"] as const) {
    it(`keeps PGlite rows in its data directory across a reopen (${placement} thread)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "lantern-pglite-"))
      try {
        const write = await withSql(Sql.layerPglite(join(dir, "pglite"), placement), (sql) =>
          Effect.andThen(
            sql.query("create table kept (n int8 primary key, amount numeric)"),
            sql.query("insert into kept values ($1, $2)", [9_007_199_254_740_991, 0.25])
          ))
        expect(Exit.isSuccess(write)).toBe(true)
        // the other placement reads what this one wrote: the same files, the same database
        const other = placement === "worker" ? "main" : "worker"
        const read = await withSql(
          Sql.layerPglite(join(dir, "pglite"), other),
          (sql) => sql.query("select n, amount from kept")
        )
        expect(read).toEqual(Exit.succeed([{ n: 9_007_199_254_740_991, amount: 0.25 }]))
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    it(`runs a pipeline in order and names the statement that failed, with its SQLSTATE (${placement} thread)`, async () => {
      const exit = await withSql(Sql.layerPglite(null, placement), (sql) =>
        Effect.gen(function*() {
          yield* sql.query("create table p (n int primary key)")
          const rows = yield* sql.queries([
            { text: "insert into p values ($1)", params: [1] },
            { text: "select count(*)::int8 as n from p" },
            { text: "insert into p values ($1)", params: [2] },
            { text: "select n from p order by n" }
          ])
          const failure = yield* Effect.flip(sql.queries([
            { text: "insert into p values ($1)", params: [3] },
            { text: "update p set n = $1 where n = 3", params: [1] },
            { text: "insert into p values ($1)", params: [4] }
          ]))
          const after = yield* sql.query<{ n: number }>("select n from p order by n")
          return { rows, failure, after: after.map((r) => r.n) }
        }))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (!Exit.isSuccess(exit)) return
      expect(exit.value.rows).toEqual([[], [{ n: 1 }], [], [{ n: 1 }, { n: 2 }]])
      expect(exit.value.failure.operation).toMatch(/^update p/)
      expect(sqlState(exit.value.failure)).toBe("23505")
      expect(exit.value.after).toEqual([1, 2, 3])
    })

    it(`gives Postgres' SQLSTATE, rolls a failed transaction back and returns dates and bytes (${placement} thread)`, async () => {
      const exit = await withSql(Sql.layerPglite(null, placement), (sql) =>
        Effect.gen(function*() {
          yield* sql.query("create table t (id text primary key, at timestamptz, b bytea, j jsonb)")
          yield* sql.query("insert into t values ($1, $2, $3, $4::jsonb)", [
            "a",
            new Date("2026-12-04T10:00:00Z"),
            new Uint8Array([1, 2, 3]),
            JSON.stringify({ k: [1, "x"] })
          ])
          const duplicate = yield* Effect.flip(sql.query("insert into t (id) values ($1)", ["a"]))
          const rolledBack = yield* Effect.exit(sql.transaction((tx) =>
            Effect.andThen(
              tx.query("insert into t (id) values ($1)", ["b"]),
              tx.query("insert into t (id) values ($1)", ["a"])
            )
          ))
          const rows = yield* sql.query<{ id: string; at: Date | null; b: Uint8Array | null; j: unknown }>(
            "select id, at, b, j from t order by id"
          )
          return { duplicate, rolledBack, rows }
        }))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (!Exit.isSuccess(exit)) return
      const { duplicate, rolledBack, rows } = exit.value
      expect(sqlState(duplicate)).toBe("23505")
      expect(isDataError(duplicate)).toBe(true)
      expect(Exit.isFailure(rolledBack)).toBe(true)
      expect(rows.map((r) => r.id)).toEqual(["a"])
      expect(rows[0]!.at).toEqual(new Date("2026-12-04T10:00:00Z"))
      expect([...rows[0]!.b!]).toEqual([1, 2, 3])
      expect(rows[0]!.j).toEqual({ k: [1, "x"] })
    })
  }
})
