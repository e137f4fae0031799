// Sensor events (issue 16, ADR 0056): work a sensor drops into the operator queue, deduplicated for good by
// (sensorId, eventId) and by dedupeKey within a tenant. Journaled on lantern.sensor.<tenant>.<id>: one journal per
// accepted or repeated event (`sev_…`) and one per dedupe claim (`key-<sha256>`), whose first append expects an
// empty subject so two concurrent arrivals cannot both win. No I/O.
import { Schema } from "effect"
import { QueueFlowRequest } from "./QueueFlow.ts"
import { TaskSubmission } from "./Task.ts"

/** A sensor's name: one lowercase subject token. */
export const SensorId = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}$/u, {
    message: "Expected 1-63 lowercase letters, digits, '-' or '_'"
  })
)
const Visible = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e]{1,200}$/u, { message: "Expected 1-200 visible ASCII characters" })
)
export const SensorEventId = Schema.String.check(
  Schema.isPattern(/^sev_[0-9a-z]{26}$/u, { message: "Expected a sensor event id like sev_01j…" })
)

/** What a sensor sends besides its event id (the body of `POST /v1/sensors/events` without `eventId`). */
export const SensorEventFields = {
  sensorId: SensorId,
  /** A key other events may share: the second event with it is a duplicate, whatever its eventId. */
  dedupeKey: Schema.optionalKey(Visible),
  payload: Schema.Unknown,
  proposedTask: Schema.optionalKey(TaskSubmission),
  proposedWorkflow: Schema.optionalKey(QueueFlowRequest)
}

export const SensorEventRequest = Schema.Struct({ ...SensorEventFields, eventId: Visible })
export type SensorEventRequest = typeof SensorEventRequest.Type

/** A sensor event published on `lantern.ingest.<tenant>.sensors`: the ingest event's `data`. */
export const SensorIngestData = Schema.Struct(SensorEventFields)

export const SensorEventAnswer = Schema.Struct({
  accepted: Schema.Boolean,
  /** The journal of this arrival (a repeat gets its own, marked as a duplicate). */
  sensorEventId: Schema.String,
  taskId: Schema.NullOr(Schema.String),
  workflowId: Schema.NullOr(Schema.String),
  /** The sensor event this one repeats, when it is a duplicate. */
  duplicateOf: Schema.NullOr(Schema.String),
  duplicateBy: Schema.NullOr(Schema.Literals(["eventId", "dedupeKey"]))
})
export type SensorEventAnswer = typeof SensorEventAnswer.Type

export const SensorEventView = Schema.Struct({
  id: Schema.String,
  sensorId: Schema.String,
  eventId: Schema.String,
  dedupeKey: Schema.NullOr(Schema.String),
  via: Schema.Literals(["http", "ingest"]),
  status: Schema.Literals(["received", "accepted", "duplicate"]),
  taskId: Schema.NullOr(Schema.String),
  workflowId: Schema.NullOr(Schema.String),
  duplicateOf: Schema.NullOr(Schema.String),
  payload: Schema.Unknown,
  receivedAt: Schema.String
})
export type SensorEventView = typeof SensorEventView.Type

export const SensorEventListQuery = Schema.Struct({
  sensorId: Schema.optionalKey(SensorId),
  status: Schema.optionalKey(Schema.Literals(["received", "accepted", "duplicate"]))
})

// ---- events ----

/** A dedupe key is taken: `sensorEventId` owns it for good. */
export const SensorKeyClaimed = Schema.TaggedStruct("SensorKeyClaimed", {
  kind: Schema.Literals(["eventId", "dedupeKey"]),
  sensorId: Schema.String,
  value: Schema.String,
  sensorEventId: Schema.String
})
export const SensorEventReceived = Schema.TaggedStruct("SensorEventReceived", {
  sensorEventId: Schema.String,
  sensorId: Schema.String,
  eventId: Schema.String,
  dedupeKey: Schema.NullOr(Schema.String),
  payload: Schema.Unknown,
  proposedTask: Schema.NullOr(TaskSubmission),
  proposedWorkflow: Schema.NullOr(QueueFlowRequest),
  via: Schema.Literals(["http", "ingest"])
})
export const SensorEventAccepted = Schema.TaggedStruct("SensorEventAccepted", {
  taskId: Schema.NullOr(Schema.String),
  workflowId: Schema.NullOr(Schema.String)
})
export const SensorEventDuplicated = Schema.TaggedStruct("SensorEventDuplicated", {
  duplicateOf: Schema.String,
  by: Schema.Literals(["eventId", "dedupeKey"])
})

export const SensorEvent = Schema.Union([
  SensorKeyClaimed,
  SensorEventReceived,
  SensorEventAccepted,
  SensorEventDuplicated
])
export type SensorEvent = typeof SensorEvent.Type
