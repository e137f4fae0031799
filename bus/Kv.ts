// The one typed port to JetStream KV: a bucket is declared once with a Schema for its values, and every read,
// create, compare-and-set update and delete goes through here. Only JetStream's wrong-last-sequence answer means
// "someone else wrote first"; every other failure is the bus being unavailable, never a lost race.
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream"
import { type KV, type KvEntry, KvWatchInclude, Kvm } from "@nats-io/kv"
import { nanos } from "@nats-io/nats-core"
import { Config, Duration, Effect, Option, Schedule, Schema, type Scope, Stream } from "effect"
import { BusUnavailable } from "../schema/Errors.ts"
import * as Issues from "../schema/Issues.ts"
import { Nats, unavailable } from "./Nats.ts"

/** A bucket's declaration: its name, the Schema of its values (decoded from the stored UTF-8 text), and its storage. */
export interface Bucket<A> {
  readonly name: string
  readonly value: Schema.Codec<A, string>
  /** Values kept per key (1: only the latest). */
  readonly history: number
  /** Entries older than this are dropped by the server (the bucket's max age); none when undefined. */
  readonly ttl: Duration.Duration | undefined
  /**
   * How long the marker a `purge` leaves stays (per-message TTL, ADR 0091): the server then removes it, and the key
   * is gone from the bucket. Undefined: markers stay for ever, one per key ever purged, which every listing and new
   * watch of the bucket goes through.
   */
  readonly markerTtl: Duration.Duration | undefined
  /**
   * What an entry is, for errors a client may read (`a secret`): they name neither the bucket nor the key,
   * which are the bus's layout.
   */
  readonly what: string
}

/** Declares a bucket. `value` decodes the stored text: `Schema.fromJsonString(S)` for JSON, `Schema.String` for text. */
export const bucket = <A>(options: {
  readonly name: string
  readonly value: Schema.Codec<A, string>
  readonly history?: number
  readonly ttl?: Duration.Input
  readonly markerTtl?: Duration.Input
  readonly what?: string
}): Bucket<A> => ({
  name: options.name,
  value: options.value,
  what: options.what ?? "a stored entry",
  history: options.history ?? 1,
  ttl: options.ttl === undefined ? undefined : Duration.fromInputUnsafe(options.ttl),
  markerTtl: options.markerTtl === undefined ? undefined : Duration.fromInputUnsafe(options.markerTtl)
})

/** The same bucket with another TTL (a configured one), applied to an existing bucket when it is opened. */
export const withTtl = <A>(b: Bucket<A>, ttl: Duration.Input): Bucket<A> => ({
  ...b,
  ttl: Duration.fromInputUnsafe(ttl)
})

/** A stored value that does not decode with its bucket's Schema: a bug or tampering, never a lost race. */
export class CorruptValue extends Schema.TaggedError<CorruptValue>()("CorruptValue", {
  bucket: Schema.String,
  key: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `the value of ${this.key} in bucket ${this.bucket} is unreadable: ${this.reason}`
  }
}

export interface Entry<A> {
  readonly value: A
  /** The stream sequence of the write: the expected revision of the next update. */
  readonly revision: number
}

export type Created = { readonly _tag: "Created"; readonly revision: number }
/** The key holds a value already (written at `revision`). */
export type AlreadyExists = { readonly _tag: "AlreadyExists"; readonly revision: number }
export type Updated = { readonly _tag: "Updated"; readonly revision: number }
/** The key moved past the expected revision (or was removed): reload and decide again. */
export type LostRace = { readonly _tag: "LostRace" }
export type Deleted = { readonly _tag: "Deleted" }

/** A change seen by `watch`: a value written, a key deleted or purged, or a value that does not decode. */
export type Change<A> =
  | { readonly _tag: "Put"; readonly key: string; readonly revision: number; readonly value: A }
  | { readonly _tag: "Removed"; readonly key: string; readonly revision: number }
  | { readonly _tag: "Corrupt"; readonly key: string; readonly revision: number; readonly error: CorruptValue }

