// Streams a feature declares for itself (ingest, ADR 0051), beside the journals of bus/Topology.ts: created when
// missing with the journals' settings (limits, file, duplicate window, direct reads), and read back by subject filter.
import { DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream"
import { nanos } from "@nats-io/nats-core"
import { Config, Effect } from "effect"
import { Nats, unavailable } from "./Nats.ts"
import { DUPLICATE_WINDOW_MS, retryAtStart } from "./Topology.ts"

/** Creates the stream `name` on `subject` if it does not exist (safe on every start). */
export const ensure = (name: string, subject: string) =>
  Effect.gen(function*() {
    const { jsm } = yield* Nats
    const replicas = yield* Config.Int("LANTERN_REPLICAS").pipe(Config.withDefault(1), Effect.orDie)
    yield* Effect.tryPromise({
      try: async () => {
        if ((await jsm.streams.info(name).catch(() => null)) !== null) return
        await jsm.streams.add({
          name,
          subjects: [subject],
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          discard: DiscardPolicy.Old,
          duplicate_window: nanos(DUPLICATE_WINDOW_MS),
          allow_direct: true,
          num_replicas: replicas
        })
      },
      catch: unavailable(`apply stream ${name}`)
    }).pipe(retryAtStart)
  })

/** How many messages the stream holds on each subject matching `filter`. */
export const counts = (stream: string, filter: string) =>
  Effect.gen(function*() {
    const { jsm } = yield* Nats
    const info = yield* Effect.tryPromise({
      try: () => jsm.streams.info(stream, { subjects_filter: filter }),
      catch: unavailable(`count ${filter} in ${stream}`)
    })
    return info.state.subjects ?? {}
  })

/** The first `limit` messages of `stream` on subjects matching `filter`, oldest first: their sequence and text. */
export const read = (stream: string, filter: string, limit: number) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    return yield* Effect.tryPromise({
      try: async () => {
        const consumer = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All })
        const out: Array<{ readonly seq: number; readonly text: string }> = []
        const batch = await consumer.fetch({ max_messages: limit, expires: 2_000 })
        for await (const m of batch) {
          out.push({ seq: m.seq, text: m.string() })
          if (out.length >= limit) break
        }
        return out
      },
      catch: unavailable(`read ${filter} of ${stream}`)
    })
  })
