// Every typed error the HTTP API answers, with its status, its code and what it means, declared once: an endpoint
// lists the failures it may answer (edge/Api.ts), and the router, the OpenAPI document and the client follow.
import { Schema } from "effect"
import type { IdentityUnavailable, NoRunIdentity } from "../actors/identity/Identity.ts"
import type { SigningKeyUnavailable } from "../actors/receipts/Keys.ts"
import type { InvalidSecretUri, SecretNotFound, SecretUnavailable } from "../actors/secrets/Secrets.ts"
import type { IsolationUnavailable } from "../actors/spawner/Backends.ts"
import type { WorkloadFinished, WorkloadNotEnded, WorkloadNotFound } from "../actors/spawner/Decider.ts"
import type { SpawnFailed, WorkloadQuotaExceeded } from "../actors/spawner/Spawner.ts"
import type { McpServerNotFound, McpUnavailable } from "../actors/tools/Mcp.ts"
import type { McpCatalogEntryNotFound } from "../actors/tools/McpCatalog.ts"
import type * as Errors from "../schema/Errors.ts"
import { failure } from "./Endpoint.ts"
import type { BadRequest, Forbidden, PayloadTooLarge, UnsupportedMediaType } from "./Http.ts"

/** No API key of that id in the caller's tenant. */
export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()("KeyNotFound", { id: Schema.String }) {
  override get message() {
    return `no API key '${this.id}'`
  }
}

/** 503s tell the client when to come back. */
const retrySoon = () => ({ "retry-after": "1" })

// ---- every request ----

export const Invalid = failure<BadRequest>(
  "BadRequest",
  400,
  "invalid_request",
  "Invalid request: each issue names the field and the reason",
  { render: (e) => ({ message: "the request is invalid", issues: e.issues }) }
)
export const Unauthenticated = failure<Errors.Unauthorized>(
  "Unauthorized",
  401,
  "unauthorized",
  "Missing, invalid, expired or revoked bearer token"
)
export const MissingScope = failure<Forbidden>(
  "Forbidden",
  403,
  "forbidden",
  "The key lacks the route's scope: `error.missingScope` names it",
  { render: (e) => ({ message: e.message, missingScope: e.missingScope }) }
)
export const TooLarge = failure<PayloadTooLarge>(
  "PayloadTooLarge",
  413,
  "payload_too_large",
  "The request body is over the limit",
  {
    render: (e) => ({ message: `the request body exceeds ${e.limit} bytes` }),
    headers: () => ({ connection: "close" })
  }
)
export const NotJson = failure<UnsupportedMediaType>(
  "UnsupportedMediaType",
  415,
  "unsupported_media_type",
  "The body is not JSON in UTF-8 (by its Content-Type)",
  { render: (e) => ({ message: e.message, issues: [{ field: "Content-Type", message: e.message }] }) }
)
export const Busy = failure<Errors.AppendConflict>(
  "AppendConflict",
  503,
  "busy",
  "Too many concurrent writes to one journal; retry",
  { headers: retrySoon }
)
export const BusDown = failure<Errors.BusUnavailable>(
  "BusUnavailable",
  503,
  "bus_unavailable",
  "The bus is unavailable; retry",
  { headers: retrySoon }
)
export const DatabaseDown = failure<Errors.DatabaseUnavailable>(
  "DatabaseUnavailable",
  503,
  "database_unavailable",
  "The database is unavailable; retry",
  { headers: retrySoon }
)
export const UnknownVersion = failure<Errors.UnknownEventVersion>(
  "UnknownEventVersion",
  500,
  "journal_unreadable",
  "A journaled event this server cannot read"
)
export const Corrupt = failure<Errors.CorruptEvent>(
  "CorruptEvent",
  500,
  "journal_unreadable",
  "A journaled event this server cannot read"
)

export const EventTooLarge = failure<Errors.EventTooLarge>(
  "EventTooLarge",
  413,
  "payload_too_large",
  "The request is too large to journal",
  {
    render: (e) => ({
      message:
        `the request is too large to journal: its event would be ${e.size} bytes, over the bus's limit of ${e.limit} bytes`
    })
  }
)
/** What any endpoint may answer, whatever it declares: input refusals, outages, an unreadable journal. */
export const standard = [Invalid, Busy, BusDown, DatabaseDown, UnknownVersion, Corrupt] as const
/** What an endpoint that needs a token may answer besides. */
export const authenticated = [Unauthenticated, MissingScope] as const
/** What an endpoint that reads a body may answer besides. */
export const withBody = [TooLarge, NotJson] as const
/** What an endpoint that writes may answer besides: its event would be over the bus's limit. */
export const writing = [EventTooLarge] as const

// ---- by endpoint ----

