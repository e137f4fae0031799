// Runs the `lantern` command line with the same contract for every command: usage errors on one line naming
// the flag, API failures as `error: <code>: <message>`, and exit codes 0 (ok), 1 (failed), 2 (bad input).
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Option, Runtime } from "effect"
import { CliError, CliOutput, Command } from "effect/cli"
import * as Client from "./Client.ts"
import * as Format from "./Format.ts"

export const EXIT_OK = 0
/** The API answered with an error, could not be reached, or a followed run did not succeed. */
export const EXIT_FAILURE = 1
/** Bad command-line input: nothing was sent. */
export const EXIT_USAGE = 2
export const EXIT_INTERRUPTED = 130

const VERSION = "0.1.0"

const flagOrArgument = (name: string, kind: "flag" | "argument") => (kind === "flag" ? `--${name}` : name.toUpperCase())

/** One line for each of effect/cli's parse errors: `--limit: invalid value 'x': expected an integer`. */
export const usageLine = (e: CliError.NonShowHelpErrors): string => {
  switch (e._tag) {
    case "UnrecognizedOption": {
      const where = e.command === undefined ? "" : ` for '${e.command.join(" ")}'`
      const hint = e.suggestions.length > 0 ? ` (did you mean ${e.suggestions.join(" or ")}?)` : ""
      return `${e.option}: unknown flag${where}${hint}`
    }
    case "MissingOption":
      return `--${e.option}: required flag is missing`
    case "MissingArgument":
      return `${e.argument.toUpperCase()}: required argument is missing`
    case "InvalidValue": {
      const expected = e.expected.replace(/^Schema validation failed: /, "").replace(/^Expected:? */, "").replace(
        /\s*\n\s*/g,
        " "
      )
      // a flag followed by a value that begins with '-' (a base64url key, a negative number) reads that value as
      // flags, and the flag as given none: the form that always works is named
      return e.value === ""
        ? `${flagOrArgument(e.option, e.kind)}: a value is required (expected ${expected})${
          e.kind === "flag" ? `; a value that begins with '-' is written --${e.option}=VALUE` : ""
        }`
        : `${flagOrArgument(e.option, e.kind)}: invalid value '${e.value}' (expected ${expected})`
    }
    case "UnknownSubcommand": {
      const hint = e.suggestions.length > 0 ? ` (did you mean ${e.suggestions.join(" or ")}?)` : ""
      return `unknown command '${e.subcommand}'${e.parent === undefined ? "" : ` for '${e.parent.join(" ")}'`}${hint}`
    }
    case "UnexpectedArgument":
    case "DuplicateOption":
    case "ValidationError":
    case "UserError":
      return e.message.replace(/\s*\n\s*/g, " ")
  }
}

/** Parse errors as `error: …` lines on stderr instead of effect/cli's full help page; help itself is kept. */
export const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.error(
        [...event.errors.map((e) => `error: ${usageLine(e)}`), `run '${event.commandPath.join(" ")} --help' for usage`]
          .join("\n")
      )
      : CliOutput.defaultPresenter.present(event)
}

const isClientFailure = (e: unknown): e is Format.Failure =>
  e instanceof Client.ApiError || e instanceof Client.Unreachable || e instanceof Client.BadResponse ||
  e instanceof Client.BadSetting

/** Prints what a failure needs (unless it was shown already) and gives the exit code. */
const report = (error: unknown): Effect.Effect<number> => {
  if (CliError.isCliError(error)) {
    // ShowHelp was presented by the presenter; without errors it is plain help (`lantern agents`).
    if (error._tag === "ShowHelp") return Effect.succeed(error.errors.length > 0 ? EXIT_USAGE : EXIT_OK)
    return (Runtime.getErrorReported(error) ? Console.error(`error: ${usageLine(error)}`) : Effect.void).pipe(
      Effect.as(EXIT_USAGE)
    )
  }
  if (isClientFailure(error)) {
    return Console.error(Format.failure(error)).pipe(
      Effect.as(error._tag === "BadSetting" ? EXIT_USAGE : EXIT_FAILURE)
    )
  }
  const shown = Runtime.getErrorReported(error)
    ? Console.error(`error: ${error instanceof Error ? error.message : String(error)}`)
    : Effect.void
  return shown.pipe(Effect.as(Runtime.getErrorExitCode(error)))
}

/** The command line as an Effect that never fails: it prints whatever went wrong and yields the exit code. */
export const program = <const Name extends string, Input, ContextInput, E, R extends Command.Environment>(
  root: Command.Command<Name, Input, ContextInput, E, R>,
  args: ReadonlyArray<string>
): Effect.Effect<number, never, Command.Environment> =>
  Command.runWith(root, { version: VERSION })(args).pipe(
    Effect.as(EXIT_OK),
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.succeed(EXIT_INTERRUPTED)
      return Option.match(Cause.findErrorOption(cause), {
        onSome: report,
        onNone: () => Console.error(`error: unexpected failure\n${Cause.pretty(cause)}`).pipe(Effect.as(EXIT_FAILURE))
      })
    }),
    Effect.provide(CliOutput.layerPresenter(presenter))
  )

/**
 * Runs `root` on `argv` (`process.argv`: the first two entries are node and the script) and sets
 * `process.exitCode`: 0 ok, 1 a failure the API reported or a followed run that did not succeed, 2 bad
 * command-line input, 130 interrupted (Ctrl-C interrupts the command, so its resources are released).
 */
export const runCli = <const Name extends string, Input, ContextInput, E, R extends Command.Environment>(
  root: Command.Command<Name, Input, ContextInput, E, R>,
  argv: ReadonlyArray<string>
): void => {
  let code = EXIT_OK
  NodeRuntime.runMain(
    program(root, argv.slice(2)).pipe(
      Effect.tap((c) => Effect.sync(() => (code = c))),
      Effect.provide(NodeServices.layer)
    ),
    {
      disableErrorReporting: true,
      teardown: (exit, onExit) => {
        const final = Exit.isSuccess(exit)
          ? code
          : Cause.hasInterruptsOnly(exit.cause)
          ? EXIT_INTERRUPTED
          : EXIT_FAILURE
        process.exitCode = final
        onExit(final)
      }
    }
  )
}
