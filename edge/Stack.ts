// The whole stack as one layer: bus (embedded nats-server or NATS_URL), database (PGlite or DATABASE_URL),
// topology and migrations, actors, the run driver, projectors and the HTTP edge. `lantern dev` launches it.
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { Agents } from "../actors/agent/Agents.ts"
import { Ids } from "../actors/kernel/Ids.ts"
import * as Providers from "../actors/model/Providers.ts"
import { ModelProvider } from "../actors/model/ModelProvider.ts"
import { Driver, layerWorker } from "../actors/run/Driver.ts"
import { Runs } from "../actors/run/Runs.ts"
import { Journal } from "../bus/Journal.ts"
import { Nats } from "../bus/Nats.ts"
import * as Topology from "../bus/Topology.ts"
import * as Migrations from "../projections/Migrations.ts"
import * as Projector from "../projections/Projector.ts"
import { Sql } from "../projections/Sql.ts"
import { Auth } from "./Auth.ts"
import * as Bootstrap from "./Bootstrap.ts"
import { agentRoutes, runRoutes } from "./Routes.ts"
import * as System from "./System.ts"
import * as Telemetry from "./Telemetry.ts"

export interface Options {
  readonly port: number
  readonly host: string
  /** Serve the HTTP edge. */
  readonly edge: boolean
  /** Drive runs and project events on this host. */
  readonly worker: boolean
  /** Print the banner with URL and token (dev). */
  readonly banner: boolean
}

const infrastructure = Layer.mergeAll(Nats.layerConfig("lantern"), Sql.layerConfig)

/** Streams, buckets and tables exist before any actor starts. */
const setup = Layer.effectDiscard(Effect.andThen(Topology.apply, Migrations.migrate))

const core = Layer.mergeAll(Journal.layer, Ids.layer, Providers.layerConfig)

const actors = Layer.mergeAll(Agents.layer, Runs.layer, Driver.layer).pipe(Layer.provideMerge(Agents.layer))

const banner = (options: Options) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const url = `http://${options.host === "0.0.0.0" ? "127.0.0.1" : options.host}:${options.port}`
    const credentials = yield* Bootstrap.ensureOwner(url)
    if (!options.banner) return
    const { url: natsUrl, embedded } = yield* Nats
    const sql = yield* Sql
    const provider = yield* ModelProvider
    yield* Console.log([
      "",
      `  Lantern is running at ${url}`,
      `  bus:      ${embedded === null ? natsUrl : `embedded nats-server ${embedded.version} at ${natsUrl}${embedded.syncAlways ? " (sync every write)" : ""}`}`,
      `  database: ${sql.dialect === "pglite" ? "embedded PGlite" : "Postgres (DATABASE_URL)"}`,
      `  models:   ${provider.name === "offline" ? "offline deterministic provider (no model key set; answers are labelled [offline])" : provider.name}`,
      `  tenant:   ${credentials.tenant}`,
      `  token:    ${credentials.generated ? credentials.token : `(in ${credentials.file})`}`,
      `  credentials file: ${credentials.file}`,
      "",
      `  export LANTERN_URL=${url} LANTERN_API_TOKEN=$(grep LANTERN_API_TOKEN ${credentials.file} | cut -d= -f2)`,
      "  Ctrl-C stops everything.",
      ""
    ].join("\n"))
  }))

export const layer = (options: Options) => {
  const base = Layer.mergeAll(core, setup).pipe(Layer.provideMerge(infrastructure))
  const services = actors.pipe(Layer.provideMerge(base))
  const http = HttpRouter.serve(Layer.mergeAll(agentRoutes, runRoutes, System.routes), {
    disableListenLog: true,
    middleware: System.unroutable
  }).pipe(
    Layer.provide(Auth.layer),
    Layer.provide(NodeHttpServer.layer(() => createServer(), { port: options.port, host: options.host }))
  )
  const background = options.worker ? Layer.mergeAll(layerWorker, Projector.layer) : Layer.empty
  const front = options.edge ? Layer.mergeAll(http, banner(options)) : Layer.empty
  return Layer.mergeAll(background, front).pipe(Layer.provide(services), Layer.provide(Telemetry.layerConfig))
}

export const launch = (options: Options) => Layer.launch(layer(options))
