// The `lantern` command: `dev` boots the embedded stack; `serve` and `worker` run the edge and the run
// drivers against configured NATS/Postgres; `agents`, `runs` and `doctor` talk to a running edge over HTTP.
import { Config, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { subcommands } from "./cli/Commands.ts"
import { BadSetting } from "./cli/Client.ts"
import { runCli } from "./cli/Run.ts"
import * as Stack from "./Stack.ts"

const port = Flag.Int("port").pipe(
  Flag.withDescription("HTTP port of the edge (default LANTERN_PORT or 8080)"),
  Flag.optional
)
const host = Flag.String("host").pipe(
  Flag.withDescription("Interface to listen on (default LANTERN_HOST or 127.0.0.1)"),
  Flag.optional
)

const listen = (flags: { port: import("effect").Option.Option<number>; host: import("effect").Option.Option<string> }) =>
  Effect.gen(function*() {
    const envPort = yield* Config.Port("LANTERN_PORT").pipe(Config.withDefault(8080))
    const envHost = yield* Config.String("LANTERN_HOST").pipe(Config.withDefault("127.0.0.1"))
    return {
      port: flags.port._tag === "Some" ? flags.port.value : envPort,
      host: flags.host._tag === "Some" ? flags.host.value : envHost
    }
  })

const dev = Command.make("dev", { port, host }, (flags) =>
  Effect.flatMap(listen(flags), (l) => Stack.launch({ ...l, edge: true, worker: true, banner: true }))).pipe(
    Command.withDescription("Start the whole stack on embedded defaults: nats-server child process, PGlite, offline models, edge on :8080")
  )

const serve = Command.make("serve", { port, host }, (flags) =>
  Effect.flatMap(listen(flags), (l) => Stack.launch({ ...l, edge: true, worker: true, banner: false }))).pipe(
    Command.withDescription("Run the edge, run drivers and projectors (NATS_URL / DATABASE_URL, or embedded defaults)")
  )

const worker = Command.make("worker", {}, () =>
  Effect.gen(function*() {
    // a worker joins an existing bus; an embedded one of its own would drive nothing
    const url = yield* Config.option(Config.NonEmptyString("NATS_URL"))
    if (url._tag === "None") {
      return yield* new BadSetting({ setting: "NATS_URL", reason: "a worker joins an existing bus: set NATS_URL to the NATS servers of your `lantern serve` hosts" })
    }
    return yield* Stack.launch({ port: 0, host: "127.0.0.1", edge: false, worker: true, banner: false })
  })).pipe(
    Command.withDescription("Drive runs without serving HTTP, against NATS_URL (scale out by starting more)")
  )

const root = Command.make("lantern").pipe(
  Command.withDescription("Lantern: the production runtime for AI agents"),
  Command.withSubcommands([dev, serve, worker, ...subcommands])
)

runCli(root, process.argv)
