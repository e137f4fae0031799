// The eval endpoints (ADR 0047), declared as edge/Api.ts declares every other: suites, eval runs (their gate and
// their progress stream) and baselines per branch, with the scopes evals:read and evals:write.
import { Schema } from "effect"
import * as Eval from "../schema/Eval.ts"
import { AgentName, RunId } from "../schema/Ids.ts"
import { body, failure, Json, make, Media, None } from "./Endpoint.ts"
import * as F from "./Failures.ts"

export const SuiteNotFound = failure<Eval.EvalSuiteNotFound>(
  "EvalSuiteNotFound",
  404,
  "eval_suite_not_found",
  "No such eval suite"
)
export const EvalRunNotFound = failure<Eval.EvalRunNotFound>(
  "EvalRunNotFound",
  404,
  "eval_run_not_found",
  "No such eval run"
)
export const Regressed = failure<Eval.EvalRegressed>(
  "EvalRegressed",
  422,
  "eval_regressed",
  "The gate: the eval run scored below its baseline by more than the suite's tolerance; `differences` compares each case with the baseline run's",
  {
    render: (e) => ({
      message: e.message,
      id: e.id,
      score: e.score,
      baselineScore: e.baselineScore,
      baselineRunId: e.baselineRunId,
      tolerance: e.tolerance,
      differences: e.differences
    })
  }
)
export const BaselineRefused = failure<Eval.EvalBaselineRefused>(
  "EvalBaselineRefused",
  409,
  "eval_baseline_refused",
  "The eval run is not finished, or ran another suite or agent"
)

const BySuite = Schema.Struct({ id: Eval.SuiteId })
const ByRun = Schema.Struct({ id: RunId })
const ByAgent = Schema.Struct({ name: AgentName })
const ByEvalRun = Schema.Struct({ id: Eval.EvalRunId })
const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

export const endpoints = [
  make("saveEvalSuite", {
    method: "POST",
    path: "/v1/eval-suites",
    scope: "evals:write",
    summary:
      "Create or update an agent's eval suite (upserted by agentName + name; a changed suite gets a new version). Assertions: equals, contains, notContains, regex, jsonSchema, toolCalled, costUnder, latencyUnder, stepsUnder, grounded, judge",
    body: body(Eval.SuiteRequestLoose, Eval.SuiteRequest),
    success: { 201: Json(Eval.SuiteRef, "Created"), 200: Json(Eval.SuiteRef, "Updated, or unchanged") },
    failures: [F.AgentNotFound, SuiteNotFound]
  }),
  make("listEvalSuites", {
    method: "GET",
    path: "/v1/eval-suites",
    scope: "evals:read",
    summary: "The tenant's eval suites (of one agent with agentName), by agent and name",
    query: Eval.SuiteListQuery,
    success: { 200: Json(list(Eval.SuiteView), "Suites") }
  }),
  make("getEvalSuite", {
    method: "GET",
    path: "/v1/eval-suites/:id",
    scope: "evals:read",
    summary: "An eval suite at its latest version",
    params: BySuite,
    success: { 200: Json(Eval.SuiteView, "Suite") },
    failures: [SuiteNotFound]
  }),
  make("deleteEvalSuite", {
    method: "DELETE",
    path: "/v1/eval-suites/:id",
    scope: "evals:write",
    summary: "Delete an eval suite (its eval runs stay readable)",
    params: BySuite,
    success: { 204: None("Deleted") },
    failures: [SuiteNotFound]
  }),
  make("startEvalRun", {
    method: "POST",
    path: "/v1/eval-runs",
    scope: "evals:write",
    summary:
      "Run a suite server-side against a candidate agent version (the latest when absent): each case a real run, `concurrency` at a time (4 by default)",
    body: body(Eval.EvalRunRequest),
    success: { 202: Json(Schema.Struct({ id: Schema.String }), "Started") },
    failures: [SuiteNotFound, F.AgentNotFound, F.AgentVersionNotFound]
  }),
  make("getEvalRun", {
    method: "GET",
    path: "/v1/eval-runs/:id",
    scope: "evals:read",
    summary:
      "An eval run: its status, score, cases and baseline. With gate=true a finished run that regressed answers 422 with each case's difference from the baseline run",
    params: ByEvalRun,
    query: Eval.EvalRunQuery,
    queryDescriptions: { gate: "true: answer 422 when the finished run regressed against its baseline" },
    success: { 200: Json(Eval.EvalRunView, "Eval run") },
    failures: [EvalRunNotFound, Regressed]
  }),
  make("evalRunStream", {
    method: "GET",
    path: "/v1/eval-runs/:id/stream",
    scope: "evals:read",
    summary:
      "An eval run's progress as Server-Sent Events: `started`, one `case` per finished case ({index, casesDone, casesTotal, result}), then `finished`; the stream ends there",
    params: ByEvalRun,
    success: { 200: Media("text/event-stream", "text/event-stream") },
    failures: [EvalRunNotFound]
  }),
  make("setEvalBaseline", {
    method: "POST",
    path: "/v1/eval-baselines",
    scope: "evals:write",
    summary:
      "Pin a finished eval run as its suite's baseline on a branch; an eval run on a branch without one compares with main's",
    body: body(Eval.BaselineRequest),
    success: { 201: Json(Eval.BaselineView, "Baseline") },
    failures: [SuiteNotFound, EvalRunNotFound, BaselineRefused]
  }),
  make("listEvalBaselines", {
    method: "GET",
    path: "/v1/eval-baselines",
    scope: "evals:read",
    summary: "An agent's baselines, per suite and branch (of one branch with branch)",
    query: Eval.BaselineQuery,
    success: { 200: Json(list(Eval.BaselineView), "Baselines") }
  }),
  make("giveRunFeedback", {
    method: "POST",
    path: "/v1/runs/:id/feedback",
    scope: "runs:write",
    summary:
      "Feedback on a run: a score 1-5, a comment, the output it should have given (a rehearsal replays against it)",
    params: ByRun,
    body: body(Eval.FeedbackRequest),
    success: { 201: Json(Eval.FeedbackView, "Recorded") },
    failures: [F.RunNotFound]
  }),
  make("runFeedback", {
    method: "GET",
    path: "/v1/runs/:id/feedback",
    scope: "runs:read",
    summary: "A run's feedback, oldest first",
    params: ByRun,
    success: { 200: Json(list(Eval.FeedbackView), "Feedback") },
    failures: [F.RunNotFound]
  }),
  make("agentFeedback", {
    method: "GET",
    path: "/v1/agents/:name/feedback",
    scope: "agents:read",
    summary: "An agent's feedback in figures: count, mean, thumbs up (4-5), thumbs down (1-2), the last 7 days' mean",
    params: ByAgent,
    success: { 200: Json(Eval.AgentFeedbackView, "Feedback") },
    failures: [F.AgentNotFound]
  }),
  make("rehearseRuns", {
    method: "POST",
    path: "/v1/runs/rehearse",
    scope: "runs:read",
    summary:
      "The agent's runs in the window that failed or got feedback of 2 or less, newest first, with their inputs, versions, costs and preferred outputs; replay them with POST /v1/eval-runs {rehearsal}",
    body: body(Eval.RehearseRequest),
    success: { 200: Json(list(Eval.RehearsalItem), "Runs to rehearse") },
    failures: [F.AgentNotFound]
  })
] as const
