// A `lantern` root carrying only the CLI's own commands, for tests that run the CLI as a child process
// before (and independently of) the full entry point in edge/main.ts.
import { Command } from "effect/cli"
import { subcommands } from "./Commands.ts"
import { runCli } from "./Run.ts"

runCli(Command.make("lantern").pipe(Command.withSubcommands(subcommands)), process.argv)
