// Run identity: every run's own Ed25519 key pair, minted at start, its secret half sealed under the KEK in the
// `lantern-run-identities` bucket, its public half journaled on RunStarted; and the EdDSA JWTs a run presents.
import { randomBytes } from "node:crypto"
import sodium from "libsodium-wrappers"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { RUN_IDENTITIES_BUCKET } from "../../bus/Topology.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import type { RunIdentity } from "../../schema/Events.ts"
import { kekConfig, openBox, ready, sealBox } from "../receipts/Keys.ts"
import * as Verify from "../receipts/Verify.ts"

export const ISSUER = "lantern"
export const ALGORITHM = "EdDSA"
export const TOKEN_FORMAT =
  "JWT (RFC 7519) signed with EdDSA (RFC 8037, Ed25519): base64url(header).base64url(payload).base64url(signature)"
/** Longest life of a token, in seconds. */
export const MAX_TTL_SECONDS = 3600
/** Clock skew tolerated between the minting and the verifying host, in seconds. */
export const LEEWAY_SECONDS = 30

/** The claims of a run's token. */
export interface Claims {
  readonly iss: string
  /** `run:<tenant>/<runId>`. */
  readonly sub: string
  readonly aud: string
  readonly iat: number
  readonly exp: number
  readonly jti: string
}

export const subjectOf = (tenant: string, runId: string) => `run:${tenant}/${runId}`

/** The tenant and run a subject names, or null when it is not `run:<tenant>/<runId>`. */
export const parseSubject = (sub: string): { readonly tenant: string; readonly runId: string } | null => {
  const m = /^run:([^/]+)\/([^/]+)$/.exec(sub)
  return m === null ? null : { tenant: m[1]!, runId: m[2]! }
}

const encodeJson = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64url")

/** Signs `claims` as a compact EdDSA JWT with libsodium (after `ready`). */
export const sign = (secretKey: Uint8Array, keyId: string, claims: Claims): string => {
  const signingInput = `${encodeJson({ alg: ALGORITHM, typ: "JWT", kid: keyId })}.${encodeJson(claims)}`
  return `${signingInput}.${
    Verify.toBase64Url(sodium.crypto_sign_detached(new TextEncoder().encode(signingInput), secretKey))
  }`
}

export type Reason =
  | "malformed"
  | "bad signature"
  | "expired"
  | "not yet valid"
  | "wrong audience"
  | "kid mismatch"
  | "wrong issuer"

export type Verdict =
  | { readonly valid: true; readonly claims: Claims }
  | { readonly valid: false; readonly reason: Reason; readonly message: string }

const refuse = (reason: Reason, message: string): Verdict => ({ valid: false, reason, message })

const BASE64URL = /^[A-Za-z0-9_-]+$/

const parsePart = (part: string): Record<string, unknown> | null => {
  if (!BASE64URL.test(part)) return null
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"))
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? value as Record<string, unknown>
      : null
  } catch {
    return null
  }
}

/** The header and claims of a well-formed token, unverified (to find whose key verifies it), or null. */
export const peek = (
  token: string
):
  | { readonly kid: string; readonly claims: Claims; readonly signingInput: string; readonly signature: string }
  | null => {
  const parts = token.split(".")
  // the signature's base64url must be canonical, so no two spellings of one token both verify
  if (
    parts.length !== 3 || !BASE64URL.test(parts[2]!) || Verify.toBase64Url(Verify.fromBase64Url(parts[2]!)) !== parts[2]
  ) return null
  const header = parsePart(parts[0]!)
  const payload = parsePart(parts[1]!)
  if (header === null || payload === null) return null
  if (header["alg"] !== ALGORITHM || header["typ"] !== "JWT" || typeof header["kid"] !== "string") return null
  const { iss, sub, aud, iat, exp, jti } = payload
  if (typeof iss !== "string" || typeof sub !== "string" || typeof aud !== "string" || typeof jti !== "string")
    return null
  if (typeof iat !== "number" || typeof exp !== "number" || !Number.isFinite(iat) || !Number.isFinite(exp)) return null
  return {
    kid: header["kid"],
    claims: { iss, sub, aud, iat, exp, jti },
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: parts[2]!
  }
}

