// The deployment's receipt-signing keys: Ed25519 key pairs in the `lantern-signing-keys` KV bucket, shared by
// every host, each private key sealed with XChaCha20-Poly1305 under the key-encryption key (LANTERN_KEK).
// Rotation adds a key and retires the old one; retired public keys stay published so old receipts verify. Each host
// follows the `current` pointer with a KV watch, so signing reads nothing from the bus (ADR 0066).
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign as ed25519
} from "node:crypto"
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs"
import { join, resolve } from "node:path"
import sodium from "libsodium-wrappers"
import { Clock, Config, Context, Effect, Layer, Option, Redacted, Schedule, Schema, Stream } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { SIGNING_KEYS_BUCKET } from "../../bus/Topology.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import * as SingleFlight from "../kernel/SingleFlight.ts"
import * as Verify from "./Verify.ts"

/** A signing key that cannot be used: unreadable, or sealed under another KEK. */
export class SigningKeyUnavailable extends Schema.TaggedError<SigningKeyUnavailable>()("SigningKeyUnavailable", {
  reason: Schema.String
}) {
  override get message() {
    return `the receipt-signing key is unavailable: ${this.reason}`
  }
}

/** A key pair ready to sign. */
export interface SigningKey {
  readonly keyId: string
  /** libsodium's 64-byte Ed25519 secret key (seed ‖ public key). */
  readonly secretKey: Uint8Array
}

/** A stored key: its public half in the clear, its secret half sealed under the KEK. */
const Stored = Schema.Struct({
  keyId: Schema.String,
  publicKey: Schema.String,
  algorithm: Schema.Literal(Verify.ALGORITHM),
  createdAt: Schema.String,
  retiredAt: Schema.optionalKey(Schema.String),
  /** Which KEK sealed it (kekIdOf), so a host with the wrong KEK says so instead of failing to decrypt. */
  kekId: Schema.String,
  nonce: Schema.String,
  sealed: Schema.String
})
type Stored = typeof Stored.Type

const CURRENT = "current"
const entryKey = (keyId: string) => `key.${keyId}`

/**
 * The `lantern-signing-keys` bucket: `key.<keyId>` holds a Stored key as JSON, `current` the keyId that signs
 * now as plain text.
 */
export const bucket = Kv.bucket({
  name: SIGNING_KEYS_BUCKET,
  value: Schema.Union([Schema.fromJsonString(Stored), Schema.String]),
  what: "a signing key"
})

export const kekIdOf = (kek: Uint8Array) =>
  createHash("sha256").update("lantern-kek\0").update(kek).digest("hex").slice(0, 16)

/** A value sealed with XChaCha20-Poly1305 under a KEK: which KEK (kekIdOf), the nonce and the ciphertext, base64url. */
export interface Box {
  readonly kekId: string
  readonly nonce: string
  readonly sealed: string
}

/**
 * A fresh Ed25519 key pair, in libsodium's shapes: the 32-byte public key and the 64-byte secret key (seed ‖ public
 * key). Made by OpenSSL (node:crypto), not by libsodium's WebAssembly: every run mints an identity, and with V8's
 * baseline compiler only (ADR 0090) libsodium's key pair costs about 100 µs of the driving thread against 40-46 here.
 */
export const freshKeyPair = (): { readonly publicKey: Uint8Array; readonly privateKey: Uint8Array } => {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })
  const seed = Buffer.from(jwk.d ?? "", "base64url")
  const publicKey = Buffer.from(jwk.x ?? "", "base64url")
  if (seed.length !== 32 || publicKey.length !== 32) throw new Error("node:crypto made an Ed25519 key of a bad size")
  return { publicKey: new Uint8Array(publicKey), privateKey: new Uint8Array(Buffer.concat([seed, publicKey])) }
}

/** OpenSSL's private key of a libsodium Ed25519 secret key (its 32-byte seed, then its public key). */
export const privateKeyOf = (secretKey: Uint8Array): KeyObject =>
  createPrivateKey({
    key: {
      kty: "OKP",
      crv: "Ed25519",
      d: Verify.toBase64Url(secretKey.subarray(0, 32)),
      x: Verify.toBase64Url(secretKey.subarray(32))
    },
    format: "jwk"
  })

/** The private key of each secret key signed with, made once: a host signs with one key for many receipts. */
const keyObjects = new WeakMap<Uint8Array, KeyObject>()

const keyObjectOf = (secretKey: Uint8Array): KeyObject => {
  const cached = keyObjects.get(secretKey)
  if (cached !== undefined) return cached
  const made = privateKeyOf(secretKey)
  keyObjects.set(secretKey, made)
  return made
}

