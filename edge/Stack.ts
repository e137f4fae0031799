// The whole stack as one layer: bus (embedded nats-server or NATS_URL), database (PGlite or DATABASE_URL),
// topology and migrations, actors, the run driver, projectors and the HTTP edge. `lantern dev` launches it.
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Console, Deferred, Effect, Layer, References } from "effect"
import { HttpRouter } from "effect/http"
import { Agents } from "../actors/agent/Agents.ts"
import { Audit } from "../actors/audit/Audit.ts"
import { Identities } from "../actors/identity/Identity.ts"
import { Ids } from "../actors/kernel/Ids.ts"
import * as Providers from "../actors/model/Providers.ts"
import { ModelProvider } from "../actors/model/ModelProvider.ts"
import { Budgets } from "../actors/budget/Budgets.ts"
import { ForecastBudget } from "../actors/forecast/Forecast.ts"
import { Driver, layerWorker } from "../actors/run/Driver.ts"
import { Runs } from "../actors/run/Runs.ts"
import { Receipts } from "../actors/receipts/Receipts.ts"
import { Secrets } from "../actors/secrets/Secrets.ts"
import { Visibility } from "../actors/agent/Visibility.ts"
import { Channels } from "../actors/channel/Channels.ts"
import * as Sessions from "../actors/channel/Sessions.ts"
import * as Ingest from "../actors/ingest/Ingest.ts"
import * as Watchdog from "../actors/run/Watchdog.ts"
import { Journal } from "../bus/Journal.ts"
import { Tokens } from "../bus/Tokens.ts"
import * as Started from "../bus/Started.ts"
import { Dispatch } from "../actors/run/Dispatch.ts"
import { Registry } from "../actors/workflow/Registry.ts"
import { Egress } from "../actors/tools/Egress.ts"
import { McpServers } from "../actors/tools/Mcp.ts"
import { Spawner } from "../actors/spawner/Spawner.ts"
import { Adapters } from "../actors/task/Adapters.ts"
import { Workers } from "../actors/task/Dispatch.ts"
import { Tasks } from "../actors/task/Tasks.ts"
import * as TaskWorker from "../actors/task/Worker.ts"
import * as QueueFlows from "../actors/queueflow/QueueFlows.ts"
import * as SensorIngest from "../actors/sensor/Ingest.ts"
import { Sensors } from "../actors/sensor/Sensors.ts"
import { Artifacts } from "../actors/task/Artifacts.ts"
import { Hosts } from "../bus/Hosts.ts"
import { Leases } from "../bus/Leases.ts"
import { Nats } from "../bus/Nats.ts"
import { Snapshots } from "../bus/Snapshots.ts"
import * as Topology from "../bus/Topology.ts"
import * as Migrations from "../projections/Migrations.ts"
import * as Projector from "../projections/Projector.ts"
import { Sql } from "../projections/Sql.ts"
import { Auth } from "./Auth.ts"
import * as Bootstrap from "./Bootstrap.ts"
import * as Api from "./Api.ts"
import * as A2aEndpoint from "./A2aEndpoint.ts"
import * as Fibers from "../actors/kernel/Fibers.ts"
import * as AccessLog from "./AccessLog.ts"
import { BadSetting } from "./cli/Client.ts"
import { a2aHandlers, PublicUrl } from "./A2aRoutes.ts"
import { Evals } from "../actors/eval/Evals.ts"
import { Marketplace } from "../actors/marketplace/Marketplace.ts"
import { evalHandlers } from "./EvalRoutes.ts"
import { experimentHandlers } from "./ExperimentRoutes.ts"
import { marketplaceHandlers } from "./MarketplaceRoutes.ts"
import { auditHandlers } from "./AuditRoutes.ts"
import { channelHandlers } from "./ChannelRoutes.ts"
import { ingestHandlers } from "./IngestRoutes.ts"
import { queueFlowHandlers } from "./QueueFlowRoutes.ts"
import { sensorHandlers } from "./SensorRoutes.ts"
import { artifactHandlers } from "./ArtifactRoutes.ts"
import { scheduleHandlers } from "./ScheduleRoutes.ts"
import * as ScheduleActor from "../actors/schedule/Schedules.ts"
import { budgetHandlers } from "./BudgetRoutes.ts"
import { deadLetterHandlers } from "./DeadLetterRoutes.ts"
import { forecastHandlers } from "./ForecastRoutes.ts"
import { egressHandlers } from "./EgressRoutes.ts"
import { workloadHandlers } from "./WorkloadRoutes.ts"
import { taskHandlers } from "./TaskRoutes.ts"
import * as Hooks from "./Hooks.ts"
import * as Webchat from "./Webchat.ts"
import * as McpEndpoint from "./McpEndpoint.ts"
import { mcpHandlers } from "./McpRoutes.ts"
import { identityHandlers } from "./IdentityRoutes.ts"
import { receiptHandlers } from "./ReceiptRoutes.ts"
import { agentHandlers, runHandlers } from "./Routes.ts"
import { secretHandlers } from "./SecretRoutes.ts"
import { streamHandlers } from "./StreamRoutes.ts"
import * as Cockpit from "./Cockpit.ts"
import * as Serve from "./Serve.ts"
import * as System from "./System.ts"
import { tenantHandlers } from "./TenantRoutes.ts"
import * as Telemetry from "./Telemetry.ts"

