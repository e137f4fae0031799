// The HTTP API, declared once: every endpoint's method, path, scope, request and answer schemas and the failures it
// may answer. The router (edge/Serve.ts), the scope checks, the OpenAPI document (edge/OpenApi.ts) and the CLI's
// client (edge/cli/Client.ts) are derived from this table, so none of them can drift from another (ADR 0030).
import { Schema } from "effect"
import * as Identity from "../actors/identity/Identity.ts"
import * as Verify from "../actors/receipts/Verify.ts"
import * as Secrets from "../actors/secrets/Secrets.ts"
import * as A2a from "../schema/A2a.ts"
import * as Api from "../schema/Api.ts"
import * as Audit from "../schema/Audit.ts"
import * as Budget from "../schema/Budget.ts"
import * as Forecast from "../schema/Forecast.ts"
import * as Graph from "../schema/Graph.ts"
import { AgentName, RunId, StepId } from "../schema/Ids.ts"
import { body, Json, make, Media, None, optionalBody } from "./Endpoint.ts"
import * as ArtifactApi from "./ArtifactApi.ts"
import * as EvalApi from "./EvalApi.ts"
import * as ExperimentApi from "./ExperimentApi.ts"
import * as TaskApi from "./TaskApi.ts"
import * as MarketplaceApi from "./MarketplaceApi.ts"
import * as ChannelApi from "./ChannelApi.ts"
import * as IngestApi from "./IngestApi.ts"
import * as QueueFlowApi from "./QueueFlowApi.ts"
import * as SensorApi from "./SensorApi.ts"
import * as ScheduleApi from "./ScheduleApi.ts"
import * as F from "./Failures.ts"
import { Allowlist } from "../actors/tools/Egress.ts"
import * as Mcp from "../actors/tools/Mcp.ts"
import * as McpCatalog from "../actors/tools/McpCatalog.ts"
import * as Scopes from "./Scopes.ts"
import * as Workload from "../schema/Workload.ts"

// ---- request and answer schemas of the edge's own resources ----

const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

const Name = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e][\x20-\x7e]{0,99}$/u, {
    message: "Expected 1-100 printable ASCII characters, not starting with a space"
  })
)
export const CreateTenantRequest = Schema.Struct({ name: Name })
export const CreateKeyRequest = Schema.Struct({
  name: Name,
  scopes: Schema.Array(Schema.Literals(Scopes.SCOPES)).check(Schema.isMinLength(1)),
  expiresAt: Schema.optionalKey(Schema.NullOr(Schema.String))
})
export const KeyId = Schema.String.check(
  Schema.isPattern(/^key_[0-9a-z]{26}$/u, { message: "Expected a key id like key_01j…" })
)
export const KeyView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  scopes: Schema.Array(Schema.String),
  last4: Schema.String,
  expiresAt: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  /** The key that minted it; null for a tenant's owner key. */
  parentId: Schema.NullOr(Schema.String)
})
export const NewKey = Schema.Struct({ ...KeyView.fields, key: Schema.String })
export const Tenant = Schema.Struct({ id: Schema.String, name: Schema.String, createdAt: Schema.String })
export const NewTenant = Schema.Struct({
  tenant: Tenant,
  key: Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    key: Schema.String,
    scopes: Schema.Array(Schema.String),
    expiresAt: Schema.NullOr(Schema.String)
  })
})

/** Secrets.isName as one pattern: Secrets.NAME_PATTERN, without '..' or a trailing '.'. */
export const SecretName = Schema.String.check(
  Schema.isPattern(/^(?!.*\.\.)(?!.*\.$)[a-z0-9][a-z0-9_.-]{0,62}$/u, {
    message: `Expected a secret name matching ${Secrets.NAME_PATTERN.source}, without '..' or a trailing '.'`
  })
)
/** The body of `POST /v1/secrets`. `value` is checked by hand, so no schema message can quote it. */
export const CreateSecretRequest = Schema.Struct({ name: SecretName, value: Schema.Unknown })
/** What the document shows of it. */
const CreateSecretDoc = Schema.Struct({ name: SecretName, value: Schema.String.check(Schema.isMinLength(1)) })
export const SecretView = Schema.Struct({
  name: Schema.String,
  version: Schema.Int,
  createdAt: Schema.String,
  updatedAt: Schema.String
})