export const created = (revision: number): Created => ({ _tag: "Created", revision })
export const updated = (revision: number): Updated => ({ _tag: "Updated", revision })
export const lostRace: LostRace = { _tag: "LostRace" }

/**
 * Whether a failed KV write is JetStream's answer that the key's last sequence was not the expected one (the
 * API error code, never the message text): someone else wrote first.
 */
export const isWrongLastSequence = (e: unknown): boolean =>
  e instanceof JetStreamApiError &&
  (e.code === JetStreamApiCodes.StreamWrongLastSequence || e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)

export interface Handle<A> {
  readonly bucket: Bucket<A>
  /** The live value under `key` and its revision; none when absent, deleted or purged. */
  readonly get: (key: string) => Effect.Effect<Option.Option<Entry<A>>, CorruptValue | BusUnavailable>
  /** Writes `value` only if `key` holds none (a deleted key counts as none). */
  readonly create: (key: string, value: A) => Effect.Effect<Created | AlreadyExists, BusUnavailable>
  /** Replaces the value only if the key is still at `expectedRevision`. */
  readonly update: (
    key: string,
    value: A,
    expectedRevision: number
  ) => Effect.Effect<Updated | LostRace, BusUnavailable>
  /** Writes `value` whatever the key holds. Returns the revision written. */
  readonly put: (key: string, value: A) => Effect.Effect<number, BusUnavailable>
  /** Marks `key` deleted (history kept); with `expectedRevision`, only if it is still there. */
  readonly delete: (key: string, expectedRevision?: number) => Effect.Effect<Deleted | LostRace, BusUnavailable>
  /** Removes `key` and its history; with `expectedRevision`, only if it is still there. */
  readonly purge: (key: string, expectedRevision?: number) => Effect.Effect<Deleted | LostRace, BusUnavailable>
  /** The keys with a live value matching `filter` (NATS subject wildcards; every key by default). */
  readonly keys: (filter?: string) => Effect.Effect<ReadonlyArray<string>, BusUnavailable>
  /** The keys' current values, then every change as it happens (only changes with `updatesOnly`). */
  readonly watch: (
    options?: { readonly key?: string; readonly updatesOnly?: boolean }
  ) => Stream.Stream<Change<A>, BusUnavailable>
  /**
   * The keys with a live value, kept in memory by one watch of the bucket for as long as the scope lasts, for a
   * reader that would otherwise list the bucket again and again (each listing makes and deletes a consumer).
   */
  readonly liveKeys: Effect.Effect<LiveKeys, never, Scope.Scope>
}

/** A bucket's keys with a live value, as one long-lived watch sees them (Handle.liveKeys). */
export interface LiveKeys {
  /**
   * The keys, or undefined while the watch is not running (not started yet, or ended with the bus and not started
   * again): list the bucket then. Right after the watch (re)starts, keys already there are still arriving.
   */
  readonly current: () => ReadonlyArray<string> | undefined
}

const call = <A>(operation: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: unavailable(operation) })

/**
 * Runs a revision-checked write: JetStream's wrong-last-sequence answer is `onConflict`, every other failure
 * (timeout, no responders, disconnected, any other API error) the bus being unavailable.
 */
const checked = <A, B>(operation: string, f: () => Promise<A>, onConflict: B) =>
  Effect.tryPromise({ try: f, catch: (e) => e }).pipe(
    Effect.map((a): A | B => a),
    Effect.catch((e) => isWrongLastSequence(e) ? Effect.succeed(onConflict) : Effect.fail(unavailable(operation)(e)))
  )

