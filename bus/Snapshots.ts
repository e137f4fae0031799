// Actor snapshots in a KV bucket, so that loading a long-lived actor folds only the journal after its last
// snapshot. A snapshot is an optimisation: a missing, stale or unreadable one only costs a full replay.
import { promisify } from "node:util"
import { gunzip, gzip } from "node:zlib"
import { Kvm } from "@nats-io/kv"
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import type { ActorAddress } from "../schema/Envelope.ts"
import type { BusUnavailable } from "../schema/Errors.ts"
import * as Issues from "../schema/Issues.ts"
import { Nats, unavailable } from "./Nats.ts"
import * as Subjects from "./Subjects.ts"
import { SNAPSHOTS_BUCKET } from "./Topology.ts"

/** Version of the stored layout below; a reader refuses any other. */
export const FORMAT = 1

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * An actor's state after the events up to stream sequence `seq` (`events` of them), as folded by the version
 * `deciderVersion` of its decider. The state is plain JSON; its shape is whatever that version folds.
 */
export const Snapshot = Schema.Struct({
  format: Schema.Literal(FORMAT),
  deciderVersion: Schema.Int,
  seq: Count,
  events: Count,
  state: Schema.Unknown
})
export type Snapshot = typeof Snapshot.Type

export class CorruptSnapshot extends Schema.TaggedError<CorruptSnapshot>()("CorruptSnapshot", {
  key: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `snapshot ${this.key} is unreadable: ${this.reason}`
  }
}

export class SnapshotTooLarge extends Schema.TaggedError<SnapshotTooLarge>()("SnapshotTooLarge", {
  key: Schema.String,
  bytes: Schema.Number,
  limit: Schema.Number
}) {
  override get message() {
    return `snapshot ${this.key} is ${this.bytes} bytes stored, over the bus's ${this.limit}-byte message limit`
  }
}

export const keyOf = (a: ActorAddress): string => `${a.type}.${a.tenant}.${a.id}`

/** Values above this many bytes of JSON are stored gzipped: long runs' states are large and repetitive. */
export const COMPRESS_ABOVE = 64 * 1024
const GZIP_MAGIC = [0x1f, 0x8b] as const
/** Room left in a message for the KV subject and headers. */
const ENVELOPE_RESERVE = 4096

const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)
const utf8 = new TextDecoder("utf-8", { fatal: true })

const isGzip = (bytes: Uint8Array) => bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]

/** The stored bytes of a snapshot: its JSON, gzipped when large (JSON never starts with gzip's magic bytes). */
export const encode = (snapshot: Snapshot): Effect.Effect<Uint8Array> =>
  Effect.gen(function*() {
    const json = Buffer.from(JSON.stringify(snapshot), "utf8")
    if (json.length <= COMPRESS_ABOVE) return new Uint8Array(json)
    const zipped = yield* Effect.promise(() => gzipAsync(json, { level: 1 }))
    return new Uint8Array(zipped)
  })

/** A snapshot from its stored bytes; anything that is not a snapshot of this FORMAT is CorruptSnapshot. */
export const decode = (key: string, bytes: Uint8Array): Effect.Effect<Snapshot, CorruptSnapshot> =>
  Effect.gen(function*() {
    const corrupt = (reason: string) => new CorruptSnapshot({ key, reason })
    const raw = isGzip(bytes)
      ? yield* Effect.tryPromise({ try: () => gunzipAsync(bytes), catch: (e) => corrupt(`bad gzip: ${String(e)}`) })
      : bytes
    // JSON.parse then the schema, not Schema.fromJsonString: a third faster on a run's megabytes of state
    const json = yield* Effect.try({
      try: (): unknown => JSON.parse(utf8.decode(raw)),
      catch: (e) => corrupt(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
    })
    return yield* Schema.decodeUnknownEffect(Snapshot)(json).pipe(
      Effect.mapError((e) => corrupt(Issues.toText(e.issue)))
    )
  })

export interface Service {
  /** How many events an instance may gain after its last snapshot before the next is written; 0 = never. */
  readonly every: number
  /** The instance's snapshot, if one is stored. */
  readonly read: (address: ActorAddress) => Effect.Effect<Option.Option<Snapshot>, CorruptSnapshot | BusUnavailable>
  /** Replaces the instance's snapshot. */
  readonly write: (address: ActorAddress, snapshot: Snapshot) => Effect.Effect<void, SnapshotTooLarge | BusUnavailable>
}

export class Snapshots extends Context.Service<Snapshots, Service>()("lantern/bus/Snapshots") {
  /** Snapshots in the `lantern-snapshots` bucket (created by Topology.apply), one every `every` events. */
  static readonly layer = (options: { readonly every: number }) =>
    Layer.effect(
      Snapshots,
      Effect.gen(function*() {
        const { js, nc } = yield* Nats
        // binds without a round trip: the bucket may be created (Topology.apply) after this layer is built
        const kv = yield* Effect.tryPromise({
          try: () => new Kvm(js).open(SNAPSHOTS_BUCKET),
          catch: unavailable(`open bucket ${SNAPSHOTS_BUCKET}`)
        })

        // which actors have a snapshot at all: most never reach one, and their load needs no request to say so (a
        // snapshot another host wrote a moment ago and not seen yet only costs a full replay)
        const present = yield* Subjects.watch(`KV_${SNAPSHOTS_BUCKET}`, `$KV.${SNAPSHOTS_BUCKET}.>`, "snapshots")

        const read: Service["read"] = (address) =>
          Effect.gen(function*() {
            const key = keyOf(address)
            if (present.has(`$KV.${SNAPSHOTS_BUCKET}.${key}`) === false) return Option.none()
            const entry = yield* Effect.tryPromise({
              try: () => kv.get(key),
              catch: unavailable(`read snapshot ${key}`)
            })
            if (entry === null || entry.operation !== "PUT") return Option.none()
            return Option.some(yield* decode(key, entry.value))
          })

        const write: Service["write"] = (address, snapshot) =>
          Effect.gen(function*() {
            const key = keyOf(address)
            const bytes = yield* encode(snapshot)
            const limit = (nc.info?.max_payload ?? 1024 * 1024) - ENVELOPE_RESERVE
            if (bytes.length > limit) return yield* new SnapshotTooLarge({ key, bytes: bytes.length, limit })
            const before = present.generation()
            const revision = yield* Effect.tryPromise({
              try: () => kv.put(key, bytes),
              catch: unavailable(`write snapshot ${key}`)
            })
            // this host reads its own snapshot at once, not once the watch has seen it (a load right after the write
            // would otherwise replay the whole journal)
            present.learn(`$KV.${SNAPSHOTS_BUCKET}.${key}`, revision, before)
          }).pipe(
            Effect.withSpan("Snapshots.write", {
              attributes: { "lantern.actor": keyOf(address), "lantern.seq": snapshot.seq }
            })
          )

        return Snapshots.of({ every: options.every, read, write })
      })
    )

  /** `layer` with LANTERN_SNAPSHOT_EVERY (default 100; 0 turns writing off, existing snapshots are still read). */
  static readonly layerConfig = Layer.unwrap(
    Effect.map(
      Config.schema(Count, "LANTERN_SNAPSHOT_EVERY").pipe(Config.withDefault(100)),
      (every) => Snapshots.layer({ every })
    )
  )
}