const Audience = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(512))
export const MintRequest = Schema.Struct({
  audience: Audience,
  ttlSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: Identity.MAX_TTL_SECONDS })))
})
export const IdentityVerifyRequest = Schema.Struct({
  token: Schema.String.check(Schema.isMaxLength(8192)),
  audience: Schema.optionalKey(Audience)
})
const IdentityClaims = Schema.Struct({
  iss: Schema.String,
  sub: Schema.String,
  aud: Schema.String,
  iat: Schema.Int,
  exp: Schema.Int,
  jti: Schema.String
})
export const IdentityVerdict = Schema.Struct({
  valid: Schema.Boolean,
  reason: Schema.optionalKey(
    Schema.Literals([
      "malformed",
      "bad signature",
      "expired",
      "not yet valid",
      "wrong audience",
      "kid mismatch",
      "wrong issuer",
      "unknown subject"
    ])
  ),
  message: Schema.optionalKey(Schema.String),
  runId: Schema.optionalKey(Schema.String),
  tenant: Schema.optionalKey(Schema.String),
  agent: Schema.optionalKey(Schema.String),
  claims: Schema.optionalKey(IdentityClaims)
})

/** `{receipt}` or `{receipt, journal}`: the journal as the JSONL export's text, or as an array of its lines. */
export const ReceiptVerifyRequest = Schema.Struct({
  receipt: Verify.Receipt,
  journal: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Schema.Unknown)]))
})
export const PublicKey = Schema.Struct({
  keyId: Schema.String,
  publicKey: Schema.String,
  algorithm: Schema.Literal("Ed25519"),
  createdAt: Schema.String,
  retiredAt: Schema.optionalKey(Schema.String)
})
export const ReceiptVerdict = Schema.Struct({
  valid: Schema.Boolean,
  checks: Schema.Array(Schema.Struct({ name: Schema.String, ok: Schema.Boolean, message: Schema.String }))
})

/** `limit`: 1 to 1000 in plain decimal digits; 100 when absent. */
export const DeadLetterQuery = Schema.Struct({
  limit: Schema.optionalKey(
    Schema.String.check(
      Schema.isPattern(/^(1000|[1-9]\d{0,2})$/u, { message: "Expected an integer from 1 to 1000" })
    )
  )
})
export const DeadLetterView = Schema.Struct({
  projector: Schema.String,
  stream: Schema.String,
  seq: Schema.Number,
  tenant: Schema.String,
  subject: Schema.String,
  eventType: Schema.NullOr(Schema.String),
  reason: Schema.String,
  failedAt: Schema.String
})

/** What a command to a run may be refused with: the run decider answers each of these to any command. */
const runCommand = [F.RunNotFound, F.StepNotFound, F.NotAwaiting, F.AlreadyFinished, F.KeyReused, F.Conflict] as const

// ---- path parameters ----

const ByName = Schema.Struct({ name: AgentName })
const ById = Schema.Struct({ id: RunId })
const ByStep = Schema.Struct({ id: RunId, stepId: StepId })
const ByKey = Schema.Struct({ id: KeyId })
const BySignal = Schema.Struct({ id: RunId, name: AgentName })
const BySecret = Schema.Struct({ name: SecretName })

// ---- the endpoints ----

const agents = [
  make("createAgent", {
    method: "POST",
    path: "/v1/agents",
    scope: "agents:write",
    summary: "Create an agent (version 1)",
    body: body(Api.CreateAgentRequest),
    success: { 201: Json(Api.AgentResponse, "Created") },
    failures: [F.AgentExists, F.AgentNotFound, F.Conflict]
  }),
  make("listAgents", {
    method: "GET",
    path: "/v1/agents",
    scope: "agents:read",
    summary: "List agents",
    success: { 200: Json(list(Api.AgentResponse), "Agents") }
  }),
  make("getAgent", {
    method: "GET",
    path: "/v1/agents/:name",
    scope: "agents:read",
    summary: "Get an agent",
    params: ByName,
    success: { 200: Json(Api.AgentResponse, "Agent") },
    failures: [F.AgentNotFound]
  }),
  make("updateAgent", {
    method: "PUT",
    path: "/v1/agents/:name",
    scope: "agents:write",
    summary: "Publish a new version of an agent (no-op when the spec is unchanged)",
    params: ByName,
    body: body(Api.UpdateAgentRequest),
    success: { 200: Json(Api.AgentResponse, "Agent") },
    failures: [F.AgentNotFound, F.AgentExists, F.Conflict]
  }),
  make("agentVersions", {
    method: "GET",
    path: "/v1/agents/:name/versions",
    scope: "agents:read",
    summary: "List an agent's immutable versions",
    params: ByName,
    success: { 200: Json(list(Api.AgentVersionResponse), "Versions") },
    failures: [F.AgentNotFound]
  }),
  make("setAgentWorkflow", {
    method: "PUT",
    path: "/v1/agents/:name/workflow",
    scope: "agents:write",
    summary:
      "Draw the agent as a graph workflow (ADR 0042): publishes a new version whose runs run the graph; 400 names the node and field of each problem",
    params: ByName,
    body: body(Graph.Input, Graph.Graph),
    success: { 200: Json(Api.AgentResponse, "Agent") },
    failures: [F.AgentNotFound, F.AgentExists, F.Conflict]
  })
] as const

