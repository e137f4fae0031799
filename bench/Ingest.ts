// NATS ingest (ADR 0051): events a producer publishes on lantern.ingest.<tenant>.<source>, through a real
// `lantern serve` whose router checks, dedupes and records each one (a `record` rule), in events per second from the
// first publish to the last event accepted; beside the raw floor, the same events published with ack to a stream
// configured like LANTERN_INGEST, on the same server in the same run.
import { headers } from "@nats-io/nats-core"
import { Effect } from "effect"
import { INGEST } from "../actors/ingest/Ingest.ts"
import { Nats, unavailable } from "../bus/Nats.ts"
import { OPERATOR_TENANT } from "../edge/Scopes.ts"
import { table } from "./Report.ts"
import * as Serve from "./Serve.ts"

/** Events at BENCH_SCALE=1, and how many publishes are in flight at once. */
const EVENTS = 5000
const IN_FLIGHT = 256
const RAW_STREAM = "BENCH_INGEST_RAW"

export interface Result {
  readonly events: number
  readonly inFlight: number
  /** Raw JetStream publish-with-ack of the same events, events/s. */
  readonly rawPerSecond: number
  /** Publishing them onto lantern.ingest (acked by the stream), events/s. */
  readonly publishPerSecond: number
  /** From the first publish to the last event accepted by the router, events/s. */
  readonly ingestPerSecond: number
  readonly natsServer: string
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ingest: ${text}\n`))

const bodyOf = (tag: string, i: number) =>
  JSON.stringify({ eventId: `${tag}-${i}`, type: "bench.event", occurredAt: "2026-12-03T08:00:00Z", data: { i, tag } })

/** Publishes `n` events on `subjectOf(i)`, `IN_FLIGHT` awaiting their acks at a time; the elapsed ms. */
const publishAll = (n: number, subject: string, tag: string) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    return yield* Effect.tryPromise({
      try: async () => {
        const started = performance.now()
        let next = 0
        await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
          for (let i = next++; i < n; i = next++) {
            const h = headers()
            h.set("Nats-Msg-Id", `${tag}-${i}`)
            await js.publish(subject, bodyOf(tag, i), { headers: h })
          }
        }))
        return performance.now() - started
      },
      catch: unavailable("publish ingest events")
    })
  })

const measure = (stack: Serve.Stack, scale: number) =>
  Effect.gen(function*() {
    const n = Math.max(IN_FLIGHT, Math.round(EVENTS * scale))
    const { jsm } = yield* Nats
    yield* Effect.promise(() =>
      stack.call("POST", "/v1/agents", { name: "bench-ingest", spec: { systemPrompt: "You count." } })
    )
    yield* Effect.promise(() =>
      stack.call("POST", "/v1/ingest/rules", { source: "bench", agentName: "bench-ingest", action: "record" })
    )
    // the floor: a stream configured as LANTERN_INGEST (which the serve created), other subjects
    yield* Effect.tryPromise({
      try: async () => {
        const { metadata: _m, ...config } = (await jsm.streams.info(INGEST)).config
        await jsm.streams.add({ ...config, name: RAW_STREAM, subjects: ["bench.ingestraw.>"] })
      },
      catch: unavailable(`create ${RAW_STREAM}`)
    })
    yield* progress(`${n} raw publishes, ${IN_FLIGHT} in flight`)
    yield* publishAll(Math.round(n / 10), "bench.ingestraw.warm", "warm")
    const rawMs = yield* publishAll(n, "bench.ingestraw.m", "raw")
    yield* progress(`${n} events through the ingest router`)
    const accepted = async () =>
      ((await stack.call("GET", "/v1/ingest/sources")).items as Array<{ source: string; accepted: number }>)
        .find((s) => s.source === "bench")?.accepted ?? 0
    const started = performance.now()
    const publishMs = yield* publishAll(n, `lantern.ingest.${OPERATOR_TENANT}.bench`, "ev")
    const doneMs = yield* Effect.promise(async () => {
      const deadline = Date.now() + 600_000
      while ((await accepted()) < n) {
        if (Date.now() > deadline) throw new Error("the ingest router did not accept every event within 600 s")
        await new Promise((r) => setTimeout(r, 100))
      }
      return performance.now() - started
    })
    return {
      events: n,
      inFlight: IN_FLIGHT,
      rawPerSecond: n / (rawMs / 1000),
      publishPerSecond: n / (publishMs / 1000),
      ingestPerSecond: n / (doneMs / 1000),
      natsServer: stack.nats.version
    } satisfies Result
  })

export const run = (scale: number) => Serve.withStack("ingest", {}, progress, (stack) => measure(stack, scale))

export const render = (r: Result): string =>
  [
    `NATS ingest (bench/Ingest.ts, ADR 0051): ${r.events} events, ${r.inFlight} publishes in flight, nats-server ${r.natsServer}`,
    "   ingest = first publish on lantern.ingest.<tenant>.<source> to the last event checked, deduplicated and recorded",
    "   (a `record` rule) by the router of a real `lantern serve`; raw = the same events published with ack to a",
    "   stream configured like LANTERN_INGEST, same server, same run",
    table(["", "events/s", "vs raw"], [
      ["raw JetStream publish", r.rawPerSecond.toFixed(0), "1.00"],
      ["publish onto lantern.ingest", r.publishPerSecond.toFixed(0), (r.publishPerSecond / r.rawPerSecond).toFixed(2)],
      [
        "ingested (accepted by the router)",
        r.ingestPerSecond.toFixed(0),
        (r.ingestPerSecond / r.rawPerSecond).toFixed(2)
      ]
    ])
  ].join("\n")

export const json = (r: Result): string => JSON.stringify({ section: "ingest", ...r })
