// The CLI's flags and arguments that carry API values, decoded with the API's schemas while the command line
// is parsed: bad input fails as a CliError naming the flag, before any HTTP call is made.
import { Clock, Effect, FileSystem, Option, Schema, SchemaIssue } from "effect"
import { Argument, CliError, Flag } from "effect/cli"
import { AUDIT_ACTIONS, Since } from "../../schema/Audit.ts"
import { AgentSpec, Api, Ids, Issues, Text } from "../../schema/index.ts"
import * as Scopes from "../Scopes.ts"

/**
 * A usage error naming the flag (`--spec`) or argument (`NAME`) and the reason, on one line. A ValidationError
 * rather than an InvalidValue, whose message would repeat the whole value (a spec can be long).
 */
const invalid = (option: string, reason: string, kind: "flag" | "argument" = "flag") =>
  new CliError.ValidationError({ message: `${kind === "flag" ? `--${option}` : option.toUpperCase()}: ${reason}` })

const friendlier: Readonly<Record<string, string>> = {
  "Expected no excess property": "unknown field",
  "Missing key": "required"
}
const SHOWN_ISSUES = 4

/** One line naming the wrong fields: `maxTurns: Expected …; tools[0].name: Expected …`. */
const issueText = (issue: SchemaIssue.Issue) => {
  const all = Issues.toFieldIssues(issue).map((i) => `${i.field}: ${friendlier[i.message] ?? i.message}`)
  const more = all.length > SHOWN_ISSUES ? `; and ${all.length - SHOWN_ISSUES} more` : ""
  return all.slice(0, SHOWN_ISSUES).join("; ") + more
}

const decodeStrict = <A>(schema: Schema.ConstraintDecoder<A>) => {
  const decode = Schema.decodeUnknownEffect(schema)
  // Unknown keys are refused: a typo such as `maxturns` would otherwise be dropped without a word.
  return (u: unknown) => decode(u, { onExcessProperty: "error", errors: "all" })
}

const decodeSpec = decodeStrict(AgentSpec.AgentSpec)

/** Decodes the text of an agent spec (JSON); `where` says where it came from, for the message. */
export const specFromText = (option: string, text: string, where = "") =>
  Effect.gen(function*() {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (e) {
      return yield* invalid(option, `${where}not valid JSON (${e instanceof Error ? e.message : String(e)})`)
    }
    yield* storable(option, json)
    return yield* decodeSpec(json).pipe(
      Effect.mapError((e) => invalid(option, `${where}not an agent spec: ${issueText(e.issue)}`))
    )
  })

/** `--spec JSON`: an agent spec given inline. */
export const specJson = Flag.String("spec").pipe(
  Flag.withDescription("The agent spec as JSON: {\"systemPrompt\": …, \"model\"?, \"maxTurns\"?, \"tools\"?}"),
  Flag.withMetavar("JSON"),
  Flag.mapEffect((text) => specFromText("spec", text)),
  Flag.optional
)

/** `--spec-file FILE`: an agent spec read from a JSON file. */
export const specFile = Flag.String("spec-file").pipe(
  Flag.withDescription("A JSON file holding the agent spec"),
  Flag.withMetavar("FILE"),
  Flag.mapEffect((path) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const text = yield* fs.readFileString(path).pipe(
        Effect.mapError((e) =>
          invalid(
            "spec-file",
            e.reason._tag === "NotFound" ? `no such file: ${path}` : `cannot read ${path}: ${e.message}`
          )
        )
      )
      return yield* specFromText("spec-file", text, `${path}: `)
    })
  ),
  Flag.optional
)

/** Exactly one of `--spec` and `--spec-file`: a check for `Command.validate`. */
export const exactlyOneSpec = (input: {
  readonly spec: Option.Option<AgentSpec.AgentSpec>
  readonly specFile: Option.Option<AgentSpec.AgentSpec>
}) =>
  Option.isSome(input.spec) === Option.isSome(input.specFile)
    ? Effect.fail(
      new CliError.ValidationError({
        message: Option.isSome(input.spec)
          ? "--spec, --spec-file: give one of them, not both"
          : "--spec, --spec-file: one of them is required (the agent spec as JSON, or a file holding it)"
      })
    )
    : Effect.void

/** The spec given by whichever of `--spec` and `--spec-file` was used (`exactlyOneSpec` has checked). */
export const chosenSpec = (input: {
  readonly spec: Option.Option<AgentSpec.AgentSpec>
  readonly specFile: Option.Option<AgentSpec.AgentSpec>
}): AgentSpec.AgentSpec => Option.getOrThrow(Option.orElse(input.spec, () => input.specFile))

export const description = Flag.String("description").pipe(
  Flag.withDescription("What the agent is for (at most 2000 characters)"),
  Flag.withMetavar("TEXT"),
  Flag.mapEffect((text) =>
    text.length > 2000 ? Effect.fail(invalid("description", "at most 2000 characters")) : Effect.succeed(text)
  ),
  Flag.optional
)

