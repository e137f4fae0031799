// Code-first durable workflows (issues 11 and 12, ADR 0041) on the workload the peers were measured on: a real `lantern
// serve` (PGlite) registering bench/fixtures/workflows.ts, runs of ten sequential trivial `ctx.step`s one at a time
// and IN_FLIGHT at a time, beside the raw JetStream floor measured on the same server in the same run.
import { loadavg } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import * as Completions from "../schema/Completions.ts"
import { table } from "./Report.ts"
import * as RunBatch from "./RunBatch.ts"
import { IN_FLIGHT, met, ms, p, per, round, scaled, SEQUENTIAL_COLD, SEQUENTIAL_WARMUP } from "./RunBatch.ts"
import * as Serve from "./Serve.ts"

const FILE = join(import.meta.dirname, "fixtures/workflows.ts")
const WORKFLOW = "bench-ten-steps"
/** `ctx.step`s in a run of WORKFLOW. */
export const STEPS = 10
/**
 * The raw floor of a run: the journal appends it needs, as sequential publishes-with-ack: its start, one for each
 * step (a `ctx.step` of local code is journaled once, ADR 0032) and its end.
 */
export const FLOOR_PUBLISHES = STEPS + 2

/** The figures for the same workload on this machine kind, and its goal for one host. */
export const REFERENCES = [
  { name: "Restate 1.7", msPerStep: 1.43, workflowsPerSecond: 221 },
  { name: "DBOS", msPerStep: 2.85, workflowsPerSecond: 75 },
  { name: "LangGraph", msPerStep: 2.94, workflowsPerSecond: 40 }
] as const
export const GOAL = { msPerStep: 0.5, workflowsPerSecond: 700 } as const
/** Issue 11's goal for ten `ctx.step`s: a run one at a time within twice the floor of the appends it needs. */
export const LATENCY_RATIO = 2
/** Issue 11's goal for them many at a time: runs/s at IN_FLIGHT on one host, as for the run path's agent. */
export const RUNS_PER_SECOND = 400

/** Counts at BENCH_SCALE=1. */
/** Runs measured one at a time, with as many raw floor "runs" interleaved (RunBatch.interleaved). */
const SEQUENTIAL = 100
const THROUGHPUT = 600

/** `throughput` is POST only: ends are seen by one core subscription of this process to the journal subjects. */
export interface Result extends RunBatch.Measured {
  /** Start to end of each of the first runs one at a time after the probe (the JIT cold), ms. */
  readonly sequentialCold: ReadonlyArray<number>
}

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

    const cold = scaled(SEQUENTIAL_COLD, scale, 10)
    yield* progress(`${cold} runs one at a time on the fresh serve, then ${seq} after ${SEQUENTIAL_WARMUP} in all`)
    const sequential = yield* RunBatch.interleaved(stack, cold, seq, runOnce, FLOOR_PUBLISHES, probe.events)

    yield* progress(`${batch} runs at ${IN_FLIGHT} in flight (after ${IN_FLIGHT})`)
    yield* Effect.promise(() => RunBatch.pool(IN_FLIGHT, IN_FLIGHT, async () => void (await runOnce())))
    const loadThroughput = loadavg()[0]!
    const throughput = yield* RunBatch.batchOf(batch, stack, runOnce)

    const settledSeconds = yield* RunBatch.settled(stack)
    yield* progress(`serve idle ${settledSeconds.toFixed(1)} s after the last run ended`)
    yield* progress(`raw floor: runs of ${FLOOR_PUBLISHES} sequential publishes, alone and ${IN_FLIGHT} in flight`)
    const floor = yield* RunBatch.floor(FLOOR_PUBLISHES, sequential, batch)
    return {
      natsServer: stack.nats.version,
      database: stack.database,
      syncAlways: stack.nats.syncAlways,
      stepsPerRun: probe.steps,
      eventsPerRun: probe.events,
      sequentialCold: sequential.cold,
      sequential: sequential.runs,
      throughput,
      floor,
      loadAverage: { sequential: sequential.loadAverage, throughput: loadThroughput }
    } satisfies Result
  })

/** Runs the workflow measurements on a nats-server and `lantern serve` of their own. */
export const run = (scale: number) =>
  Serve.withStack("workflows", { LANTERN_WORKFLOWS: FILE }, progress, (stack) => measure(stack, scale))

/** p50 per step: the run's p50 over its steps. */
export const msPerStep = (r: Result) => p(r.sequential, 0.5) / STEPS
/** The floor's p50 per publish: what one step's append costs at least. */
const floorMsPerStep = (r: Result) => p(r.floor.sequential, 0.5) / FLOOR_PUBLISHES
/** Issue 11's figure: the run's p50 one at a time over the p50 of the appends it needs, published raw. */
export const latencyRatio = (r: Result) => p(r.sequential, 0.5) / p(r.floor.sequential, 0.5)

