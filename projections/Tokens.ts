// API tokens and keys: stored only as SHA-256 hashes, each naming a tenant and scopes. The plain token is never
// stored, logged or put in an error; a lookup hashes it first. Keys (migration 7) add a public id, an expiry
// and a revocation; bootstrap tokens have no id and never expire. A key records the key that minted it
// (migration 9, ADR 0023): it never outlives it, and revoking a key revokes its descendants.
import { createHash, randomBytes } from "node:crypto"
import { Clock, Effect } from "effect"
import { encode } from "../schema/Ids.ts"
import { type DatabaseUnavailable, InvalidCommand, Unauthorized } from "../schema/Errors.ts"
import { forTenant, queryAs, Sql, type SqlPort } from "./Sql.ts"

/** Who a token speaks for. */
export interface Principal {
  readonly tenant: string
  readonly name: string
  readonly scopes: ReadonlyArray<string>
  /** The key's public id (`key_…`); null for a bootstrap token. */
  readonly keyId: string | null
  /** When the key or one of its ancestors stops working (epoch milliseconds), whichever is first; null when never. */
  readonly expiresAt: number | null
}

/** How deep a lineage is followed; a longer chain (which only a corrupted table could hold) does not authenticate. */
const MAX_LINEAGE = 64

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
        yield* tx.query(`delete from api_tokens where tenant_id = $1 and name = $2 and token_hash <> $3`, [
          tenant,
          name,
          tokenHash
        ])
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
      return yield* new InvalidCommand({
        command: "ensure API token",
        reason: `the token '${name}' is already registered to another tenant`
      })
    }
  }).pipe(Effect.withSpan("Tokens.ensure", { attributes: { "lantern.tenant": tenant } }))

/**
 * The principal of a plain token, or null when no such token exists. This read tells the edge the tenant, so it
 * cannot run as one: it is the connecting user's (system role) read, by the hash's primary key only.
 */
export const authenticate = (plainToken: string): Effect.Effect<Principal | null, DatabaseUnavailable, Sql> =>
  Effect.gen(function*() {
    if (plainToken === "") return null
    // the token's row, then the key that minted it, and so on up (depth 0 is the token's own row). Creation caps
    // a key's expiry and revocation cascades, so the row alone should decide; the walk is the defence in depth
    // against a row written otherwise (a race with a revocation, a hand edit)
    const chain = yield* (yield* Sql).query<{
      tenant: string
      name: string
      scopes: Array<string>
      id: string | null
      parent_id: string | null
      expires_at: unknown
      revoked_at: unknown
    }>(
      `with recursive lineage as (
         select 0 as depth, tenant_id, name, scopes, id, parent_id, expires_at, revoked_at from api_tokens where token_hash = $1
         union all
         select l.depth + 1, p.tenant_id, p.name, p.scopes, p.id, p.parent_id, p.expires_at, p.revoked_at
         from lineage l join api_tokens p on p.tenant_id = l.tenant_id and p.id = l.parent_id
         where l.depth < $2
       )
       select tenant_id as tenant, name, scopes, id, parent_id, expires_at, revoked_at from lineage order by depth`,
      [hash(plainToken), MAX_LINEAGE]
    )
    const row = chain[0]
    if (row === undefined) return null
    // a revoked ancestor, or one that is gone (its chain ends on a parent id no row has), ends the lineage
    if (chain.some((r) => r.revoked_at !== null) || chain[chain.length - 1]!.parent_id !== null) return null
    const expiries = chain.flatMap((r) => r.expires_at === null ? [] : [millisOf(r.expires_at)])
    const expiresAt = expiries.length === 0 ? null : Math.min(...expiries)
    if (expiresAt !== null && expiresAt <= (yield* Clock.currentTimeMillis)) return null
    return { tenant: row.tenant, name: row.name, scopes: row.scopes, keyId: row.id, expiresAt }
  })

const millisOf = (v: unknown): number => v instanceof Date ? v.getTime() : new Date(String(v)).getTime()
const isoOf = (v: unknown): string | null => v === null || v === undefined ? null : new Date(millisOf(v)).toISOString()

/** A key as listed: never its plain value nor its hash. */
export interface KeyView {
  readonly id: string
  readonly name: string
  readonly scopes: ReadonlyArray<string>
  /** The plain key's last four characters, to tell keys apart. */
  readonly last4: string
  /** The effective expiry: never later than the parent's. */
  readonly expiresAt: string | null
  readonly createdAt: string
  /** The key that minted this one; null for an owner key or one minted by a bootstrap token. */
  readonly parentId: string | null
}

