// The A/B experiment endpoints (ADR 0058), declared as edge/Api.ts declares every other: start an experiment between
// two versions of an agent, read it with each arm's figures, conclude it. Scopes agents:read and agents:write.
import { Schema } from "effect"
import * as Experiment from "../schema/Experiment.ts"
import { body, failure, Json, make, optionalBody } from "./Endpoint.ts"
import * as F from "./Failures.ts"

export const ExperimentNotFound = failure<Experiment.ExperimentNotFound>(
  "ExperimentNotFound",
  404,
  "experiment_not_found",
  "No such experiment"
)
export const ExperimentRefused = failure<Experiment.ExperimentRefused>(
  "ExperimentRefused",
  409,
  "experiment_refused",
  "The agent already runs an experiment: conclude it first"
)

const ById = Schema.Struct({ id: Experiment.ExperimentId })
const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

export const endpoints = [
  make("startExperiment", {
    method: "POST",
    path: "/v1/experiments",
    scope: "agents:write",
    summary:
      "Start an A/B experiment: while it runs, every new run of the agent without a pinned agentVersion gets control's or the variant's version by an FNV-1a hash of its Idempotency-Key (else its run id), trafficPercent% the variant; the arm is journaled on the run's RunStarted",
    body: body(Experiment.ExperimentRequest),
    success: { 201: Json(Experiment.ExperimentView, "Started") },
    failures: [F.AgentNotFound, ExperimentRefused]
  }),
  make("listExperiments", {
    method: "GET",
    path: "/v1/experiments",
    scope: "agents:read",
    summary: "The tenant's experiments (of one agent with agentName), oldest first, without figures",
    query: Experiment.ExperimentListQuery,
    success: { 200: Json(list(Experiment.ExperimentView), "Experiments") },
    failures: [F.AgentNotFound]
  }),
  make("getExperiment", {
    method: "GET",
    path: "/v1/experiments/:id",
    scope: "agents:read",
    summary:
      "An experiment with each arm's figures (runs, success rate, cost, score) and the variant's lift; a running one that auto-promotes is concluded here once its variant leads by more than minLift over minRuns",
    params: ById,
    success: { 200: Json(Experiment.ExperimentView, "Experiment") },
    failures: [ExperimentNotFound]
  }),
  make("concludeExperiment", {
    method: "POST",
    path: "/v1/experiments/:id/conclude",
    scope: "agents:write",
    summary:
      "End an experiment: the winner's version (the leading arm's, control on a tie or without scores, when winner is absent) becomes the agent's current version; concluding again changes nothing",
    params: ById,
    body: optionalBody(Experiment.ConcludeRequest),
    success: { 200: Json(Experiment.ExperimentView, "Concluded") },
    failures: [ExperimentNotFound]
  })
] as const