/** The Ed25519 signature of `bytes` by libsodium's 64-byte secret key (the same bytes libsodium signs: RFC 8032). */
export const signDetached = (bytes: Uint8Array, secretKey: Uint8Array): Uint8Array =>
  ed25519(null, bytes, keyObjectOf(secretKey))

/** Seals `plain` under `kek`, bound to `aad` (what it is and whose), so a box cannot be moved to another entry. */
export const sealBox = (kek: Uint8Array, plain: Uint8Array | string, aad: string): Box => {
  const nonce = new Uint8Array(randomBytes(sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, aad, null, nonce, kek)
  return { kekId: kekIdOf(kek), nonce: Verify.toBase64Url(nonce), sealed: Verify.toBase64Url(sealed) }
}

/**
 * Opens `box` with whichever of `keks` sealed it (the current KEK, or one kept while rotating); throws an error
 * naming `what`, never the contents, when no KEK of this host sealed it or when it was altered or moved.
 */
export const openBox = (keks: ReadonlyArray<Uint8Array>, box: Box, aad: string, what: string): Uint8Array => {
  const kek = keks.find((k) => kekIdOf(k) === box.kekId)
  if (kek === undefined) {
    throw new Error(
      `${what} is sealed under KEK ${box.kekId}, this host has KEK ${
        keks.map(kekIdOf).join(", ")
      }: set LANTERN_KEK (or LANTERN_KEK_PREVIOUS while rotating) to the deployment's`
    )
  }
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      Verify.fromBase64Url(box.sealed),
      aad,
      Verify.fromBase64Url(box.nonce),
      kek
    )
  } catch {
    throw new Error(`${what} fails authentication: it was altered or copied from another entry`)
  }
}

const aad = (keyId: string) => `lantern-signing-key:${keyId}`

/** Seals a fresh key pair's secret key under `kek`, bound to its keyId (the AAD) so entries cannot be swapped. */
export const seal = (
  kek: Uint8Array,
  keyPair: { publicKey: Uint8Array; privateKey: Uint8Array },
  createdAt: string
): Stored => {
  const keyId = Verify.keyIdOf(keyPair.publicKey)
  return {
    keyId,
    publicKey: Verify.toBase64Url(keyPair.publicKey),
    algorithm: Verify.ALGORITHM,
    createdAt,
    ...sealBox(kek, keyPair.privateKey, aad(keyId))
  }
}

/** Opens a stored key with `kek`; a wrong KEK or an altered entry fails with the reason. */
export const open = (kek: Uint8Array, stored: Stored): Effect.Effect<SigningKey, SigningKeyUnavailable> =>
  Effect.try({
    try: () => {
      const secretKey = openBox([kek], stored, aad(stored.keyId), `key ${stored.keyId}`)
      if (Verify.toBase64Url(secretKey.slice(32)) !== stored.publicKey)
        throw new Error(`key ${stored.keyId}: the sealed secret does not match its public key`)
      return { keyId: stored.keyId, secretKey }
    },
    catch: (e) => new SigningKeyUnavailable({ reason: e instanceof Error ? e.message : String(e) })
  })

export const publicOf = (s: Stored): Verify.PublicKey => ({
  keyId: s.keyId,
  publicKey: s.publicKey,
  algorithm: Verify.ALGORITHM,
  createdAt: s.createdAt,
  ...(s.retiredAt === undefined ? {} : { retiredAt: s.retiredAt })
})

/** Signs an unsigned receipt: Ed25519 over its canonical JSON, base64url without padding. */
export const sign = (key: SigningKey, unsigned: Verify.Unsigned): Verify.Receipt => ({
  ...unsigned,
  signature: Verify.toBase64Url(signDetached(Verify.signingBytes(unsigned), key.secretKey))
})

export const ready = Effect.promise(() => sodium.ready)

// ---- the key-encryption key ----

export const KEK_FILE = "signing-kek"

/** A base64 (or base64url) KEK of 32 bytes; throws naming `from` otherwise. */
export const kekBytes = (text: string, from: string): Uint8Array => {
  const bytes = Buffer.from(text.trim().replace(/-/g, "+").replace(/_/g, "/"), "base64")
  if (bytes.length !== 32)
    throw new Error(
      `${from} must be 32 bytes in base64 (got ${bytes.length} bytes); make one with: openssl rand -base64 32`
    )
  return new Uint8Array(bytes)
}

/**
 * The KEK: LANTERN_KEK (base64 of 32 bytes), else the one kept in LANTERN_HOME/signing-kek beside the dev
 * credentials (mode 0600), made on first start. Hosts that share a bus but not a home must set LANTERN_KEK.
 */