/** A key just made: the only time its plain value exists outside the caller's hands. */
export interface NewKey extends KeyView {
  readonly key: string
}

/** A fresh plain key: 256 bits from the CSPRNG. */
const plainKey = () => `lk_${randomBytes(32).toString("base64url")}`
const keyId = (now: number) => `key_${encode(now, randomBytes(16))}`

const insertKey = (
  tx: SqlPort,
  tenant: string,
  name: string,
  scopes: ReadonlyArray<string>,
  expiresAt: string | null,
  parentId: string | null,
  now: number
) =>
  Effect.gen(function*() {
    const key = plainKey()
    const id = keyId(now)
    const createdAt = new Date(now).toISOString()
    const last4 = key.slice(-4)
    const inserted = yield* tx.transaction((sp) =>
      sp.query(
        `insert into api_tokens (token_hash, tenant_id, name, scopes, created_at, id, expires_at, last4, parent_id)
         values ($1, $2, $3, $4::text[], $5::timestamptz, $6, $7::timestamptz, $8, $9)`,
        [hash(key), tenant, name, [...scopes], createdAt, id, expiresAt, last4, parentId]
      )
    ).pipe(
      Effect.as(true),
      Effect.catchTag(
        "DatabaseUnavailable",
        (e) => /unique|duplicate/i.test(e.reason) ? Effect.succeed(false) : Effect.fail(e)
      )
    )
    if (!inserted) {
      return yield* new InvalidCommand({
        command: "create API key",
        reason: `a key named '${name}' already exists; revoke it or pick another name`
      })
    }
    return { id, name, key, scopes: [...scopes], last4, expiresAt, createdAt, parentId } satisfies NewKey
  })

/** The earlier of two expiries (null is never). */
const earlier = (a: number | null, b: number | null): number | null => a === null ? b : b === null ? a : Math.min(a, b)

/**
 * Makes a key in `tenant` for the principal `minter`, as that tenant (row-level security checks the write). The
 * new key's parent is the minter's key (none for a bootstrap token), and its expiry is capped at the minter's:
 * asked for later or never, it gets the minter's, which the answer carries. The parent's row is locked while
 * the child is written, so a concurrent revocation of the parent either sees the child or is seen by it.
 */
export const createKey = (
  tenant: string,
  name: string,
  scopes: ReadonlyArray<string>,
  expiresAt: string | null,
  minter: Pick<Principal, "keyId" | "expiresAt">
): Effect.Effect<NewKey, DatabaseUnavailable | InvalidCommand | Unauthorized, Sql> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    return yield* forTenant(tenant, (tx) =>
      Effect.gen(function*() {
        let cap = minter.expiresAt
        if (minter.keyId !== null) {
          const parent = (yield* tx.query<{ expires_at: unknown; revoked_at: unknown }>(
            `select expires_at, revoked_at from api_tokens where tenant_id = $1 and id = $2 for share`,
            [tenant, minter.keyId]
          ))[0]
          cap = earlier(cap, parent === undefined || parent.expires_at === null ? null : millisOf(parent.expires_at))
          if (parent === undefined || parent.revoked_at !== null || (cap !== null && cap <= now)) {
            return yield* new Unauthorized({ reason: "the API key making this key has been revoked or has expired" })
          }
        }
        const asked = expiresAt === null ? null : Date.parse(expiresAt)
        const effective = earlier(asked, cap)
        return yield* insertKey(
          tx,
          tenant,
          name,
          scopes,
          effective === null ? null : new Date(effective).toISOString(),
          minter.keyId,
          now
        )
      }))
  }).pipe(Effect.withSpan("Tokens.createKey", { attributes: { "lantern.tenant": tenant } }))

/** The tenant's live keys (not revoked; expired ones are listed with their expiry), oldest first. */
export const listKeys = (tenant: string): Effect.Effect<ReadonlyArray<KeyView>, DatabaseUnavailable, Sql> =>
  Effect.map(
    queryAs<
      {
        id: string
        name: string
        scopes: Array<string>
        last4: string
        expires_at: unknown
        created_at: unknown
        parent_id: string | null
      }
    >(
      tenant,
      `select id, name, scopes, last4, expires_at, created_at, parent_id from api_tokens
       where tenant_id = $1 and id is not null and revoked_at is null order by id`,
      [tenant]
    ),
    (rows) =>
      rows.map((r) => ({
        id: r.id,
        name: r.name,
        scopes: r.scopes,
        last4: r.last4,
        expiresAt: isoOf(r.expires_at),
        createdAt: isoOf(r.created_at)!,
        parentId: r.parent_id
      }))
  )

