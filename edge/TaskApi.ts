// The operator queue's endpoints (issue 16, ADR 0054), declared as edge/Api.ts declares every other: tasks (submit,
// list, read, cancel, retry, requeue, their live stream) and dispatch (pause, resume, depth and workers), with the
// scopes tasks:read and tasks:write.
import { Schema } from "effect"
import * as Api from "../schema/Api.ts"
import * as Task from "../schema/Task.ts"
import { body, failure, Json, make, Media, optionalBody } from "./Endpoint.ts"

export const TaskNotFound = failure<Task.TaskNotFound>("TaskNotFound", 404, "task_not_found", "No such task")
export const TaskConflict = failure<Task.TaskConflict>(
  "TaskConflict",
  409,
  "task_conflict",
  "The task's status does not allow it (a second cancel, a retry of a pending, running or completed task)",
  { render: (e) => ({ message: e.message, status: e.status }) }
)

const ByTask = Schema.Struct({ id: Task.TaskId })
const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

/** A submission's answer: the task, and for a repeat of a dedupe key the task it repeats. */
export const Submitted = Schema.Struct({
  ...Task.TaskView.fields,
  duplicateOf: Schema.NullOr(Schema.String)
})

export const endpoints = [
  make("submitTask", {
    method: "POST",
    path: "/v1/tasks",
    scope: "tasks:write",
    summary:
      "Queue a task: kind, source and payload; priority 0-9 (higher first, default 5); `agentName` (an agent adapter) or `adapter` (one, or a fallback chain); maxAttempts (3); `availableAt` (ISO 8601 with a zone) or `delayMinutes`; a `dedupeKey` answers the task that already holds it (200, duplicateOf)",
    body: body(Task.TaskSubmission),
    success: { 201: Json(Submitted, "Queued"), 200: Json(Submitted, "A task already holds the dedupe key") }
  }),
  make("listTasks", {
    method: "GET",
    path: "/v1/tasks",
    scope: "tasks:read",
    summary: "The tenant's tasks, newest first, filtered by status, kind and source",
    query: Task.TaskListQuery,
    success: { 200: Json(list(Task.TaskView), "Tasks") }
  }),
  make("taskStream", {
    method: "GET",
    path: "/v1/tasks/stream",
    scope: "tasks:read",
    summary:
      "The tenant's queue events as Server-Sent Events (`ready`, then one frame per task event: {seq, taskId, type, at, status}), live from now or resumed after Last-Event-ID (a bus sequence)",
    headers: [{
      name: "Last-Event-ID",
      schema: Api.LastEventId,
      description: "Resume after this sequence (the id of the last frame seen)",
      emptyIsAbsent: true
    }],
    success: { 200: Media("text/event-stream", "text/event-stream") }
  }),
  make("getTask", {
    method: "GET",
    path: "/v1/tasks/:id",
    scope: "tasks:read",
    summary:
      "A task: status, startedAt, its attempts (adapter, probes, closing reason, outcome, bundle hash), its events, outcome and artifacts",
    params: ByTask,
    success: { 200: Json(Task.TaskDetail, "Task") },
    failures: [TaskNotFound]
  }),
  make("cancelTask", {
    method: "POST",
    path: "/v1/tasks/:id/cancel",
    scope: "tasks:write",
    summary:
      "Cancel a pending, retrying, blocked or running task (a running attempt's adapter is interrupted); 409 when it is completed, failed or already canceled",
    params: ByTask,
    body: optionalBody(Task.CancelRequest),
    success: { 200: Json(Task.TaskView, "Canceled") },
    failures: [TaskNotFound, TaskConflict]
  }),
  make("retryTask", {
    method: "POST",
    path: "/v1/tasks/:id/retry",
    scope: "tasks:write",
    summary:
      "Try a blocked, failed, canceled or retrying task again now, with `extraAttempts` more attempts (1 when absent) if its attempts are spent",
    params: ByTask,
    body: optionalBody(Task.RetryRequest),
    success: { 200: Json(Task.TaskView, "Pending again") },
    failures: [TaskNotFound, TaskConflict]
  }),
  make("requeueTask", {
    method: "POST",
    path: "/v1/tasks/:id/requeue",
    scope: "tasks:write",
    summary:
      "Queue a blocked, failed, canceled or retrying task afresh: pending now, its attempts and rate-limit reschedules counted from zero",
    params: ByTask,
    success: { 200: Json(Task.TaskView, "Pending again") },
    failures: [TaskNotFound, TaskConflict]
  }),
  make("getDispatch", {
    method: "GET",
    path: "/v1/dispatch",
    scope: "tasks:read",
    summary:
      "Dispatch: paused or not (and why), the queue's depth per priority, delayed, running and blocked tasks, and every worker with what it runs",
    success: { 200: Json(Task.DispatchView, "Dispatch") }
  }),
  make("setDispatch", {
    method: "PUT",
    path: "/v1/dispatch",
    scope: "tasks:write",
    summary:
      "Pause (`paused: true`, with a reason) or resume dispatch: no worker claims the tenant's tasks while paused; running tasks finish",
    body: body(Task.DispatchRequest),
    success: { 200: Json(Task.DispatchView, "Dispatch") }
  })
] as const
