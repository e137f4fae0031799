// Tenant isolation enforced by the database, on both drivers: every tenant table is under ENABLE + FORCE row
// level security with its policy (the build fails otherwise), and the edge's tenant path sees and writes only
// its tenant's rows even when a statement has no tenant filter at all. The superuser connections of the other
// suites bypass RLS, so everything here reads through the edge's role, and one suite owns the tables as an
// ordinary user, as a production deployment does.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Exit, ManagedRuntime, Tracer } from "effect"
import pg from "pg"
import { AGENTS, AUDIT, RUNS } from "../bus/Topology.ts"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import * as Drivers from "../tests/support/Drivers.ts"
import * as Postgres from "../tests/support/Postgres.ts"
import * as Fixtures from "./Fixtures.ts"
import * as Migrations from "./Migrations.ts"
import * as Projector from "./Projector.ts"
import * as Queries from "./Queries.ts"
import * as Rls from "./Rls.ts"
import { forTenant, Sql, type SqlPort } from "./Sql.ts"
import * as Tokens from "./Tokens.ts"

const TENANT_TABLES = [
  "agent_versions",
  "agents",
  "api_tokens",
  "audit_events",
  "projector_dead_letters",
  "runs",
  "steps"
]

const drivers = Drivers.sql()

const withSql = <A, E>(f: (sql: SqlPort) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    return yield* f(yield* Sql)
  })

/** Two tenants with the same agent names and run ids, and a token each, written by the projectors' path. */
const seed = Effect.gen(function*() {
  for (const [tenant, firstSeq] of [["ta", 1], ["tb", 1000]] as const) {
    yield* Projector.apply("projector-agents", AGENTS, Fixtures.storedOf(Fixtures.agentEntries(tenant), firstSeq))
    yield* Projector.apply("projector-runs", RUNS, Fixtures.storedOf(Fixtures.runEntries(tenant), firstSeq))
    yield* Projector.apply("projector-audit", AUDIT, Fixtures.storedOf(Fixtures.auditEntries(tenant), firstSeq))
    // a run whose input the database refuses (a NUL): a dead letter of the tenant
    const started = Fixtures.startedRuns(tenant, 1, 90)[0]!
    yield* Projector.apply(
      "projector-runs",
      RUNS,
      Fixtures.storedOf(
        [{ ...started, event: { ...started.event, input: "\u0000" } as Fixtures.Entry["event"] }],
        firstSeq + 500
      )
    )
    yield* Tokens.ensure(tenant, "owner", `lt_secret_${tenant}`)
  }
})

/** Rows per tenant of a table, read as the connecting user (the system role sees every tenant). */
const tenantsOf = (table: string) =>
  withSql((sql) =>
    sql.query<{ tenant: string; n: number }>(
      `select tenant_id as tenant, count(*)::int as n from ${table} group by 1 order by 1`
    )
  )