const ratio = (x: number) => `${x.toFixed(2)}x`

export const render = (r: Result): string => {
  const t = r.throughput
  const step = msPerStep(r)
  return [
    `Code-first workflows (bench/Workflows.ts, issue 12): \`lantern serve\` (${r.database}, LANTERN_WORKFLOWS=bench/fixtures/workflows.ts) on its own nats-server ${r.natsServer}${
      r.syncAlways ? " (sync_interval: always)" : ""
    }`,
    `   a workflow = ${r.stepsPerRun} sequential trivial ctx.steps, ${r.eventsPerRun} journal events; started by POST /v1/runs {workflow},`,
    "   its end seen by one core subscription of the bench to lantern.run.> (no request per run)",
    `   raw floor = ${FLOOR_PUBLISHES} sequential JetStream publishes-with-ack (start, ${STEPS} steps, end) of ${r.floor.payloadBytes} B (the mean LANTERN_RUNS message) on one subject, same server, same run;`,
    `   one at a time, the floor's runs alternate with Lantern's in blocks of ${RunBatch.INTERLEAVE} (each block once serve is idle), so both see the machine as it is then`,
    `   load average (1 min) before: one at a time ${r.loadAverage.sequential.toFixed(2)}, ${IN_FLIGHT} in flight ${
      r.loadAverage.throughput.toFixed(2)
    }`,
    table(
      ["figure", "Lantern workflow", `raw floor (${FLOOR_PUBLISHES} publishes)`, "Lantern / floor"],
      [
        [
          `p50 ms per step (run p50 / ${STEPS}; floor p50 / ${FLOOR_PUBLISHES} publishes)`,
          step.toFixed(2),
          floorMsPerStep(r).toFixed(2),
          ratio(step / floorMsPerStep(r))
        ],
        [
          `run p50 ms, one at a time (${r.sequential.length} after ${SEQUENTIAL_WARMUP} / ${r.floor.sequential.length})`,
          ms(p(r.sequential, 0.5)),
          ms(p(r.floor.sequential, 0.5)),
          ratio(latencyRatio(r))
        ],
        [
          `run p50 ms, first ${r.sequentialCold.length} after start (JIT cold)`,
          ms(p(r.sequentialCold, 0.5)),
          ms(p(r.floor.sequential, 0.5)),
          ratio(p(r.sequentialCold, 0.5) / p(r.floor.sequential, 0.5))
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
    RunBatch.runWritesLine(r.floor, r.sequential),
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
    table(
      ["issue 11 target", "goal", "Lantern", "status"],
      [[
        "run p50 / floor p50, one at a time",
        `<= ${LATENCY_RATIO.toFixed(2)}x`,
        ratio(latencyRatio(r)),
        met(latencyRatio(r) <= LATENCY_RATIO)
      ], [
        `workflows/s at ${IN_FLIGHT} in flight`,
        `>= ${RUNS_PER_SECOND}`,
        t.runsPerSecond.toFixed(1),
        met(t.runsPerSecond >= RUNS_PER_SECOND)
      ]]
    ),
    RunBatch.cpuCeilingLine(t, RUNS_PER_SECOND, "workflow"),
    "   a run's time is POST /v1/runs to its terminal event on the bus: the HTTP request, RunStarted, the steps and the",
    "   end. The peers' figures were taken on an idle machine of this kind; this run's load average is above."
  ].join("\n")
}

/** The figures as one `BENCH_WORKFLOWS_JSON {...}` line. */
export const json = (r: Result): string =>
  `BENCH_WORKFLOWS_JSON ${
    JSON.stringify({
      database: r.database,
      stepsPerRun: r.stepsPerRun,
      eventsPerRun: r.eventsPerRun,
      sequential: {
        runs: r.sequential.length,
        after: SEQUENTIAL_WARMUP,
        msPerStep: round(msPerStep(r), 3),
        p50Ms: round(p(r.sequential, 0.5)),
        p90Ms: round(p(r.sequential, 0.9))
      },
      sequentialCold: { runs: r.sequentialCold.length, p50Ms: round(p(r.sequentialCold, 0.5)) },
      latencyRatio: round(latencyRatio(r), 3),
      floorSequential: {
        publishes: FLOOR_PUBLISHES,
        msPerStep: round(floorMsPerStep(r), 3),
        p50Ms: round(p(r.floor.sequential, 0.5)),
        p90Ms: round(p(r.floor.sequential, 0.9))
      },
      inFlight: IN_FLIGHT,
      throughput: RunBatch.batchJson(r.throughput),
      floorRunsPerSecond: round(r.floor.runsPerSecond, 1),
      busRunWrites: RunBatch.runWritesJson(r.floor),
      cpuCeiling: RunBatch.cpuCeilingJson(r.throughput, RUNS_PER_SECOND),
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
