// Content-addressed blobs on the bus (a JetStream object store): what several hosts must load byte for byte, such
// as the code of a workflow version (actors/workflow/Registry.ts). A blob is named by its digest and never
// changes; putting one that exists does nothing.
import { Objm, type ObjectStore } from "@nats-io/obj"
import { Config, Context, Effect, Layer, Schedule } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { Nats, unavailable } from "./Nats.ts"

export class Blobs extends Context.Service<Blobs, {
  /** Stores `bytes` under `name` unless a blob of that name exists. */
  readonly put: (name: string, bytes: Uint8Array) => Effect.Effect<void, BusUnavailable>
  /** The blob named `name`, or null. */
  readonly get: (name: string) => Effect.Effect<Uint8Array | null, BusUnavailable>
}>()("lantern/bus/Blobs") {
  /** The blobs of the bucket `bucket`, created if missing (replicas as LANTERN_REPLICAS). */
  static readonly layer = (bucket: string) =>
    Layer.effect(
      Blobs,
      Effect.gen(function*() {
        const { js } = yield* Nats
        const replicas = yield* Config.Int("LANTERN_REPLICAS").pipe(Config.withDefault(1))
        // a bus slow to answer at start (a loaded machine, a cluster electing) is waited for, as Topology.apply is
        const store: ObjectStore = yield* Effect.tryPromise({
          try: () => new Objm(js).create(bucket, { replicas }),
          catch: unavailable(`open blob bucket ${bucket}`)
        }).pipe(
          Effect.tapError((e) => Effect.logWarning(`${e.message}; trying again`)),
          Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 40 })
        )
        return Blobs.of({
          put: (name, bytes) =>
            Effect.tryPromise({
              try: async () => {
                if ((await store.info(name)) !== null) return
                await store.putBlob({ name }, bytes)
              },
              catch: unavailable(`put blob ${name}`)
            }),
          get: (name) => Effect.tryPromise({ try: () => store.getBlob(name), catch: unavailable(`get blob ${name}`) })
        })
      })
    )
}
