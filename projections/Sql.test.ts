// The SQL port's driver-specific promises: a connection string's password never reaches an error, and a
// PGlite data directory keeps its rows across a close and a reopen.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { Effect, Exit, Layer } from "effect"
import { redactUrl, Sql } from "./Sql.ts"

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

  it("keeps PGlite rows in its data directory across a reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lantern-pglite-"))
    try {
      const write = await withSql(Sql.layerPglite(join(dir, "pglite")), (sql) =>
        Effect.andThen(
          sql.query("create table kept (n int8 primary key, amount numeric)"),
          sql.query("insert into kept values ($1, $2)", [9_007_199_254_740_991, 0.25])
        ))
      expect(Exit.isSuccess(write)).toBe(true)
      const read = await withSql(Sql.layerPglite(join(dir, "pglite")), (sql) => sql.query("select n, amount from kept"))
      expect(read).toEqual(Exit.succeed([{ n: 9_007_199_254_740_991, amount: 0.25 }]))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