const agentNameOf = (option: string, kind: "flag" | "argument") => (name: string) =>
  Ids.isAgentName(name)
    ? Effect.succeed(name)
    : Effect.fail(
      invalid(option, `'${name}' is not an agent name: lowercase letters, digits, '-' or '_', 1-63 characters`, kind)
    )

/** An agent name given as `--<option> NAME`. */
export const agentNameFlag = (option: string, describe: string) =>
  Flag.String(option).pipe(
    Flag.withDescription(describe),
    Flag.withMetavar("NAME"),
    Flag.mapEffect(agentNameOf(option, "flag"))
  )

/** An agent name given as the positional `NAME`. */
export const agentNameArgument = Argument.String("name").pipe(
  Argument.withDescription("The agent's name"),
  Argument.withMetavar("NAME"),
  Argument.mapEffect(agentNameOf("name", "argument"))
)

/** A run id given as the positional `ID`. Its shape is left to the server, which owns the ids. */
export const runIdArgument = Argument.String("id").pipe(
  Argument.withDescription("The run's id (run_…)"),
  Argument.withMetavar("ID")
)

/**
 * A run's input: the flag's text parsed as JSON, or the text itself as a JSON string when it is not valid
 * JSON. `--input '{"q":"hi"}'` sends an object, `--input hello` the string "hello", `--input 42` the number 42;
 * to send the string "42", quote it: `--input '"42"'`.
 */
export const runInputOf = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** The text rule of the API (schema/Text.ts), checked before sending: a flag value that breaks it exits 2. */
const storable = (option: string, value: unknown) => {
  const issue = Text.inspect(value)[0]
  return issue === undefined
    ? Effect.void
    : Effect.fail(invalid(option, `${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`))
}

export const runInput = Flag.String("input").pipe(
  Flag.withDescription("The run's input: JSON, or plain text sent as a JSON string when it is not valid JSON"),
  Flag.withMetavar("JSON|TEXT"),
  Flag.map(runInputOf),
  Flag.mapEffect((input) => Effect.as(storable("input", input), input))
)

const positiveInt = (option: string, min: number, max: number) => (n: number) =>
  Number.isInteger(n) && n >= min && n <= max
    ? Effect.succeed(n)
    : Effect.fail(invalid(option, `expected an integer from ${min} to ${max}, got ${n}`))

export const agentVersion = Flag.Int("agent-version").pipe(
  Flag.withDescription("Pin this version of the agent (default: its latest)"),
  Flag.withMetavar("N"),
  Flag.mapEffect(positiveInt("agent-version", 1, 1_000_000_000)),
  Flag.optional
)

export const idempotencyKey = Flag.String("idempotency-key").pipe(
  Flag.withDescription("Sent as the Idempotency-Key header: a retried create with the same key starts no second run"),
  Flag.withMetavar("KEY"),
  Flag.mapEffect((key) =>
    key.trim() === "" || key.length > 255
      ? Effect.fail(invalid("idempotency-key", "expected 1 to 255 characters"))
      : Effect.succeed(key)
  ),
  Flag.optional
)

export const runStatus = Flag.Literals("status", Api.RunStatus.literals).pipe(
  Flag.withDescription("Only runs with this status"),
  Flag.optional
)

const limitOf = (what: string) =>
  Flag.Int("limit").pipe(
    Flag.withDescription(`At most this many ${what} (1-200)`),
    Flag.withMetavar("N"),
    Flag.mapEffect(positiveInt("limit", 1, 200)),
    Flag.optional
  )

export const limit = limitOf("runs")

export const cursor = Flag.String("cursor").pipe(
  Flag.withDescription("Continue a listing from the nextCursor of the previous page"),
  Flag.withMetavar("CURSOR"),
  Flag.optional
)

/** An optional `--reason TEXT` of at most 2000 characters, recorded in the run's journal. */
const reasonFlag = (description: string) =>
  Flag.String("reason").pipe(
    Flag.withDescription(description),
    Flag.withMetavar("TEXT"),
    Flag.mapEffect((text) =>
      text.length > 2000 ? Effect.fail(invalid("reason", "at most 2000 characters")) : Effect.succeed(text)
    ),
    Flag.optional
  )

export const reason = reasonFlag("Why the run is canceled (recorded in its journal)")

export const stepIdArgument = Argument.String("step").pipe(
  Argument.withDescription("The step waiting for approval, e.g. turn-1.tool-0.approval"),
  Argument.withMetavar("STEP")
)

export const approver = Flag.String("by").pipe(
  Flag.withDescription("Who decides (recorded in the run's journal)"),
  Flag.withMetavar("NAME"),
  Flag.mapEffect((text) =>
    text.length < 1 || text.length > 200 ? Effect.fail(invalid("by", "1-200 characters")) : Effect.succeed(text)
  )
)

