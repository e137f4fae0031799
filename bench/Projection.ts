// Projection throughput (DESIGN §6: projections batch their Postgres writes): events/s the projectors fold
// into PGlite and into Postgres, beside raw JetStream consumption of the same stream measured in the same run,
// and the lag after a burst of runs: from the last append to Queries.listRuns (what GET /v1/runs serves)
// showing every run of the burst with its final status.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DeliverPolicy } from "@nats-io/jetstream"
import { Effect, Layer } from "effect"
import { Nats, unavailable } from "../bus/Nats.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Ordered from "../bus/Ordered.ts"
import * as Topology from "../bus/Topology.ts"
import * as Migrations from "../projections/Migrations.ts"
import * as Projector from "../projections/Projector.ts"
import * as Queries from "../projections/Queries.ts"
import { Sql } from "../projections/Sql.ts"
import type * as Envelope from "../schema/Envelope.ts"
import type * as Events from "../schema/Events.ts"
import * as Postgres from "../tests/support/Postgres.ts"
import { table } from "./Report.ts"

/** Runs per phase at BENCH_SCALE=1: the catch-up journal, then the live burst. */
const RUNS = 2000
/** Events per run: started, three steps (model, tool, model) started and completed, succeeded. */
export const EVENTS_PER_RUN = 8
/** Publishes in flight while appending (one connection keeps each run's events in order). */
const PIPELINE = 512

export interface Phase {
  readonly events: number
  readonly ms: number
  readonly perSecond: number
  /** This process's CPU (all threads) per event over the phase, in microseconds. */
  readonly cpuUs?: number
}