const budgets = [
  make("setAgentBudget", {
    method: "PUT",
    path: "/v1/agents/:name/budget",
    scope: "budgets:write",
    summary: "Set the agent's budget caps (replacing the previous ones whole)",
    params: ByName,
    body: body(Budget.SetBudgetRequest),
    success: { 200: Json(Budget.BudgetResponse, "Budget") },
    failures: [F.AgentNotFound, F.Conflict]
  }),
  make("getAgentBudget", {
    method: "GET",
    path: "/v1/agents/:name/budget",
    scope: "budgets:read",
    summary: "The agent's budget: its caps and today's spend, reservations and runs",
    params: ByName,
    success: { 200: Json(Budget.BudgetResponse, "Budget") },
    failures: [F.AgentNotFound]
  }),
  make("agentUsage", {
    method: "GET",
    path: "/v1/agents/:name/usage",
    scope: "budgets:read",
    summary: "The agent's spend per UTC day",
    params: ByName,
    query: Budget.UsageQuery,
    queryDescriptions: {
      days: "UTC days back, today included (30 when absent)",
      includeEval: "true: count eval runs' cases too (left out by default)"
    },
    success: { 200: Json(Budget.UsageResponse, "Usage") },
    failures: [F.AgentNotFound]
  }),
  make("setTenantBudget", {
    method: "PUT",
    path: "/v1/budget",
    scope: "budgets:write",
    summary: "Set the tenant-wide budget caps",
    body: body(Budget.SetBudgetRequest),
    success: { 200: Json(Budget.BudgetResponse, "Budget") },
    failures: [F.Conflict]
  }),
  make("getTenantBudget", {
    method: "GET",
    path: "/v1/budget",
    scope: "budgets:read",
    summary: "The tenant-wide budget",
    success: { 200: Json(Budget.BudgetResponse, "Budget") }
  })
] as const

