// The ingest contract (ADR 0051, docs/ingest.md): what a producer publishes straight onto the bus at
// `lantern.ingest.<tenant>.<source>`, the rules that route it to runs, and the dead letters of what did not decode.
import { Schema } from "effect"
import { AgentName } from "./Ids.ts"

/** A tenant or a source as a subject token: lowercase letters, digits, `-` and `_`. */
export const Token = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}$/u, {
    message: "Expected 1-63 lowercase letters, digits, '-' or '_' (one subject token)"
  })
)
export const isToken = Schema.is(Token)

/** ISO-8601 instant with its offset. */
const Instant = Schema.String.check(
  Schema.isPattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/u, {
    message: "Expected an ISO-8601 time with its offset, like 2026-12-03T08:00:00Z"
  })
)

/** The body of an ingest message (JSON). `data` must be present (null is a value). */
export const IngestEvent = Schema.Struct({
  eventId: Schema.String.check(
    Schema.isPattern(/^[\x21-\x7e]{1,200}$/u, { message: "Expected 1-200 visible ASCII characters" })
  ),
  type: Schema.String.check(
    Schema.isPattern(/^[\x21-\x7e]{1,200}$/u, { message: "Expected 1-200 visible ASCII characters" })
  ),
  occurredAt: Schema.optionalKey(Instant),
  data: Schema.Unknown,
  agentName: Schema.optionalKey(AgentName)
})
export type IngestEvent = typeof IngestEvent.Type

/** `POST /v1/ingest/rules`: events of `source` (and `type`, when given) start a run of `agentName`, or are only recorded. */
export const NewRule = Schema.Struct({
  source: Token,
  type: Schema.optionalKey(
    Schema.String.check(
      Schema.isPattern(/^[\x21-\x7e]{1,200}$/u, { message: "Expected 1-200 visible ASCII characters" })
    )
  ),
  agentName: AgentName,
  /** The run's input: `{{type}}`, `{{eventId}}`, `{{source}}`, `{{occurredAt}}`, `{{data}}` or `{{data.a.b}}` filled in; the event as JSON when absent. */
  inputTemplate: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(8000))),
  /** `run` (default) starts a run per event; `record` only records the event as accepted. */
  action: Schema.optionalKey(Schema.Literals(["run", "record"]))
})
export type NewRule = typeof NewRule.Type

export const RuleView = Schema.Struct({
  id: Schema.String,
  source: Schema.String,
  type: Schema.NullOr(Schema.String),
  agentName: Schema.String,
  inputTemplate: Schema.NullOr(Schema.String),
  action: Schema.Literals(["run", "record"]),
  createdAt: Schema.String
})
export type RuleView = typeof RuleView.Type

export const DeadLetter = Schema.Struct({
  /** Its sequence in the dead-letter stream. */
  seq: Schema.Number,
  source: Schema.String,
  subject: Schema.String,
  /** The field at fault (`eventId`, `data`, `(body)`, `(subject)`…) and why. */
  field: Schema.String,
  reason: Schema.String,
  /** The message as published (UTF-8 text, or base64 when it is not), up to 64 KiB. */
  data: Schema.String,
  encoding: Schema.Literals(["utf8", "base64"]),
  at: Schema.String
})
export type DeadLetter = typeof DeadLetter.Type

export const SourceStats = Schema.Struct({ source: Schema.String, accepted: Schema.Number, dead: Schema.Number })