export interface Options {
  readonly port: number
  readonly host: string
  /** Serve the HTTP edge. */
  readonly edge: boolean
  /** Drive runs on this host (the edge's hosts also project events into the database). */
  readonly worker: boolean
  /** Print the banner with URL and token (dev). */
  readonly banner: boolean
  /** A file of code-first workflows this host registers and runs (ADR 0041), or null. */
  readonly workflows: string | null
}

/** Registers the host's workflows at start: their code goes on the bus, new runs start on it. */
const workflows = (file: string | null) =>
  file === null ? Layer.empty : Layer.effectDiscard(Effect.gen(function*() {
    const names = yield* (yield* Registry).register(file)
    yield* Effect.logInfo(`workflows registered from ${file}: ${names.join(", ")}`)
  }))

/**
 * The bus with its streams and buckets applied, journal, ids, leases, the model provider, the audit journal and
 * the actors' command side: what every host needs.
 */
const core = Layer.mergeAll(
  Runs.layer,
  Receipts.layer,
  Visibility.layer,
  Secrets.layer,
  // channels resolve their webhooks' and replies' secrets through the same Secrets (ADR 0050)
  Channels.layer.pipe(Layer.provide(Secrets.layer)),
  Sessions.Sessions.layer,
  // events published to NATS by anyone (ADR 0051)
  Ingest.Ingest.layer,
  // MCP clients resolve their headers' secrets: the one Secrets of this stack (layers are shared by reference)
  McpServers.layer.pipe(Layer.provide(Secrets.layer)),
  // the spawner vends secrets to sandboxed workloads (ADR 0046)
  Spawner.layer.pipe(Layer.provide(Secrets.layer), Layer.provide(Receipts.layer)),
  // the operator queue (ADR 0054): every host's task index, and the TaskQueue port answered from it
  Tasks.layerQueue.pipe(Layer.provideMerge(Tasks.layer)),
  Workers.layer,
  // sensor events and queue workflows (ADR 0056), on the same TaskQueue (layers are shared by reference)
  Sensors.layer.pipe(
    Layer.provideMerge(QueueFlows.QueueFlows.layer),
    Layer.provide(Tasks.layerQueue.pipe(Layer.provide(Tasks.layer)))
  ),
  // files tasks produced, in the JetStream Object Store (ADR 0057)
  Artifacts.layer
).pipe(
  Layer.provideMerge(Layer.mergeAll(Agents.layer, Budgets.layer, Audit.layer, Identities.layer)),
  Layer.provideMerge(
    Layer.mergeAll(
      Journal.layer,
      // live model tokens on core NATS (ADR 0061)
      Tokens.layer,
      Snapshots.layerConfig,
      Ids.layer,
      Providers.layerConfig,
      Leases.layer.pipe(Layer.provideMerge(Hosts.layer)),
      Dispatch.layer,
      Registry.layer,
      Egress.layer
    )
  ),
  Layer.provideMerge(Layer.effectDiscard(Topology.apply)),
  Layer.provideMerge(Nats.layerConfig("lantern"))
)