const runs = [
  make("createRun", {
    method: "POST",
    path: "/v1/runs",
    scope: "runs:write",
    summary:
      "Start a run of an agent's latest (or given) version, or of a code-first workflow (`workflow`) on its current code",
    headers: [{
      name: "Idempotency-Key",
      schema: Api.IdempotencyKey,
      description: "The same key again answers the run it started (200); with a different body, 409"
    }],
    body: body(Api.CreateRunRequest),
    success: {
      201: Json(Api.RunResponse, "Started"),
      200: Json(Api.RunResponse, "Already started with this Idempotency-Key")
    },
    failures: [F.OverBudget, F.AgentNotFound, F.AgentVersionNotFound, F.WorkflowNotFound, F.IdentityDown, ...runCommand]
  }),
  make("createRunStream", {
    method: "POST",
    path: "/v1/runs/stream",
    scope: "runs:write",
    summary:
      "Start a run as `POST /v1/runs` does and follow it in the same response (ADR 0082), as Server-Sent Events: a `run` frame with the run as started (what `POST /v1/runs` answers), then the run's events as `GET /v1/runs/{id}/stream` sends them (ids 1…N), ending after the terminal event. Refused before anything starts (400, 402, 404…) as `POST /v1/runs` is. The key also needs `runs:read`. After a lost connection, resume with `GET /v1/runs/{id}/stream` and Last-Event-ID.",
    headers: [{
      name: "Idempotency-Key",
      schema: Api.IdempotencyKey,
      description:
        "The same key again follows the run it started (200) from its first event; with a different body, 409"
    }],
    body: body(Api.CreateRunRequest),
    success: {
      201: Media("text/event-stream", "Started: the run, then its events"),
      200: Media("text/event-stream", "Already started with this Idempotency-Key: the run, then its events")
    },
    failures: [F.OverBudget, F.AgentNotFound, F.AgentVersionNotFound, F.WorkflowNotFound, F.IdentityDown, ...runCommand]
  }),
  make("listRuns", {
    method: "GET",
    path: "/v1/runs",
    scope: "runs:read",
    summary:
      "List runs, newest first by creation time (ties by id); `lantern doctor`'s probe runs only with agentName=lantern-doctor-probe",
    query: Api.RunListQuery,
    queryDescriptions: {
      cursor: "The previous page's nextCursor, passed back as it is (a bare run id is read as that run's position)"
    },
    success: { 200: Json(Api.RunListResponse, "Runs") }
  }),
  make("forecastRun", {
    method: "POST",
    path: "/v1/runs/forecast",
    scope: "runs:read",
    summary: "Forecast a run's tokens and cost (p10/p50/p90) from the agent version's completed runs",
    body: body(Forecast.ForecastRequest),
    success: {
      200: Json(Forecast.ForecastResponse, "Forecast"),
      402: Json(
        Forecast.ForecastResponse,
        "The forecast, when a run costing p90 would break a hard budget cap (`budget`)"
      )
    },
    failures: [F.AgentNotFound, F.AgentVersionNotFound]
  }),
  make("getRun", {
    method: "GET",
    path: "/v1/runs/:id",
    scope: "runs:read",
    summary: "Get a run",
    params: ById,
    success: { 200: Json(Api.RunResponse, "Run") },
    failures: [F.RunNotFound]
  }),
  make("runEvents", {
    method: "GET",
    path: "/v1/runs/:id/events",
    scope: "runs:read",
    summary: "The run's journal",
    params: ById,
    success: { 200: Json(list(Api.EventResponse), "Events") },
    failures: [F.RunNotFound]
  }),
  make("runStream", {
    method: "GET",
    path: "/v1/runs/:id/stream",
    scope: "runs:read",
    summary: "The run's events as Server-Sent Events, live; ends after the terminal event. Resume with Last-Event-ID.",
    params: ById,
    headers: [{
      name: "Last-Event-ID",
      schema: Api.LastEventId,
      description: "The `id` of the last event received: the stream resumes after it",
      emptyIsAbsent: true
    }],
    success: { 200: Media("text/event-stream", "text/event-stream") },
    failures: [F.RunNotFound]
  }),
  make("runTokens", {
    method: "GET",
    path: "/v1/runs/:id/tokens",
    scope: "runs:read",
    summary:
      "The live text of the run's model steps as Server-Sent Events while they stream (ADR 0061): `token` frames ({stepId, attempt, seq, text}), `reset` when a step's text so far is void (failover), then the run's terminal event; ends at once for a finished run. A preview: the journaled answer is authoritative.",
    params: ById,
    success: { 200: Media("text/event-stream", "text/event-stream") },
    failures: [F.RunNotFound]
  }),
  make("tenantStream", {
    method: "GET",
    path: "/v1/stream",
    scope: "runs:read",
    summary:
      "Every run's lifecycle events in the tenant as Server-Sent Events (data: RunActivity, no payloads), live from now; each `id` is the bus's stream sequence, and Last-Event-ID resumes after it",
    headers: [{
      name: "Last-Event-ID",
      schema: Api.LastEventId,
      description: "The `id` of the last frame received: the stream resumes after it",
      emptyIsAbsent: true
    }],
    success: { 200: Media("text/event-stream", "text/event-stream") }
  }),
  make("cancelRun", {
    method: "POST",
    path: "/v1/runs/:id/cancel",
    scope: "runs:write",
    summary: "Cancel a run and its child runs; the step in flight is interrupted",
    params: ById,
    body: optionalBody(Api.CancelRunRequest),
    success: { 200: Json(Api.RunResponse, "Run") },
    failures: runCommand
  }),
  make("approveStep", {
    method: "POST",
    path: "/v1/runs/:id/approvals/:stepId",
    scope: "runs:write",
    summary: "Approve or reject a tool call waiting for a human decision",
    params: ByStep,
    body: body(Api.ApprovalRequest),
    success: { 200: Json(Api.RunResponse, "Run") },
    failures: runCommand
  }),
  make("signalRun", {
    method: "POST",
    path: "/v1/runs/:id/signals/:name",
    scope: "runs:write",
    summary:
      "Send a workflow's run a signal: journaled as the next one of its name, for the code's next `ctx.waitForEvent(name)`, and the run woken",
    params: BySignal,
    body: body(Api.SignalRequest),
    success: { 202: Json(Api.SignalResponse, "Signal journaled") },
    failures: runCommand
  })
] as const

