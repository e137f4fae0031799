// Tenants' secrets at rest: values sealed with XChaCha20-Poly1305 under the KEK in the `lantern-secrets` KV
// bucket, written and deleted over the API, never read back; runs resolve `lantern.secret://<name>` at execution.
import { Clock, Config, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { SECRETS_BUCKET } from "../../bus/Topology.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import { Audit } from "../audit/Audit.ts"
import { kekBytes, kekConfig, kekIdOf, openBox, ready, sealBox, type SigningKeyUnavailable } from "../receipts/Keys.ts"

/** A secret's name: lower case, digits, `_ . -`; dots only between other characters (they split KV tokens). */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/
export const isName = (name: string) => NAME_PATTERN.test(name) && !name.includes("..") && !name.endsWith(".")
export const URI_PREFIX = "lantern.secret://"
export const URI_PATTERN = /^lantern\.secret:\/\/[a-z0-9][a-z0-9_.-]{0,62}$/
/** Largest value accepted, in UTF-8 bytes. */
export const MAX_VALUE_BYTES = 64 * 1024

/** The name in a `lantern.secret://<name>` URI, or null when it is not one. */
export const nameOf = (uri: string): string | null => {
  if (!URI_PATTERN.test(uri)) return null
  const name = uri.slice(URI_PREFIX.length)
  return isName(name) ? name : null
}

export class SecretNotFound extends Schema.TaggedError<SecretNotFound>()("SecretNotFound", { name: Schema.String }) {
  override get message() {
    return `no secret '${this.name}' (${URI_PREFIX}${this.name})`
  }
}

export class InvalidSecretUri
  extends Schema.TaggedError<InvalidSecretUri>()("InvalidSecretUri", { uri: Schema.String }) {
  override get message() {
    return `'${this.uri.slice(0, 100)}' is not a secret URI like ${URI_PREFIX}<name> (name ${NAME_PATTERN.source})`
  }
}

/** A stored secret that cannot be opened: sealed under a KEK this host lacks, or altered or moved. */
export class SecretUnavailable
  extends Schema.TaggedError<SecretUnavailable>()("SecretUnavailable", { reason: Schema.String }) {
  override get message() {
    return `the secret is unavailable: ${this.reason}`
  }
}

/** What the API shows of a secret: never its value. */
export interface Metadata {
  readonly name: string
  readonly version: number
  readonly createdAt: string
  readonly updatedAt: string
}

export const Stored = Schema.Struct({
  name: Schema.String,
  version: Schema.Number,
  /** Which KEK sealed it (kekIdOf): rewrap finds what to re-seal, and a host without it says so. */
  kekId: Schema.String,
  nonce: Schema.String,
  ciphertext: Schema.String,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type Stored = typeof Stored.Type

/** The `lantern-secrets` bucket: key `<tenant>.<name>`, the latest sealed version only. */
export const bucket = Kv.bucket({ name: SECRETS_BUCKET, value: Schema.fromJsonString(Stored), what: "a secret" })

export const entryKey = (tenant: string, name: string) => `${tenant}.${name}`
const aad = (tenant: string, name: string, version: number) => `lantern-secret\0${tenant}\0${name}\0${version}`

/** The KEKs of this host: `current` seals, `previous` (LANTERN_KEK_PREVIOUS) only open, until a rewrap. */
export interface Keks {
  readonly current: Uint8Array
  readonly previous: ReadonlyArray<Uint8Array>
}

/** Seals `value` under `kek`, bound to tenant, name and version (the AAD), so a ciphertext cannot be moved. */
export const seal = (kek: Uint8Array, tenant: string, meta: Metadata, value: Redacted.Redacted<string>): Stored => {
  const box = sealBox(kek, Redacted.value(value), aad(tenant, meta.name, meta.version))
  return { ...meta, kekId: box.kekId, nonce: box.nonce, ciphertext: box.sealed }
}

/** Opens a stored secret of `tenant` with whichever of `keks` sealed it; fails with the reason, never the value. */
export const open = (
  keks: Keks,
  tenant: string,
  stored: Stored
): Effect.Effect<Redacted.Redacted<string>, SecretUnavailable> =>
  Effect.try({
    try: () => {
      const plain = openBox(
        [keks.current, ...keks.previous],
        { kekId: stored.kekId, nonce: stored.nonce, sealed: stored.ciphertext },
        aad(tenant, stored.name, stored.version),
        `secret '${stored.name}' of tenant ${tenant}`
      )
      return Redacted.make(new TextDecoder().decode(plain))
    },
    catch: (e) => new SecretUnavailable({ reason: e instanceof Error ? e.message : String(e) })
  })

const metadataOf = (s: Stored): Metadata => ({
  name: s.name,
  version: s.version,
  createdAt: s.createdAt,
  updatedAt: s.updatedAt
})

type Failure = BusUnavailable | SecretUnavailable

export interface Service {
  /** Stores `value` as the first version of `name`, or the next one; `created` says which. */
  readonly put: (
    tenant: string,
    name: string,
    value: Redacted.Redacted<string>
  ) => Effect.Effect<{ readonly secret: Metadata; readonly created: boolean }, Failure>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<Metadata>, Failure>
  readonly get: (tenant: string, name: string) => Effect.Effect<Metadata, SecretNotFound | Failure>
  /** Deletes `name` and its ciphertext (purged, not tombstoned with history). */
  readonly remove: (tenant: string, name: string) => Effect.Effect<void, SecretNotFound | Failure>
  /** The value a `lantern.secret://<name>` URI names, for use now; audited as `secret.accessed` by `actor`. */
  readonly resolve: (
    tenant: string,
    uri: string,
    actor?: string
  ) => Effect.Effect<Redacted.Redacted<string>, InvalidSecretUri | SecretNotFound | Failure>
  /**
   * Re-seals every secret not under the current KEK; when `unreadable` (`<tenant>.<name>` of the ones no KEK of
   * this host opens) is empty, LANTERN_KEK_PREVIOUS can be dropped.
   */
  readonly rewrap: Effect.Effect<
    { readonly rewrapped: number; readonly total: number; readonly unreadable: ReadonlyArray<string> },
    Failure
  >
}

export class Secrets extends Context.Service<Secrets, Service>()("lantern/actors/secrets/Secrets") {
  static readonly make = (keks: Keks) =>
    Effect.gen(function*() {
      yield* ready
      const audit = yield* Audit
      const kv = yield* Kv.open(bucket)
      const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

      const read = (tenant: string, name: string) =>
        kv.get(entryKey(tenant, name)).pipe(
          Effect.map((entry) =>
            Option.getOrNull(Option.map(entry, (e) => ({ stored: e.value, revision: e.revision })))
          ),
          Effect.catchTag(
            "CorruptValue",
            () => Effect.fail(new SecretUnavailable({ reason: `secret '${name}' in ${SECRETS_BUCKET} is unreadable` }))
          )
        )

      const found = (tenant: string, name: string) =>
        Effect.flatMap(
          read(tenant, name),
          (r) => r === null ? Effect.fail(new SecretNotFound({ name })) : Effect.succeed(r)
        )

      const put: Service["put"] = (tenant, name, value) =>
        Effect.gen(function*() {
          // a write loses only to a concurrent write of the same name: reload and take the next version
          for (let attempt = 0; attempt < 10; attempt++) {
            const previous = yield* read(tenant, name)
            const at = yield* now
            const meta: Metadata = previous === null
              ? { name, version: 1, createdAt: at, updatedAt: at }
              : { name, version: previous.stored.version + 1, createdAt: previous.stored.createdAt, updatedAt: at }
            const sealed = seal(keks.current, tenant, meta, value)
            const key = entryKey(tenant, name)
            const written = previous === null
              ? yield* kv.create(key, sealed)
              : yield* kv.update(key, sealed, previous.revision)
            if (written._tag === "Created" || written._tag === "Updated")
              return { secret: meta, created: previous === null }
          }
          return yield* new SecretUnavailable({ reason: `secret '${name}' kept changing under concurrent writes` })
        }).pipe(Effect.withSpan("Secrets.put", { attributes: { tenant_id: tenant, secret: name } }))

      const names = (prefix: string) => kv.keys(prefix)

      const list: Service["list"] = (tenant) =>
        Effect.gen(function*() {
          const keys = yield* names(`${tenant}.>`)
          const read_ = yield* Effect.forEach(keys, (k) => read(tenant, k.slice(tenant.length + 1)))
          return read_.flatMap((r) => (r === null ? [] : [metadataOf(r.stored)])).sort((a, b) =>
            a.name.localeCompare(b.name)
          )
        })

      const get: Service["get"] = (tenant, name) => Effect.map(found(tenant, name), (r) => metadataOf(r.stored))

      const remove: Service["remove"] = (tenant, name) =>
        Effect.gen(function*() {
          yield* found(tenant, name)
          yield* kv.purge(entryKey(tenant, name))
        })

      const resolve: Service["resolve"] = (tenant, uri, actor = "system") =>
        Effect.gen(function*() {
          const name = nameOf(uri)
          if (name === null) return yield* new InvalidSecretUri({ uri })
          const outcome = yield* Effect.result(Effect.flatMap(found(tenant, name), (r) => open(keks, tenant, r.stored)))
          yield* audit.record({
            tenant,
            action: "secret.accessed",
            actor,
            target: name,
            outcome: outcome._tag === "Success" ? "allowed" : "failed",
            detail: outcome._tag === "Success" ? {} : { reason: outcome.failure._tag }
          })
          return yield* (outcome._tag === "Success" ? Effect.succeed(outcome.success) : Effect.fail(outcome.failure))
        }).pipe(Effect.withSpan("Secrets.resolve", { attributes: { tenant_id: tenant } }))

      const rewrap: Service["rewrap"] = Effect.gen(function*() {
        const keys = yield* names(">")
        const currentId = kekIdOf(keks.current)
        let rewrapped = 0
        const unreadable: Array<string> = []
        for (const key of keys) {
          const dot = key.indexOf(".")
          const tenant = key.slice(0, dot)
          const entry = yield* read(tenant, key.slice(dot + 1))
          if (entry === null || entry.stored.kekId === currentId) continue
          const opened = yield* Effect.result(open(keks, tenant, entry.stored))
          if (opened._tag === "Failure") {
            // sealed under a KEK this host lacks, or altered: reported, and the others still rewrapped
            unreadable.push(key)
            continue
          }
          const value = opened.success
          // a concurrent write sealed it under the current KEK already (LostRace): nothing left to do for it
          const done = yield* kv.update(
            key,
            seal(keks.current, tenant, metadataOf(entry.stored), value),
            entry.revision
          )
          if (done._tag === "Updated") rewrapped++
        }
        return { rewrapped, total: keys.length, unreadable }
      }).pipe(Effect.withSpan("Secrets.rewrap"))

      return Secrets.of({ put, list, get, remove, resolve, rewrap })
    })

  /** LANTERN_KEK (or the dev KEK file) seals; LANTERN_KEK_PREVIOUS, comma-separated base64 KEKs, only open. */
  static readonly keksConfig: Effect.Effect<Keks, SigningKeyUnavailable | SecretUnavailable | Config.ConfigError> =
    Effect.gen(function*() {
      const current = yield* kekConfig
      const raw = yield* Config.option(Config.Redacted("LANTERN_KEK_PREVIOUS"))
      if (Option.isNone(raw)) return { current, previous: [] }
      const previous = yield* Effect.try({
        try: () =>
          Redacted.value(raw.value).split(",").filter((s) => s.trim() !== "").map((s, i) =>
            kekBytes(s, `LANTERN_KEK_PREVIOUS[${i}]`)
          ),
        catch: (e) => new SecretUnavailable({ reason: e instanceof Error ? e.message : String(e) })
      })
      return { current, previous }
    })

  static readonly layer = Layer.effect(Secrets, Effect.flatMap(Secrets.keksConfig, Secrets.make))
}