/** The behaviours every deployment must show; `run` runs an effect on a migrated, seeded database. */
const isolationCases = (
  run: <A, E>(effect: Effect.Effect<A, E, Sql>) => Promise<A>,
  exit: <A, E>(effect: Effect.Effect<A, E, Sql>) => Promise<Exit.Exit<A, unknown>>
) => {
  it("puts every tenant table under ENABLE + FORCE row level security with its tenant_isolation policy", async () => {
    expect(await run(Rls.problems)).toEqual([])
    // the check above is not vacuous: these are the tables it found, each with the flags and the policy
    const tables = await run(
      withSql((sql) =>
        sql.query<{ name: string; enabled: boolean; forced: boolean; policies: string }>(
          `select c.relname as name, c.relrowsecurity as enabled, c.relforcerowsecurity as forced,
         (select string_agg(p.policyname, ',' order by p.policyname) from pg_policies p
           where p.schemaname = n.nspname and p.tablename = c.relname) as policies
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = current_schema() and c.relkind = 'r'
         and exists (select from pg_attribute a where a.attrelid = c.oid and a.attname in ('tenant', 'tenant_id'))
       order by 1`
        )
      )
    )
    expect(tables).toEqual(
      TENANT_TABLES.map((name) => ({ name, enabled: true, forced: true, policies: "lantern_system,tenant_isolation" }))
    )
  })

  it("fails the check for a tenant table without the policy, or with a policy that lets the edge see more", async () => {
    const sql = (text: string) => run(withSql((s) => s.query(text)))
    await sql(`create table rogue (tenant_id text not null, secret text)`)
    try {
      expect(await run(Rls.problems)).toEqual(expect.arrayContaining([
        "rogue: row level security is not enabled",
        "rogue: row level security is not forced (the table's owner would bypass it)",
        "rogue: no tenant_isolation policy"
      ]))
      await sql(`alter table rogue enable row level security`)
      await sql(`alter table rogue force row level security`)
      await sql(
        `create policy tenant_isolation on rogue using (tenant_id = current_setting('lantern.tenant', true)) with check (tenant_id = current_setting('lantern.tenant', true))`
      )
      expect(await run(Rls.problems)).toEqual([])
      await sql(`create policy everyone on rogue for select using (true)`)
      expect(await run(Rls.problems)).toEqual([
        "rogue: the policy everyone applies to public, which widens what the edge may see"
      ])
      const failed = await exit(Rls.verify)
      expect(Exit.isFailure(failed) && String(failed.cause)).toContain("verify row-level security")
    } finally {
      await sql(`drop table rogue`)
    }
  })

  it("shows a tenant only its rows through the tenant path, with the statement's tenant filter removed", async () => {
    for (const table of TENANT_TABLES) {
      const all = await run(tenantsOf(table))
      expect(all.map((r) => r.tenant)).toEqual(["ta", "tb"])
      for (const { tenant, n } of all) {
        // `select *` with no `where`: the "filter removed" build of every edge read
        const rows = await run(forTenant(tenant, (tx) => tx.query<{ tenant_id: string }>(`select * from ${table}`)))
        expect(rows.length, `${table} as ${tenant}`).toBe(n)
        expect(rows.every((r) => r.tenant_id === tenant), `${table} as ${tenant}`).toBe(true)
      }
      // a filter naming the other tenant finds nothing either
      expect(await run(forTenant("ta", (tx) => tx.query(`select * from ${table} where tenant_id = 'tb'`)))).toEqual([])
    }
    // the edge's reads are the same rows as before
    const ids = (await run(Queries.listRuns("tb"))).items.map((r) => r.id)
    expect(ids).toEqual([3, 2, 1].map(Fixtures.runId))
    expect(await run(Tokens.anyForTenant("tb"))).toBe(true)
    expect(await run(Tokens.authenticate("lt_secret_tb"))).toMatchObject({ tenant: "tb", name: "owner" })
  })

  it("refuses to write another tenant's rows through the tenant path", async () => {
    const before = await run(withSql((sql) => sql.query(`select * from runs where tenant_id = 'tb' order by id`)))
    const insert = await exit(forTenant("ta", (tx) =>
      tx.query(
        `insert into runs (tenant_id, id, agent_name, agent_version, status, created_at, updated_at, last_seq)
         values ('tb', 'run_planted', 'support', 1, 'running', now(), now(), 1)`
      )))
    expect(Exit.isFailure(insert) && String(insert.cause)).toContain("row-level security")
    // moving one's own row to another tenant is refused by WITH CHECK
    const moved = await exit(
      forTenant("ta", (tx) => tx.query(`update runs set tenant_id = 'tb' where id = $1`, [Fixtures.runId(1)]))
    )
    expect(Exit.isFailure(moved) && String(moved.cause)).toContain("row-level security")
    // another tenant's rows are invisible to update and delete: nothing matches
    expect(
      await run(
        forTenant("ta", (tx) => tx.query(`update runs set status = 'failed' where tenant_id = 'tb' returning id`))
      )
    ).toEqual([])
    expect(await run(forTenant("ta", (tx) => tx.query(`delete from steps returning tenant_id`)))).toSatisfy(
      (rows: ReadonlyArray<{ tenant_id: string }>) => rows.every((r) => r.tenant_id === "ta")
    )
    expect(await run(withSql((sql) => sql.query(`select * from runs where tenant_id = 'tb' order by id`)))).toEqual(
      before
    )
    expect((await run(tenantsOf("steps"))).map((r) => r.tenant)).toEqual(["tb"])
  })

  it("shows the edge's role nothing without a tenant, and leaves the connection as it was after a tenant read", async () => {
    for (const table of TENANT_TABLES) {
      const unset = await run(withSql((sql) =>
        sql.transaction((tx) =>
          Effect.andThen(
            tx.query(`select set_config('role', $1, true)`, [Rls.EDGE_ROLE]),
            tx.query<{ n: number }>(`select count(*)::int as n from ${table}`)
          )
        )
      ))
      expect(unset, table).toEqual([{ n: 0 }])
      expect(await run(forTenant("", (tx) => tx.query(`select * from ${table}`))), table).toEqual([])
      expect(await run(forTenant("nobody", (tx) => tx.query(`select * from ${table}`))), table).toEqual([])
    }
    const after = await run(Effect.andThen(
      forTenant("ta", (tx) => tx.query(`select 1`)),
      withSql((sql) =>
        sql.query<{ role: string; tenant: string | null }>(
          `select current_user as role, current_setting('lantern.tenant', true) as tenant`
        )
      )
    ))
    expect(after[0]?.role).not.toBe(Rls.EDGE_ROLE)
    expect(after[0]?.tenant ?? "").toBe("")
  })
}

