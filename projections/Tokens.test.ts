// API key lineage on both drivers: a key minted by another never outlives it (expiry capped at creation, and an
// expired or revoked ancestor refuses it at use time), and revoking a key revokes every key below it, at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Exit, ManagedRuntime } from "effect"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import * as Drivers from "../tests/support/Drivers.ts"
import * as Migrations from "./Migrations.ts"
import { Sql } from "./Sql.ts"
import * as Tokens from "./Tokens.ts"

const TENANT = "t-lineage"
const HOUR = 3_600_000

const drivers = Drivers.sql()

let n = 0
const name = () => `k${++n}`
const root = { keyId: null, expiresAt: null }
/** The principal a new key speaks as, for minting its own children. */
const minterOf = (key: Tokens.NewKey) => ({
  keyId: key.id,
  expiresAt: key.expiresAt === null ? null : Date.parse(key.expiresAt)
})
const iso = (ms: number) => new Date(ms).toISOString()

/** A write behind the API's back, as the connecting user. */
const sql = (text: string, params: ReadonlyArray<unknown>) =>
  Effect.gen(function*() {
    return yield* (yield* Sql).query(text, params)
  })

for (const driver of drivers) {
  describe.skipIf(driver.skip)(`API key lineage: ${driver.title}`, () => {
    let rt: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>
    let stop: () => Promise<void> = async () => {}
    const run = <A, E>(effect: Effect.Effect<A, E, Sql>) => rt.runPromise(effect)
    const create = (
      minter: Pick<Tokens.Principal, "keyId" | "expiresAt">,
      expiresAt: string | null = null,
      scopes = ["keys:write", "runs:read"]
    ) => run(Tokens.createKey(TENANT, name(), scopes, expiresAt, minter))

    beforeAll(async () => {
      const started = await driver.start()
      stop = started.stop
      rt = ManagedRuntime.make(started.layer)
      await rt.runPromise(Migrations.migrate)
    }, 60_000)
    afterAll(async () => {
      await rt?.dispose()
      await stop()
    })

    it("caps a child's expiry at its parent's and records the parent", async () => {
      const parentExpiry = iso(Date.now() + HOUR)
      const parent = await create(root, parentExpiry)
      expect(parent).toMatchObject({ parentId: null, expiresAt: parentExpiry })
      expect(await create(minterOf(parent))).toMatchObject({ parentId: parent.id, expiresAt: parentExpiry })
      expect((await create(minterOf(parent), iso(Date.now() + 2 * HOUR))).expiresAt).toBe(parentExpiry)
      const sooner = iso(Date.now() + HOUR / 2)
      expect((await create(minterOf(parent), sooner)).expiresAt).toBe(sooner)
      // a grandchild is capped through its parent's capped expiry
      const child = await create(minterOf(parent))
      expect((await create(minterOf(child))).expiresAt).toBe(parentExpiry)
      // a bootstrap token (no key id) mints roots
      expect(await create(root)).toMatchObject({ parentId: null, expiresAt: null })
      const listed = await run(Tokens.listKeys(TENANT))
      expect(listed.find((k) => k.id === child.id)).toMatchObject({ parentId: parent.id, expiresAt: parentExpiry })
    })

    it("refuses a key whose ancestor is revoked, expired or gone, even when its own row says it is live", async () => {
      const parent = await create(root)
      const child = await create(minterOf(parent))
      const grandchild = await create(minterOf(child))
      expect(await run(Tokens.authenticate(grandchild.key))).toMatchObject({ keyId: grandchild.id, tenant: TENANT })
      // rows written behind the API's back: the ancestor's state decides at use time
      await run(
        sql(`update api_tokens set expires_at = $2::timestamptz where id = $1`, [parent.id, iso(Date.now() - 1000)])
      )
      expect(await run(Tokens.authenticate(grandchild.key))).toBeNull()
      await run(
        sql(`update api_tokens set expires_at = $2::timestamptz where id = $1`, [parent.id, iso(Date.now() + HOUR)])
      )
      expect(await run(Tokens.authenticate(grandchild.key))).not.toBeNull()
      await run(sql(`update api_tokens set revoked_at = $2::timestamptz where id = $1`, [child.id, iso(Date.now())]))
      expect(await run(Tokens.authenticate(grandchild.key))).toBeNull()
      expect(await run(Tokens.authenticate(parent.key))).not.toBeNull()
      const orphan = await create(root)
      await run(sql(`update api_tokens set parent_id = 'key_00000000000000000000000000' where id = $1`, [orphan.id]))
      expect(await run(Tokens.authenticate(orphan.key))).toBeNull()
    })

    it("reports the earliest expiry of the lineage as the principal's", async () => {
      const parentExpiry = Date.now() + HOUR
      const parent = await create(root, iso(parentExpiry))
      const child = await create(minterOf(parent))
      // as a key made before migration 9 would be: its own row never expires
      await run(sql(`update api_tokens set expires_at = null where id = $1`, [child.id]))
      expect((await run(Tokens.authenticate(child.key)))?.expiresAt).toBe(Date.parse(iso(parentExpiry)))
    })

    it("revokes a key and every key below it in one go, and nothing beside it", async () => {
      const parent = await create(root)
      const child = await create(minterOf(parent))
      const grandchildren = [await create(minterOf(child)), await create(minterOf(child))]
      const sibling = await create(root)
      const revoked = await run(Tokens.revokeKey(TENANT, parent.id))
      expect(revoked).toEqual({
        tokenHash: Tokens.hash(parent.key),
        descendants: [child, ...grandchildren].map((k) => ({ id: k.id, tokenHash: Tokens.hash(k.key) })).sort((a, b) =>
          a.id < b.id ? -1 : 1
        )
      })
      for (const k of [parent, child, ...grandchildren]) expect(await run(Tokens.authenticate(k.key))).toBeNull()
      expect(await run(Tokens.authenticate(sibling.key))).not.toBeNull()
      expect(await run(Tokens.revokeKey(TENANT, parent.id))).toBeNull()
      expect(await run(Tokens.revokeKey(TENANT, child.id))).toBeNull()
      expect(await run(Tokens.revokeKey("t-other", sibling.id))).toBeNull()
      expect(await run(Tokens.findKey(TENANT, child.id))).toBeNull()
      expect(await run(Tokens.findKey(TENANT, sibling.id))).toEqual({
        id: sibling.id,
        scopes: ["keys:write", "runs:read"]
      })
    })

    it("refuses to mint under a key revoked since it authenticated", async () => {
      const parent = await create(root)
      const minter = minterOf(parent)
      await run(Tokens.revokeKey(TENANT, parent.id))
      const exit = await rt.runPromiseExit(Tokens.createKey(TENANT, name(), ["runs:read"], null, minter))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(exit)).toContain("Unauthorized")
    })
  })
}
