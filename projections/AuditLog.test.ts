// The audit log's read on PGlite: a tenant sees only its entries (row-level security and its own filter), newest
// first, by action and time, in pages; projecting an entry twice writes one row.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, ManagedRuntime } from "effect"
import { AUDIT } from "../bus/Topology.ts"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import * as AuditLog from "./AuditLog.ts"
import * as Fixtures from "./Fixtures.ts"
import * as Migrations from "./Migrations.ts"
import * as Projector from "./Projector.ts"
import { Sql } from "./Sql.ts"

let rt: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>
const run = <A, E>(effect: Effect.Effect<A, E, Sql>) => rt.runPromise(effect)

beforeAll(async () => {
  rt = ManagedRuntime.make(Sql.layerPglite(null))
  await run(Migrations.migrate)
  await run(Projector.apply("projector-audit", AUDIT, Fixtures.storedOf(Fixtures.auditEntries("ta"), 1)))
  await run(Projector.apply("projector-audit", AUDIT, Fixtures.storedOf(Fixtures.auditEntries("tb"), 100)))
}, 60_000)

afterAll(() => rt?.dispose())

describe("AuditLog.list", () => {
  it("shows a tenant its own entries only, newest first", async () => {
    const page = await run(AuditLog.list("ta"))
    expect(page.items.map((e) => e.id)).toEqual([3, 2, 1].map(Fixtures.auditId))
    expect(page.nextCursor).toBeNull()
    expect(page.items[1]).toEqual({
      id: Fixtures.auditId(2),
      at: Fixtures.at(201),
      action: "scope.denied",
      actor: "key:key_1",
      target: "POST /v1/runs",
      outcome: "denied",
      detail: { missing: "runs:write" }
    })
    expect((await run(AuditLog.list("nobody"))).items).toEqual([])
  })

  it("filters by action and time, and pages by cursor", async () => {
    expect((await run(AuditLog.list("tb", { action: "receipt.issued" }))).items.map((e) => e.target)).toEqual([
      Fixtures.runId(2),
      Fixtures.runId(1)
    ])
    expect((await run(AuditLog.list("tb", { since: Fixtures.at(201) }))).items.map((e) => e.id)).toEqual(
      [3, 2].map(Fixtures.auditId)
    )
    const first = await run(AuditLog.list("ta", { limit: 2 }))
    expect(first.items.map((e) => e.id)).toEqual([3, 2].map(Fixtures.auditId))
    expect(first.nextCursor).toBe(Fixtures.auditId(2))
    const second = await run(AuditLog.list("ta", { limit: 2, cursor: first.nextCursor! }))
    expect(second).toEqual({ items: [expect.objectContaining({ id: Fixtures.auditId(1) })], nextCursor: null })
  })

  it("writes one row per entry when its event is projected again (a rebuild, a redelivery)", async () => {
    await run(Projector.rebuild("projector-audit"))
    await run(Projector.apply("projector-audit", AUDIT, Fixtures.storedOf(Fixtures.auditEntries("ta"), 1)))
    await run(Projector.apply("projector-audit", AUDIT, Fixtures.storedOf(Fixtures.auditEntries("ta"), 1)))
    expect((await run(AuditLog.list("ta"))).items).toHaveLength(3)
    expect((await run(AuditLog.list("tb"))).items).toHaveLength(0)
  })
})
