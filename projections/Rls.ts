// Database-enforced tenant isolation: the roles, the policy every tenant table carries, and the catalog check
// that refuses (at start and in the test suite) a database on which a tenant table could leak across tenants.
import { Effect } from "effect"
import { DatabaseUnavailable } from "../schema/Errors.ts"
import { EDGE_ROLE, Sql, SYSTEM_ROLE, TENANT_SETTING } from "./Sql.ts"

export { EDGE_ROLE, SYSTEM_ROLE, TENANT_SETTING }

/** The column naming a row's tenant; a table that has it is a tenant table. */
export const TENANT_COLUMN = "tenant_id"

/** What the edge's role may see and write: rows of the tenant set for the transaction, nothing without one. */
const OWN_ROWS = `${TENANT_COLUMN} = current_setting('${TENANT_SETTING}', true)`

/**
 * Creates the two roles when they do not exist (roles are per cluster: another database may have made them) and
 * makes the connecting user a member of both, with an error that says what to run when it may not.
 */
export const ENSURE_ROLES = `do $$
declare
  r text;
  fix text := format('CREATE ROLE ${EDGE_ROLE} NOLOGIN; CREATE ROLE ${SYSTEM_ROLE} NOLOGIN; GRANT ${EDGE_ROLE}, ${SYSTEM_ROLE} TO %I; (README: Production NATS and Postgres)', current_user);
begin
  foreach r in array array['${EDGE_ROLE}', '${SYSTEM_ROLE}'] loop
    if not exists (select from pg_roles where rolname = r) then
      begin
        execute format('create role %I nologin', r);
      exception
        when duplicate_object or unique_violation then null;
        when insufficient_privilege then
          raise exception using errcode = 'insufficient_privilege', message = format(
            'row-level security needs the roles ${EDGE_ROLE} and ${SYSTEM_ROLE}, and the database user %I may not create roles: grant it CREATEROLE, or have an administrator run: %s',
            current_user, fix);
      end;
    end if;
    if not pg_has_role(current_user, r, 'member') then
      begin
        execute format('grant %I to %I', r, current_user);
      exception
        when insufficient_privilege or invalid_grant_operation then
          raise exception using errcode = 'insufficient_privilege', message = format(
            'the database user %I is not a member of the role %I and may not grant it to itself: have an administrator run: %s',
            current_user, r, fix);
      end;
    end if;
  end loop;
end
$$`

/**
 * The statements that put one tenant table under row-level security. FORCE subjects the table's owner too, so
 * the owner's access (projectors, migrations, token lookups) comes from membership in the system role, not from
 * owning the table. Applied migrations call this: never change what it emits; add a new function instead.
 */
export const secure = (table: string): ReadonlyArray<string> => [
  `grant select, insert, update, delete on ${table} to ${EDGE_ROLE}`,
  `alter table ${table} enable row level security`,
  `alter table ${table} force row level security`,
  `create policy tenant_isolation on ${table} using (${OWN_ROWS}) with check (${OWN_ROWS})`,
  `create policy ${SYSTEM_ROLE} on ${table} to ${SYSTEM_ROLE} using (true) with check (true)`
]

interface TableRow {
  readonly name: string
  readonly enabled: boolean
  readonly forced: boolean
}

interface PolicyRow {
  readonly table: string
  readonly name: string
  readonly roles: string
  readonly command: string
  readonly permissive: string
  readonly qual: string | null
  readonly check: string | null
}

interface RoleRow {
  readonly edgeBypasses: boolean | null
  readonly canSetEdge: boolean | null
  readonly usesSystem: boolean | null
  readonly superuser: boolean
}

const isOwnRows = (expression: string | null) =>
  expression !== null && expression.includes(TENANT_COLUMN) &&
  expression.includes(`current_setting('${TENANT_SETTING}'`)

/**
 * Every reason tenant isolation would not hold in the current schema, empty when it holds: a tenant table (any
 * table with a `tenant_id` or `tenant` column) without ENABLE and FORCE row level security or without the
 * `tenant_isolation` policy, a policy that lets any role but the system role see more, an edge role that
 * bypasses RLS, or a connecting user that cannot switch to the edge role.
 */
export const problems: Effect.Effect<ReadonlyArray<string>, DatabaseUnavailable, Sql> = Effect.gen(function*() {
  const sql = yield* Sql
  const tables = yield* sql.query<TableRow>(
    `select c.relname as name, c.relrowsecurity as enabled, c.relforcerowsecurity as forced
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = current_schema() and c.relkind in ('r', 'p')
       and exists (select from pg_attribute a
         where a.attrelid = c.oid and a.attname in ('${TENANT_COLUMN}', 'tenant') and a.attnum > 0 and not a.attisdropped)
     order by 1`
  )
  const policies = yield* sql.query<PolicyRow>(
    `select tablename as table, policyname as name, array_to_string(roles, ',') as roles, cmd as command,
       permissive, qual, with_check as check
     from pg_policies where schemaname = current_schema()`
  )
  const [roles] = yield* sql.query<RoleRow>(
    `select (select rolbypassrls or rolsuper from pg_roles where rolname = '${EDGE_ROLE}') as "edgeBypasses",
       (select pg_has_role(current_user, oid, 'member') from pg_roles where rolname = '${EDGE_ROLE}') as "canSetEdge",
       (select pg_has_role(current_user, oid, 'usage') from pg_roles where rolname = '${SYSTEM_ROLE}') as "usesSystem",
       (select rolsuper from pg_roles where rolname = current_user) as superuser`
  )
  const found: Array<string> = []
  if (roles?.edgeBypasses !== false) {
    found.push(
      roles?.edgeBypasses === true
        ? `the role ${EDGE_ROLE} is a superuser or has BYPASSRLS, so row-level security does not bind it`
        : `the role ${EDGE_ROLE} does not exist`
    )
  }
  if (roles?.canSetEdge === false)
    found.push(`the database user is not a member of ${EDGE_ROLE}, so it cannot read as it`)
  if (roles?.usesSystem === false && roles.superuser !== true) {
    found.push(
      `the database user does not inherit ${SYSTEM_ROLE}, so FORCE row level security hides every row from the projectors`
    )
  }
  for (const table of tables) {
    if (!table.enabled) found.push(`${table.name}: row level security is not enabled`)
    if (!table.forced) found.push(`${table.name}: row level security is not forced (the table's owner would bypass it)`)
    const own = policies.filter((p) => p.table === table.name)
    const isolation = own.find((p) => p.name === "tenant_isolation")
    if (isolation === undefined) found.push(`${table.name}: no tenant_isolation policy`)
    else if (
      isolation.command !== "ALL" || isolation.permissive !== "PERMISSIVE" || isolation.roles !== "public" ||
      !isOwnRows(isolation.qual) || !isOwnRows(isolation.check)
    ) {
      found.push(`${table.name}: the tenant_isolation policy is not ${OWN_ROWS} for all commands and roles`)
    }
    for (const p of own) {
      if (p.name !== "tenant_isolation" && p.permissive === "PERMISSIVE" && p.roles !== SYSTEM_ROLE) {
        found.push(`${table.name}: the policy ${p.name} applies to ${p.roles}, which widens what the edge may see`)
      }
    }
  }
  return found
})

/** Fails with every problem when tenant isolation would not hold; start runs this after the migrations. */
export const verify: Effect.Effect<void, DatabaseUnavailable, Sql> = Effect.flatMap(
  problems,
  (found) =>
    found.length === 0
      ? Effect.void
      : Effect.fail(new DatabaseUnavailable({ operation: "verify row-level security", reason: found.join("; ") }))
)
