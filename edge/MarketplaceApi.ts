// The marketplace endpoints (ADR 0059), declared as edge/Api.ts declares every other: publish and unpublish a
// listing, search listings, fork a listing's spec, invoke a listing (the run is the seller's, under its budget) and
// list invocations as buyer or seller.
import { Schema } from "effect"
import type {
  InvocationInputInvalid,
  InvocationUnfinished,
  ListingNotFound
} from "../actors/marketplace/Marketplace.ts"
import * as Api from "../schema/Api.ts"
import * as M from "../schema/Marketplace.ts"
import { body, failure, Json, make, None } from "./Endpoint.ts"
import * as F from "./Failures.ts"

export const NotListed = failure<ListingNotFound>(
  "ListingNotFound",
  404,
  "listing_not_found",
  "No published listing of that slug"
)
export const BadInput = failure<InvocationInputInvalid>(
  "InvocationInputInvalid",
  400,
  "invalid_request",
  "The input does not match the listing's input schema: each issue names the field",
  {
    render: (e) => ({
      message: e.message,
      issues: e.issues.map((message) => ({ field: message.split(" ")[0] ?? "input", message }))
    })
  }
)
export const Unfinished = failure<InvocationUnfinished>(
  "InvocationUnfinished",
  504,
  "invocation_unfinished",
  "The seller's run did not finish within the wait (LANTERN_MARKETPLACE_WAIT_SECONDS): no settlement was issued; `runId` names the run, which goes on",
  { render: (e) => ({ message: e.message, runId: e.runId }) }
)

const BySlug = Schema.Struct({ slug: M.Slug })
const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

export const endpoints = [
  make("publishListing", {
    method: "POST",
    path: "/v1/marketplace/publish",
    scope: "marketplace:publish",
    summary:
      "Publish one of the tenant's agents (its latest version) as a listing, or update its listing; the slug is `<tenant>.<agent>`",
    body: body(M.PublishRequest),
    success: { 201: Json(M.Listing, "Published"), 200: Json(M.Listing, "Updated") },
    failures: [F.AgentNotFound]
  }),
  make("listListings", {
    method: "GET",
    path: "/v1/marketplace",
    scope: "marketplace:read",
    summary: "Published listings of every tenant, by slug; `category` and `q` (words that must all appear) narrow them",
    query: M.ListingQuery,
    success: { 200: Json(list(M.Listing), "Listings") }
  }),
  make("listInvocations", {
    method: "GET",
    path: "/v1/marketplace/invocations",
    scope: "marketplace:read",
    summary: "Invocations the tenant made (`as=buyer`, the default) or served (`as=seller`), newest first",
    query: M.InvocationQuery,
    success: { 200: Json(list(M.Invocation), "Invocations") }
  }),
  make("getListing", {
    method: "GET",
    path: "/v1/marketplace/:slug",
    scope: "marketplace:read",
    summary: "A published listing",
    params: BySlug,
    success: { 200: Json(M.Listing, "Listing") },
    failures: [NotListed]
  }),
  make("unpublishListing", {
    method: "DELETE",
    path: "/v1/marketplace/:slug",
    scope: "marketplace:publish",
    summary: "Take the tenant's own listing down (its invocations stay on record)",
    params: BySlug,
    success: { 204: None("Unpublished") },
    failures: [NotListed]
  }),
  make("forkListing", {
    method: "POST",
    path: "/v1/marketplace/:slug/fork",
    scope: "agents:write",
    summary:
      "Copy a listing's spec (its published version) into the caller's tenant as a new agent (`newName`, else the listing's agent name)",
    params: BySlug,
    body: body(M.ForkRequest),
    success: { 201: Json(Api.AgentResponse, "Forked") },
    failures: [NotListed, F.AgentExists, F.AgentNotFound, F.AgentVersionNotFound, F.Conflict]
  }),
  make("invokeListing", {
    method: "POST",
    path: "/v1/marketplace/:slug/invoke",
    scope: "marketplace:invoke",
    summary:
      "Run a listing for its input: the run is in the seller's tenant under the seller's budget (402 when over); the answer holds the output and a settlement receipt signed by the deployment's receipt keys",
    params: BySlug,
    body: body(M.InvokeRequest),
    success: { 200: Json(M.Invocation, "Invoked and settled") },
    failures: [
      NotListed,
      BadInput,
      F.OverBudget,
      Unfinished,
      F.AgentNotFound,
      F.AgentVersionNotFound,
      F.IdentityDown,
      F.SigningKeyDown,
      F.WorkflowNotFound,
      // what starting a run may answer, as POST /v1/runs lists it
      F.RunNotFound,
      F.StepNotFound,
      F.NotAwaiting,
      F.AlreadyFinished,
      F.KeyReused,
      F.Conflict
    ]
  })
] as const
