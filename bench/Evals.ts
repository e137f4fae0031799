// Eval runs (issue 17, ADR 0047): a suite of 100 cases run server-side at concurrency 16 against the offline
// provider, beside the same 100 inputs run one after another through POST /v1/runs, on one `lantern serve`.
import { Effect } from "effect"
import { table } from "./Report.ts"
import * as Serve from "./Serve.ts"

const AGENT = "bench-evals"
const CASES = 100
const CONCURRENCY = 16

export interface Result {
  readonly cases: number
  readonly concurrency: number
  /** Wall time of the eval run, from POST /v1/eval-runs to its finish as GET reads it. */
  readonly evalMs: number
  /** Wall time of the same inputs as sequential runs, each started and polled to its end. */
  readonly sequentialMs: number
  readonly score: number
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench evals: ${text}\n`))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const measure = (stack: Serve.Stack, scale: number) =>
  Effect.promise(async () => {
    const cases = Math.max(10, Math.round(CASES * scale))
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
    let run: { status: string; score: number | null }
    for (;;) {
      run = await stack.call("GET", `/v1/eval-runs/${id}`)
      if (run.status === "finished") break
      await sleep(20)
    }
    const evalMs = performance.now() - e0
    return { cases, concurrency: CONCURRENCY, evalMs, sequentialMs, score: run.score ?? 0 } satisfies Result
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

export const render = (r: Result): string =>
  [
    `Eval runs: ${r.cases} cases (offline provider, each a real run) against the same inputs as sequential runs`,
    table(["", "wall time", "per case", "ratio"], [
      [
        `eval run, concurrency ${r.concurrency}`,
        `${(r.evalMs / 1000).toFixed(2)} s`,
        `${(r.evalMs / r.cases).toFixed(1)} ms`,
        "1.00"
      ],
      [
        `${r.cases} sequential runs`,
        `${(r.sequentialMs / 1000).toFixed(2)} s`,
        `${(r.sequentialMs / r.cases).toFixed(1)} ms`,
        (r.sequentialMs / r.evalMs).toFixed(2)
      ]
    ]),
    `score ${r.score}`
  ].join("\n")

export const json = (r: Result): string => `BENCH_EVALS_JSON ${JSON.stringify(r)}`
