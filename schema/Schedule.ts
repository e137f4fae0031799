// The language of schedules (ADR 0055): what fires (an agent's run or a task on the operator queue), when (a cron
// expression in an IANA time zone, or every N seconds), with which input, and the events of a schedule's journal
// (lantern.schedule.<tenant>.<scheduleId>): created, updated, deleted, fired (one event per due slot, coalescing the
// slots missed while no host ticked) and dispatched (the run or task the fire started). No I/O.
import { Schema } from "effect"
import { LoopTier } from "./AgentSpec.ts"
import { AgentName } from "./Ids.ts"
import { TaskSubmission } from "./Task.ts"

/** A schedule id: `sch_` and 26 base32 characters. */
export const ScheduleId = Schema.String.check(
  Schema.isPattern(/^sch_[0-9a-z]{26}$/u, { message: "Expected a schedule id like sch_01j…" })
)
export type ScheduleId = typeof ScheduleId.Type

export const ScheduleName = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e][\x20-\x7e]{0,199}$/u, {
    message: "Expected 1-200 printable ASCII characters, not starting with a space"
  })
)

/** A run of an agent (its latest version unless one is pinned). */
export const AgentTarget = Schema.Struct({
  agentName: AgentName,
  agentVersion: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
})
/** A task submitted to the operator queue (its origin names the schedule). */
export const TaskTarget = Schema.Struct({ task: TaskSubmission })
export const ScheduleTarget = Schema.Union([AgentTarget, TaskTarget])
export type ScheduleTarget = typeof ScheduleTarget.Type

export const MAX_EVERY_SECONDS = 366 * 86_400

/** The body of `POST /v1/schedules` and `PUT /v1/schedules/{id}` (which replaces the definition whole). */
export const ScheduleRequest = Schema.Struct({
  name: ScheduleName,
  target: ScheduleTarget,
  /** Exactly one of `cron` and `everySeconds`. */
  cron: Schema.optionalKey(Schema.String.check(Schema.isBetweenLength(1, 200))),
  everySeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_EVERY_SECONDS }))),
  /** The IANA time zone a cron expression is read in (UTC by default). */
  timezone: Schema.optionalKey(Schema.String.check(Schema.isBetweenLength(1, 64))),
  /**
   * JSON whose strings may hold `{{input.slot}}`, `{{input.firedAt}}`, `{{input.coalesced}}`, `{{input.scheduleId}}`,
   * `{{input.name}}`: an agent target's run input, a task target's payload.
   */
  inputTemplate: Schema.optionalKey(Schema.Unknown),
  enabled: Schema.optionalKey(Schema.Boolean)
})
export type ScheduleRequest = typeof ScheduleRequest.Type

/** A loop agent's own schedule (created when the version declaring `loop` is published). */
export const LoopRef = Schema.Struct({ agentName: Schema.String, tier: LoopTier })
export type LoopRef = typeof LoopRef.Type

export const FireView = Schema.Struct({
  fireId: Schema.String,
  /** The slot fired (the latest due one when several were coalesced); null for a manual fire. */
  slot: Schema.NullOr(Schema.String),
  firedAt: Schema.String,
  /** How many due slots this one fire stands for (missed while no host ticked); 0 for a manual fire. */
  coalesced: Schema.Int,
  manual: Schema.Boolean,
  by: Schema.String,
  /** Whether the run or task was started (or refused, with `error`) yet. */
  dispatched: Schema.Boolean,
  runId: Schema.NullOr(Schema.String),
  taskId: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})
export type FireView = typeof FireView.Type

export const ScheduleView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  target: ScheduleTarget,
  cron: Schema.NullOr(Schema.String),
  everySeconds: Schema.NullOr(Schema.Int),
  timezone: Schema.String,
  inputTemplate: Schema.optionalKey(Schema.Unknown),
  enabled: Schema.Boolean,
  loop: Schema.NullOr(LoopRef),
  /** The next slot, when the schedule is enabled. */
  nextFireAt: Schema.NullOr(Schema.String),
  fires: Schema.Int,
  lastFire: Schema.NullOr(FireView),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type ScheduleView = typeof ScheduleView.Type

export class ScheduleNotFound extends Schema.TaggedError<ScheduleNotFound>()("ScheduleNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no schedule '${this.id}'`
  }
}

/** A loop agent's schedule changes with the agent's spec only. */
export class ScheduleManaged extends Schema.TaggedError<ScheduleManaged>()("ScheduleManaged", {
  id: Schema.String,
  agentName: Schema.String
}) {
  override get message() {
    return `schedule '${this.id}' is the loop of agent '${this.agentName}': change the agent's spec (loop) instead`
  }
}

// ---- the schedule journal ----

const Definition = {
  name: Schema.String,
  target: ScheduleTarget,
  cron: Schema.NullOr(Schema.String),
  everySeconds: Schema.NullOr(Schema.Int),
  timezone: Schema.String,
  inputTemplate: Schema.optionalKey(Schema.Unknown),
  enabled: Schema.Boolean,
  loop: Schema.optionalKey(LoopRef)
}

export const ScheduleCreated = Schema.TaggedStruct("ScheduleCreated", {
  ...Definition,
  /** Epoch ms the slots count from: an interval fires at the anchor, then every N seconds. */
  anchor: Schema.Number,
  at: Schema.Number
})
/** The definition replaced whole; a new anchor restarts the slots (a changed timing, or re-enabled). */
export const ScheduleUpdated = Schema.TaggedStruct("ScheduleUpdated", {
  ...Definition,
  anchor: Schema.Number,
  at: Schema.Number
})
export const ScheduleDeleted = Schema.TaggedStruct("ScheduleDeleted", { by: Schema.String })
export const ScheduleFired = Schema.TaggedStruct("ScheduleFired", {
  /** `slot-<epoch ms>` for a due slot (its journal's message id, so two hosts cannot both fire it), `manual-<n>`. */
  fireId: Schema.String,
  slot: Schema.NullOr(Schema.Number),
  coalesced: Schema.Int,
  manual: Schema.Boolean,
  firedAt: Schema.Number,
  by: Schema.String
})
export const ScheduleDispatched = Schema.TaggedStruct("ScheduleDispatched", {
  fireId: Schema.String,
  runId: Schema.NullOr(Schema.String),
  taskId: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})
export const ScheduleEvent = Schema.Union([
  ScheduleCreated,
  ScheduleUpdated,
  ScheduleDeleted,
  ScheduleFired,
  ScheduleDispatched
])
export type ScheduleEvent = typeof ScheduleEvent.Type