const receipts = [
  make("runReceipt", {
    method: "GET",
    path: "/v1/runs/:id/receipt",
    scope: "receipts:read",
    summary:
      "The run's signed receipt (docs/receipts.md); a run still going gets a partial one, signed now and not kept",
    params: ById,
    success: { 200: Json(Verify.Receipt, "Receipt") },
    failures: [F.RunNotFound, F.SigningKeyDown]
  }),
  make("runJournal", {
    method: "GET",
    path: "/v1/runs/:id/journal",
    scope: "receipts:read",
    summary:
      "The run's journal export, one canonical JSON line {n, seq, envelope} per event: exactly what the receipt's digest covers",
    params: ById,
    success: { 200: Media("application/x-ndjson", "JSON lines") },
    failures: [F.RunNotFound]
  }),
  make("verifyReceipt", {
    method: "POST",
    path: "/v1/receipts/verify",
    scope: null,
    summary:
      "Verify a receipt (no token; any origin): its signature under the published keys, the `journal` sent with it, and, for a receipt Lantern signed, its run's stored journal. Always 200 with `valid` and every check",
    body: body(ReceiptVerifyRequest),
    success: { 200: Json(ReceiptVerdict, "Verdict: every check with its outcome") },
    failures: [F.SigningKeyDown]
  }),
  make("receiptKeys", {
    method: "GET",
    path: "/.well-known/lantern-receipts",
    scope: null,
    summary: "The public keys that verify receipts, retired ones included (no token; any origin)",
    success: { 200: Json(Schema.Struct({ keys: Schema.Array(PublicKey) }), "Keys") },
    failures: [F.SigningKeyDown],
    cacheControl: "public, max-age=60"
  }),
  make("rotateSigningKey", {
    method: "POST",
    path: "/v1/admin/signing-keys/rotate",
    scope: "admin",
    summary: "Make a new receipt-signing key and retire the current one, which stays published (scope `admin`)",
    success: {
      200: Json(
        Schema.Struct({ current: PublicKey, keys: Schema.Array(PublicKey) }),
        "The new key and every published key"
      )
    },
    failures: [F.SigningKeyDown]
  })
] as const

const identity = [
  make("mintIdentityToken", {
    method: "POST",
    path: "/v1/runs/:id/identity-token",
    scope: "runs:write",
    summary:
      "A token of the running run's own Ed25519 identity for `audience` (an EdDSA JWT; ttlSeconds 1-3600, default 300); 409 once the run finished",
    params: ById,
    body: body(MintRequest),
    success: { 200: Json(Schema.Struct({ token: Schema.String, expiresAt: Schema.String }), "Token") },
    failures: [F.RunNotFound, F.AlreadyFinished, F.NoIdentity, F.IdentityDown]
  }),
  make("identityIssuer", {
    method: "GET",
    path: "/.well-known/lantern-agent-identity",
    scope: null,
    summary: "How run tokens are issued and where to verify them (no token; any origin)",
    success: {
      200: Json(
        Schema.Struct({
          issuer: Schema.String,
          algorithm: Schema.String,
          tokenFormat: Schema.String,
          verify: Schema.String
        }),
        "Issuer metadata"
      )
    },
    cacheControl: "public, max-age=300"
  }),
  make("verifyIdentityToken", {
    method: "POST",
    path: "/.well-known/lantern-agent-identity/verify",
    scope: null,
    summary:
      "Verify a run's token against the public key journaled on its RunStarted (no token; any origin). Always 200: `valid`, and the run, tenant, agent and claims, or the `reason`",
    body: body(IdentityVerifyRequest),
    success: { 200: Json(IdentityVerdict, "Verdict") }
  })
] as const