/**
 * Verifies `token` against a run's journaled identity at `nowMs`, and its audience when `audience` is given.
 * Pure and synchronous (node:crypto): the first failing check is the reason.
 */
export const verify = (token: string, identity: RunIdentity, nowMs: number, audience?: string): Verdict => {
  const parsed = peek(token)
  if (parsed === null)
    return refuse("malformed", "not a compact EdDSA JWT with the claims iss, sub, aud, iat, exp and jti")
  if (parsed.kid !== identity.keyId)
    return refuse("kid mismatch", `the token's kid ${parsed.kid.slice(0, 64)} is not the run's key ${identity.keyId}`)
  const signed = Verify.verifyEd25519(
    Verify.fromBase64Url(identity.publicKey),
    new TextEncoder().encode(parsed.signingInput),
    parsed.signature
  )
  if (!signed)
    return refuse(
      "bad signature",
      "the signature does not verify under the run's public key: the token was altered or signed by another key"
    )
  const { claims } = parsed
  if (claims.iss !== ISSUER) return refuse("wrong issuer", `the issuer is not ${ISSUER}`)
  const now = Math.floor(nowMs / 1000)
  if (claims.iat > now + LEEWAY_SECONDS) return refuse("not yet valid", `issued at ${claims.iat}, after now (${now})`)
  if (claims.exp <= now) return refuse("expired", `expired at ${claims.exp} (now ${now})`)
  if (audience !== undefined && claims.aud !== audience)
    return refuse("wrong audience", `the token is for another audience, not ${audience.slice(0, 200)}`)
  return { valid: true, claims }
}

// ---- keys at rest ----

/** The run's identity key cannot be stored or opened: sealed under another KEK, altered, or moved. */
export class IdentityUnavailable
  extends Schema.TaggedError<IdentityUnavailable>()("IdentityUnavailable", { reason: Schema.String }) {
  override get message() {
    return `the run's identity is unavailable: ${this.reason}`
  }
}

/** The run has no identity to sign with (it started before identities existed). */
export class NoRunIdentity extends Schema.TaggedError<NoRunIdentity>()("NoRunIdentity", { id: Schema.String }) {
  override get message() {
    return `run '${this.id}' has no identity: it started before run identities existed`
  }
}

const Stored = Schema.Struct({
  keyId: Schema.String,
  publicKey: Schema.String,
  kekId: Schema.String,
  nonce: Schema.String,
  sealed: Schema.String,
  createdAt: Schema.String
})
type Stored = typeof Stored.Type

/** The `lantern-run-identities` bucket: key `<tenant>.<runId>`, written once. */
export const bucket = Kv.bucket({
  name: RUN_IDENTITIES_BUCKET,
  value: Schema.fromJsonString(Stored),
  what: "a run identity"
})

export const entryKey = (tenant: string, runId: string) => `${tenant}.${runId}`
const aad = (tenant: string, runId: string, keyId: string) => `lantern-run-identity\0${tenant}\0${runId}\0${keyId}`

/** Seals a fresh key pair's secret key under `kek`, bound to tenant, run and key (the AAD), so it cannot be moved. */
export const seal = (
  kek: Uint8Array,
  tenant: string,
  runId: string,
  keyPair: { publicKey: Uint8Array; privateKey: Uint8Array },
  createdAt: string
): Stored => {
  const keyId = Verify.keyIdOf(keyPair.publicKey)
  return {
    keyId,
    publicKey: Verify.toBase64Url(keyPair.publicKey),
    ...sealBox(kek, keyPair.privateKey, aad(tenant, runId, keyId)),
    createdAt
  }
}