/** The typed handle over an opened `kv` (Kv.open binds and creates it; tests and benches may bind their own). */
export const make = <A>(b: Bucket<A>, kv: KV): Handle<A> => {
  const decode = Schema.decodeEffect(b.value)
  const encode = Schema.encodeSync(b.value)
  const decodeEntry = (e: KvEntry) =>
    decode(e.string()).pipe(
      Effect.map((value): Entry<A> => ({ value, revision: e.revision })),
      Effect.mapError((err) => new CorruptValue({ bucket: b.name, key: e.key, reason: Issues.toText(err.issue) }))
    )
  // a value of the declared type that does not encode is a bug of the caller, not a bus failure
  const text = (value: A) => Effect.try({ try: () => encode(value), catch: (e) => e }).pipe(Effect.orDie)

  const get: Handle<A>["get"] = (key) =>
    Effect.flatMap(
      call(`read ${b.what}`, () => kv.get(key)),
      (e) => e === null || e.operation !== "PUT" ? Effect.succeedNone : Effect.asSome(decodeEntry(e))
    )

  const create: Handle<A>["create"] = (key, value) =>
    Effect.gen(function*() {
      const data = yield* text(value)
      // a key deleted between the refused create and the read of its revision is created again: a few tries
      for (let attempt = 0; attempt < 3; attempt++) {
        const written = yield* checked(`create ${b.what}`, () => kv.create(key, data), null)
        if (written !== null) return created(written)
        const current = yield* call(`read ${b.what}`, () => kv.get(key))
        if (current !== null && current.operation === "PUT")
          return { _tag: "AlreadyExists", revision: current.revision } as const
      }
      return yield* new BusUnavailable({
        operation: `create ${b.what}`,
        reason: "the entry kept changing under concurrent writes"
      })
    })

  const update: Handle<A>["update"] = (key, value, expectedRevision) =>
    Effect.flatMap(
      text(value),
      (data) => checked(`update ${b.what}`, () => kv.update(key, data, expectedRevision).then(updated), lostRace)
    )

  const put: Handle<A>["put"] = (key, value) =>
    Effect.flatMap(text(value), (data) => call(`write ${b.what}`, () => kv.put(key, data)))

  // a purge's marker carries the bucket's marker TTL, when it has one
  const markerTtl = b.markerTtl === undefined ? {} : { ttl: ttlText(Duration.toMillis(b.markerTtl)) }
  const remove = (op: "delete" | "purge") => (key: string, expectedRevision?: number) =>
    checked(
      `${op} ${b.what}`,
      () =>
        kv[op](key, {
          ...(expectedRevision === undefined ? {} : { previousSeq: expectedRevision }),
          ...(op === "purge" ? markerTtl : {})
        }).then((): Deleted => ({ _tag: "Deleted" })),
      lostRace
    )

  const keys: Handle<A>["keys"] = (filter = ">") =>
    call(`list ${b.what}`, async () => {
      const out: Array<string> = []
      for await (const k of await kv.keys(filter)) out.push(k)
      return out
    })

  const watch: Handle<A>["watch"] = (options = {}) =>
    Stream.unwrap(Effect.gen(function*() {
      const watcher = yield* Effect.acquireRelease(
        call(`watch ${b.what}`, () =>
          kv.watch({
            ...(options.key === undefined ? {} : { key: options.key }),
            ...(options.updatesOnly === true ? { include: KvWatchInclude.UpdatesOnly } : {})
          })),
        (w) => Effect.sync(() => w.stop())
      )
      return Stream.fromAsyncIterable(watcher, unavailable(`watch ${b.what}`)).pipe(
        Stream.mapEffect((e): Effect.Effect<Change<A>> =>
          e.operation !== "PUT"
            ? Effect.succeed({ _tag: "Removed", key: e.key, revision: e.revision })
            : decodeEntry(e).pipe(
              Effect.map((d): Change<A> => ({ _tag: "Put", key: e.key, revision: e.revision, value: d.value })),
              Effect.catch((error) =>
                Effect.succeed<Change<A>>({ _tag: "Corrupt", key: e.key, revision: e.revision, error })
              )
            )
        )
      )
    }))

  const liveKeys: Handle<A>["liveKeys"] = Effect.gen(function*() {
    const live = new Set<string>()
    let running = false
    // headers only: a key's last operation (put, delete, purge) is all this needs; a watch that ends (the bus away)
    // is started again, and delivers every key's last operation anew
    const once = Effect.gen(function*() {
      const watcher = yield* Effect.acquireRelease(
        call(`watch ${b.what}`, () => kv.watch({ headers_only: true })),
        (w) => Effect.sync(() => w.stop())
      )
      live.clear()
      running = true
      yield* Stream.fromAsyncIterable(watcher, unavailable(`watch ${b.what}`)).pipe(
        Stream.runForEach((e) =>
          Effect.sync(() => {
            if (e.operation === "PUT") live.add(e.key)
            else live.delete(e.key)
          })
        )
      )
    }).pipe(
      Effect.scoped,
      Effect.ensuring(Effect.sync(() => {
        running = false
      }))
    )
    yield* once.pipe(
      Effect.catchCause((cause) => Effect.logDebug(`the watch of ${b.what} ended`, cause)),
      Effect.repeat(Schedule.spaced(Duration.seconds(1))),
      Effect.forkScoped
    )
    return { current: () => (running ? [...live] : undefined) }
  })

  return {
    bucket: b,
    get,
    create,
    update,
    put,
    delete: remove("delete"),
    purge: remove("purge"),
    keys,
    watch,
    liveKeys
  }
}

