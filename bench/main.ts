// `npm run bench`: the cost of a durable step against the physical limit (DESIGN §6). Starts its own
// nats-server, measures raw JetStream publish-with-ack and Lantern's journal step at 1, 16 and 256 in flight,
// then actor load time by journal length, with and without snapshots, the time a crashed worker's runs stand
// still (Recovery.ts), what the model router adds to a call (Router.ts), run throughput with 1, 2 and 4
// `lantern worker` processes (Workers.ts), the run path through a real `lantern serve` beside the raw floor
// (RunPath.ts), code-first workflows of ten steps beside it (Workflows.ts), what an HTTP tool step adds over the raw
// call (HttpTool.ts), spawn to first output per sandbox backend beside the raw backend (Spawn.ts), how well the cost forecast predicts
// recorded runs (Forecast.ts), what signing and verifying receipts costs (Receipts.ts), how fast projections
// keep up (Projection.ts), how long `lantern` takes to start, bundled and under tsx (Startup.ts), and a 100-case eval
// run at concurrency 16 beside 100 sequential runs (Evals.ts).
// BENCH_ONLY=runpath,startup (a comma list of SECTIONS) runs only those.
import { mkdtempSync, rmSync } from "node:fs"
import { availableParallelism, cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { Journal } from "../bus/Journal.ts"
import { Snapshots } from "../bus/Snapshots.ts"
import { Nats } from "../bus/Nats.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Topology from "../bus/Topology.ts"
import * as DurableStep from "./DurableStep.ts"
import * as EvalsBench from "./Evals.ts"
import * as Fixture from "./Fixture.ts"
import * as Forecast from "./Forecast.ts"
import * as IngestBench from "./Ingest.ts"
import * as ChannelsBench from "./Channels.ts"
import * as Load from "./Load.ts"
import * as Machine from "./Machine.ts"
import * as ProjectionBench from "./Projection.ts"
import * as RawPublish from "./RawPublish.ts"
import * as ReceiptsBench from "./Receipts.ts"
import * as Recovery from "./Recovery.ts"
import * as Restart from "./Restart.ts"
import * as RouterBench from "./Router.ts"
import * as Report from "./Report.ts"
import * as RunPath from "./RunPath.ts"
import * as Startup from "./Startup.ts"
import * as Workers from "./Workers.ts"
import * as HttpTool from "./HttpTool.ts"
import * as Spawn from "./Spawn.ts"
import * as Workflows from "./Workflows.ts"
import * as TasksBench from "./Tasks.ts"
import * as CockpitBench from "./Cockpit.ts"

/** Measured operations per level at BENCH_SCALE=1: raw publishes, and steps (two appends each). */
const PLAN = [
  { inFlight: 1, publishes: 6000, steps: 4000 },
  { inFlight: 16, publishes: 16000, steps: 8000 },
  { inFlight: 256, publishes: 32000, steps: 16000 }
] as const

const scaled = (n: number, scale: number) => Math.max(1, Math.round(n * scale))
/** Warm-up before each measured phase: a tenth of it, and at least one operation per worker. */
const warmup = (n: number, inFlight: number) => Math.max(inFlight, Math.round(n / 10))

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "lantern-bench-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const server = (storeDir: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => NatsServer.start({ storeDir }), catch: (e) => e }),
    (h) => Effect.promise(() => h.stop())
  )

/** The sections `BENCH_ONLY` may name (a comma list); every one runs when it is unset. */
export const SECTIONS = [
  "steps",
  "load",
  "router",
  "recovery",
  "restart",
  "workers",
  "runpath",
  "workflows",
  "httptool",
  "spawn",
  "forecast",
  "receipts",
  "projection",
  "ingest",
  "channels",
  "startup",
  "evals",
  "tasks",
  "cockpit"
] as const
export type Section = (typeof SECTIONS)[number]
/** Sections whose report compares against the raw publish and step figures of "steps", which then runs too. */
const NEEDS_STEPS: ReadonlyArray<Section> = ["load", "recovery", "workers"]

const selection = (only: string): ReadonlySet<Section> => {
  if (only.trim() === "") return new Set(SECTIONS)
  const names = only.split(",").map((s) => s.trim()).filter((s) => s !== "")
  const unknown = names.filter((n) => !(SECTIONS as ReadonlyArray<string>).includes(n))
  if (unknown.length > 0)
    throw new Error(`BENCH_ONLY names unknown sections ${unknown.join(", ")}; sections are ${SECTIONS.join(", ")}`)
  const chosen = new Set(names as ReadonlyArray<Section>)
  if (NEEDS_STEPS.some((s) => chosen.has(s))) chosen.add("steps")
  return chosen
}

/** Runs `section` when it is selected; undefined otherwise. */
const when = <A, E, R>(sections: ReadonlySet<Section>, section: Section, effect: Effect.Effect<A, E, R>) =>
  sections.has(section) ? effect : Effect.succeed(undefined)

