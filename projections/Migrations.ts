// The projection database's schema as ordered, append-only migrations, each applied once in its own
// transaction and recorded in `lantern_migrations`. Safe to run on every start, from several hosts at once.
import { Effect } from "effect"
import { DatabaseUnavailable } from "../schema/Errors.ts"
import * as Rls from "./Rls.ts"
import { Sql } from "./Sql.ts"

export interface Migration {
  readonly id: number
  readonly name: string
  /** Single statements (PGlite's extended protocol takes one at a time). */
  readonly statements: ReadonlyArray<string>
}

/**
 * Every table of tenant data carries `tenant_id` (named `tenant` up to migration 4), is under row-level
 * security (migration 5; see Rls.ts), and its keys and indexes start with it. Times are `timestamptz`
 * taken from events, never `now()`, so a replay from zero writes identical rows. Keys that the API orders by
 * use the "C" collation, so both drivers sort them by bytes. Never edit a released migration: add one.
 */
export const migrations: ReadonlyArray<Migration> = [
  {
    id: 1,
    name: "read models of agents and runs, projector checkpoints",
    statements: [
      `create table agents (
        tenant text not null,
        name text collate "C" not null,
        description text not null,
        latest_version integer not null,
        digest text not null,
        spec jsonb not null,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        primary key (tenant, name)
      )`,
      `create table agent_versions (
        tenant text not null,
        name text collate "C" not null,
        version integer not null,
        digest text not null,
        description text not null,
        spec jsonb not null,
        created_at timestamptz not null,
        primary key (tenant, name, version)
      )`,
      `create table runs (
        tenant text not null,
        id text collate "C" not null,
        agent_name text collate "C" not null,
        agent_version integer not null,
        status text not null check (status in ('running', 'succeeded', 'failed', 'canceled')),
        input jsonb,
        output jsonb,
        error jsonb,
        steps integer not null default 0,
        tokens_in bigint not null default 0,
        tokens_out bigint not null default 0,
        cost_usd numeric not null default 0,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        finished_at timestamptz,
        last_seq bigint not null,
        primary key (tenant, id)
      )`,
      `create index runs_by_status on runs (tenant, status, id)`,
      `create index runs_by_agent on runs (tenant, agent_name, id)`,
      `create table steps (
        tenant text not null,
        run_id text collate "C" not null,
        step_id text collate "C" not null,
        attempt integer not null,
        kind text not null check (kind in ('model', 'tool')),
        status text not null check (status in ('started', 'completed', 'failed')),
        request jsonb,
        result jsonb,
        error jsonb,
        tokens_in bigint not null default 0,
        tokens_out bigint not null default 0,
        cost_usd numeric not null default 0,
        started_at timestamptz,
        finished_at timestamptz,
        seq bigint not null,
        primary key (tenant, run_id, step_id, attempt)
      )`,
      `create index steps_in_order on steps (tenant, run_id, seq)`,
      `create table projector_checkpoints (
        projector text not null,
        stream text not null,
        last_seq bigint not null,
        primary key (projector, stream)
      )`
    ]
  },
  {
    id: 2,
    name: "api tokens, stored as sha-256 hashes",
    statements: [
      `create table api_tokens (
        token_hash text primary key,
        tenant text not null,
        name text not null,
        scopes text[] not null,
        created_at timestamptz not null
      )`,
      `create unique index api_tokens_by_tenant on api_tokens (tenant, name)`
    ]
  },
  {
    id: 3,
    name: "steps that wait: timers, approvals and child runs, with their wake-up time",
    statements: [
      `alter table steps drop constraint steps_kind_check`,
      `alter table steps add constraint steps_kind_check check (kind in ('model', 'tool', 'sleep', 'approval', 'agent'))`,
      `alter table steps add column wake_at timestamptz`
    ]
  },
  {
    id: 4,
    name: "the tenant column is tenant_id",
    statements: ["agents", "agent_versions", "runs", "steps", "api_tokens"]
      .map((table) => `alter table ${table} rename column tenant to tenant_id`)
  },
  {
    id: 5,
    name: "row-level security on every tenant table; the edge reads as lantern_edge",
    statements: [
      Rls.ENSURE_ROLES,
      // PUBLIC already has USAGE on `public`; a deployment on another schema must grant it to the edge too
      `do $$ begin execute format('grant usage on schema %I to ${Rls.EDGE_ROLE}', current_schema()); end $$`,
      ...["agents", "agent_versions", "runs", "steps", "api_tokens"].flatMap(Rls.secure)
    ]
  },
  {
    id: 6,
    name: "the audit log: one row per audit entry, under row-level security",
    statements: [
      `create table audit_events (
        tenant_id text not null,
        id text collate "C" not null,
        seq bigint not null,
        at timestamptz not null,
        action text not null,
        actor text not null,
        target text not null,
        outcome text not null,
        detail jsonb not null,
        primary key (tenant_id, id)
      )`,
      `create index audit_events_by_action on audit_events (tenant_id, action, id)`,
      ...Rls.secure("audit_events")
    ]
  },
  {
    id: 7,
    name: "tenants; api tokens become api keys with a public id, expiry and revocation",
    statements: [
      // the deployment's registry of tenants: read and written by the operator's routes on the system path only
      // (no tenant_id column, so not a tenant table; the edge role has no grant on it)
      `create table tenants (
        id text collate "C" primary key,
        name text not null unique,
        created_at timestamptz not null
      )`,
      // bootstrap tokens (the `lantern dev` owner, LANTERN_API_TOKEN) keep a null id and never expire
      `alter table api_tokens add column id text collate "C"`,
      `alter table api_tokens add column expires_at timestamptz`,
      `alter table api_tokens add column revoked_at timestamptz`,
      `alter table api_tokens add column last4 text`,
      `create unique index api_tokens_by_id on api_tokens (tenant_id, id)`,
      `create unique index api_tokens_id_unique on api_tokens (id)`,
      // a revoked key keeps its row (and name) for the record; only live names are unique
      `drop index api_tokens_by_tenant`,
      `create unique index api_tokens_live_names on api_tokens (tenant_id, name) where revoked_at is null`
    ]
  },
  {
    id: 8,
    name: "projector dead letters: events a projector could not decode or store, skipped past (ADR 0022)",
    statements: [
      // keyed by stream position, as the checkpoint is; the tenant's rows are its own (RLS), the operator sees all
      `create table projector_dead_letters (
        projector text not null,
        stream text not null,
        seq bigint not null,
        tenant_id text not null,
        subject text not null,
        event_type text,
        reason text not null,
        failed_at timestamptz not null,
        primary key (projector, stream, seq)
      )`,
      `create index projector_dead_letters_by_tenant on projector_dead_letters (tenant_id, failed_at)`,
      ...Rls.secure("projector_dead_letters")
    ]
  },
  {
    id: 9,
    name: "api key lineage: the key that minted a key (ADR 0023)",
    statements: [
      // null for bootstrap tokens, tenants' owner keys, keys minted by a bootstrap token and every key made
      // before this migration: those have no parent and keep working as they did
      `alter table api_tokens add column parent_id text collate "C"`,
      // revoking a key walks down to its descendants
      `create index api_tokens_by_parent on api_tokens (tenant_id, parent_id) where parent_id is not null`
    ]
  },
  {
    id: 10,
    name: "runs listed newest first by creation time (issue 10)",
    statements: [
      // GET /v1/runs pages by (created_at, id): child runs' ids are not time-ordered
      `create index runs_by_created on runs (tenant_id, created_at desc, id desc)`
    ]
  },
  {
    id: 11,
    name: "a step's kind is any the run journal decodes: no check of its own (workflow steps were dead letters)",
    statements: [
      // the kind is the step request's tag, which the envelope's decoder already limits to the schema's; a list
      // here fell behind it (a workflow's `code` and `timer` steps) and turned every such event into a dead letter
      `alter table steps drop constraint if exists steps_kind_check`
    ]
  },
  {
    id: 16,
    name: "runs' traffic: the eval run a run is a case of, and the experiment arm that chose its version (ADR 0058)",
    statements: [
      `alter table runs add column eval_run_id text collate "C"`,
      `alter table runs add column experiment_id text collate "C"`,
      `alter table runs add column experiment_arm text`,
      // an experiment's figures read its runs
      `create index runs_by_experiment on runs (tenant_id, experiment_id) where experiment_id is not null`
    ]
  }
]