for (const driver of drivers) {
  describe.skipIf(driver.skip)(`row-level security: ${driver.title}`, () => {
    let rt: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>
    let stop: () => Promise<void> = async () => {}

    beforeAll(async () => {
      const started = await driver.start()
      stop = started.stop
      rt = ManagedRuntime.make(started.layer)
      await rt.runPromise(Migrations.migrate)
      await rt.runPromise(seed)
    }, 60_000)
    afterAll(async () => {
      await rt?.dispose()
      await stop()
    })

    isolationCases((effect) => rt.runPromise(effect), (effect) => rt.runPromiseExit(effect))

    it("reads in two round trips: the BEGIN, the tenant's settings and the first statement together, then the COMMIT", async () => {
      // each round trip to the database is one Sql.query or Sql.queries span (a pipeline), named by its first statement
      const spans: Array<Tracer.Span> = []
      const recording = Tracer.make({
        span(options) {
          const span = Tracer.nativeTracer.span(options)
          if (options.name === "Sql.query" || options.name === "Sql.queries") spans.push(span)
          return span
        }
      })
      const trips = () => spans.map((s) => `${s.name} ${String(s.attributes.get("db.statement"))}`)
      const traced = <A, E>(effect: Effect.Effect<A, E, Sql>) => rt.runPromise(Effect.withTracer(effect, recording))
      const rows = await traced(forTenant("ta", (tx) => tx.query<{ tenant_id: string }>(`select tenant_id from runs`)))
      expect(rows.length).toBeGreaterThan(0)
      expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set(["ta"]))
      expect(trips()).toEqual(["Sql.queries begin", "Sql.query commit"])
      // two statements: the settings go with the first only; a body that runs nothing sends nothing
      spans.length = 0
      const [a, b] = await traced(forTenant("tb", (tx) =>
        Effect.all([
          tx.query<{ n: number }>(`select count(*)::int as n from runs`),
          tx.query<{ tenant: string }>(`select current_setting('lantern.tenant', true) as tenant`)
        ])))
      expect(a[0]!.n).toBeGreaterThan(0)
      expect(b).toEqual([{ tenant: "tb" }])
      expect(trips()).toEqual([
        "Sql.queries begin",
        "Sql.query select current_setting('lantern.tenant', true) as tenant",
        "Sql.query commit"
      ])
      spans.length = 0
      expect(await traced(forTenant("ta", () => Effect.succeed("nothing")))).toBe("nothing")
      expect(trips()).toEqual([])
    })
  })
}