const access = [
  make("createTenant", {
    method: "POST",
    path: "/v1/tenants",
    scope: "admin",
    summary:
      "Create a tenant and its first owner key (scope `*`; the key is shown only here). Needs `admin`, which only the operator tenant's keys hold",
    body: body(CreateTenantRequest),
    success: { 201: Json(NewTenant, "The tenant and its owner key") },
    failures: [F.Conflict]
  }),
  make("createApiKey", {
    method: "POST",
    path: "/v1/api-keys",
    scope: "keys:write",
    summary:
      "Create an API key with scopes (at most the caller's) and an optional expiry; `key` is shown only in this answer",
    body: body(CreateKeyRequest),
    success: { 201: Json(NewKey, "The key") },
    failures: [F.Conflict]
  }),
  make("listApiKeys", {
    method: "GET",
    path: "/v1/api-keys",
    scope: "keys:read",
    summary: "List the tenant's live API keys (never their value)",
    success: { 200: Json(list(KeyView), "Keys") }
  }),
  make("revokeApiKey", {
    method: "DELETE",
    path: "/v1/api-keys/:id",
    scope: "keys:write",
    summary: "Revoke an API key: it stops working at once on this host, within 30 s on others",
    params: ByKey,
    success: { 204: None("Revoked") },
    failures: [F.KeyMissing]
  }),
  make("createSecret", {
    method: "POST",
    path: "/v1/secrets",
    scope: "secrets:write",
    summary:
      "Store a secret (`value`: at most 64 KiB, never shown again); the same name again stores its next version (200)",
    body: body(CreateSecretRequest, CreateSecretDoc),
    success: {
      201: Json(SecretView, "The new secret's metadata"),
      200: Json(SecretView, "The next version's metadata")
    },
    failures: [F.SecretDown]
  }),
  make("listSecrets", {
    method: "GET",
    path: "/v1/secrets",
    scope: "secrets:read",
    summary: "List the tenant's secrets: metadata only, never values",
    success: { 200: Json(list(SecretView), "Secrets") },
    failures: [F.SecretDown]
  }),
  make("getSecret", {
    method: "GET",
    path: "/v1/secrets/:name",
    scope: "secrets:read",
    summary: "A secret's metadata (never its value)",
    params: BySecret,
    success: { 200: Json(SecretView, "Secret") },
    failures: [F.SecretMissing, F.SecretDown]
  }),
  make("deleteSecret", {
    method: "DELETE",
    path: "/v1/secrets/:name",
    scope: "secrets:write",
    summary: "Delete a secret and its ciphertext; runs naming it fail with `secret_not_found`",
    params: BySecret,
    success: { 204: None("Deleted") },
    failures: [F.SecretMissing, F.SecretDown]
  }),
  make("rewrapSecrets", {
    method: "POST",
    path: "/v1/admin/secrets/rewrap",
    scope: "admin",
    summary:
      "Re-seal every secret under the current KEK after a rotation (scope `admin`); then LANTERN_KEK_PREVIOUS can go",
    success: {
      200: Json(
        Schema.Struct({ rewrapped: Schema.Int, total: Schema.Int, unreadable: Schema.Array(Schema.String) }),
        "Counts"
      )
    },
    failures: [F.SecretDown]
  }),
  make("listAudit", {
    method: "GET",
    path: "/v1/audit",
    scope: "audit:read",
    summary:
      "The tenant's audit log, newest first: scope denials, API key changes, receipt issuance (`audit:read`). Failed authentications have no tenant and are the operator's (journal `lantern.audit._unknown.>`)",
    query: Audit.AuditQuery,
    queryDescriptions: {
      since: "An ISO-8601 day or time with offset: entries at or after it",
      cursor: "The previous page's nextCursor"
    },
    success: { 200: Json(Audit.AuditPage, "Audit entries") }
  }),
  make("listDeadLetters", {
    method: "GET",
    path: "/v1/admin/dead-letters",
    scope: "admin",
    summary:
      "Events the projectors skipped because they could not decode or store them, every tenant's, newest first, with the total (scope `admin`; never a payload; ADR 0022)",
    query: DeadLetterQuery,
    queryDescriptions: { limit: "How many, newest first (100 when absent), in plain decimal digits" },
    success: {
      200: Json(Schema.Struct({ items: Schema.Array(DeadLetterView), total: Schema.Number }), "Dead letters")
    }
  })
] as const

const egress = [
  make("getEgress", {
    method: "GET",
    path: "/v1/egress",
    scope: "agents:read",
    summary: "The hosts the tenant's HTTP tools may call (empty: none)",
    success: { 200: Json(Allowlist, "Allowlist") },
    failures: []
  }),
  make("putEgress", {
    method: "PUT",
    path: "/v1/egress",
    scope: "agents:write",
    summary:
      "Replace the hosts the tenant's HTTP tools may call: `host`, `*.domain`, either with `:port`; private, loopback and metadata addresses stay refused",
    body: body(Allowlist),
    success: { 200: Json(Allowlist, "Allowlist") },
    failures: []
  })
] as const

const ByServer = Schema.Struct({ name: Mcp.ServerName })