export const kekConfig = Effect.gen(function*() {
  const configured = yield* Config.option(Config.Redacted("LANTERN_KEK"))
  if (Option.isSome(configured)) {
    const value = configured.value
    return yield* Effect.try({
      try: () => kekBytes(Redacted.value(value), "LANTERN_KEK"),
      catch: (e) => new SigningKeyUnavailable({ reason: e instanceof Error ? e.message : String(e) })
    })
  }
  const home = yield* Config.String("LANTERN_HOME").pipe(Config.withDefault(".lantern"))
  return yield* Effect.try({
    try: () => {
      const file = join(resolve(home), KEK_FILE)
      mkdirSync(resolve(home), { recursive: true })
      if (!existsSync(file)) {
        // exclusive create: two processes sharing the home agree on whichever KEK was written first
        try {
          const fd = openSync(file, "wx", 0o600)
          writeSync(fd, `${randomBytes(32).toString("base64")}\n`)
          closeSync(fd)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
        }
      }
      return kekBytes(readFileSync(file, "utf8"), file)
    },
    catch: (e) => new SigningKeyUnavailable({ reason: e instanceof Error ? e.message : String(e) })
  })
})

// ---- the service ----

export interface Service {
  /** The key that signs now; the first call on a fresh deployment makes it. */
  readonly current: Effect.Effect<SigningKey, SigningKeyUnavailable | BusUnavailable>
  /** Every public key ever used, current and retired, oldest first. */
  readonly published: Effect.Effect<ReadonlyArray<Verify.PublicKey>, SigningKeyUnavailable | BusUnavailable>
  /** Makes a new current key and retires the previous one (which stays published). */
  readonly rotate: Effect.Effect<Verify.PublicKey, SigningKeyUnavailable | BusUnavailable>
}

export class SigningKeys extends Context.Service<SigningKeys, Service>()("lantern/actors/receipts/SigningKeys") {
  static readonly make = (kek: Uint8Array) =>
    Effect.gen(function*() {
      yield* ready
      const kv = yield* Kv.open(bucket)
      const opened = new Map<string, SigningKey>()

      const unreadable = (keyId: string) =>
        new SigningKeyUnavailable({ reason: `key ${keyId} in ${SIGNING_KEYS_BUCKET} is unreadable` })

      const readStored = (keyId: string) =>
        Effect.gen(function*() {
          const entry = yield* kv.get(entryKey(keyId)).pipe(
            Effect.catchTag("CorruptValue", () => Effect.fail(unreadable(keyId)))
          )
          if (Option.isNone(entry))
            return yield* new SigningKeyUnavailable({ reason: `key ${keyId} is not in ${SIGNING_KEYS_BUCKET}` })
          const { value, revision } = entry.value
          if (typeof value === "string")
            return yield* unreadable(keyId)
          return { stored: value, revision }
        })

      /**
       * The `current` pointer as this host last saw it, with its revision (keyId null: none, or unreadable). `live`
       * while the watch of the pointer has delivered an entry and not failed since: it will deliver every later
       * change, so the pointer is as current as the bus can tell this host, and signing need not ask.
       */
      let known: { readonly keyId: string | null; readonly revision: number } | null = null
      let live = false
      const learn = (keyId: string | null, revision: number) => {
        if (known === null || revision > known.revision) known = { keyId, revision }
      }

      const readCurrent = kv.get(CURRENT).pipe(
        Effect.flatMap((e) =>
          Option.isNone(e)
            ? Effect.succeed(null)
            : typeof e.value.value === "string"
            ? Effect.succeed({ keyId: e.value.value, revision: e.value.revision })
            : Effect.fail(
              new SigningKeyUnavailable({ reason: `the current key pointer in ${SIGNING_KEYS_BUCKET} is unreadable` })
            )
        ),
        Effect.catchTag("CorruptValue", (e) => Effect.fail(new SigningKeyUnavailable({ reason: e.message }))),
        Effect.tap((p) => Effect.sync(() => p !== null && learn(p.keyId, p.revision)))
      )

      // the pointer's last value, then each change (a rotation on any host) as it is stored
      const watch = kv.watch({ key: CURRENT }).pipe(
        Stream.runForEach((c) =>
          Effect.sync(() => {
            // an unreadable pointer is learned as none: signing then reads it, and fails saying why
            learn(c._tag === "Put" && typeof c.value === "string" ? c.value : null, c.revision)
            live = true
          })
        )
      )
      yield* Effect.forkScoped(watch.pipe(
        Effect.ensuring(Effect.sync(() => (live = false))),
        Effect.tapCause((c) => Effect.logWarning("signing key watch stopped; watching again", c)),
        Effect.retry(Schedule.spaced("1 second")),
        Effect.forever
      ))

      /** Makes and stores a key pair; it becomes current only when the caller swaps it in. */
      const fresh = Effect.gen(function*() {
        const now = new Date(yield* Clock.currentTimeMillis).toISOString()
        const stored = seal(kek, freshKeyPair(), now)
        const created = yield* kv.create(entryKey(stored.keyId), stored)
        // a keyId is the hash of a fresh public key: another entry under it would be a broken random source
        if (created._tag === "AlreadyExists")
          return yield* new SigningKeyUnavailable({ reason: `key ${stored.keyId} exists already` })
        return stored
      })

      // keys being opened: the receipts of a burst on a host that has not opened its key yet wait for one read
      const opening = SingleFlight.make<string, SigningKey, SigningKeyUnavailable | BusUnavailable>()

      const openKey = (keyId: string) =>
        Effect.suspend(() => {
          const cached = opened.get(keyId)
          if (cached !== undefined) return Effect.succeed(cached)
          return opening(
            keyId,
            Effect.gen(function*() {
              const key = yield* open(kek, (yield* readStored(keyId)).stored)
              opened.set(keyId, key)
              return key
            })
          )
        })

      const current: Service["current"] = Effect.gen(function*() {
        // the watched pointer: no bus read (the key itself is opened once per host)
        const watched = live ? known?.keyId ?? null : null
        if (watched !== null) return yield* openKey(watched)
        const read = yield* readCurrent
        if (read !== null) return yield* openKey(read.keyId)
        const made = yield* fresh
        const claimed = yield* kv.create(CURRENT, made.keyId)
        if (claimed._tag === "Created") {
          learn(made.keyId, claimed.revision)
          return yield* openKey(made.keyId)
        }
        // another host made the first key at the same moment: drop ours, which never signed anything
        yield* kv.purge(entryKey(made.keyId))
        const theirs = yield* readCurrent
        if (theirs === null) return yield* new SigningKeyUnavailable({ reason: "the current signing key vanished" })
        return yield* openKey(theirs.keyId)
      }).pipe(Effect.withSpan("SigningKeys.current", {}, { captureStackTrace: false }))

      const published: Service["published"] = Effect.gen(function*() {
        const names = yield* kv.keys("key.>")
        // a key dropped after losing the race for the first key may still be listed: skip it
        const keys = yield* Effect.forEach(names, (name) =>
          readStored(name.slice("key.".length)).pipe(
            Effect.map((s): ReadonlyArray<Verify.PublicKey> => [publicOf(s.stored)]),
            Effect.catchTag("SigningKeyUnavailable", () => Effect.succeed([]))
          ))
        return keys.flat().sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId))
      })

