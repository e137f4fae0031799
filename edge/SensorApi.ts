// The sensor endpoints (ADR 0056), spread into the API's table (edge/Api.ts): sensors drop work into the operator
// queue, deduplicated for good by (sensorId, eventId) and by dedupeKey; scopes sensors:write and sensors:read.
import { Schema } from "effect"
import * as Sensor from "../schema/Sensor.ts"
import { body, Json, make } from "./Endpoint.ts"

const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

export const endpoints = [
  make("postSensorEvent", {
    method: "POST",
    path: "/v1/sensors/events",
    scope: "sensors:write",
    summary:
      "A sensor's event: 201 with the task (proposedTask) and the queue workflow (proposedWorkflow: {template, instanceKey, context?}) it created, or 200 {accepted: false, duplicateOf} when the same sensorId and eventId, or the same dedupeKey, came before (for good). An unknown template is 400 and writes nothing",
    body: body(Sensor.SensorEventRequest),
    success: {
      201: Json(Sensor.SensorEventAnswer, "Accepted: what it created"),
      200: Json(Sensor.SensorEventAnswer, "A duplicate of an earlier event: nothing created")
    }
  }),
  make("listSensorEvents", {
    method: "GET",
    path: "/v1/sensors/events",
    scope: "sensors:read",
    summary: "The tenant's sensor events, oldest first, each accepted (with what it created) or a duplicate",
    query: Sensor.SensorEventListQuery,
    success: { 200: Json(list(Sensor.SensorEventView), "Sensor events") }
  })
] as const