/** The tenant's live (not revoked) key `id` with its scopes, or null: what a revocation is checked against. */
export const findKey = (
  tenant: string,
  id: string
): Effect.Effect<{ id: string; scopes: ReadonlyArray<string> } | null, DatabaseUnavailable, Sql> =>
  Effect.map(
    queryAs<{ id: string; scopes: Array<string> }>(
      tenant,
      `select id, scopes from api_tokens where tenant_id = $1 and id = $2 and revoked_at is null`,
      [tenant, id]
    ),
    (rows) => rows[0] ?? null
  )

/** What a revocation did: the key's stored hash, and each descendant revoked with it (id and hash). */
export interface Revoked {
  readonly tokenHash: string
  readonly descendants: ReadonlyArray<{ readonly id: string; readonly tokenHash: string }>
}

/**
 * Revokes the tenant's key `id` and every key below it (the keys it minted, theirs, …) in one transaction;
 * returns their hashes, for the caller's cache, or null when the tenant has no such live key (another tenant's
 * key is as absent as a key that never existed). The key's row is updated first, in its own statement: that
 * waits for a child being minted under it (which holds the row `for share`), and the descendants are then read
 * by a later statement, which sees that child.
 */
export const revokeKey = (tenant: string, id: string): Effect.Effect<Revoked | null, DatabaseUnavailable, Sql> =>
  Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis).toISOString()
    return yield* forTenant(tenant, (tx) =>
      Effect.gen(function*() {
        const rows = yield* tx.query<{ token_hash: string }>(
          `update api_tokens set revoked_at = $3::timestamptz where tenant_id = $1 and id = $2 and revoked_at is null returning token_hash`,
          [tenant, id, now]
        )
        if (rows[0] === undefined) return null
        const descendants = yield* tx.query<{ id: string; token_hash: string }>(
          `with recursive below as (
             select id from api_tokens where tenant_id = $1 and parent_id = $2
             union
             select t.id from api_tokens t join below b on t.tenant_id = $1 and t.parent_id = b.id
           )
           update api_tokens set revoked_at = $3::timestamptz
           where tenant_id = $1 and id in (select id from below) and revoked_at is null
           returning id, token_hash`,
          [tenant, id, now]
        )
        return {
          tokenHash: rows[0].token_hash,
          descendants: descendants.map((d) => ({ id: d.id, tokenHash: d.token_hash })).sort((a, b) =>
            a.id < b.id ? -1 : 1
          )
        } satisfies Revoked
      }))
  }).pipe(Effect.withSpan("Tokens.revokeKey", { attributes: { "lantern.tenant": tenant } }))

/** A registered tenant. */
export interface Tenant {
  readonly id: string
  readonly name: string
  readonly createdAt: string
}

/** Registers a tenant by its id (idempotent): the bootstrap's operator tenant. */
export const ensureTenant = (id: string, name: string): Effect.Effect<void, DatabaseUnavailable, Sql> =>
  Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis).toISOString()
    yield* (yield* Sql).query(
      `insert into tenants (id, name, created_at) values ($1, $2, $3::timestamptz) on conflict do nothing`,
      [id, name, now]
    )
  })

/**
 * A new tenant and its first owner key (scope `*`), in one transaction. An administrative write of the
 * deployment's registry, on the system path; the key is then written as the new tenant.
 */
export const createTenant = (
  name: string
): Effect.Effect<{ tenant: Tenant; key: NewKey }, DatabaseUnavailable | InvalidCommand, Sql> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const tenant: Tenant = { id: `t-${encode(now, randomBytes(16))}`, name, createdAt: new Date(now).toISOString() }
    const sql = yield* Sql
    return yield* sql.transaction((tx) =>
      Effect.gen(function*() {
        const added = yield* tx.query(
          `insert into tenants (id, name, created_at) values ($1, $2, $3::timestamptz) on conflict do nothing returning id`,
          [tenant.id, tenant.name, tenant.createdAt]
        )
        if (added.length === 0)
          return yield* new InvalidCommand({
            command: "create tenant",
            reason: `a tenant named '${name}' already exists`
          })
        // the tenant's root: no parent, even when an expiring operator key made it (lineage stays in a tenant)
        const key = yield* insertKey(tx, tenant.id, "owner", ALL_SCOPES, null, null, now)
        return { tenant, key }
      })
    )
  }).pipe(Effect.withSpan("Tokens.createTenant"))

/** Whether a tenant has at least one token. */
export const anyForTenant = (tenant: string): Effect.Effect<boolean, DatabaseUnavailable, Sql> =>
  Effect.map(
    queryAs(tenant, `select 1 from api_tokens where tenant_id = $1 limit 1`, [tenant]),
    (rows) => rows.length > 0
  )
