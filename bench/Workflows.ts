// Code-first durable workflows (issue 12, ADR 0041) on the workload the peers were measured on: a real `lantern
// serve` (PGlite) registering bench/fixtures/workflows.ts, runs of ten sequential trivial `ctx.step`s one at a time
// and IN_FLIGHT at a time, beside the raw JetStream floor measured on the same server in the same run.
import { loadavg } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import * as Completions from "../schema/Completions.ts"
import { table } from "./Report.ts"
import * as RunBatch from "./RunBatch.ts"
import { IN_FLIGHT, met, ms, p, per, round, scaled } from "./RunBatch.ts"
import * as Serve from "./Serve.ts"

const FILE = join(import.meta.dirname, "fixtures/workflows.ts")
const WORKFLOW = "bench-ten-steps"
/** `ctx.step`s in a run of WORKFLOW. */
export const STEPS = 10
/** The raw floor of a run: one sequential publish-with-ack for its start and one for each step. */
export const FLOOR_PUBLISHES = STEPS + 1

/** The figures for the same workload on this machine kind, and its goal for one host. */
export const REFERENCES = [
  { name: "Restate 1.7", msPerStep: 1.43, workflowsPerSecond: 221 },
  { name: "DBOS", msPerStep: 2.85, workflowsPerSecond: 75 },
  { name: "LangGraph", msPerStep: 2.94, workflowsPerSecond: 40 }
] as const
export const GOAL = { msPerStep: 0.5, workflowsPerSecond: 700 } as const

/** Counts at BENCH_SCALE=1. */
const SEQUENTIAL = 50
const WARMUP = 10
const THROUGHPUT = 600
const FLOOR_SEQUENTIAL = 100

