// Typed errors of the system, split into expected (mapped to an HTTP status), retryable (retried by a
// bounded schedule) and defects. Every error carries only safe text: never a secret or a stack trace.
import { Schema } from "effect"
import { BudgetRefusal, Route } from "./Events.ts"

// ---- expected ----
export class WorkflowNotFound extends Schema.TaggedError<WorkflowNotFound>()("WorkflowNotFound", {
  name: Schema.String
}) {
  override get message() {
    return `workflow '${this.name}' is not registered: start a host with --workflows <file> that defines it`
  }
}

export class AgentNotFound extends Schema.TaggedError<AgentNotFound>()("AgentNotFound", {
  name: Schema.String
}) {
  override get message() {
    return `agent '${this.name}' not found`
  }
}

export class AgentAlreadyExists extends Schema.TaggedError<AgentAlreadyExists>()("AgentAlreadyExists", {
  name: Schema.String
}) {
  override get message() {
    return `agent '${this.name}' already exists; use PUT /v1/agents/${this.name} to publish a new version`
  }
}

export class AgentVersionNotFound extends Schema.TaggedError<AgentVersionNotFound>()("AgentVersionNotFound", {
  name: Schema.String,
  version: Schema.Int
}) {
  override get message() {
    return `agent '${this.name}' has no version ${this.version}`
  }
}

export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", { id: Schema.String }) {
  override get message() {
    return `run '${this.id}' not found`
  }
}

export class RunAlreadyFinished extends Schema.TaggedError<RunAlreadyFinished>()("RunAlreadyFinished", {
  id: Schema.String,
  status: Schema.String
}) {
  override get message() {
    return `run '${this.id}' already finished with status '${this.status}'`
  }
}

export class StepNotFound extends Schema.TaggedError<StepNotFound>()("StepNotFound", {
  runId: Schema.String,
  stepId: Schema.String
}) {
  override get message() {
    return `run '${this.runId}' has no step '${this.stepId}'`
  }
}

export class NotAwaitingApproval extends Schema.TaggedError<NotAwaitingApproval>()("NotAwaitingApproval", {
  runId: Schema.String,
  stepId: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `step '${this.stepId}' of run '${this.runId}' is not awaiting approval: ${this.reason}`
  }
}

/** A hard cap of a budget refused a run or a model call (HTTP 402), saying which cap and what is spent and held. */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", { refusal: BudgetRefusal }) {
  override get message() {
    return this.refusal.reason
  }
}

export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()("IdempotencyKeyReused", {
  key: Schema.String
}) {
  override get message() {
    return `Idempotency-Key '${this.key}' was already used with a different request body`
  }
}

/** A command that the actor's current state refuses (a bug in the caller or a stale driver). */
export class InvalidCommand extends Schema.TaggedError<InvalidCommand>()("InvalidCommand", {
  command: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.command} refused: ${this.reason}`
  }
}

/**
 * An event too large for the bus: its message (payload and headers) is over the server's `max_payload`.
 * Never retried, since it can never succeed (HTTP 413). Its message holds the two sizes only: never the
 * subject, the payload or any tenant text.
 */
export class EventTooLarge extends Schema.TaggedError<EventTooLarge>()("EventTooLarge", {
  /** Bytes the event's message would take on the bus. */
  size: Schema.Number,
  /** The bus's largest message, in bytes. */
  limit: Schema.Number
}) {
  override get message() {
    return `the event would be ${this.size} bytes, over the bus's limit of ${this.limit} bytes`
  }
}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

// ---- retryable ----
/** A subject of Lantern's on the bus (`lantern.run.<tenant>.<id>`, `lantern.work.run.…`): internal. */
const SUBJECT = /\blantern\.([A-Za-z0-9_-]+)(?:\.[A-Za-z0-9_*>-]+)+/g
const JOURNALS = new Set(["run", "agent", "budget", "audit"])

/**
 * `text` with each bus subject replaced by what it is (`a run journal`): for messages a client may read, which
 * must not expose the bus's layout (the error's fields keep the subject for logs).
 */
export const withoutSubjects = (text: string): string =>
  text.replace(
    SUBJECT,
    (_, kind: string) =>
      JOURNALS.has(kind)
        ? `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind} journal`
        : kind === "work"
        ? "the work queue"
        : "a bus subject"
  )

/** Another writer appended to the actor's journal first: reload, decide again, append again. */
export class AppendConflict extends Schema.TaggedError<AppendConflict>()("AppendConflict", {
  subject: Schema.String,
  expected: Schema.Number
}) {
  override get message() {
    return `append to ${withoutSubjects(this.subject)} conflicted: expected last sequence ${this.expected}`
  }
}

/** The bus did not answer (reconnecting, no leader). `operation` may name a subject; the message does not. */
export class BusUnavailable extends Schema.TaggedError<BusUnavailable>()("BusUnavailable", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `bus unavailable during ${withoutSubjects(this.operation)}: ${withoutSubjects(this.reason)}`
  }
}

export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `database error during ${this.operation}: ${this.reason}`
  }
}

/**
 * What went wrong with a model call, decided where the error is made (from the HTTP status, the deadline, the
 * transport) so nobody has to read it back out of the reason's text: `rate_limited` (429), `timeout` (no answer
 * within the deadline), `unavailable` (5xx, 408, network, a broken stream, every circuit open) and `refused` (the
 * request or the answer is at fault: retrying it gives the same).
 */
export const ProviderErrorKind = Schema.Literals(["rate_limited", "timeout", "unavailable", "refused"])
export type ProviderErrorKind = typeof ProviderErrorKind.Type

export class ProviderError extends Schema.TaggedError<ProviderError>()("ProviderError", {
  provider: Schema.String,
  kind: ProviderErrorKind,
  status: Schema.optionalKey(Schema.Number),
  reason: Schema.String,
  retryable: Schema.Boolean,
  /** How long the provider asked to be left alone (its `Retry-After`, or an open breaker's remaining cooldown). */
  retryAfterMs: Schema.optionalKey(Schema.Number),
  /** From the router: every candidate it tried, journaled on the failed step. */
  route: Schema.optionalKey(Route)
}) {
  override get message() {
    return `model provider ${this.provider} failed${
      this.status === undefined ? "" : ` (HTTP ${this.status})`
    }: ${this.reason}`
  }
}

// ---- loud failures ----
/** A stored event whose type or schema version this code does not know: never skipped silently. */
export class UnknownEventVersion extends Schema.TaggedError<UnknownEventVersion>()("UnknownEventVersion", {
  type: Schema.String,
  version: Schema.Number,
  subject: Schema.String
}) {
  override get message() {
    return `event ${this.type} v${this.version} on ${this.subject} is not known to this version of Lantern`
  }
}

export class CorruptEvent extends Schema.TaggedError<CorruptEvent>()("CorruptEvent", {
  subject: Schema.String,
  seq: Schema.Number,
  reason: Schema.String
}) {
  override get message() {
    return `event #${this.seq} on ${this.subject} cannot be decoded: ${this.reason}`
  }
}