export interface DriverResult {
  readonly driver: string
  /** Why the driver was not measured; the figures are absent then. */
  readonly skipped?: string
  /** Raw JetStream consumption of the catch-up journal: an ordered consumer reading every message. */
  readonly raw?: Phase
  /** A fresh database folding the catch-up journal from the first event (checkpoint reaches the last one). */
  readonly catchUp?: Phase
  readonly burst?: {
    readonly runs: number
    readonly events: number
    /** How long appending the burst took (pipelined publishes). */
    readonly appendMs: number
    /** From the last append's ack to listRuns showing every run of the burst as succeeded. */
    readonly lagMs: number
  }
  readonly sustained?: {
    readonly runs: number
    readonly seconds: number
    /** From the last append's ack to listRuns showing every run as succeeded. */
    readonly lagMs: number
    /**
     * This process's CPU per event from the first append to the last run listed, in microseconds: the
     * projector's batches at a steady rate (what a serving host pays), plus the appends and list reads.
     */
    readonly cpuUs: number
  }
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

const phase = (events: number, ms: number, cpu?: NodeJS.CpuUsage): Phase => ({
  events,
  ms,
  perSecond: (events * 1000) / ms,
  ...(cpu === undefined ? {} : { cpuUs: (cpu.user + cpu.system) / events })
})

let counter = 0
/** An id as schema/Ids.ts spells them: the prefix and 26 characters (listRuns' cursor takes no other run id). */
const id26 = (prefix: string) => prefix + (counter++).toString(36).padStart(26, "0")

const SPEC = {
  systemPrompt: "You answer briefly.",
  model: "auto",
  maxTurns: 8,
  tools: [{ name: "clock", description: "The current time", parameters: { type: "object", properties: {} } }]
} as const

/** The journal of one successful run (model call, tool call, model call), as a run actor records it. */
const runJournal = (tenant: string, runId: string): ReadonlyArray<Envelope.Envelope> => {
  const answer = (
    content: string | null,
    toolCalls: ReadonlyArray<{ id: string; name: string; arguments: unknown }>
  ) => ({
    _tag: "model" as const,
    answer: {
      content,
      toolCalls,
      finishReason: toolCalls.length > 0 ? "tool_calls" : "stop",
      provider: "bench",
      model: "echo"
    }
  })
  const call = { id: "call_1", name: "clock", arguments: {} }
  const events: ReadonlyArray<Events.Event> = [
    {
      _tag: "RunStarted",
      runId,
      agentName: "support",
      agentVersion: 1,
      agentDigest: "sha256:bench",
      spec: SPEC,
      input: { question: "What time is it?" },
      requestDigest: `sha256:${runId}`
    },
    { _tag: "StepStarted", stepId: "turn-1", attempt: 1, request: { _tag: "model", model: "auto", turn: 1 } },
    {
      _tag: "StepCompleted",
      stepId: "turn-1",
      attempt: 1,
      result: answer(null, [call]),
      tokensIn: 812,
      tokensOut: 23,
      costUsd: 0.000412,
      durationMs: 0
    },
    { _tag: "StepStarted", stepId: "turn-1:call_1", attempt: 1, request: { _tag: "tool", call } },
    {
      _tag: "StepCompleted",
      stepId: "turn-1:call_1",
      attempt: 1,
      result: { _tag: "tool", callId: "call_1", output: "05:00" },
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0,
      durationMs: 0
    },
    { _tag: "StepStarted", stepId: "turn-2", attempt: 1, request: { _tag: "model", model: "auto", turn: 2 } },
    {
      _tag: "StepCompleted",
      stepId: "turn-2",
      attempt: 1,
      result: answer("It is 05:00.", []),
      tokensIn: 851,
      tokensOut: 9,
      costUsd: 0.000401,
      durationMs: 0
    },
    { _tag: "RunSucceeded", output: { answer: "It is 05:00." } }
  ]
  const actor = { type: "run" as const, tenant, id: runId }
  return events.map((event, i) => {
    const { _tag, ...payload } = event as Events.Event & Record<string, unknown>
    return {
      eventId: id26("evt_"),
      type: _tag,
      version: 1,
      tenant,
      actor,
      causationId: null,
      correlationId: runId,
      traceparent: null,
      at: new Date().toISOString(),
      idempotencyKey: `${runId}:${i}`,
      payload
    }
  })
}

/**
 * Appends `runs` run journals as fast as the bus takes them: publishes pipelined on one connection (which keeps
 * each run's events in order), the runs' events interleaved as concurrent runs' are. Returns the last sequence.
 */
const appendRuns = (tenant: string, runs: number) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    const journals = Array.from({ length: runs }, () => runJournal(tenant, id26("run_")))
    // round-robin over runs in groups of 64, so a batch holds several events of several runs
    const messages: Array<{ subject: string; data: string; msgID: string }> = []
    for (let g = 0; g < journals.length; g += 64) {
      const group = journals.slice(g, g + 64)
      for (let e = 0; e < EVENTS_PER_RUN; e++) {
        for (const j of group) {
          const env = j[e]!
          messages.push({
            subject: `lantern.run.${tenant}.${env.actor.id}`,
            data: JSON.stringify(env),
            msgID: env.idempotencyKey
          })
        }
      }
    }
    return yield* Effect.tryPromise({
      try: async () => {
        let last = 0
        for (let i = 0; i < messages.length; i += PIPELINE) {
          const acks = await Promise.all(
            messages.slice(i, i + PIPELINE).map((m) => js.publish(m.subject, m.data, { msgID: m.msgID }))
          )
          for (const a of acks) last = Math.max(last, a.seq)
        }
        return { last, events: messages.length }
      },
      catch: unavailable(`append ${runs} runs`)
    })
  })

/** Runs per second of the sustained phase: the target is lists current within 1 s at this rate. */
const SUSTAINED_RATE = 100

/**
 * Appends `runs` runs at SUSTAINED_RATE runs/s: every 100 ms the whole journals of a tenth of a second's runs,
 * pipelined, as steady traffic from many clients would arrive.
 */
const appendSustained = (tenant: string, runs: number) =>
  Effect.gen(function*() {
    const perTick = SUSTAINED_RATE / 10
    const began = performance.now()
    let last = 0
    for (let done = 0, tick = 0; done < runs; done += perTick, tick++) {
      const due = began + tick * 100
      const wait = due - performance.now()
      if (wait > 0) yield* Effect.sleep(`${Math.ceil(wait)} millis`)
      last = Math.max(last, (yield* appendRuns(tenant, Math.min(perTick, runs - done))).last)
    }
    return { last, seconds: (performance.now() - began) / 1000 }
  })