/** `throughput` is POST only: ends are seen by one core subscription of this process to the journal subjects. */
export type Result = RunBatch.Measured

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: workflows: ${text}\n`))

const measure = (stack: Serve.Stack, scale: number) =>
  Effect.gen(function*() {
    const seq = scaled(SEQUENTIAL, scale, 10)
    const batch = scaled(THROUGHPUT, scale, IN_FLIGHT)
    const ends = yield* RunBatch.watchEnds
    const runOnce: RunBatch.RunOnce = async () => {
      const { id } = await stack.call("POST", "/v1/runs", { workflow: WORKFLOW, input: null })
      return { id, end: await ends(id) }
    }
    // the shape of a run, from its journal
    const probe = yield* Effect.promise(async () => {
      const { id, end } = await runOnce()
      if (end !== "RunSucceeded") throw new Error(`run ${id} ended with ${end}`)
      const events: ReadonlyArray<{ type: string }> = (await stack.call("GET", `/v1/runs/${id}/events`)).items
      return {
        steps: events.flatMap(Completions.expand).filter((e) => e.type === "StepCompleted").length,
        events: events.length
      }
    })
    if (probe.steps !== STEPS) return yield* Effect.die(new Error(`a run journaled ${probe.steps} steps, not ${STEPS}`))
    yield* progress(`a run is ${probe.steps} steps, ${probe.events} events`)

    yield* progress(`${seq} runs one at a time (after ${WARMUP})`)
    const loadSequential = loadavg()[0]!
    const sequential = yield* RunBatch.oneAtATime(seq, WARMUP, runOnce)

    yield* progress(`${batch} runs at ${IN_FLIGHT} in flight (after ${IN_FLIGHT})`)
    yield* Effect.promise(() => RunBatch.pool(IN_FLIGHT, IN_FLIGHT, async () => void (await runOnce())))
    const loadThroughput = loadavg()[0]!
    const throughput = yield* RunBatch.batchOf(batch, stack, runOnce)

    const settledSeconds = yield* RunBatch.settled(stack)
    yield* progress(`serve idle ${settledSeconds.toFixed(1)} s after the last run ended`)
    yield* progress(`raw floor: runs of ${FLOOR_PUBLISHES} sequential publishes, alone and ${IN_FLIGHT} in flight`)
    const floor = yield* RunBatch.floor(FLOOR_PUBLISHES, scaled(FLOOR_SEQUENTIAL, scale, 20), batch, WARMUP)
    return {
      natsServer: stack.nats.version,
      syncAlways: stack.nats.syncAlways,
      stepsPerRun: probe.steps,
      eventsPerRun: probe.events,
      sequential,
      throughput,
      floor,
      loadAverage: { sequential: loadSequential, throughput: loadThroughput }
    } satisfies Result
  })

/** Runs the workflow measurements on a nats-server and `lantern serve` of their own. */
export const run = (scale: number) =>
  Serve.withStack("workflows", { LANTERN_WORKFLOWS: FILE }, progress, (stack) => measure(stack, scale))

/** p50 per step: the run's p50 over its steps. */
export const msPerStep = (r: Result) => p(r.sequential, 0.5) / STEPS
const floorMsPerStep = (r: Result) => p(r.floor.sequential, 0.5) / STEPS

const ratio = (x: number) => `${x.toFixed(2)}x`

export const render = (r: Result): string => {
  const t = r.throughput
  const step = msPerStep(r)
  return [
    `Code-first workflows (bench/Workflows.ts, issue 12): \`lantern serve\` (PGlite, LANTERN_WORKFLOWS=bench/fixtures/workflows.ts) on its own nats-server ${r.natsServer}${
      r.syncAlways ? " (sync_interval: always)" : ""
    }`,
    `   a workflow = ${r.stepsPerRun} sequential trivial ctx.steps, ${r.eventsPerRun} journal events; started by POST /v1/runs {workflow},`,
    "   its end seen by one core subscription of the bench to lantern.run.> (no request per run)",
    `   raw floor = ${FLOOR_PUBLISHES} sequential JetStream publishes-with-ack (start and ${STEPS} steps) of ${r.floor.payloadBytes} B (the mean LANTERN_RUNS message) on one subject, same server, same run`,
    `   load average (1 min) before: one at a time ${r.loadAverage.sequential.toFixed(2)}, ${IN_FLIGHT} in flight ${
      r.loadAverage.throughput.toFixed(2)
    }`,
    table(
      ["figure", "Lantern workflow", `raw floor (${FLOOR_PUBLISHES} publishes)`, "Lantern / floor"],
      [
        [
          `p50 ms per step (run p50 / ${STEPS}; ${r.sequential.length} / ${r.floor.sequential.length} runs)`,
          step.toFixed(2),
          floorMsPerStep(r).toFixed(2),
          ratio(step / floorMsPerStep(r))
        ],
        [
          "run p50 ms, one at a time",
          ms(p(r.sequential, 0.5)),
          ms(p(r.floor.sequential, 0.5)),
          ratio(p(r.sequential, 0.5) / p(r.floor.sequential, 0.5))
        ],
        [
          "run p90 ms, one at a time",
          ms(p(r.sequential, 0.9)),
          ms(p(r.floor.sequential, 0.9)),
          ratio(p(r.sequential, 0.9) / p(r.floor.sequential, 0.9))
        ],
        [
          `workflows/s at ${IN_FLIGHT} in flight (${t.runs} runs)`,
          t.runsPerSecond.toFixed(1),
          r.floor.runsPerSecond.toFixed(1),
          ratio(t.runsPerSecond / r.floor.runsPerSecond)
        ],
        [
          `raw publishes/s at ${IN_FLIGHT} in flight`,
          "",
          Math.round(r.floor.publish.perSecond).toLocaleString("en-US"),
          ""
        ]
      ]
    ),
    table([`per workflow at ${IN_FLIGHT} in flight`, "Lantern"], RunBatch.costRows([t])),
    table(
      [`${STEPS} sequential trivial steps`, "p50 ms / step", `workflows/s at ${IN_FLIGHT} in flight`],
      [
        ...REFERENCES.map((
          x
        ) => [`${x.name} (issue 12's figure)`, x.msPerStep.toFixed(2), String(x.workflowsPerSecond)]),
        ["Lantern (this run)", step.toFixed(2), t.runsPerSecond.toFixed(1)],
        ["raw JetStream floor (this run)", floorMsPerStep(r).toFixed(2), r.floor.runsPerSecond.toFixed(1)]
      ]
    ),
    table(
      ["issue 12 goal (one host)", "goal", "Lantern", "status"],
      [
        ["p50 ms / step", `<= ${GOAL.msPerStep}`, step.toFixed(2), met(step <= GOAL.msPerStep)],
        [
          `workflows/s at ${IN_FLIGHT} in flight`,
          `>= ${GOAL.workflowsPerSecond}`,
          t.runsPerSecond.toFixed(1),
          met(t.runsPerSecond >= GOAL.workflowsPerSecond)
        ],
        ["lantern serve CPU ms / workflow", "", t.cpuMsPerRun.engine.toFixed(2), ""],
        ["bus messages in / workflow (in_msgs)", "", per(t.inMsgsPerRun), ""]
      ]
    ),
    "   a run's time is POST /v1/runs to its terminal event on the bus: the HTTP request, RunStarted, the steps and the",
    "   end. The peers' figures were taken on an idle machine of this kind; this run's load average is above."
  ].join("\n")
}

/** The figures as one `BENCH_WORKFLOWS_JSON {...}` line. */
export const json = (r: Result): string =>
  `BENCH_WORKFLOWS_JSON ${
    JSON.stringify({
      stepsPerRun: r.stepsPerRun,
      eventsPerRun: r.eventsPerRun,
      sequential: {
        runs: r.sequential.length,
        msPerStep: round(msPerStep(r), 3),
        p50Ms: round(p(r.sequential, 0.5)),
        p90Ms: round(p(r.sequential, 0.9))
      },
      floorSequential: {
        publishes: FLOOR_PUBLISHES,
        msPerStep: round(floorMsPerStep(r), 3),
        p50Ms: round(p(r.floor.sequential, 0.5)),
        p90Ms: round(p(r.floor.sequential, 0.9))
      },
      inFlight: IN_FLIGHT,
      throughput: RunBatch.batchJson(r.throughput),
      floorRunsPerSecond: round(r.floor.runsPerSecond, 1),
      floorPublishesPerSecond: round(r.floor.publish.perSecond, 0),
      floorPayloadBytes: r.floor.payloadBytes,
      goal: {
        msPerStep: GOAL.msPerStep,
        workflowsPerSecond: GOAL.workflowsPerSecond,
        msPerStepMet: msPerStep(r) <= GOAL.msPerStep,
        workflowsPerSecondMet: r.throughput.runsPerSecond >= GOAL.workflowsPerSecond
      },
      references: REFERENCES,
      loadAverage: { sequential: round(r.loadAverage.sequential), throughput: round(r.loadAverage.throughput) }
    })
  }`
