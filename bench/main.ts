// `npm run bench`: the cost of a durable step against the physical limit (DESIGN §6). Starts its own
// nats-server, measures raw JetStream publish-with-ack and Lantern's journal step at 1, 16 and 256 in flight,
// then actor load time by journal length, with and without snapshots, the time a crashed worker's runs stand
// still (Recovery.ts), what the model router adds to a call (Router.ts), run throughput with 1, 2 and 4
// `lantern worker` processes (Workers.ts), how well the cost forecast predicts recorded runs (Forecast.ts),
// what signing and verifying receipts costs (Receipts.ts), how fast projections keep up (Projection.ts), and
// how long `lantern` takes to start, bundled and under tsx (Startup.ts).
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
import * as Fixture from "./Fixture.ts"
import * as Forecast from "./Forecast.ts"
import * as Load from "./Load.ts"
import * as ProjectionBench from "./Projection.ts"
import * as RawPublish from "./RawPublish.ts"
import * as ReceiptsBench from "./Receipts.ts"
import * as Recovery from "./Recovery.ts"
import * as RouterBench from "./Router.ts"
import * as Report from "./Report.ts"
import * as Startup from "./Startup.ts"
import * as Workers from "./Workers.ts"

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

const measure = (server: NatsServer.Handle, scale: number) =>
  Effect.gen(function*() {
    const began = performance.now()
    yield* Topology.apply
    const stream = yield* RawPublish.ensureStream
    const envelopeBytes = yield* Fixture.check
    const rawPayloadBytes = Math.round((envelopeBytes.startedBytes + envelopeBytes.completedBytes) / 2)
    const payload = RawPublish.payloadOf(rawPayloadBytes)

    const levels: Array<Report.Level> = []
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
    const loads = yield* Load.run(scale)
    const router = yield* RouterBench.run(scale)
    const recovery = yield* Recovery.run(server.url, scale)
    const workers = yield* Workers.run(server, scale)
    const forecast = yield* Forecast.run
    const receipts = yield* ReceiptsBench.run(scale)
    const projection = yield* ProjectionBench.run(scale)
    const startup = yield* Startup.run(server.url, scale)

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
    yield* Effect.sync(() => {
      console.log(Report.render(env, levels, seconds))
      console.log(`\n${Load.render(loads, levels[0]!.raw.medianMs)}`)
      console.log(`\n${RouterBench.render(router)}`)
      console.log(`\n${Recovery.render(recovery, levels[0]!.raw.medianMs)}`)
      console.log(`\n${Workers.render(workers, levels)}`)
      console.log(`\n${Forecast.render(forecast)}`)
      console.log(`\n${ReceiptsBench.render(receipts)}`)
      console.log(`\n${ProjectionBench.render(projection)}`)
      console.log(`\n${Startup.render(startup)}`)
      console.log(Report.json(env, levels, seconds))
      console.log(Load.json(loads))
      console.log(RouterBench.json(router))
      console.log(Recovery.json(recovery))
      console.log(Workers.json(workers))
      console.log(Forecast.json(forecast))
      console.log(ReceiptsBench.json(receipts))
      console.log(ProjectionBench.json(projection))
      console.log(Startup.json(startup))
    })
  })

const main = Effect.gen(function*() {
  const scale = yield* Config.Number("BENCH_SCALE").pipe(Config.withDefault(1))
  if (!(scale > 0)) return yield* Effect.die(new Error(`BENCH_SCALE must be a positive number, got ${scale}`))
  const dir = yield* tempDir
  const handle = yield* server(join(dir, "js"))
  yield* progress(`nats-server ${handle.version} at ${handle.url}, store ${dir}`)
  const bus = Layer.merge(Journal.layer, Snapshots.layer({ every: 100 })).pipe(
    Layer.provideMerge(Nats.layerUrl(handle.url, "lantern-bench"))
  )
  yield* measure(handle, scale).pipe(Effect.provide(bus))
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