/** Reads the whole runs stream with an ordered consumer, as a projector does, touching each message's bytes. */
const rawConsume = (last: number) =>
  Effect.gen(function*() {
    const { nc } = yield* Nats
    return yield* Effect.tryPromise({
      try: async () => {
        const began = performance.now()
        const messages = await Ordered.consume(
          nc,
          Topology.RUNS,
          { deliver_policy: DeliverPolicy.All },
          Projector.BATCH_SIZE
        )
        let n = 0
        let bytes = 0
        for await (const m of messages) {
          n++
          bytes += m.string().length
          if (m.seq >= last) break
        }
        await messages.close()
        if (bytes === 0) throw new Error("read nothing")
        return phase(n, performance.now() - began)
      },
      catch: unavailable("raw consume")
    })
  })

const checkpointAt = (seq: number) =>
  Effect.gen(function*() {
    for (;;) {
      if ((yield* Projector.checkpoint("projector-runs", Topology.RUNS)) >= seq) return
      yield* Effect.sleep("10 millis")
    }
  })

/** How many of the tenant's runs listRuns shows as succeeded, paging as a client of GET /v1/runs would. */
const succeeded = (tenant: string) =>
  Effect.gen(function*() {
    let n = 0
    let cursor: string | undefined
    for (;;) {
      const page = yield* Queries.listRuns(tenant, {
        status: "succeeded",
        limit: Queries.MAX_LIMIT,
        ...(cursor === undefined ? {} : { cursor })
      })
      n += page.items.length
      if (page.nextCursor === null) return n
      cursor = page.nextCursor
    }
  })

const measureDriver = (scale: number, driver: string, sql: Layer.Layer<Sql, unknown>) =>
  Effect.gen(function*() {
    const runs = Math.max(10, Math.round(RUNS * scale))
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "lantern-bench-projection-"))),
      (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
    )
    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => NatsServer.start({ storeDir: join(dir, "js") }), catch: (e) => e }),
      (h) => Effect.promise(() => h.stop())
    )
    const bus = Nats.layerUrl(server.url, "lantern-bench-projection")
    return yield* Effect.gen(function*() {
      yield* Topology.apply
      yield* progress(`projection (${driver}): appending ${runs} runs for the catch-up`)
      const journal = yield* appendRuns("bench-catchup", runs)
      yield* rawConsume(journal.last) // warm-up
      const raw = yield* rawConsume(journal.last)
      yield* Migrations.migrate
      yield* progress(`projection (${driver}): folding ${journal.events} events from a fresh database`)
      const began = performance.now()
      const cpuBegan = process.cpuUsage()
      yield* Effect.forkScoped(Projector.run)
      yield* checkpointAt(journal.last)
      const catchUp = phase(journal.events, performance.now() - began, process.cpuUsage(cpuBegan))
      if ((yield* succeeded("bench-catchup")) !== runs)
        return yield* Effect.die(new Error("the catch-up runs are not all projected"))

      yield* progress(`projection (${driver}): a burst of ${runs} runs while the projectors run`)
      const appendBegan = performance.now()
      const burst = yield* appendRuns("bench-burst", runs)
      const appended = performance.now()
      // the cheap wait first, so the reads of the check below do not slow the projector down meanwhile
      yield* checkpointAt(burst.last)
      for (;;) {
        if ((yield* succeeded("bench-burst")) === runs)
          break
        yield* Effect.sleep("20 millis")
      }
      const lagMs = performance.now() - appended

      const steady = Math.max(20, Math.round(runs / 2))
      yield* progress(`projection (${driver}): ${steady} runs at ${SUSTAINED_RATE} runs/s while the projectors run`)
      const sustainedCpu = process.cpuUsage()
      const sustained = yield* appendSustained("bench-sustained", steady)
      const sustainedEnd = performance.now()
      for (;;) {
        if ((yield* succeeded("bench-sustained")) === steady) break
        yield* Effect.sleep("20 millis")
      }
      return {
        driver,
        raw,
        catchUp,
        burst: { runs, events: burst.events, appendMs: appended - appendBegan, lagMs },
        sustained: {
          runs: steady,
          seconds: sustained.seconds,
          lagMs: performance.now() - sustainedEnd,
          cpuUs: (cpuOf(process.cpuUsage(sustainedCpu))) / (steady * EVENTS_PER_RUN)
        }
      } satisfies DriverResult
      // the projectors stop before the database and the bus close
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(bus, sql)))
  }).pipe(Effect.scoped)