/** Serialises concurrent migrators on one Postgres (any constant works; this one spells "lant"). */
const LOCK_KEY = 0x6c616e74

/** Applies every migration not yet recorded, in order. */
export const migrate: Effect.Effect<void, DatabaseUnavailable, Sql> = Effect.gen(function*() {
  const sql = yield* Sql
  // Under the lock too: two first starts racing on `create table if not exists` can collide in the catalog.
  yield* sql.transaction((tx) =>
    Effect.andThen(
      tx.query(`select pg_advisory_xact_lock($1)`, [LOCK_KEY]),
      tx.query(`create table if not exists lantern_migrations (
        id integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`)
    )
  )
  // the usual start has nothing to apply: one read, not a locked transaction per migration (ADR 0072)
  const applied = new Set((yield* sql.query<{ id: number }>(`select id from lantern_migrations`)).map((r) => r.id))
  for (const migration of migrations) {
    if (applied.has(migration.id)) continue
    // re-checked under the lock: another host may have applied it since the read above
    yield* sql.transaction((tx) =>
      Effect.gen(function*() {
        yield* tx.query(`select pg_advisory_xact_lock($1)`, [LOCK_KEY])
        const done = yield* tx.query(`select 1 from lantern_migrations where id = $1`, [migration.id])
        if (done.length > 0) return
        for (const statement of migration.statements) {
          yield* tx.query(statement).pipe(Effect.mapError((e) =>
            new DatabaseUnavailable({ operation: `migration ${migration.id} (${migration.name})`, reason: e.reason })
          ))
        }
        yield* tx.query(`insert into lantern_migrations (id, name) values ($1, $2)`, [migration.id, migration.name])
        yield* Effect.logInfo(`applied migration ${migration.id}: ${migration.name}`)
      })
    )
  }
  // Start refuses a database on which isolation would not hold (a table without its policy, an edge role
  // that bypasses RLS, a connecting user that cannot switch to it).
  yield* Rls.verify
}).pipe(Effect.withSpan("Migrations.migrate"))
