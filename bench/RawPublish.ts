// The physical limit DESIGN §6 measures Lantern against: plain JetStream publish-with-ack round trips with
// the project's own @nats-io client and connection, to a stream configured exactly like LANTERN_RUNS.
import { Effect } from "effect"
import { Nats, unavailable } from "../bus/Nats.ts"
import * as Topology from "../bus/Topology.ts"
import * as Stats from "./Stats.ts"

export const STREAM = "BENCH_RAW"
const SUBJECTS = "bench.raw.>"

/** Creates BENCH_RAW as a copy of the applied LANTERN_RUNS configuration (name and subjects aside). */
export const ensureStream = Effect.gen(function*() {
  const { jsm } = yield* Nats
  return yield* Effect.tryPromise({
    try: async () => {
      const runs = await jsm.streams.info(Topology.RUNS)
      const { metadata: _metadata, ...config } = runs.config
      const raw = { ...config, name: STREAM, subjects: [SUBJECTS] }
      await jsm.streams.add(raw)
      return { storage: String(raw.storage), duplicateWindowNs: raw.duplicate_window, replicas: raw.num_replicas }
    },
    catch: unavailable(`create stream ${STREAM}`)
  })
})

/** A payload the size of a journal envelope, so the raw round trip carries as many bytes as a step's. */
export const payloadOf = (bytes: number): Uint8Array =>
  new TextEncoder().encode(`{"bench":"${"x".repeat(Math.max(0, bytes - 12))}"}`)

/**
 * `total` publishes by `publishers` concurrent publishers, each on its own subject and each awaiting its own
 * acks one after the other. Latency is per publish; the rate is over the whole phase.
 */
export const run = (publishers: number, total: number, payload: Uint8Array, tag: string) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    const counts = Stats.split(total, publishers)
    return yield* Effect.tryPromise({
      try: async () => {
        const samples: Array<number> = []
        const started = performance.now()
        await Promise.all(counts.map(async (n, i) => {
          const subject = `bench.raw.${tag}.${i}`
          for (let k = 0; k < n; k++) {
            const t = performance.now()
            await js.publish(subject, payload)
            samples.push(performance.now() - t)
          }
        }))
        return Stats.summarize(samples, performance.now() - started)
      },
      catch: unavailable(`raw publish (${publishers} publishers)`)
    })
  })