      /** Marks a key retired; a concurrent retirement of the same key is as good. */
      const retire = (keyId: string) =>
        Effect.gen(function*() {
          for (let attempt = 0; attempt < 5; attempt++) {
            const old = yield* readStored(keyId)
            if (old.stored.retiredAt !== undefined) return
            const now = new Date(yield* Clock.currentTimeMillis).toISOString()
            const done = yield* kv.update(entryKey(keyId), { ...old.stored, retiredAt: now }, old.revision)
            if (done._tag === "Updated") return
          }
        })

      const rotate: Service["rotate"] = Effect.gen(function*() {
        const made = yield* fresh
        // a swap loses only to a concurrent rotation: a few tries, then give up; a bus error fails the rotation
        // (the new key, never current, stays listed unretired: harmless, it signed nothing)
        for (let attempt = 0; attempt < 10; attempt++) {
          const pointer = yield* readCurrent
          const swapped = pointer === null
            ? yield* kv.create(CURRENT, made.keyId)
            : yield* kv.update(CURRENT, made.keyId, pointer.revision)
          if (swapped._tag === "LostRace" || swapped._tag === "AlreadyExists") continue
          // this host signs with the new key at once; the others when their watch delivers the change
          learn(made.keyId, swapped.revision)
          if (pointer !== null) yield* retire(pointer.keyId)
          return publicOf(made)
        }
        yield* kv.purge(entryKey(made.keyId))
        return yield* new SigningKeyUnavailable({
          reason: "could not make the new key current: the current key kept changing"
        })
      }).pipe(Effect.withSpan("SigningKeys.rotate"))

      return SigningKeys.of({ current, published, rotate })
    })

  /** Keys sealed under LANTERN_KEK (or the dev KEK file). */
  static readonly layer = Layer.effect(SigningKeys, Effect.flatMap(kekConfig, SigningKeys.make))
}
