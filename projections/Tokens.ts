// API tokens: stored only as SHA-256 hashes, each naming a tenant and scopes. The plain token is never
// stored, logged or put in an error; a lookup hashes it first.
import { createHash } from "node:crypto"
import { Clock, Effect } from "effect"
import { type DatabaseUnavailable, InvalidCommand } from "../schema/Errors.ts"
import { queryAs, Sql } from "./Sql.ts"

/** Who a token speaks for. */
export interface Principal {
  readonly tenant: string
  readonly name: string
  readonly scopes: ReadonlyArray<string>
}

/** Every scope; the owner token of a tenant has it. */
export const ALL_SCOPES: ReadonlyArray<string> = ["*"]

/** The stored form of a token: lowercase hex SHA-256 of its UTF-8 bytes. */
export const hash = (plainToken: string): string => createHash("sha256").update(plainToken, "utf8").digest("hex")

/**
 * Makes `plainToken` authenticate as `name` in `tenant` with `scopes`. Idempotent; a different token under the
 * same name replaces the old one (which stops working). A token already held by another tenant is refused, which
 * needs to see every tenant's hashes: an administrative write (bootstrap, CLI) as the connecting user.
 */
export const ensure = (
  tenant: string,
  name: string,
  plainToken: string,
  scopes: ReadonlyArray<string> = ALL_SCOPES
): Effect.Effect<void, DatabaseUnavailable | InvalidCommand, Sql> =>
  Effect.gen(function*() {
    const sql = yield* Sql
    const now = new Date(yield* Clock.currentTimeMillis).toISOString()
    const tokenHash = hash(plainToken)
    const kept = yield* sql.transaction((tx) =>
      Effect.gen(function*() {
        yield* tx.query(`delete from api_tokens where tenant_id = $1 and name = $2 and token_hash <> $3`, [tenant, name, tokenHash])
        return yield* tx.query(
          `insert into api_tokens (token_hash, tenant_id, name, scopes, created_at)
           values ($1, $2, $3, $4::text[], $5::timestamptz)
           on conflict (token_hash) do update set name = excluded.name, scopes = excluded.scopes
           where api_tokens.tenant_id = excluded.tenant_id
           returning tenant_id`,
          [tokenHash, tenant, name, [...scopes], now]
        )
      })
    )
    if (kept.length === 0) {
      return yield* new InvalidCommand({ command: "ensure API token", reason: `the token '${name}' is already registered to another tenant` })
    }
  }).pipe(Effect.withSpan("Tokens.ensure", { attributes: { "lantern.tenant": tenant } }))

/**
 * The principal of a plain token, or null when no such token exists. This read tells the edge the tenant, so it
 * cannot run as one: it is the connecting user's (system role) read, by the hash's primary key only.
 */
export const authenticate = (plainToken: string): Effect.Effect<Principal | null, DatabaseUnavailable, Sql> =>
  Effect.gen(function*() {
    if (plainToken === "") return null
    const rows = yield* (yield* Sql).query<Principal>(
      `select tenant_id as tenant, name, scopes from api_tokens where token_hash = $1`,
      [hash(plainToken)]
    )
    return rows[0] ?? null
  })

/** Whether a tenant has at least one token. */
export const anyForTenant = (tenant: string): Effect.Effect<boolean, DatabaseUnavailable, Sql> =>
  Effect.map(queryAs(tenant, `select 1 from api_tokens where tenant_id = $1 limit 1`, [tenant]), (rows) => rows.length > 0)
