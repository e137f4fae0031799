// The `lantern` command: `dev` boots the embedded stack; `serve` and `worker` run the edge and the run
// drivers against configured NATS/Postgres; `agents`, `runs` and `doctor` talk to a running edge over HTTP.
import { existsSync } from "node:fs"
import { createServer } from "node:net"
import { Config, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { subcommands } from "./cli/Commands.ts"
import * as PgliteThread from "../projections/PgliteThread.ts"
import { BadSetting } from "./cli/Client.ts"
import { runCli } from "./cli/Run.ts"
import type * as StackModule from "./Stack.ts"

/**
 * The stack is loaded only by the commands that run it: `lantern runs list` and `--help` then start without
 * the actors, PGlite, libsodium and the tokenizer (the bundle splits it into its own chunk, ADR 0027).
 */
const launch = (options: StackModule.Options) =>
  Effect.flatMap(Effect.promise(() => import("./Stack.ts")), (Stack) => Stack.launch(options))

const port = Flag.Int("port").pipe(
  Flag.withDescription("HTTP port of the edge (default LANTERN_PORT or 8080)"),
  Flag.optional
)
const workflowsFlag = Flag.String("workflows").pipe(
  Flag.withDescription("A file (TypeScript or JavaScript) of code-first workflows this host registers and runs"),
  Flag.optional
)

/** The workflows file: --workflows, else LANTERN_WORKFLOWS; a file that does not exist is a bad setting. */
const workflowsOf = (flag: import("effect").Option.Option<string>) =>
  Effect.gen(function*() {
    const env = yield* Config.option(Config.NonEmptyString("LANTERN_WORKFLOWS"))
    const file = flag._tag === "Some" ? flag.value : env._tag === "Some" ? env.value : null
    const setting = flag._tag === "Some" ? "--workflows" : "LANTERN_WORKFLOWS"
    if (file !== null && !existsSync(file)) {
      return yield* new BadSetting({ setting, reason: `no such file: ${file}` })
    }
    return { file, setting }
  })

/** A workflows file that cannot be bundled or loaded, or defines no workflow, is a bad setting (exit 2). */
const workflowErrors = (setting: string) =>
  Effect.mapError((e: unknown) =>
    typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "WorkflowCodeError"
      ? new BadSetting({ setting, reason: (e as { message: string }).message })
      : e
  )

const host = Flag.String("host").pipe(
  Flag.withDescription("Interface to listen on (default LANTERN_HOST or 127.0.0.1)"),
  Flag.optional
)

/** Binds host:port once and lets it go: undefined when the edge can listen there, else the errno code. */
const tryListen = (port: number, host: string) =>
  Effect.promise(() =>
    new Promise<string | undefined>((resolve) => {
      const probe = createServer()
      probe.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
      probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(undefined)))
    })
  )

/**
 * The edge's address, checked before anything starts: a port in use fails here (exit 2, a setting to change)
 * instead of after the banner has printed a fresh token. The HTTP server binds for real later; a port taken
 * in between still fails the start, only later.
 */
const listen = (
  flags: { port: import("effect").Option.Option<number>; host: import("effect").Option.Option<string> }
) =>
  Effect.gen(function*() {
    const envPort = yield* Config.Port("LANTERN_PORT").pipe(Config.withDefault(8080))
    const envHost = yield* Config.String("LANTERN_HOST").pipe(Config.withDefault("127.0.0.1"))
    const port = flags.port._tag === "Some" ? flags.port.value : envPort
    const host = flags.host._tag === "Some" ? flags.host.value : envHost
    const portSetting = flags.port._tag === "Some" ? "--port" : "LANTERN_PORT"
    const hostSetting = flags.host._tag === "Some" ? "--host" : "LANTERN_HOST"
    const problem = yield* tryListen(port, host)
    if (problem === "EADDRINUSE") {
      return yield* new BadSetting({
        setting: portSetting,
        reason: `port ${port} on ${host} is in use: set LANTERN_PORT or --port to a free port`
      })
    }
    if (problem === "EACCES") {
      return yield* new BadSetting({
        setting: portSetting,
        reason: `not allowed to listen on port ${port} on ${host}: set LANTERN_PORT or --port to a port above 1023`
      })
    }
    if (problem !== undefined) {
      return yield* new BadSetting({
        setting: hostSetting,
        reason:
          `cannot listen on ${host}:${port} (${problem}): set LANTERN_HOST or --host to an address of this machine`
      })
    }
    return { port, host, portSetting }
  })

const isServeError = (e: unknown): e is { readonly _tag: "ServeError"; readonly cause: unknown } =>
  typeof e === "object" && e !== null && (e as { readonly _tag?: unknown })._tag === "ServeError"

/** The edge on a checked address; a bind that still fails (the port taken since the check) is named too. */
const launchEdge = (
  l: { port: number; host: string; portSetting: string },
  banner: boolean,
  wf: { readonly file: string | null; readonly setting: string }
) =>
  // the embedded database opens in its thread while this one loads the stack (ADR 0086): begun here unless the
  // launcher began it already
  Effect.andThen(
    Effect.sync(() => void PgliteThread.prestart()),
    launch({ port: l.port, host: l.host, edge: true, worker: true, banner, workflows: wf.file })
  ).pipe(
    workflowErrors(wf.setting),
    Effect.mapError((e) => {
      if (!isServeError(e)) return e
      const why = e.cause instanceof Error ? e.cause.message : String(e.cause)
      return new BadSetting({
        setting: l.portSetting,
        reason: `cannot listen on ${l.host}:${l.port} (${why}): set LANTERN_PORT or --port to a free port`
      })
    })
  )

const dev = Command.make(
  "dev",
  { port, host, workflows: workflowsFlag },
  (flags) =>
    Effect.gen(function*() {
      const wf = yield* workflowsOf(flags.workflows)
      return yield* launchEdge(yield* listen(flags), true, wf)
    })
)
  .pipe(
    Command.withDescription(
      "Start the whole stack on embedded defaults: nats-server child process, PGlite, offline models, edge on :8080"
    )
  )

const serve = Command.make(
  "serve",
  { port, host, workflows: workflowsFlag },
  (flags) =>
    Effect.gen(function*() {
      const wf = yield* workflowsOf(flags.workflows)
      return yield* launchEdge(yield* listen(flags), false, wf)
    })
).pipe(
  Command.withDescription("Run the edge, run drivers and projectors (NATS_URL / DATABASE_URL, or embedded defaults)")
)

const worker = Command.make("worker", { workflows: workflowsFlag }, (flags) =>
  Effect.gen(function*() {
    const wf = yield* workflowsOf(flags.workflows)
    // a worker joins an existing bus; an embedded one of its own would drive nothing
    const url = yield* Config.option(Config.NonEmptyString("NATS_URL"))
    if (url._tag === "None") {
      return yield* new BadSetting({
        setting: "NATS_URL",
        reason: "a worker joins an existing bus: set NATS_URL to the NATS servers of your `lantern serve` hosts"
      })
    }
    return yield* launch({ port: 0, host: "127.0.0.1", edge: false, worker: true, banner: false, workflows: wf.file })
      .pipe(workflowErrors(wf.setting))
  })).pipe(
    Command.withDescription("Drive runs without serving HTTP, against NATS_URL (scale out by starting more)")
  )

const root = Command.make("lantern").pipe(
  Command.withDescription("Lantern: the production runtime for AI agents"),
  Command.withSubcommands([dev, serve, worker, ...subcommands])
)

runCli(root, process.argv)
