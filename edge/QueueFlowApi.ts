// The queue workflow, snapshot and report endpoints (ADR 0056), spread into the API's table (edge/Api.ts). Queue
// workflows are tasks' owners, so they take the tasks scopes; snapshots reports:write, reports reports:read.
import { Schema } from "effect"
import type { QueueFlowNotFound, SnapshotNotFound } from "../actors/queueflow/QueueFlows.ts"
import * as QueueFlow from "../schema/QueueFlow.ts"
import { body, failure, Json, make } from "./Endpoint.ts"

export const FlowMissing = failure<QueueFlowNotFound>(
  "QueueFlowNotFound",
  404,
  "queue_workflow_not_found",
  "No such queue workflow"
)
export const SnapshotMissing = failure<SnapshotNotFound>(
  "SnapshotNotFound",
  404,
  "snapshot_not_found",
  "No such snapshot (or the report's from/to names none)"
)

const ByFlow = Schema.Struct({ id: QueueFlow.QueueFlowId })
const BySnapshot = Schema.Struct({ id: QueueFlow.SnapshotId })
const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

const accept = {
  name: "Accept",
  schema: Schema.String.check(Schema.isMaxLength(1000)),
  description: "text/markdown: answer the report as Markdown instead of JSON",
  emptyIsAbsent: true
} as const

export const endpoints = [
  make("createQueueWorkflow", {
    method: "POST",
    path: "/v1/queue-workflows",
    scope: "tasks:write",
    summary:
      "Start a workflow on the queue from a template (goal-loop: plan → execute → verify, a new execute each iteration on verify's `continue`, at most maxIterations (3); pr-lifecycle: open → review → merge or closed). One per (template, instanceKey): a second create answers the first (200). Each phase is a task with origin {workflowId, phase}, the context and its expected artifact path in its payload",
    body: body(QueueFlow.QueueFlowRequest),
    success: {
      201: Json(QueueFlow.QueueFlowView, "Created, its first phase submitted"),
      200: Json(QueueFlow.QueueFlowView, "The instance of this template and instanceKey, as it is")
    }
  }),
  make("listQueueWorkflows", {
    method: "GET",
    path: "/v1/queue-workflows",
    scope: "tasks:read",
    summary: "The tenant's queue workflows, oldest first",
    query: QueueFlow.QueueFlowListQuery,
    success: { 200: Json(list(QueueFlow.QueueFlowView), "Queue workflows") }
  }),
  make("getQueueWorkflow", {
    method: "GET",
    path: "/v1/queue-workflows/:id",
    scope: "tasks:read",
    summary:
      "A queue workflow: its status (running, stalled, complete, failed) and reason, its phases, tasks and artifact paths",
    params: ByFlow,
    success: { 200: Json(QueueFlow.QueueFlowView, "Queue workflow") },
    failures: [FlowMissing]
  }),
  make("createSnapshot", {
    method: "POST",
    path: "/v1/snapshots",
    scope: "reports:write",
    summary: "Capture the queue (tasks by status, cost, artifacts) and every workflow's state, journaled",
    body: body(QueueFlow.SnapshotRequest),
    success: { 201: Json(QueueFlow.SnapshotView, "Taken") }
  }),
  make("getSnapshot", {
    method: "GET",
    path: "/v1/snapshots/:id",
    scope: "reports:read",
    summary: "A snapshot of the queue and its workflows",
    params: BySnapshot,
    success: { 200: Json(QueueFlow.SnapshotView, "Snapshot") },
    failures: [SnapshotMissing]
  }),
  make("latestReport", {
    method: "GET",
    path: "/v1/reports/latest",
    scope: "reports:read",
    summary:
      "What changed since the latest snapshot (the last 24 hours when there is none): tasks completed, blocked and failed, new artifacts, cost, queue depth and its change, workflows created, ended and stalled. JSON with a `markdown` field; Markdown itself with Accept: text/markdown",
    headers: [accept],
    success: { 200: Json(QueueFlow.Report, "Report") },
    failures: [SnapshotMissing]
  }),
  make("createReport", {
    method: "POST",
    path: "/v1/reports",
    scope: "reports:read",
    summary:
      "The report of [from, to) (each an ISO time or a snapshot id; `to` now when absent), as GET /v1/reports/latest; Markdown with `markdown: true` or Accept: text/markdown",
    headers: [accept],
    body: body(QueueFlow.ReportRequest),
    success: { 200: Json(QueueFlow.Report, "Report") },
    failures: [SnapshotMissing]
  })
] as const
