// Eval runs (issue 17, ADR 0047): a suite of 100 cases run server-side at concurrency 16 against the offline
// provider, beside the same 100 inputs run one after another through POST /v1/runs, on one `lantern serve`; and the
// raw floor measured in the same run: JetStream publish-with-ack to a stream configured like LANTERN_RUNS, one at a
// time and 16 in flight, times the events a case appends (its run's journal and its record in the eval run's).
import { Effect } from "effect"
import { Nats, unavailable } from "../bus/Nats.ts"
import { RUNS } from "../bus/Topology.ts"
import { table } from "./Report.ts"
import * as Serve from "./Serve.ts"

const AGENT = "bench-evals"
const CASES = 100
const CONCURRENCY = 16
const FLOOR_PUBLISHES = 2000

export interface Result {
  readonly cases: number
  readonly concurrency: number
  /** Wall time of the eval run, from POST /v1/eval-runs to its finish as GET reads it. */
  readonly evalMs: number
  /** Wall time of the same inputs as sequential runs, each started and polled to its end. */
  readonly sequentialMs: number
  readonly score: number
  /** Events one case appends: its run's journal, and its record in the eval run's journal. */
  readonly eventsPerCase: number
  /** Raw JetStream publishes-with-ack per second, one in flight and `concurrency` in flight. */
  readonly rawSerialPerS: number
  readonly rawConcurrentPerS: number
  readonly natsServer: string
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench evals: ${text}\n`))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const measure = (stack: Serve.Stack, scale: number) =>
  Effect.gen(function*() {
    const cases = Math.max(10, Math.round(CASES * scale))
    const timed = yield* Effect.promise(async () => {
      await stack.call("POST", "/v1/agents", { name: AGENT, spec: { systemPrompt: "Repeat the input." } })
      const inputs = Array.from({ length: cases }, (_, i) => `hello ${i}`)
      const suite = await stack.call("POST", "/v1/eval-suites", {
        agentName: AGENT,
        name: "bench",
        cases: inputs.map((input, i) => ({ name: `case-${i}`, input, assert: [{ contains: "hello" }] }))
      }) as { id: string }

      // warm-up: a few runs, so neither side pays for first requests
      for (let i = 0; i < 5; i++) await runToEnd(stack, `warm ${i}`)

      const s0 = performance.now()
      for (const input of inputs) await runToEnd(stack, input)
      const sequentialMs = performance.now() - s0

      const e0 = performance.now()
      const { id } = await stack.call("POST", "/v1/eval-runs", { suiteId: suite.id, concurrency: CONCURRENCY }) as {
        id: string
      }
      let run: { status: string; score: number | null; cases: ReadonlyArray<{ runId: string | null }> }
      const deadline = Date.now() + 600_000
      for (;;) {
        run = await stack.call("GET", `/v1/eval-runs/${id}`)
        if (run.status === "finished") break
        if (Date.now() > deadline) throw new Error(`eval run ${id} did not finish in 600 s`)
        await sleep(20)
      }
      const evalMs = performance.now() - e0
      const caseRun = run.cases.find((c) => c.runId !== null)?.runId
      const events = caseRun === undefined
        ? 0
        : (await stack.call("GET", `/v1/runs/${caseRun}/events`) as { items: ReadonlyArray<unknown> }).items.length
      return { evalMs, sequentialMs, score: run.score ?? 0, eventsPerCase: events + 1 }
    })
    yield* progress(`raw floor: ${FLOOR_PUBLISHES} publishes one at a time and ${CONCURRENCY} in flight`)
    const { js, jsm } = yield* Nats
    const raw = yield* Effect.tryPromise({
      try: async () => {
        const { metadata: _m, ...config } = (await jsm.streams.info(RUNS)).config
        await jsm.streams.add({ ...config, name: "BENCH_EVALS_RAW", subjects: ["bench.evalsraw.>"] })
        const payload = "x".repeat(600)
        const s0 = performance.now()
        for (let i = 0; i < FLOOR_PUBLISHES; i++) await js.publish(`bench.evalsraw.s${i % 64}`, payload)
        const serialMs = performance.now() - s0
        const c0 = performance.now()
        let next = 0
        await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          while (next < FLOOR_PUBLISHES) {
            const i = next++
            await js.publish(`bench.evalsraw.c${i % 64}`, payload)
          }
        }))
        const concurrentMs = performance.now() - c0
        return {
          rawSerialPerS: FLOOR_PUBLISHES / (serialMs / 1000),
          rawConcurrentPerS: FLOOR_PUBLISHES / (concurrentMs / 1000)
        }
      },
      catch: unavailable("raw publish")
    })
    return {
      cases,
      concurrency: CONCURRENCY,
      ...timed,
      ...raw,
      natsServer: stack.nats.version
    } satisfies Result
  })

const runToEnd = async (stack: Serve.Stack, input: string) => {
  const run = await stack.call("POST", "/v1/runs", { agentName: AGENT, input }) as { id: string; status: string }
  let status = run.status
  while (status === "running") {
    await sleep(5)
    status = (await stack.call("GET", `/v1/runs/${run.id}`) as { status: string }).status
  }
}

/** Runs the eval measurements on a nats-server and `lantern serve` of their own. */
export const run = (scale: number) =>
  Effect.gen(function*() {
    yield* progress(`a ${Math.max(10, Math.round(CASES * scale))}-case suite at concurrency ${CONCURRENCY}`)
    return yield* Serve.withStack("evals", {}, progress, (stack) => measure(stack, scale))
  })

/** Cases a second if every event of every case cost one raw publish at the given rate. */
const floorOf = (r: Result, publishesPerS: number) => publishesPerS / r.eventsPerCase

export const render = (r: Result): string => {
  const evalPerS = r.cases / (r.evalMs / 1000)
  const seqPerS = r.cases / (r.sequentialMs / 1000)
  const floorConcurrent = floorOf(r, r.rawConcurrentPerS)
  const floorSerial = floorOf(r, r.rawSerialPerS)
  return [
    `Eval runs (bench/Evals.ts): ${r.cases} cases (offline provider, each a real run) against the same inputs as sequential runs, nats-server ${r.natsServer}`,
    `   floor = raw JetStream publish-with-ack to a stream configured like LANTERN_RUNS, same server, same run, times the`,
    `   ${r.eventsPerCase} events a case appends (its run's journal and its record in the eval run's journal)`,
    table(["", "wall time", "cases/s", "per case", "floor cases/s", "floor / measured"], [
      [
        `eval run, concurrency ${r.concurrency}`,
        `${(r.evalMs / 1000).toFixed(2)} s`,
        evalPerS.toFixed(1),
        `${(r.evalMs / r.cases).toFixed(1)} ms`,
        floorConcurrent.toFixed(0),
        (floorConcurrent / evalPerS).toFixed(1)
      ],
      [
        `${r.cases} sequential runs`,
        `${(r.sequentialMs / 1000).toFixed(2)} s`,
        seqPerS.toFixed(1),
        `${(r.sequentialMs / r.cases).toFixed(1)} ms`,
        floorSerial.toFixed(0),
        (floorSerial / seqPerS).toFixed(1)
      ]
    ]),
    `eval run vs sequential: ${(r.sequentialMs / r.evalMs).toFixed(2)}x; raw publishes/s: ${
      r.rawSerialPerS.toFixed(0)
    } one at a time, ${r.rawConcurrentPerS.toFixed(0)} at ${r.concurrency} in flight; score ${r.score}`
  ].join("\n")
}

export const json = (r: Result): string => `BENCH_EVALS_JSON ${JSON.stringify(r)}`