const mcp = [
  make("registerMcpServer", {
    method: "POST",
    path: "/v1/mcp/servers",
    scope: "agents:write",
    summary:
      "Register (or refresh) an MCP server, over streamable HTTP or as a stdio command run in a sandbox tier: Lantern connects, lists its tools and keeps them; agents attach it with `mcp` in their spec",
    body: body(Mcp.NewServer),
    success: { 201: Json(Mcp.ServerView, "Registered, with its tools") },
    failures: [F.McpDown]
  }),
  make("listMcpServers", {
    method: "GET",
    path: "/v1/mcp/servers",
    scope: "agents:read",
    summary: "The tenant's MCP servers and their tools",
    success: { 200: Json(Schema.Struct({ items: Schema.Array(Mcp.ServerView) }), "Servers") },
    failures: []
  }),
  make("mcpServerTools", {
    method: "GET",
    path: "/v1/mcp/servers/:name/tools",
    scope: "agents:read",
    summary: "An MCP server's tools as listed when it was registered",
    params: ByServer,
    success: { 200: Json(Schema.Struct({ items: Schema.Array(Mcp.ServerTool) }), "Tools") },
    failures: [F.McpMissing]
  }),
  make("deleteMcpServer", {
    method: "DELETE",
    path: "/v1/mcp/servers/:name",
    scope: "agents:write",
    summary: "Forget an MCP server; agent versions that pinned its tools answer their calls with an error",
    params: ByServer,
    success: { 204: None("Deleted") },
    failures: [F.McpMissing]
  }),
  make("listMcpCatalog", {
    method: "GET",
    path: "/v1/mcp/catalog",
    scope: "agents:read",
    summary:
      "Well-known MCP servers to attach in one call (built in, plus the operator's LANTERN_MCP_CATALOG entries): each with what the caller must supply",
    success: { 200: Json(Schema.Struct({ items: Schema.Array(McpCatalog.CatalogEntry) }), "Catalogue") }
  }),
  make("attachMcpCatalogEntry", {
    method: "POST",
    path: "/v1/mcp/catalog/:id/attach",
    scope: "agents:write",
    summary:
      "Register a catalogue entry's server for the tenant (named `name`, else the entry's id) with the caller's env or header secrets, extra args and tier",
    params: Schema.Struct({ id: Mcp.ServerName }),
    body: body(McpCatalog.AttachRequest),
    success: { 201: Json(Mcp.ServerView, "Registered, with its tools") },
    failures: [F.McpEntryMissing, F.McpDown]
  })
] as const

/** `tenant`: whose agent, when more than one tenant made an agent of that name public. */
export const CardQuery = Schema.Struct({
  tenant: Schema.optionalKey(
    Schema.String.check(Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,62}$/u, { message: "Expected a tenant id" }))
  )
})

const a2a = [
  make("setAgentVisibility", {
    method: "PUT",
    path: "/v1/agents/:name/visibility",
    scope: "agents:write",
    summary:
      "Make an agent public or private (ADR 0045; private by default): a public agent has an A2A card anyone may read and answers A2A messages sent with its tenant's keys",
    params: ByName,
    body: body(A2a.Visibility),
    success: { 200: Json(A2a.Visibility, "Visibility") },
    failures: [F.AgentNotFound]
  }),
  make("agentCard", {
    method: "GET",
    path: "/v1/agents/:name/card",
    scope: null,
    summary:
      "A public agent's A2A AgentCard (no token; any origin); 404 unless the agent is public. `tenant` picks one when several tenants publish the name",
    params: ByName,
    query: CardQuery,
    queryDescriptions: {
      tenant: "The agent's tenant (needed only when several tenants publish an agent of that name)"
    },
    success: { 200: Json(A2a.AgentCard, "Agent card") },
    failures: [F.AgentNotFound]
  }),
  make("deploymentCard", {
    method: "GET",
    path: "/.well-known/agent-card.json",
    scope: null,
    summary: "The deployment's A2A AgentCard (no token; any origin): its public agents as skills",
    success: { 200: Json(A2a.AgentCard, "Agent card") }
  })
] as const

// ---- workloads (ADR 0046) ----

/** `POST /v1/workloads`: the spec (agent.yaml as JSON), and the workload's input (LANTERN_INPUT). */
export const CreateWorkloadRequest = Schema.Struct({
  ...Workload.WorkloadSpec.fields,
  input: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(65_536)))
})
export const WorkloadView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  state: Workload.WorkloadState,
  isolation: Workload.Tier,
  backend: Schema.NullOr(Schema.String),
  host: Schema.NullOr(Schema.String),
  exitCode: Schema.NullOr(Schema.Int),
  reason: Schema.NullOr(Schema.String),
  usage: Schema.NullOr(Workload.Usage),
  enforced: Schema.Array(Schema.String),
  secretsVended: Schema.Array(Schema.String),
  egress: Schema.Array(
    Schema.Struct({ host: Schema.String, port: Schema.Int, allowed: Schema.Boolean, detail: Schema.String })
  ),
  heartbeats: Schema.Int,
  /** Starts so far: 1, more when an `idempotent` workload was started again after its harness was lost. */
  attempt: Schema.Int,
  /** Model calls the workload made through its harness (ADR 0062), and their cost in USD. */
  modelCalls: Schema.Int,
  costUsd: Schema.Number,
  createdAt: Schema.NullOr(Schema.String),
  createdBy: Schema.NullOr(Schema.String)
})
const ByWorkload = Schema.Struct({
  id: Schema.String.check(Schema.isPattern(/^wl_[0-9a-z]{26}$/u, { message: "Expected a workload id like wl_01j…" }))
})

