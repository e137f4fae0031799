// The physical limit DESIGN §6 measures Lantern against: plain JetStream publish-with-ack round trips with
// the project's own @nats-io client and connection, to a stream configured exactly like LANTERN_RUNS; and a run's own
// writes replayed raw on copies of the streams they go to (`runWrites`).
import { Effect } from "effect"
import type { JetStreamManager } from "@nats-io/jetstream"
import * as Kv from "../bus/Kv.ts"
import { headersOf, Nats, unavailable } from "../bus/Nats.ts"
import * as Topology from "../bus/Topology.ts"
import * as Stats from "./Stats.ts"

export const STREAM = "BENCH_RAW"
const SUBJECT = "bench.raw"

/**
 * Creates `name`, on `subject`.>, as a copy of the applied configuration of stream `source` (name and subjects aside):
 * the copy's configuration and the mean stored size of the source's messages (256 B when it has none).
 */
const copyStream = async (jsm: JetStreamManager, source: string, name: string, subject: string) => {
  const { config, state } = await jsm.streams.info(source)
  const { metadata: _metadata, ...rest } = config
  const copy = { ...rest, name, subjects: [`${subject}.>`] }
  await jsm.streams.add(copy)
  return { config: copy, meanBytes: state.messages === 0 ? 256 : Math.round(state.bytes / state.messages) }
}

/** Creates BENCH_RAW as a copy of the applied LANTERN_RUNS configuration (name and subjects aside). */
export const ensureStream = Effect.gen(function*() {
  const { jsm } = yield* Nats
  return yield* Effect.tryPromise({
    try: async () => {
      const { config: raw } = await copyStream(jsm, Topology.RUNS, STREAM, SUBJECT)
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

/**
 * The streams a run writes to, each copied (configuration, name and subjects aside) for `runWrites`: the run journal
 * (LANTERN_RUNS, as RUN_SHARDS copies), the lease, identity and receipt buckets and the audit journal.
 */
const RUN_STREAMS = {
  lease: `KV_${Topology.LEASE_BUCKET}`,
  identity: `KV_${Topology.RUN_IDENTITIES_BUCKET}`,
  receipt: `KV_${Topology.RECEIPTS_BUCKET}`,
  audit: Topology.AUDIT
} as const
type Other = keyof typeof RUN_STREAMS

/** How many streams `runWrites` spreads its runs' journals over at most. */
export const RUN_SHARDS = 4

/** What `ensureRunStreams` made: the mean stored size of each copied stream's messages, bytes. */
export interface RunStreams {
  readonly journalBytes: number
  readonly bytes: Readonly<Record<Other, number>>
}

/** Creates the copies `runWrites` publishes to, once the section's runs have written to the originals. */
export const ensureRunStreams = Effect.gen(function*() {
  const { jsm } = yield* Nats
  return yield* Effect.tryPromise({
    try: async (): Promise<RunStreams> => {
      const shards = []
      for (let s = 0; s < RUN_SHARDS; s++)
        shards.push(await copyStream(jsm, Topology.RUNS, `BENCH_RUN_J${s}`, `bench.run.j${s}`))
      const bytes = {} as Record<Other, number>
      for (const k of Object.keys(RUN_STREAMS) as Array<Other>) {
        bytes[k] = (await copyStream(jsm, RUN_STREAMS[k], `BENCH_RUN_${k.toUpperCase()}`, `bench.run.${k}`)).meanBytes
      }
      return { journalBytes: shards[0]!.meanBytes, bytes }
    },
    catch: unavailable("create the run-write streams")
  })
})

/**
 * The bus's own limit for a run's writes: `runs` "runs" of raw publishes-with-ack, IN_FLIGHT of them at a time, each
 * writing what a run started on a host writes, in its order: its lease and identity created together (expected
 * sequence 0), `appends` journal appends one after the other (message id and expected subject sequence, as the
 * journal appends), then its lease purged (with its marker TTL) together with its receipt created, then an audit
 * entry. `shards` > 1 spreads the runs' journals over that many streams. Runs per second.
 */
export const runWrites = (
  streams: RunStreams,
  appends: number,
  runs: number,
  inFlight: number,
  shards: number,
  tag: string
) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    const journal = payloadOf(streams.journalBytes)
    const body = Object.fromEntries(
      (Object.keys(streams.bytes) as Array<Other>).map((k) => [k, payloadOf(streams.bytes[k])])
    ) as Record<Other, Uint8Array>
    return yield* Effect.tryPromise({
      try: async () => {
        let next = 0
        const one = async (n: number) => {
          const id = `${tag}${n}`
          const [lease] = await Promise.all([
            js.publish(`bench.run.lease.${id}`, body.lease, { expect: { lastSubjectSequence: 0 } }),
            js.publish(`bench.run.identity.${id}`, body.identity, { expect: { lastSubjectSequence: 0 } })
          ])
          let last = 0
          for (let i = 0; i < appends; i++) {
            const ack = await js.publish(`bench.run.j${n % shards}.${id}`, journal, {
              msgID: `${id}:${i}`,
              expect: { lastSubjectSequence: last }
            })
            last = ack.seq
          }
          // a lease's release: a KV purge whose marker expires (ADR 0091)
          const purge = headersOf({
            "KV-Operation": "PURGE",
            "Nats-Rollup": "sub",
            "Nats-TTL": Kv.ttlText(Topology.LEASE_MARKER_TTL_MS)
          })
          await Promise.all([
            js.publish(`bench.run.lease.${id}`, new Uint8Array(0), {
              headers: purge,
              expect: { lastSubjectSequence: lease.seq }
            }),
            js.publish(`bench.run.receipt.${id}`, body.receipt, { expect: { lastSubjectSequence: 0 } })
          ])
          await js.publish(`bench.run.audit.${id}`, body.audit, { msgID: `${id}:audit` })
        }
        const started = performance.now()
        await Promise.all(Array.from({ length: inFlight }, async () => {
          while (next < runs) await one(next++)
        }))
        return runs / ((performance.now() - started) / 1000)
      },
      catch: unavailable(`raw run writes (${shards} journal streams)`)
    })
  })
