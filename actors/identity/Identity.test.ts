// Run tokens without a bus: a minted token verifies under its run's public key, and each way a token can be
// wrong (shape, signature, time, audience, key, another run's key) fails with its own reason, the same from
// jose's verifier (`check`) and its synchronous twin (`verify`).
import { randomBytes } from "node:crypto"
import sodium from "libsodium-wrappers"
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import * as Verify from "../receipts/Verify.ts"
import * as Identity from "./Identity.ts"

beforeAll(async () => {
  await sodium.ready
})

const NOW = Date.parse("2026-11-21T12:00:00Z")
const nowS = NOW / 1000

const keyPair = () => {
  const pair = sodium.crypto_sign_keypair()
  return {
    secretKey: pair.privateKey,
    identity: { publicKey: Verify.toBase64Url(pair.publicKey), keyId: Verify.keyIdOf(pair.publicKey) },
    pair
  }
}

const claimsOf = (over: Partial<Identity.Claims> = {}): Identity.Claims => ({
  iss: "lantern",
  sub: Identity.subjectOf("acme", "run_01jabcdefghjkmnpqrstvwxyz0"),
  aud: "https://tools.example.com",
  iat: nowS,
  exp: nowS + 300,
  jti: "j1",
  ...over
})

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

const sign = (secretKey: Uint8Array, keyId: string, claims: Identity.Claims) =>
  Effect.runPromise(Identity.sign(secretKey, keyId, claims))

/** The verdict on `token` (jose verifies the signature). */
const verdict = (token: string, identity: { publicKey: string; keyId: string }, now: number, audience?: string) =>
  Effect.runPromise(Identity.check(token, identity, now, audience))

describe("Identity tokens", () => {
  it("round-trips: a minted token verifies under its run's key, with its claims", async () => {
    const { secretKey, identity } = keyPair()
    const token = await sign(secretKey, identity.keyId, claimsOf())
    const [header] = token.split(".")
    expect(JSON.parse(Buffer.from(header!, "base64url").toString())).toEqual({
      alg: "EdDSA",
      typ: "JWT",
      kid: identity.keyId
    })
    expect(await verdict(token, identity, NOW, "https://tools.example.com")).toEqual({
      valid: true,
      claims: claimsOf()
    })
    // no audience asked: any audience is accepted
    expect((await verdict(token, identity, NOW)).valid).toBe(true)
    expect(Identity.parseSubject(claimsOf().sub)).toEqual({ tenant: "acme", runId: "run_01jabcdefghjkmnpqrstvwxyz0" })
  })

  it("refuses malformed tokens", async () => {
    const { secretKey, identity } = keyPair()
    const token = await sign(secretKey, identity.keyId, claimsOf())
    const [h, p, s] = token.split(".")
    for (
      const bad of [
        "",
        "a.b",
        `${h}.${p}`,
        `${h}.${p}.${s}.x`,
        `${h}.not json!.${s}`,
        `${b64({ alg: "none", typ: "JWT", kid: identity.keyId })}.${p}.${s}`,
        `${h}.${b64({ ...claimsOf(), exp: "later" })}.${s}`,
        `${h}.${b64([1, 2])}.${s}`
      ]
    ) expect(await verdict(bad, identity, NOW), bad).toMatchObject({ valid: false, reason: "malformed" })
  })

  it("refuses an altered token: bad signature", async () => {
    const { secretKey, identity } = keyPair()
    const [h, , s] = (await sign(secretKey, identity.keyId, claimsOf())).split(".")
    const forged = `${h}.${b64(claimsOf({ aud: "https://evil.example.com" }))}.${s}`
    expect(await verdict(forged, identity, NOW)).toMatchObject({ valid: false, reason: "bad signature" })
    const flipped = `${h}.${b64(claimsOf())}.${s!.slice(0, 10)}${s![10] === "A" ? "B" : "A"}${s!.slice(11)}`
    expect(await verdict(flipped, identity, NOW)).toMatchObject({ valid: false, reason: "bad signature" })
    // another spelling of the same signature bytes (non-zero unused bits) is not accepted either
    const last = s!.at(-1)!
    const respelled = `${h}.${b64(claimsOf())}.${s!.slice(0, -1)}${String.fromCharCode(last.charCodeAt(0) ^ 1)}`
    expect((await verdict(respelled, identity, NOW)).valid).toBe(false)
  })

  it("refuses an expired token and one issued in the future", async () => {
    const { secretKey, identity } = keyPair()
    const token = await sign(secretKey, identity.keyId, claimsOf())
    expect(await verdict(token, identity, NOW + 300_000)).toMatchObject({ valid: false, reason: "expired" })
    expect((await verdict(token, identity, NOW + 299_000)).valid).toBe(true)
    const early = await sign(secretKey, identity.keyId, claimsOf({ iat: nowS + 600, exp: nowS + 900 }))
    expect(await verdict(early, identity, NOW)).toMatchObject({ valid: false, reason: "not yet valid" })
    // within the clock-skew leeway it is accepted
    const skewed = await sign(secretKey, identity.keyId, claimsOf({ iat: nowS + Identity.LEEWAY_SECONDS }))
    expect((await verdict(skewed, identity, NOW)).valid).toBe(true)
  })

  it("refuses a token for another audience", async () => {
    const { secretKey, identity } = keyPair()
    const token = await sign(secretKey, identity.keyId, claimsOf())
    expect(await verdict(token, identity, NOW, "https://other.example.com")).toMatchObject({
      valid: false,
      reason: "wrong audience"
    })
  })

  it("refuses a token of another issuer", async () => {
    const { secretKey, identity } = keyPair()
    const token = await sign(secretKey, identity.keyId, claimsOf({ iss: "someone-else" }))
    expect(await verdict(token, identity, NOW)).toMatchObject({ valid: false, reason: "wrong issuer" })
  })

  it("refuses a token signed by another run's key", async () => {
    const mine = keyPair()
    const theirs = keyPair()
    // their kid: the kid does not name my key
    const own = await sign(theirs.secretKey, theirs.identity.keyId, claimsOf())
    expect(await verdict(own, mine.identity, NOW)).toMatchObject({ valid: false, reason: "kid mismatch" })
    // my kid, their signature: the signature does not verify under my key
    const posing = await sign(theirs.secretKey, mine.identity.keyId, claimsOf())
    expect(await verdict(posing, mine.identity, NOW)).toMatchObject({ valid: false, reason: "bad signature" })
  })
})

describe("Identity keys at rest", () => {
  const kek = new Uint8Array(randomBytes(32))
  const run = (f: Effect.Effect<unknown, unknown>) => Effect.runPromise(Effect.result(f))

  it("opens only for the run it was sealed for, under the KEK that sealed it", async () => {
    const { pair, identity } = keyPair()
    const stored = Identity.seal(kek, "acme", "run_a", pair, "2026-11-21T12:00:00Z")
    expect(stored.publicKey).toBe(identity.publicKey)
    const opened = await run(Identity.open(kek, "acme", "run_a", stored))
    expect(opened._tag).toBe("Success")
    const token = await sign((opened as { success: Uint8Array }).success, stored.keyId, claimsOf())
    expect((await verdict(token, identity, NOW)).valid).toBe(true)
    const moved = await run(Identity.open(kek, "acme", "run_b", stored))
    expect(moved).toMatchObject({ _tag: "Failure", failure: { _tag: "IdentityUnavailable" } })
    const otherKek = await run(Identity.open(new Uint8Array(randomBytes(32)), "acme", "run_a", stored))
    expect(otherKek).toMatchObject({ _tag: "Failure", failure: { _tag: "IdentityUnavailable" } })
  })
})