const workloads = [
  make("createWorkload", {
    method: "POST",
    path: "/v1/workloads",
    scope: "workloads:write",
    summary:
      "Start a workload (an AgentSpec: command, isolation tier, limits, egress rules, secrets) in a sandbox that provides its tier; 412 `isolation_unavailable` when none does",
    body: body(CreateWorkloadRequest),
    success: { 201: Json(WorkloadView, "Started") },
    failures: [F.IsolationMissing, F.WorkloadQuota, F.SpawnFailure]
  }),
  make("listWorkloads", {
    method: "GET",
    path: "/v1/workloads",
    scope: "workloads:read",
    summary: "The tenant's workloads, newest first",
    success: { 200: Json(list(WorkloadView), "Workloads") }
  }),
  make("getWorkload", {
    method: "GET",
    path: "/v1/workloads/:id",
    scope: "workloads:read",
    summary: "A workload: state, backend, exit code, usage, secrets vended (names), egress decisions",
    params: ByWorkload,
    success: { 200: Json(WorkloadView, "Workload") },
    failures: [F.WorkloadMissing]
  }),
  make("workloadEvents", {
    method: "GET",
    path: "/v1/workloads/:id/events",
    scope: "workloads:read",
    summary: "The workload's journal",
    params: ByWorkload,
    success: { 200: Json(list(Api.EventResponse), "Events") },
    failures: [F.WorkloadMissing]
  }),
  make("workloadLogs", {
    method: "GET",
    path: "/v1/workloads/:id/logs",
    scope: "workloads:read",
    summary:
      "The workload's stdout and stderr as Server-Sent Events (`event: output`, data `{stream, text}`, id its position in the journal), following it until it ends (`event: end`, data the workload). Resume with Last-Event-ID.",
    params: ByWorkload,
    headers: [{
      name: "Last-Event-ID",
      schema: Api.LastEventId,
      description: "The `id` of the last frame received: the stream resumes after it",
      emptyIsAbsent: true
    }],
    success: { 200: Media("text/event-stream", "text/event-stream") },
    failures: [F.WorkloadMissing]
  }),
  make("terminateWorkload", {
    method: "POST",
    path: "/v1/workloads/:id/terminate",
    scope: "workloads:write",
    summary: "Stop a running workload (its harness kills it and reports the end); 409 when it has already ended",
    params: ByWorkload,
    success: { 200: Json(WorkloadView, "Terminated") },
    failures: [F.WorkloadMissing, F.WorkloadEnded]
  }),
  make("workloadReceipt", {
    method: "GET",
    path: "/v1/workloads/:id/receipt",
    scope: "workloads:read",
    summary:
      "The ended workload's signed receipt, in the run receipts' format with `subject: \"workload\"` (docs/receipts.md, ADR 0062): issued once when it ends, 409 `workload_not_ended` before",
    params: ByWorkload,
    success: { 200: Json(Verify.Receipt, "Receipt") },
    failures: [F.WorkloadMissing, F.WorkloadRunning, F.SigningKeyDown]
  }),
  make("workloadJournal", {
    method: "GET",
    path: "/v1/workloads/:id/journal",
    scope: "workloads:read",
    summary:
      "The workload's journal export, one canonical JSON line {n, seq, envelope} per event: exactly what its receipt's digest covers",
    params: ByWorkload,
    success: { 200: Media("application/x-ndjson", "JSON lines") },
    failures: [F.WorkloadMissing]
  })
] as const

const all = [
  ...agents,
  ...budgets,
  ...runs,
  ...receipts,
  ...identity,
  ...access,
  ...egress,
  ...mcp,
  ...a2a,
  ...workloads,
  ...EvalApi.endpoints,
  ...ExperimentApi.endpoints,
  ...MarketplaceApi.endpoints,
  ...ChannelApi.endpoints,
  ...IngestApi.endpoints,
  ...TaskApi.endpoints,
  ...SensorApi.endpoints,
  ...QueueFlowApi.endpoints,
  ...ArtifactApi.endpoints,
  ...ScheduleApi.endpoints
] as const

type All = typeof all[number]

/** Every endpoint by name. */
export const endpoints = Object.fromEntries(all.map((e) => [e.name, e])) as unknown as {
  readonly [E in All as E["name"]]: E
}
export type Endpoints = typeof endpoints
export type Name = keyof Endpoints

/** Every endpoint, in the order the document lists them. */
export const every: ReadonlyArray<All> = all
