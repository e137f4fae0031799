// The exact-match response cache: a temperature-0 request whose tenant, candidate models, conversation, tools
// and output cap are byte-for-byte those of an earlier answered one gets that answer again, from a KV bucket,
// without a provider call. Entries age out with the bucket's TTL; nothing else invalidates them.
import { createHash } from "node:crypto"
import { Clock, Effect, Option, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { MODEL_CACHE_BUCKET, MODEL_CACHE_TTL_MS } from "../../bus/Topology.ts"
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

/** The `lantern-model-cache` bucket (its TTL set from the configuration when opened). */
export const bucket = Kv.bucket({
  name: MODEL_CACHE_BUCKET,
  value: Schema.fromJsonString(Entry),
  ttl: MODEL_CACHE_TTL_MS,
  what: "a cached answer"
})

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

/** The cache over `kv`; entries older than `ttlSeconds` are misses even before the bucket drops them. */
export const make = (kv: Kv.Handle<Entry>, ttlSeconds: number): Service => ({
  ttlSeconds,
  get: (key) =>
    Effect.gen(function*() {
      // an entry of another layout (or damaged) is a miss: the answer is asked for again and stored over it
      const stored = yield* kv.get(key).pipe(Effect.catchTag("CorruptValue", () => Effect.succeedNone))
      if (Option.isNone(stored)) return undefined
      const now = yield* Clock.currentTimeMillis
      return now - stored.value.value.storedAt > ttlSeconds * 1000 ? undefined : stored.value.value
    }).pipe(
      Effect.catch((e) => Effect.as(Effect.logWarning(`model cache unavailable: ${e.message}`), undefined))
    ),
  put: (key, entry) =>
    kv.put(key, entry).pipe(
      Effect.asVoid,
      Effect.catch((e) => Effect.logWarning(`cannot store a model answer in the cache: ${e.message}`))
    )
})

/** Opens the cache bucket with the configured TTL as its max age, so a changed TTL applies to a bucket created earlier too. */
export const open = (ttlSeconds: number) =>
  Effect.map(Kv.open(Kv.withTtl(bucket, ttlSeconds * 1000)), (kv) => make(kv, ttlSeconds))
