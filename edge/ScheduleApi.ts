// The schedule endpoints (ADR 0055), spread into the API's table (edge/Api.ts): schedules of agent runs or queue
// tasks on a cron expression or an interval, and their manual fire; scopes schedules:read and schedules:write.
import { Schema } from "effect"
import * as S from "../schema/Schedule.ts"
import { body, failure, Json, make, None } from "./Endpoint.ts"

export const ScheduleMissing = failure<S.ScheduleNotFound>(
  "ScheduleNotFound",
  404,
  "schedule_not_found",
  "No such schedule"
)
export const ScheduleIsManaged = failure<S.ScheduleManaged>(
  "ScheduleManaged",
  409,
  "schedule_managed",
  "A loop agent's schedule: it follows the agent's spec (`loop`), so change or drop that instead"
)

const BySchedule = Schema.Struct({ id: S.ScheduleId })
const list = <A extends Schema.Top>(s: A) => Schema.Struct({ items: Schema.Array(s) })

export const endpoints = [
  make("createSchedule", {
    method: "POST",
    path: "/v1/schedules",
    scope: "schedules:write",
    summary:
      "Schedule an agent's run or a queue task: exactly one of `cron` (5 fields, or 6 with seconds; in `timezone`, UTC by default) and `everySeconds` (first fire at once). One fire per due slot across all hosts; after downtime ONE fire stands for the missed slots (`coalesced`), and the next slot counts from now",
    body: body(S.ScheduleRequest),
    success: { 201: Json(S.ScheduleView, "Created") },
    failures: [ScheduleMissing]
  }),
  make("listSchedules", {
    method: "GET",
    path: "/v1/schedules",
    scope: "schedules:read",
    summary: "The tenant's schedules, loop agents' included, by name",
    success: { 200: Json(list(S.ScheduleView), "Schedules") }
  }),
  make("getSchedule", {
    method: "GET",
    path: "/v1/schedules/:id",
    scope: "schedules:read",
    summary: "A schedule: its definition, next slot, count of fires and last fire (what it started)",
    params: BySchedule,
    success: { 200: Json(S.ScheduleView, "Schedule") },
    failures: [ScheduleMissing]
  }),
  make("updateSchedule", {
    method: "PUT",
    path: "/v1/schedules/:id",
    scope: "schedules:write",
    summary:
      "Replace a schedule's definition, checked as at creation; a changed timing, or enabling it again, counts slots from now (nothing missed meanwhile fires)",
    params: BySchedule,
    body: body(S.ScheduleRequest),
    success: { 200: Json(S.ScheduleView, "Schedule") },
    failures: [ScheduleMissing, ScheduleIsManaged]
  }),
  make("deleteSchedule", {
    method: "DELETE",
    path: "/v1/schedules/:id",
    scope: "schedules:write",
    summary: "Delete a schedule: it fires no more (its journal stays)",
    params: BySchedule,
    success: { 204: None("Deleted") },
    failures: [ScheduleMissing, ScheduleIsManaged]
  }),
  make("fireSchedule", {
    method: "POST",
    path: "/v1/schedules/:id/fire",
    scope: "schedules:write",
    summary:
      "Fire a schedule now, enabled or not: journaled as a manual fire (its slots are untouched), its run or task started at once",
    params: BySchedule,
    success: { 201: Json(S.FireView, "Fired") },
    failures: [ScheduleMissing]
  })
] as const