/** The database with its migrations applied: what the edge and the projectors need. */
const database = Layer.effectDiscard(Migrations.migrate).pipe(Layer.provideMerge(Sql.layerConfig))

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
      `  cockpit:  ${url}/ (sign in with the token below, or "Use this machine's dev token")`,
      `  bus:      ${
        embedded === null
          ? natsUrl
          : `embedded nats-server ${embedded.version} at ${natsUrl}${
            embedded.syncAlways
              ? " (durable: every write synced to disk)"
              : " (LANTERN_NATS_SYNC=interval: writes synced every 2 minutes, see README, Durability)"
          }`
      }`,
      `  database: ${sql.dialect === "pglite" ? "embedded PGlite" : "Postgres (DATABASE_URL)"}`,
      `  models:   ${
        provider.name === "offline"
          ? "offline deterministic provider (no model key set; answers are labelled [offline])"
          : provider.name
      }`,
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
  // every host that drives runs also watches the leases, so a dead host's runs and due timers are picked up
  const drivers = options.worker
    ? Layer.mergeAll(
      layerWorker.pipe(Layer.provide(Driver.layer)),
      Watchdog.layer,
      Sessions.layerWorker,
      Ingest.layerWorker,
      // the queue's workers (LANTERN_TASK_WORKERS fibers) and the sweep that reclaims a dead host's attempts
      TaskWorker.layer.pipe(Layer.provide(Adapters.layer)),
      // queue workflows advance on task changes; sensor events published on the ingest source `sensors` (ADR 0056)
      QueueFlows.layerWorker,
      SensorIngest.layerWorker,
      // every worker host ticks the schedules and keeps loop agents' schedules in step with their specs (ADR 0055)
      ScheduleActor.layerWorker.pipe(Layer.provide(ScheduleActor.Schedules.layer))
    )
    : Layer.empty
  // the host's workflows are registered before it drives or serves anything: a run of them is never refused as
  // unknown by a host that is ready
  const registered = workflows(options.worker ? options.workflows : null)
  if (!options.edge) {
    return drivers.pipe(Layer.provide(registered), Layer.provide(core), Layer.provide(Telemetry.layerConfig))
  }
  const http = HttpRouter.serve(
    Layer.mergeAll(
      // every endpoint of the declaration, each by its handler: a missing handler does not type-check
      Serve.layer(Api.every, {
        ...agentHandlers,
        ...runHandlers,
        ...budgetHandlers,
        ...forecastHandlers,
        ...receiptHandlers,
        ...identityHandlers,
        ...tenantHandlers,
        ...auditHandlers,
        ...secretHandlers,
        ...deadLetterHandlers,
        ...egressHandlers,
        ...mcpHandlers,
        ...a2aHandlers,
        ...workloadHandlers,
        ...evalHandlers,
        ...experimentHandlers,
        ...marketplaceHandlers,
        ...channelHandlers,
        ...ingestHandlers,
        ...scheduleHandlers,
        ...streamHandlers,
        ...taskHandlers,
        ...sensorHandlers,
        ...queueFlowHandlers,
        ...artifactHandlers
      }),
      Cockpit.layer({ devToken: options.banner, hotReload: options.banner }),
      // Lantern as an MCP server (ADR 0044): its own protocol, so not in the declared API
      McpEndpoint.routes,
      // A2A's JSON-RPC endpoint (ADR 0045): its own protocol too
      A2aEndpoint.routes,
      // platforms' webhooks (ADR 0050): signed by the platform, not declared API
      Hooks.routes,
      // the webchat widget and its visitors' messages (ADR 0053)
      Webchat.routes,
      System.routes
    ),
    {
      disableListenLog: true,
      // one spelling per route: `/V1/AGENTS`, `/v1/agents/` and `/v1//agents` are 404, not aliases
      routerConfig: { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false },
      // the access log at debug (ADR 0080) in place of effect's, which writes every response at info
      disableLogger: true,
      middleware: (app) => Fibers.deep(AccessLog.accessLog(System.unroutable(app)))
    }
  ).pipe(
    Layer.provide(Auth.layer),
    Layer.provide(ForecastBudget.layer),
    Layer.provide(
      PublicUrl.layerConfig(`http://${options.host === "0.0.0.0" ? "127.0.0.1" : options.host}:${options.port}`)
    ),
    Layer.provide(NodeHttpServer.layer(() => createServer(), { port: options.port, host: options.host }))
  )
  // projectors run beside the edge: one database, read in stream order from its own checkpoint (ADR 0010)
  // the owner token is stored before the edge listens, so /readyz never answers before a token works
  const front = Layer.mergeAll(http.pipe(Layer.provide(banner(options))), Projector.layer, drivers)
  return front.pipe(
    Layer.provide(registered),
    // eval runs (ADR 0047) are driven by the edge's hosts, which take up unfinished ones at start; built with the
    // core, before the edge listens, so no request waits on its bucket
    Layer.provide(
      Layer.merge(
        Layer.mergeAll(Evals.layer, Marketplace.layer, ScheduleActor.Schedules.layer).pipe(Layer.provideMerge(core)),
        database
      )
    ),
    Layer.provide(Telemetry.layerConfig)
  )
}

/** LANTERN_LOG_LEVEL's values and the levels they let through (ADR 0080). */
const LOG_LEVELS = { debug: "Debug", info: "Info", warning: "Warn", error: "Error" } as const

/** The least severe level a long-running command logs: LANTERN_LOG_LEVEL, `info` by default; a bad one exits 2. */
export const logLevel = Config.Literals(Object.keys(LOG_LEVELS) as Array<keyof typeof LOG_LEVELS>, "LANTERN_LOG_LEVEL")
  .pipe(
    Config.withDefault("info" as const),
    Effect.map((name) => LOG_LEVELS[name]),
    Effect.mapError(() =>
      new BadSetting({
        setting: "LANTERN_LOG_LEVEL",
        reason: `expected one of ${Object.keys(LOG_LEVELS).join(", ")}, got '${process.env["LANTERN_LOG_LEVEL"]}'`
      })
    )
  )

/** Runs the stack until interrupted; once every layer is built, the host has started (bus/Started.ts). */
export const launch = (options: Options) =>
  Effect.flatMap(logLevel, (level) =>
    Effect.scoped(Effect.gen(function*() {
      const started = yield* Started.make
      yield* Layer.build(layer(options).pipe(Layer.provide(Layer.succeed(Started.Started, started))))
      yield* Deferred.succeed(started.latch, undefined)
      return yield* Effect.never
    })).pipe(Effect.provideService(References.MinimumLogLevel, level)))
