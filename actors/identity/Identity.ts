// Run identity: every run's own Ed25519 key pair, minted at start, its secret half sealed under the KEK in the
// `lantern-run-identities` bucket, its public half journaled on RunStarted; and the EdDSA JWTs a run presents.
import { createPublicKey, randomBytes } from "node:crypto"
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { RUN_IDENTITIES_BUCKET } from "../../bus/Topology.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import type { RunIdentity } from "../../schema/Events.ts"
import { freshKeyPair, kekConfig, openBox, privateKeyOf, ready, sealBox } from "../receipts/Keys.ts"
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

/** Signs `claims` as a compact EdDSA JWT (jose): header `{alg, typ, kid}`, then the claims, in that order. */
export const sign = (secretKey: Uint8Array, keyId: string, claims: Claims): Effect.Effect<string> =>
  Effect.promise(() =>
    new SignJWT({ ...claims }).setProtectedHeader({ alg: ALGORITHM, typ: "JWT", kid: keyId }).sign(
      privateKeyOf(secretKey)
    )
  )

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

/**
 * The header and claims of a well-formed token, unverified (to find whose key verifies it), or null. jose decodes
 * the parts; each must also be plain unpadded base64url, and the signature canonical (no unused bits set), so no
 * two spellings of one token both verify (jose alone would take either).
 */
export const peek = (
  token: string
):
  | { readonly kid: string; readonly claims: Claims; readonly signingInput: string; readonly signature: string }
  | null => {
  const parts = token.split(".")
  if (
    parts.length !== 3 || !parts.every((p) => BASE64URL.test(p)) ||
    Verify.toBase64Url(Verify.fromBase64Url(parts[2]!)) !== parts[2]
  ) return null
  let header: Record<string, unknown>
  let payload: Record<string, unknown>
  try {
    header = decodeProtectedHeader(token)
    payload = decodeJwt(token)
  } catch {
    return null
  }
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

const MALFORMED = "not a compact EdDSA JWT with the claims iss, sub, aud, iat, exp and jti"
const BAD_SIGNATURE =
  "the signature does not verify under the run's public key: the token was altered or signed by another key"
const kidMismatch = (kid: string, identity: RunIdentity) =>
  refuse("kid mismatch", `the token's kid ${kid.slice(0, 64)} is not the run's key ${identity.keyId}`)
const expired = (claims: Claims, now: number) => refuse("expired", `expired at ${claims.exp} (now ${now})`)

/**
 * The checks after signature, issuer and expiry: issued in the future beyond the leeway (jose has one tolerance
 * for every time claim, and expiry has none here), then the audience when one is asked.
 */
const issuedAndFor = (claims: Claims, now: number, audience: string | undefined): Verdict => {
  if (claims.iat > now + LEEWAY_SECONDS) return refuse("not yet valid", `issued at ${claims.iat}, after now (${now})`)
  if (audience !== undefined && claims.aud !== audience)
    return refuse("wrong audience", `the token is for another audience, not ${audience.slice(0, 200)}`)
  return { valid: true, claims }
}

/**
 * Verifies `token` against a run's journaled identity at `nowMs`, and its audience when `audience` is given, with
 * jose. The first failing check is the reason: malformed, kid mismatch, bad signature, wrong issuer, expired,
 * not yet valid, wrong audience.
 */
export const check = (token: string, identity: RunIdentity, nowMs: number, audience?: string): Effect.Effect<Verdict> =>
  Effect.suspend(() => {
    const parsed = peek(token)
    if (parsed === null) return Effect.succeed(refuse("malformed", MALFORMED))
    if (parsed.kid !== identity.keyId) return Effect.succeed(kidMismatch(parsed.kid, identity))
    const now = Math.floor(nowMs / 1000)
    return Effect.tryPromise(() =>
      jwtVerify(
        token,
        createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: identity.publicKey }, format: "jwk" }),
        { algorithms: [ALGORITHM], typ: "JWT", issuer: ISSUER, currentDate: new Date(nowMs) }
      )
    ).pipe(
      Effect.match({
        onSuccess: () => issuedAndFor(parsed.claims, now, audience),
        onFailure: ({ cause: e }) =>
          e instanceof errors.JWSSignatureVerificationFailed
            ? refuse("bad signature", BAD_SIGNATURE)
            : e instanceof errors.JWTExpired
            ? expired(parsed.claims, now)
            : e instanceof errors.JWTClaimValidationFailed && e.claim === "iss"
            ? refuse("wrong issuer", `the issuer is not ${ISSUER}`)
            // a public key jose cannot use: nothing verifies under it
            : e instanceof TypeError || e instanceof errors.JOSENotSupported
            ? refuse("bad signature", BAD_SIGNATURE)
            : refuse("malformed", MALFORMED)
      })
    )
  })

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
          const made = seal(kek, tenant, runId, freshKeyPair(), now)
          const created = yield* kv.create(entryKey(tenant, runId), made)
          if (created._tag === "Created") return { publicKey: made.publicKey, keyId: made.keyId }
          // an earlier attempt of this start stored one: that one is the run's, so use it (and check it opens)
          const existing = yield* read(tenant, runId)
          if (existing === null) return yield* new IdentityUnavailable({ reason: `run ${runId}'s identity vanished` })
          yield* open(kek, tenant, runId, existing)
          return { publicKey: existing.publicKey, keyId: existing.keyId }
        }).pipe(
          Effect.withSpan("Identities.ensure", { attributes: { tenant_id: tenant, run_id: runId } }, {
            captureStackTrace: false
          })
        )

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
            token: yield* sign(secretKey, stored.keyId, claims),
            expiresAt: new Date(claims.exp * 1000).toISOString(),
            claims
          }
        }).pipe(Effect.withSpan("Identities.mint", { attributes: { tenant_id: tenant, run_id: runId } }))

      return Identities.of({ ensure, mint })
    })

  /** Keys sealed under LANTERN_KEK (or the dev KEK file), as the receipt-signing keys are. */
  static readonly layer = Layer.effect(Identities, Effect.flatMap(kekConfig, Identities.make))
}