export const WorkflowNotFound = failure<Errors.WorkflowNotFound>(
  "WorkflowNotFound",
  404,
  "workflow_not_found",
  "No host registered this workflow"
)
export const AgentNotFound = failure<Errors.AgentNotFound>("AgentNotFound", 404, "agent_not_found", "No such agent")
export const AgentVersionNotFound = failure<Errors.AgentVersionNotFound>(
  "AgentVersionNotFound",
  404,
  "agent_version_not_found",
  "The agent has no such version"
)
export const RunNotFound = failure<Errors.RunNotFound>("RunNotFound", 404, "run_not_found", "No such run")
export const StepNotFound = failure<Errors.StepNotFound>("StepNotFound", 404, "step_not_found", "No such step")
export const KeyMissing = failure<KeyNotFound>("KeyNotFound", 404, "api_key_not_found", "No such API key")
export const SecretMissing = failure<SecretNotFound>("SecretNotFound", 404, "secret_not_found", "No such secret")
export const McpMissing = failure<McpServerNotFound>(
  "McpServerNotFound",
  404,
  "mcp_server_not_found",
  "No MCP server of that name"
)
export const McpEntryMissing = failure<McpCatalogEntryNotFound>(
  "McpCatalogEntryNotFound",
  404,
  "mcp_catalog_entry_not_found",
  "No MCP catalogue entry of that id"
)
export const McpDown = failure<McpUnavailable>(
  "McpUnavailable",
  502,
  "mcp_unavailable",
  "The MCP server could not be reached, was refused by egress rules, or failed"
)
export const AgentExists = failure<Errors.AgentAlreadyExists>(
  "AgentAlreadyExists",
  409,
  "agent_exists",
  "An agent of that name exists"
)
export const KeyReused = failure<Errors.IdempotencyKeyReused>(
  "IdempotencyKeyReused",
  409,
  "idempotency_key_reused",
  "The Idempotency-Key was used with another body"
)
export const AlreadyFinished = failure<Errors.RunAlreadyFinished>(
  "RunAlreadyFinished",
  409,
  "run_already_finished",
  "The run has finished"
)
export const NotAwaiting = failure<Errors.NotAwaitingApproval>(
  "NotAwaitingApproval",
  409,
  "not_awaiting_approval",
  "The step is not waiting for a decision (decided already, or expired)"
)
export const Conflict = failure<Errors.InvalidCommand>(
  "InvalidCommand",
  409,
  "conflict",
  "The resource's state does not allow it"
)
export const NoIdentity = failure<NoRunIdentity>("NoRunIdentity", 409, "no_identity", "The run has no identity")
export const OverBudget = failure<Errors.BudgetExceeded>(
  "BudgetExceeded",
  402,
  "budget_exceeded",
  "A hard budget cap refused it: `error.budget` names the cap, its limit, what is spent and reserved, and why",
  { render: (e) => ({ message: e.message, budget: e.refusal }) }
)
export const BadSecretUri = failure<InvalidSecretUri>(
  "InvalidSecretUri",
  400,
  "invalid_secret_uri",
  "Not a secret URI"
)
export const SecretDown = failure<SecretUnavailable>(
  "SecretUnavailable",
  503,
  "secret_unavailable",
  "The secret store is unavailable; retry",
  { headers: retrySoon }
)
export const SigningKeyDown = failure<SigningKeyUnavailable>(
  "SigningKeyUnavailable",
  503,
  "signing_key_unavailable",
  "The receipt-signing key is unavailable; retry",
  { headers: retrySoon }
)
export const IdentityDown = failure<IdentityUnavailable>(
  "IdentityUnavailable",
  503,
  "identity_unavailable",
  "The run's identity is unavailable; retry",
  { headers: retrySoon }
)

// ---- workloads (ADR 0046) ----

export const IsolationMissing = failure<IsolationUnavailable>(
  "IsolationUnavailable",
  412,
  "isolation_unavailable",
  "No configured sandbox backend provides the workload's isolation tier (`error.tier`); nothing was started",
  { render: (e) => ({ message: e.message, tier: e.tier }) }
)
export const WorkloadQuota = failure<WorkloadQuotaExceeded>(
  "WorkloadQuotaExceeded",
  429,
  "workload_quota_exceeded",
  "The tenant's concurrent workloads or spawn rate is at its limit; retry after Retry-After seconds. Nothing was started",
  { headers: (e) => ({ "retry-after": String(e.retryAfterSeconds) }) }
)
export const SpawnFailure = failure<SpawnFailed>(
  "SpawnFailed",
  502,
  "spawn_failed",
  "The sandbox or its harness could not be started; the workload is journaled as failed"
)
export const WorkloadMissing = failure<WorkloadNotFound>(
  "WorkloadNotFound",
  404,
  "workload_not_found",
  "No such workload"
)
export const WorkloadEnded = failure<WorkloadFinished>(
  "WorkloadFinished",
  409,
  "workload_finished",
  "The workload has already ended"
)
export const WorkloadRunning = failure<WorkloadNotEnded>(
  "WorkloadNotEnded",
  409,
  "workload_not_ended",
  "The workload has not ended: its receipt is issued when it exits, is terminated or fails"
)