/** A TTL in milliseconds as a `Nats-TTL` value: whole seconds (the server's unit), at least one. */
export const ttlText = (ms: number): string => `${Math.max(1, Math.ceil(ms / 1000))}s`

/**
 * Gives the bucket `name` the max age and the marker TTL (ADR 0091) asked for, where it lacks them: creating a bucket
 * that exists keeps its configuration, so a bucket made before a TTL was declared is updated in place. Nothing is
 * written when it has them already.
 */
export const ensureLimits = async (
  jsm: JetStreamManager,
  name: string,
  limits: { readonly ttlMs?: number | undefined; readonly markerTtlMs?: number | undefined }
): Promise<void> => {
  const stream = `KV_${name}`
  const { config } = await jsm.streams.info(stream)
  const wanted = {
    ...config,
    ...(limits.ttlMs === undefined ? {} : { max_age: nanos(limits.ttlMs) }),
    ...(limits.markerTtlMs === undefined
      ? {}
      : { allow_msg_ttl: true, subject_delete_marker_ttl: nanos(limits.markerTtlMs) })
  }
  if (
    wanted.max_age !== config.max_age || wanted.allow_msg_ttl !== config.allow_msg_ttl ||
    wanted.subject_delete_marker_ttl !== config.subject_delete_marker_ttl
  ) await jsm.streams.update(stream, wanted)
}

/**
 * Creates the bucket with its declared storage when it is missing (LANTERN_REPLICAS replicas), sets its TTL when
 * the declared one differs from the bucket's, and binds a typed handle. Safe to run on every start.
 */
export const open = <A>(b: Bucket<A>) =>
  Effect.gen(function*() {
    const { js, jsm } = yield* Nats
    const replicas = yield* Config.Int("LANTERN_REPLICAS").pipe(Config.withDefault(1), Effect.orDie)
    const ttlMs = b.ttl === undefined ? undefined : Duration.toMillis(b.ttl)
    const markerTtlMs = b.markerTtl === undefined ? undefined : Duration.toMillis(b.markerTtl)
    const kv = yield* call(`open the store of ${b.what}`, () =>
      new Kvm(js).create(b.name, {
        history: b.history,
        replicas,
        ...(ttlMs === undefined ? {} : { ttl: ttlMs }),
        ...(markerTtlMs === undefined ? {} : { markerTTL: markerTtlMs })
      }))
      .pipe(
        // a freshly formed cluster may time out the first creates while its meta leader settles
        Effect.retry({ schedule: Schedule.spaced("1 second"), times: 20 })
      )
    if (ttlMs !== undefined || markerTtlMs !== undefined) {
      yield* call(`set the TTL of ${b.what}`, () => ensureLimits(jsm, b.name, { ttlMs, markerTtlMs })).pipe(
        // as the create above: a slow or settling server times the first requests out, which must not stop a start
        Effect.retry({ schedule: Schedule.spaced("1 second"), times: 20 })
      )
    }
    return make(b, kv)
  }).pipe(Effect.withSpan("Kv.open", { attributes: { "lantern.bucket": b.name } }))
