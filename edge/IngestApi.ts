// The declared endpoints of NATS ingest (ADR 0051), spread into the API's table (edge/Api.ts): the rules that route
// ingested events to runs, and what the router could not accept.
import { Schema } from "effect"
import type { RuleNotFound } from "../actors/ingest/Ingest.ts"
import * as Ingest from "../schema/Ingest.ts"
import { body, failure, Json, make, None } from "./Endpoint.ts"
import * as F from "./Failures.ts"

export const RuleMissing = failure<RuleNotFound>("RuleNotFound", 404, "rule_not_found", "No such ingest rule")

const ByRule = Schema.Struct({
  id: Schema.String.check(Schema.isPattern(/^rule_[0-9a-z]{26}$/u, { message: "Expected a rule id like rule_01j…" }))
})

export const DeadQuery = Schema.Struct({
  source: Schema.optionalKey(Ingest.Token),
  limit: Schema.optionalKey(
    Schema.String.check(Schema.isPattern(/^(1000|[1-9]\d{0,2})$/u, { message: "Expected an integer from 1 to 1000" }))
  )
})

export const endpoints = [
  make("createIngestRule", {
    method: "POST",
    path: "/v1/ingest/rules",
    scope: "ingest:write",
    summary:
      "Route events published on lantern.ingest.<tenant>.<source> (and of `type`, when given) to runs of `agentName`, their input from `inputTemplate`; `action: record` only records them",
    body: body(Ingest.NewRule),
    success: { 201: Json(Ingest.RuleView, "Created") },
    failures: [F.AgentNotFound]
  }),
  make("listIngestRules", {
    method: "GET",
    path: "/v1/ingest/rules",
    scope: "ingest:read",
    summary: "The tenant's ingest rules",
    success: { 200: Json(Schema.Struct({ items: Schema.Array(Ingest.RuleView) }), "Rules") }
  }),
  make("deleteIngestRule", {
    method: "DELETE",
    path: "/v1/ingest/rules/:id",
    scope: "ingest:write",
    summary: "Delete an ingest rule: events of its source are still accepted (and deduplicated), not routed by it",
    params: ByRule,
    success: { 204: None("Deleted") },
    failures: [RuleMissing]
  }),
  make("listIngestDead", {
    method: "GET",
    path: "/v1/ingest/dead",
    scope: "ingest:read",
    summary:
      "Messages of the tenant's ingest subjects that broke the contract, oldest first, each with the field at fault, the reason and the message as published; `total` counts them all",
    query: DeadQuery,
    queryDescriptions: { source: "Only this source's", limit: "How many (100 when absent), in plain decimal digits" },
    success: {
      200: Json(Schema.Struct({ items: Schema.Array(Ingest.DeadLetter), total: Schema.Number }), "Dead letters")
    }
  }),
  make("listIngestSources", {
    method: "GET",
    path: "/v1/ingest/sources",
    scope: "ingest:read",
    summary: "Per source of the tenant: events accepted (each eventId once, for good) and dead letters",
    success: { 200: Json(Schema.Struct({ items: Schema.Array(Ingest.SourceStats) }), "Sources") }
  })
] as const