/** PGlite with its files on disk (as `lantern dev` runs it), then Postgres when this machine can start one. */
export const run = (scale: number) =>
  Effect.gen(function*() {
    const results: Array<DriverResult> = []
    const pgliteDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "lantern-bench-pglite-"))),
      (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
    )
    results.push(yield* measureDriver(scale, "PGlite (files on disk)", Sql.layerPglite(join(pgliteDir, "pglite"))))
    const pg = Postgres.availability()
    if (!pg.available) {
      results.push({ driver: "Postgres (pg)", skipped: pg.reason })
    } else {
      const server = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => pg.start(), catch: (e) => e }),
        (s) => Effect.promise(() => s.stop())
      )
      results.push(yield* measureDriver(scale, `Postgres (pg, ${server.description})`, Sql.layerPg(server.url)))
    }
    return results
  }).pipe(Effect.scoped)

const cpuOf = (u: NodeJS.CpuUsage) => u.user + u.system

const rate = (x: number) => Math.round(x).toLocaleString("en-US")
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const us = (x: number) => `${Math.round(x)} µs`

export const render = (results: ReadonlyArray<DriverResult>): string => {
  const measured = results.filter((r) => r.skipped === undefined)
  const out = [
    `Projection (bench/Projection.ts): runs of ${EVENTS_PER_RUN} events (start, model, tool, model, success) folded by the runs projector`,
    table(
      [
        "database",
        "events",
        "raw consume ev/s",
        "projected ev/s",
        "ratio",
        "CPU/event",
        `burst: runs`,
        "append",
        "lag to listRuns",
        `${SUSTAINED_RATE} runs/s: runs`,
        "lag",
        "CPU/event"
      ],
      measured.map((r) => [
        r.driver,
        String(r.catchUp!.events),
        rate(r.raw!.perSecond),
        rate(r.catchUp!.perSecond),
        `${(r.catchUp!.perSecond / r.raw!.perSecond).toFixed(2)}x`,
        r.catchUp!.cpuUs === undefined ? "-" : us(r.catchUp!.cpuUs),
        String(r.burst!.runs),
        s(r.burst!.appendMs),
        s(r.burst!.lagMs),
        r.sustained === undefined ? "-" : `${r.sustained.runs} in ${r.sustained.seconds.toFixed(1)} s`,
        r.sustained === undefined ? "-" : s(r.sustained.lagMs),
        r.sustained === undefined ? "-" : us(r.sustained.cpuUs)
      ])
    ),
    "   raw consume = an ordered consumer reading the same stream (the limit); ratio = projected / raw (1.00x = limit)",
    "   lag = from the burst's last append ack until Queries.listRuns shows every run of the burst as succeeded",
    `   ${SUSTAINED_RATE} runs/s = whole run journals appended at that steady rate; lag as above (goal: under 1 s)`,
    "   CPU/event = this process's CPU (every thread) per event: the catch-up's is the projector's and its reads;",
    "   at the steady rate it also holds the appends and list reads (Postgres' own CPU is its server's, not counted)"
  ]
  for (const r of results) if (r.skipped !== undefined) out.push(`   ${r.driver}: skipped (${r.skipped})`)
  return out.join("\n")
}

export const json = (results: ReadonlyArray<DriverResult>) => JSON.stringify({ bench: "projection", results })
