// The exact-match response cache: a temperature-0 request whose tenant, candidate models, conversation, tools
// and output cap are byte-for-byte those of an earlier answered one gets that answer again, from a KV bucket,
// without a provider call. Entries age out with the bucket's TTL; nothing else invalidates them.
import { createHash } from "node:crypto"
import { Kvm, type KV } from "@nats-io/kv"
import { Clock, Effect, Schema } from "effect"
import { Nats, unavailable } from "../../bus/Nats.ts"
import { MODEL_CACHE_BUCKET } from "../../bus/Topology.ts"
import * as Canonical from "../../schema/Canonical.ts"
import { ModelAnswer } from "../../schema/Events.ts"
import type { Candidate } from "./Catalog.ts"
import type { Request } from "./ModelProvider.ts"

/** Layout version of a stored entry; an entry of any other is a miss. */
export const FORMAT = 1

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/** What is stored per key: the answer, what it cost when it was made, and which model made it. */
export const Entry = Schema.Struct({
  format: Schema.Literal(FORMAT),
  answer: ModelAnswer,
  /** `provider/model` that answered. */
  chosen: Schema.String,
  tokensIn: Count,
  tokensOut: Count,
  costUsd: Schema.Number,
  cachedTokensIn: Schema.optionalKey(Count),
  reasoningTokens: Schema.optionalKey(Count),
  storedAt: Schema.Number
})
export type Entry = typeof Entry.Type

const decodeEntry = Schema.decodeUnknownOption(Schema.fromJsonString(Entry))

/** Whether a request may be answered from (and stored in) the cache: deterministic sampling, and not turned off. */
export const isCacheable = (request: Request): boolean => request.temperature === 0 && request.cache !== false

/**
 * The cache key: sha256 of the canonical JSON of everything that decides the answer. The tenant scopes it (one
 * tenant never reads another's answers); the candidate models stand for the alias, so remapping an alias does
 * not serve an old model's answers. The idempotency key is left out: it differs on every step by design.
 * Undefined when the request cannot be serialised canonically (it is then not cached).
 */
export const keyOf = (request: Request, candidates: ReadonlyArray<Candidate>): string | undefined => {
  try {
    const canonical = Canonical.stringify({
      tenant: request.tenant ?? "",
      candidates: candidates.map((c) => `${c.provider}/${c.model}`),
      messages: request.messages,
      tools: request.tools,
      temperature: request.temperature ?? null,
      maxTokens: request.maxTokens ?? null
    })
    return createHash("sha256").update(canonical).digest("hex")
  } catch {
    return undefined
  }
}

export interface Service {
  readonly ttlSeconds: number
  /** The live entry under `key`; a miss (never an error) when there is none or the bus is unavailable. */
  readonly get: (key: string) => Effect.Effect<Entry | undefined>
  /** Stores an answer; a failure to store is logged and otherwise ignored. */
  readonly put: (key: string, entry: Entry) => Effect.Effect<void>
}

/** The cache over `bucket`; entries older than `ttlSeconds` are misses even before the bucket drops them. */
export const make = (bucket: KV, ttlSeconds: number): Service => ({
  ttlSeconds,
  get: (key) =>
    Effect.gen(function*() {
      const stored = yield* Effect.tryPromise({ try: () => bucket.get(key), catch: unavailable("read model cache") })
      if (stored === null || stored.operation !== "PUT") return undefined
      const entry = decodeEntry(stored.string())
      if (entry._tag === "None") return undefined
      const now = yield* Clock.currentTimeMillis
      return now - entry.value.storedAt > ttlSeconds * 1000 ? undefined : entry.value
    }).pipe(
      Effect.catch((e) => Effect.as(Effect.logWarning(`model cache unavailable: ${e.message}`), undefined))
    ),
  put: (key, entry) =>
    Effect.tryPromise({ try: () => bucket.put(key, JSON.stringify(entry)), catch: unavailable("write model cache") }).pipe(
      Effect.asVoid,
      Effect.catch((e) => Effect.logWarning(`cannot store a model answer in the cache: ${e.message}`))
    )
})

/**
 * Opens the bucket Topology.apply created and gives it the configured TTL (the bucket's max age), so a
 * changed TTL applies to a bucket created earlier too.
 */
export const open = (ttlSeconds: number) =>
  Effect.gen(function*() {
    const { js, jsm } = yield* Nats
    const bucket = yield* Effect.tryPromise({ try: () => new Kvm(js).open(MODEL_CACHE_BUCKET), catch: unavailable("open model cache") })
    const stream = `KV_${MODEL_CACHE_BUCKET}`
    const maxAge = ttlSeconds * 1_000_000_000
    yield* Effect.tryPromise({
      try: async () => {
        const info = await jsm.streams.info(stream)
        if (info.config.max_age !== maxAge) await jsm.streams.update(stream, { ...info.config, max_age: maxAge })
      },
      catch: unavailable(`set the TTL of ${MODEL_CACHE_BUCKET}`)
    })
    return make(bucket, ttlSeconds)
  })