/** Opens a run's stored key with `kek`; a wrong KEK, an altered entry or one copied from another run fails. */
export const open = (
  kek: Uint8Array,
  tenant: string,
  runId: string,
  stored: Stored
): Effect.Effect<Uint8Array, IdentityUnavailable> =>
  Effect.try({
    try: () => {
      const secretKey = openBox([kek], stored, aad(tenant, runId, stored.keyId), `run ${runId}'s identity`)
      if (Verify.toBase64Url(secretKey.slice(32)) !== stored.publicKey)
        throw new Error(`run ${runId}'s sealed identity does not match its public key`)
      return secretKey
    },
    catch: (e) => new IdentityUnavailable({ reason: e instanceof Error ? e.message : String(e) })
  })

// ---- the service ----

export interface Service {
  /** The run's identity: made and stored (KV create) on the first call, read back on later ones (a retried start). */
  readonly ensure: (tenant: string, runId: string) => Effect.Effect<RunIdentity, IdentityUnavailable | BusUnavailable>
  /** A token of the run for `audience`, valid `ttlSeconds` (1 to MAX_TTL_SECONDS) from now. */
  readonly mint: (
    tenant: string,
    runId: string,
    options: { readonly audience: string; readonly ttlSeconds: number }
  ) => Effect.Effect<
    { readonly token: string; readonly expiresAt: string; readonly claims: Claims },
    IdentityUnavailable | NoRunIdentity | BusUnavailable
  >
}

export class Identities extends Context.Service<Identities, Service>()("lantern/actors/identity/Identities") {
  static readonly make = (kek: Uint8Array) =>
    Effect.gen(function*() {
      yield* ready
      const kv = yield* Kv.open(bucket)

      const read = (tenant: string, runId: string) =>
        kv.get(entryKey(tenant, runId)).pipe(
          Effect.map((e) => Option.getOrNull(Option.map(e, (x) => x.value))),
          Effect.catchTag("CorruptValue", () =>
            Effect.fail(
              new IdentityUnavailable({ reason: `run ${runId}'s identity in ${RUN_IDENTITIES_BUCKET} is unreadable` })
            ))
        )

      const ensure: Service["ensure"] = (tenant, runId) =>
        Effect.gen(function*() {
          const now = new Date(yield* Clock.currentTimeMillis).toISOString()
          const made = seal(kek, tenant, runId, sodium.crypto_sign_keypair(), now)
          const created = yield* kv.create(entryKey(tenant, runId), made)
          if (created._tag === "Created") return { publicKey: made.publicKey, keyId: made.keyId }
          // an earlier attempt of this start stored one: that one is the run's, so use it (and check it opens)
          const existing = yield* read(tenant, runId)
          if (existing === null) return yield* new IdentityUnavailable({ reason: `run ${runId}'s identity vanished` })
          yield* open(kek, tenant, runId, existing)
          return { publicKey: existing.publicKey, keyId: existing.keyId }
        }).pipe(Effect.withSpan("Identities.ensure", { attributes: { tenant_id: tenant, run_id: runId } }))

      const mint: Service["mint"] = (tenant, runId, options) =>
        Effect.gen(function*() {
          const stored = yield* read(tenant, runId)
          if (stored === null) return yield* new NoRunIdentity({ id: runId })
          const secretKey = yield* open(kek, tenant, runId, stored)
          const iat = Math.floor((yield* Clock.currentTimeMillis) / 1000)
          const ttl = Math.min(MAX_TTL_SECONDS, Math.max(1, Math.floor(options.ttlSeconds)))
          const claims: Claims = {
            iss: ISSUER,
            sub: subjectOf(tenant, runId),
            aud: options.audience,
            iat,
            exp: iat + ttl,
            jti: randomBytes(16).toString("base64url")
          }
          return {
            token: sign(secretKey, stored.keyId, claims),
            expiresAt: new Date(claims.exp * 1000).toISOString(),
            claims
          }
        }).pipe(Effect.withSpan("Identities.mint", { attributes: { tenant_id: tenant, run_id: runId } }))

      return Identities.of({ ensure, mint })
    })

  /** Keys sealed under LANTERN_KEK (or the dev KEK file), as the receipt-signing keys are. */
  static readonly layer = Layer.effect(Identities, Effect.flatMap(kekConfig, Identities.make))
}
