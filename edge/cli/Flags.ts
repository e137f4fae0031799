// What the resource commands (tasks, sensors, schedules, channels, workloads) share: a usage error naming the option
// (exit 2), a schema refusal as "field: message" lines, a flag whose value is JSON, and a YAML-or-JSON file decoded
// strictly with an API schema before anything is sent.
import { Effect, FileSystem, Schema, SchemaIssue } from "effect"
import { CliError, Flag } from "effect/cli"
import { parse as parseYaml } from "yaml"
import { Issues } from "../../schema/index.ts"

/** A usage error naming the option or argument: the CLI exits 2 and sends nothing. */
export const invalid = (what: string, reason: string) => new CliError.ValidationError({ message: `${what}: ${reason}` })

/** The first few fields a schema refused, as `field: message` (an excess property reads "unknown field"). */
export const issueText = (issue: SchemaIssue.Issue) =>
  Issues.toFieldIssues(issue).slice(0, 4).map((i) =>
    `${i.field}: ${i.message === "Expected no excess property" ? "unknown field" : i.message}`
  ).join("; ")

/** An optional flag whose value is JSON, parsed while the command line is. */
export const jsonFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(description),
    Flag.withMetavar("JSON"),
    Flag.mapEffect((text) => {
      try {
        return Effect.succeed(JSON.parse(text) as unknown)
      } catch (e) {
        return Effect.fail(invalid(`--${name}`, `not valid JSON (${e instanceof Error ? e.message : String(e)})`))
      }
    }),
    Flag.optional
  )

/**
 * Decodes `value` with `schema` as the API would (unknown fields refused), or a usage error for `what` (its reason
 * after `context`, e.g. "task.yaml: not a task: ", when given).
 */
export const decodeStrict = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  what: string,
  value: unknown,
  context = ""
) =>
  Schema.decodeUnknownEffect(schema)(value, { onExcessProperty: "error", errors: "all" }).pipe(
    Effect.mapError((e) => invalid(what, `${context}${issueText(e.issue)}`))
  )

/** Reads a YAML or JSON file (JSON is YAML) for `what` (the option naming it): its value, not yet decoded. */
export const readYamlFile = (what: string, path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) =>
        invalid(what, e.reason._tag === "NotFound" ? `no such file: ${path}` : `cannot read ${path}: ${e.message}`)
      )
    )
    try {
      return parseYaml(text) as unknown
    } catch (e) {
      return yield* invalid(
        what,
        `${path}: not YAML or JSON (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`
      )
    }
  })
