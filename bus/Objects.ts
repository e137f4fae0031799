// Named objects on the bus (a JetStream object store) that may be written again: task artifacts
// (actors/task/Artifacts.ts). Unlike Blobs (content-addressed, written once), an object's name is chosen by its owner
// and a put replaces it. Only bus/ speaks NATS; everyone else gets this port.
import { Objm, type ObjectStore } from "@nats-io/obj"
import { Config, Effect, Schedule } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { Nats, unavailable } from "./Nats.ts"

export interface Info {
  readonly name: string
  readonly size: number
  /** When it was stored, ISO 8601. */
  readonly storedAt: string
}

export interface Objects {
  /** Stores `bytes` under `name`, replacing what was there. */
  readonly put: (name: string, bytes: Uint8Array) => Effect.Effect<Info, BusUnavailable>
  /** The object named `name`, or null. */
  readonly get: (name: string) => Effect.Effect<Uint8Array | null, BusUnavailable>
  /** The objects whose names start with `prefix`, by name. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<Info>, BusUnavailable>
}

/** The object store `bucket`, created if missing (replicas as LANTERN_REPLICAS); a slow bus at start is waited for. */
export const open = (bucket: string) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    const replicas = yield* Config.Int("LANTERN_REPLICAS").pipe(Config.withDefault(1))
    const store: ObjectStore = yield* Effect.tryPromise({
      try: () => new Objm(js).create(bucket, { replicas }),
      catch: unavailable(`open object bucket ${bucket}`)
    }).pipe(
      Effect.tapError((e) => Effect.logWarning(`${e.message}; trying again`)),
      Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 40 })
    )
    const objects: Objects = {
      put: (name, bytes) =>
        Effect.tryPromise({
          try: async () => {
            const info = await store.putBlob({ name }, bytes)
            return { name, size: info.size, storedAt: info.mtime }
          },
          catch: unavailable(`put object ${name}`)
        }),
      get: (name) => Effect.tryPromise({ try: () => store.getBlob(name), catch: unavailable(`get object ${name}`) }),
      list: (prefix) =>
        Effect.tryPromise({
          try: async () =>
            (await store.list())
              .filter((i) => !i.deleted && i.name.startsWith(prefix))
              .map((i) => ({ name: i.name, size: i.size, storedAt: i.mtime }))
              .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
          catch: unavailable(`list objects under ${prefix}`)
        })
    }
    return objects
  })