const cluster = Postgres.privateCluster()

describe.skipIf(!cluster.available)(
  `row-level security with a database user that is not a superuser${
    cluster.available ? "" : ` — skipped: ${cluster.reason}`
  }`,
  () => {
    let server: Postgres.PrivateCluster | undefined
    let rt: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>
    const urlAs = (user: string) => {
      const url = new URL(server!.url)
      url.username = user
      url.pathname = `/${user}`
      return url.toString()
    }

    const migrateAs = async (user: string) => {
      const runtime = ManagedRuntime.make(Sql.layerPg(urlAs(user)))
      try {
        return await runtime.runPromiseExit(Migrations.migrate)
      } finally {
        await runtime.dispose()
      }
    }
    let beforeRoles: Exit.Exit<void, DatabaseUnavailable> | undefined

    beforeAll(async () => {
      if (!cluster.available) return
      server = await cluster.start()
      const admin = new pg.Client({ connectionString: server.url })
      await admin.connect()
      try {
        // an ordinary user that may create roles (the documented requirement), and one that may not
        await admin.query(`create role lantern_app login createrole`)
        await admin.query(`create database lantern_app owner lantern_app`)
        await admin.query(`create role lantern_plain login`)
        await admin.query(`create database lantern_plain owner lantern_plain`)
      } finally {
        await admin.end()
      }
      // before any user of the cluster made the roles: this one may not create them
      beforeRoles = await migrateAs("lantern_plain")
      rt = ManagedRuntime.make(Sql.layerPg(urlAs("lantern_app")))
      await rt.runPromise(Migrations.migrate)
      await rt.runPromise(seed)
    }, 60_000)
    afterAll(async () => {
      await rt?.dispose()
      await server?.stop()
    })

    it("connects as an owner without superuser or BYPASSRLS, so FORCE binds it too", async () => {
      const [me] = await rt.runPromise(withSql((sql) =>
        sql.query(
          `select current_user as name, rolsuper as superuser, rolbypassrls as bypass from pg_roles where rolname = current_user`
        )
      ))
      expect(me).toEqual({ name: "lantern_app", superuser: false, bypass: false })
      // the projectors wrote both tenants' rows as this user, through its membership in the system role
      expect((await rt.runPromise(tenantsOf("runs"))).map((r) => r.tenant)).toEqual(["ta", "tb"])
      // without that membership the owner itself sees nothing (membership changes are transactional: undone)
      const seen: Array<unknown> = []
      await rt.runPromiseExit(withSql((sql) =>
        sql.transaction((tx) =>
          Effect.gen(function*() {
            yield* tx.query(`revoke ${Rls.SYSTEM_ROLE} from lantern_app`)
            seen.push(...(yield* tx.query(`select count(*)::int as n from runs`)))
            return yield* Effect.fail("undo" as const)
          })
        )
      ))
      expect(seen).toEqual([{ n: 0 }])
      expect(await rt.runPromise(Rls.problems)).toEqual([])
    })

    isolationCases((effect) => rt.runPromise(effect), (effect) => rt.runPromiseExit(effect))

    it("refuses to start, saying what to run, when the database user may not set the roles up", async () => {
      const fix =
        "CREATE ROLE lantern_edge NOLOGIN; CREATE ROLE lantern_system NOLOGIN; GRANT lantern_edge, lantern_system TO lantern_plain;"
      // no roles yet and no CREATEROLE
      expect(beforeRoles !== undefined && Exit.isFailure(beforeRoles)).toBe(true)
      const created = String(beforeRoles)
      expect(created).toContain("migration 5")
      expect(created).toContain("the database user lantern_plain may not create roles: grant it CREATEROLE")
      expect(created).toContain(fix)
      // the roles exist now (another database made them) but this user is not a member and may not grant itself
      const joined = await migrateAs("lantern_plain")
      expect(Exit.isFailure(joined)).toBe(true)
      expect(String(joined)).toContain("the database user lantern_plain is not a member of the role lantern_edge")
      expect(String(joined)).toContain(fix)
    })
  }
)