const measure = (server: NatsServer.Handle, scale: number, sections: ReadonlySet<Section>) =>
  Effect.gen(function*() {
    const began = performance.now()
    const machineStart = Machine.yardstick()
    yield* Topology.apply
    const stream = yield* RawPublish.ensureStream
    const envelopeBytes = yield* Fixture.check
    const rawPayloadBytes = Math.round((envelopeBytes.startedBytes + envelopeBytes.completedBytes) / 2)
    const payload = RawPublish.payloadOf(rawPayloadBytes)

    const levels: Array<Report.Level> = []
    if (sections.has("steps")) {
      for (const plan of PLAN) {
        const publishes = scaled(plan.publishes, scale)
        const steps = scaled(plan.steps, scale)
        yield* progress(`${plan.inFlight} in flight: ${publishes} raw publishes, ${steps} steps`)
        yield* RawPublish.run(plan.inFlight, warmup(publishes, plan.inFlight), payload, `w${plan.inFlight}`)
        const raw = yield* RawPublish.run(plan.inFlight, publishes, payload, `m${plan.inFlight}`)
        yield* DurableStep.run(plan.inFlight, warmup(steps, plan.inFlight))
        const measured = yield* DurableStep.run(plan.inFlight, steps)
        levels.push({ inFlight: plan.inFlight, raw, steps: measured })
      }
    }
    const loads = yield* when(sections, "load", Load.run(scale))
    const router = yield* when(sections, "router", RouterBench.run(scale))
    const recovery = yield* when(sections, "recovery", Recovery.run(server.url, scale))
    const restart = yield* when(sections, "restart", Restart.run(scale))
    const workers = yield* when(sections, "workers", Workers.run(server, scale))
    const runPath = yield* when(sections, "runpath", RunPath.run(scale))
    const workflows = yield* when(sections, "workflows", Workflows.run(scale))
    const httptool = yield* when(sections, "httptool", HttpTool.run(scale))
    const spawn = yield* when(sections, "spawn", Spawn.run(scale))
    const forecast = yield* when(sections, "forecast", Forecast.run)
    const receipts = yield* when(sections, "receipts", ReceiptsBench.run(scale))
    const projection = yield* when(sections, "projection", ProjectionBench.run(scale))
    const ingest = yield* when(sections, "ingest", IngestBench.run(scale))
    const channels = yield* when(sections, "channels", ChannelsBench.run(scale))
    const startup = yield* when(sections, "startup", Startup.run(server.url, scale))
    const evals = yield* when(sections, "evals", EvalsBench.run(scale))
    const tasks = yield* when(sections, "tasks", TasksBench.run(scale))
    const cockpit = yield* when(sections, "cockpit", CockpitBench.run(scale))

    const machine = { startMs: machineStart, endMs: Machine.yardstick() }
    const cpuList = cpus()
    const env: Report.Environment = {
      natsServer: server.version,
      syncAlways: server.syncAlways,
      node: process.version,
      cpus: availableParallelism(),
      cpuModel: cpuList[0]?.model.trim() ?? "unknown",
      scale,
      stream: { storage: stream.storage, replicas: stream.replicas },
      rawPayloadBytes,
      envelopeBytes
    }
    const seconds = (performance.now() - began) / 1000
    const raw1 = levels[0]?.raw.medianMs ?? Number.NaN
    yield* Effect.sync(() => {
      const blocks = [
        levels.length > 0 ? Report.render(env, levels, seconds) : undefined,
        loads && Load.render(loads, raw1),
        router && RouterBench.render(router),
        recovery && Recovery.render(recovery, raw1),
        restart && Restart.render(restart),
        workers && Workers.render(workers, levels),
        runPath && RunPath.render(runPath),
        workflows && Workflows.render(workflows),
        httptool && HttpTool.render(httptool),
        spawn && Spawn.render(spawn),
        forecast && Forecast.render(forecast),
        receipts && ReceiptsBench.render(receipts),
        projection && ProjectionBench.render(projection),
        ingest && IngestBench.render(ingest),
        channels && ChannelsBench.render(channels),
        startup && Startup.render(startup),
        evals && EvalsBench.render(evals),
        tasks && TasksBench.render(tasks),
        cockpit && CockpitBench.render(cockpit)
      ].filter((s) => s !== undefined)
      console.log(Machine.render(machine))
      console.log(blocks.join("\n\n"))
      if (levels.length === 0) console.log(`\ntotal ${seconds.toFixed(1)} s`)
      const lines = [
        Machine.json(machine),
        levels.length > 0 ? Report.json(env, levels, seconds) : undefined,
        loads && Load.json(loads),
        router && RouterBench.json(router),
        recovery && Recovery.json(recovery),
        restart && Restart.json(restart),
        workers && Workers.json(workers),
        runPath && RunPath.json(runPath),
        workflows && Workflows.json(workflows),
        httptool && HttpTool.json(httptool),
        spawn && Spawn.json(spawn),
        forecast && Forecast.json(forecast),
        receipts && ReceiptsBench.json(receipts),
        projection && ProjectionBench.json(projection),
        ingest && IngestBench.json(ingest),
        channels && ChannelsBench.json(channels),
        startup && Startup.json(startup),
        evals && EvalsBench.json(evals),
        tasks && TasksBench.json(tasks),
        cockpit && CockpitBench.json(cockpit)
      ]
      for (const line of lines) if (line !== undefined) console.log(line)
    })
  })

const main = Effect.gen(function*() {
  const scale = yield* Config.Number("BENCH_SCALE").pipe(Config.withDefault(1))
  if (!(scale > 0)) return yield* Effect.die(new Error(`BENCH_SCALE must be a positive number, got ${scale}`))
  const sections = selection(yield* Config.String("BENCH_ONLY").pipe(Config.withDefault("")))
  const dir = yield* tempDir
  const handle = yield* server(join(dir, "js"))
  yield* progress(`nats-server ${handle.version} at ${handle.url}, store ${dir}`)
  const bus = Layer.merge(Journal.layer, Snapshots.layer({ every: 100 })).pipe(
    Layer.provideMerge(Nats.layerUrl(handle.url, "lantern-bench"))
  )
  yield* measure(handle, scale, sections).pipe(Effect.provide(bus))
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