export const reject = Flag.Boolean("reject").pipe(
  Flag.withDescription("Reject the call instead of approving it; the model is told it was rejected"),
  Flag.withDefault(false)
)

export const decisionReason = reasonFlag("Why (recorded in the run's journal)")

export const json = Flag.Boolean("json").pipe(
  Flag.withDescription("Print the raw JSON body of the answer instead of a summary"),
  Flag.withDefault(false)
)

export const agentFilter = agentNameFlag("agent", "Only runs of this agent").pipe(Flag.optional)

export const followFlag = Flag.Boolean("follow").pipe(
  Flag.withDescription("Print the run's events live until it ends, then the run (exit 1 unless it succeeded)"),
  Flag.withDefault(false)
)

export const doctorTimeout = Flag.Int("timeout").pipe(
  Flag.withDescription("Seconds the live run may take (default 30)"),
  Flag.withMetavar("SECONDS"),
  Flag.mapEffect(positiveInt("timeout", 1, 600)),
  Flag.withDefault(30)
)

// ---- tenants, API keys, audit ----

/** The server's rule for tenant and key names (edge/TenantRoutes.ts). */
const NAME = /^[\x21-\x7e][\x20-\x7e]{0,99}$/

const nameOf = (option: string, kind: "flag" | "argument") => (name: string) =>
  NAME.test(name)
    ? Effect.succeed(name)
    : Effect.fail(invalid(option, "expected 1-100 printable ASCII characters, not starting with a space", kind))

export const keyName = Flag.String("name").pipe(
  Flag.withDescription("What the key is for, e.g. ci (1-100 printable ASCII characters)"),
  Flag.withMetavar("NAME"),
  Flag.mapEffect(nameOf("name", "flag"))
)

export const tenantNameArgument = Argument.String("name").pipe(
  Argument.withDescription("The tenant's name (1-100 printable ASCII characters, unique)"),
  Argument.withMetavar("NAME"),
  Argument.mapEffect(nameOf("name", "argument"))
)

export const scopes = Flag.String("scope").pipe(
  Flag.withDescription(`A scope the key grants; repeat for more. One of: ${Scopes.SCOPES.join(", ")}`),
  Flag.withMetavar("SCOPE"),
  Flag.mapEffect((s) =>
    Scopes.isScope(s)
      ? Effect.succeed(s)
      : Effect.fail(invalid("scope", `'${s}' is not a scope; expected one of ${Scopes.SCOPES.join(", ")}`))
  ),
  Flag.atLeast(1)
)

/** `--expires`: an ISO 8601 date-time in the future, as the server requires. */
export const expires = Flag.String("expires").pipe(
  Flag.withDescription(
    "When the key stops working: an ISO 8601 date-time such as 2027-01-31T00:00:00Z (default: never)"
  ),
  Flag.withMetavar("ISO"),
  Flag.mapEffect((raw) =>
    Effect.gen(function*() {
      const at = Date.parse(raw)
      if (!/^\d{4}-\d{2}-\d{2}T/.test(raw) || Number.isNaN(at)) {
        return yield* invalid("expires", `'${raw}' is not an ISO 8601 date-time like 2027-01-31T00:00:00Z`)
      }
      if (at <= (yield* Clock.currentTimeMillis)) return yield* invalid("expires", `'${raw}' is not in the future`)
      return raw
    })
  ),
  Flag.optional
)

export const keyIdArgument = Argument.String("id").pipe(
  Argument.withDescription("The key's id (key_…), as `lantern api-keys list` shows it"),
  Argument.withMetavar("ID"),
  Argument.mapEffect((id) =>
    /^key_[0-9a-z]{26}$/.test(id)
      ? Effect.succeed(id)
      : Effect.fail(invalid("id", `'${id}' is not a key id like key_01j…`, "argument"))
  )
)

export const auditAction = Flag.Literals("action", AUDIT_ACTIONS).pipe(
  Flag.withDescription("Only entries of this action"),
  Flag.optional
)

const decodeSince = Schema.decodeUnknownOption(Since)

/** `--since`: a UTC day or an instant with its offset, on a day that exists (the server's rule, schema/Audit.ts). */
export const since = Flag.String("since").pipe(
  Flag.withDescription(
    "Only entries from this time on: a day (2026-11-21) or a time with offset (2026-11-21T05:00:00Z)"
  ),
  Flag.withMetavar("ISO"),
  Flag.mapEffect((raw) => {
    const [y, m, d] = raw.slice(0, 10).split("-").map(Number) as [number, number, number]
    return Option.isSome(decodeSince(raw)) && new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d
      ? Effect.succeed(raw)
      : Effect.fail(
        invalid(
          "since",
          `'${raw}' is not an ISO 8601 day (2026-11-21) or time with offset (2026-11-21T05:00:00Z) that exists`
        )
      )
  }),
  Flag.optional
)

export const auditLimit = limitOf("entries")
