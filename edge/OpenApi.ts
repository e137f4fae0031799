// The OpenAPI 3.1 document of /v1, generated from the same Schemas that decode requests, so the document
// cannot drift from what the server accepts.
import { Schema } from "effect"
import * as Api from "../schema/Api.ts"
import { AgentName, RunId, StepId } from "../schema/Ids.ts"
import * as Audit from "../schema/Audit.ts"
import * as Forecast from "../schema/Forecast.ts"
import * as Budget from "../schema/Budget.ts"
import * as Verify from "../actors/receipts/Verify.ts"
import { CreateKeyRequest, CreateTenantRequest } from "./TenantRoutes.ts"
import { CreateSecretDoc } from "./SecretRoutes.ts"
import { DeadLetterView } from "./DeadLetterRoutes.ts"
import { MintRequest, VerifyRequest as IdentityVerifyRequest } from "./IdentityRoutes.ts"
import { ListQuery as AuditListQuery } from "./AuditRoutes.ts"
import { MAX_BODY_BYTES } from "./Http.ts"

const NON_FINITE = ["Infinity", "-Infinity", "NaN"]
const isNonFinite = (s: unknown) =>
  typeof s === "object" && s !== null && Array.isArray((s as { enum?: unknown }).enum) &&
  (s as { enum: Array<unknown> }).enum.every((v) => NON_FINITE.includes(v as string))

/**
 * Drops the "NaN"/"Infinity" strings Effect's JSON codec writes for a `Schema.Number`: the edge decodes a
 * parsed body against the schema's type, which refuses those strings (and JSON has no such numbers), and no
 * answer carries them. This API's own schemas use `Schema.Finite`, which also keeps their ranges; this covers
 * the schemas of other modules (budget refusals, receipts).
 */
const finite = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(finite)
  if (v === null || typeof v !== "object") return v
  const node: Record<string, unknown> = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, finite(x)]))
  if (!Array.isArray(node["anyOf"]) || !node["anyOf"].some(isNonFinite)) return node
  const { anyOf, ...rest } = node
  const kept = (anyOf as Array<unknown>).filter((s) => !isNonFinite(s))
  return kept.length === 1 ? { ...rest, ...(kept[0] as object) } : { ...rest, anyOf: kept }
}

const schemaOf = (s: Schema.Top) => {
  const doc = Schema.toJsonSchemaDocument(s)
  return finite({
    ...doc.schema,
    ...(Object.keys(doc.definitions ?? {}).length > 0 ? { $defs: doc.definitions } : {})
  }) as Record<string, unknown>
}

/** A parameter's schema is its decoded value: a number sent as text is documented as the integer and its range. */
const valueOf = (s: Schema.Top) => schemaOf(Schema.toType(s))
const pathParam = (name: string, s: Schema.Top) => ({ name, in: "path", required: true, schema: valueOf(s) })
const headerParam = (name: string, s: Schema.Top, description: string) => ({
  name,
  in: "header",
  required: false,
  schema: valueOf(s),
  description
})
/** The query parameters of a query Schema, one per field, with optional descriptions. */
const queryParams = (s: Schema.Top, descriptions: Record<string, string> = {}) => {
  const doc = valueOf(s) as { properties: Record<string, unknown>; required?: Array<string> }
  return Object.entries(doc.properties).map(([name, schema]) => ({
    name,
    in: "query",
    required: doc.required?.includes(name) ?? false,
    schema,
    ...(descriptions[name] === undefined ? {} : { description: descriptions[name] })
  }))
}

const jsonBody = (s: Schema.Top) => ({ content: { "application/json": { schema: schemaOf(s) } } })
const ok = (description: string, s: Schema.Top) => ({ description, ...jsonBody(s) })
const errors = {
  "400": ok("Invalid request: each issue names the field and the reason", Api.ErrorResponse),
  "401": ok("Missing, invalid, expired or revoked bearer token", Api.ErrorResponse),
  "403": ok("The key lacks the route's scope: `error.missingScope` names it", Api.ErrorResponse),
  "503": ok("Bus or database unavailable; retry", Api.ErrorResponse)
}
const tooLarge = ok(`The request body exceeds ${MAX_BODY_BYTES} bytes`, Api.ErrorResponse)
const internal = ok("Internal error: the body tells nothing of the cause, which the server logs", Api.ErrorResponse)
const notFound = { "404": ok("Not found", Api.ErrorResponse) }
const conflict = { "409": ok("Conflict", Api.ErrorResponse) }
const overBudget = {
  "402": ok(
    "A hard budget cap refused it: `error.budget` names the cap, its limit, what is spent and reserved, and why",
    Api.ErrorResponse
  )
}
const list = (s: Schema.Top) => Schema.Struct({ items: Schema.Array(s as Schema.Codec<unknown>) })
const nameParam = pathParam("name", AgentName)
const PublicKeySchema = Schema.Struct({
  keyId: Schema.String,
  publicKey: Schema.String,
  algorithm: Schema.Literal("Ed25519"),
  createdAt: Schema.String,
  retiredAt: Schema.optionalKey(Schema.String)
})
const Verdict = Schema.Struct({
  valid: Schema.Boolean,
  checks: Schema.Array(Schema.Struct({ name: Schema.String, ok: Schema.Boolean, message: Schema.String }))
})
const VerifyBody = Schema.Struct({
  receipt: Verify.Receipt,
  journal: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Schema.Unknown)]))
})
const KeyView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  scopes: Schema.Array(Schema.String),
  last4: Schema.String,
  expiresAt: Schema.NullOr(Schema.String),
  createdAt: Schema.String
})
const NewKey = Schema.Struct({ ...KeyView.fields, key: Schema.String })
const SecretView = Schema.Struct({
  name: Schema.String,
  version: Schema.Int,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
/** Secrets.isName as one pattern: Secrets.NAME_PATTERN, without '..' or a trailing '.'. */
export const SecretNamePattern = Schema.String.check(
  Schema.isPattern(/^(?!.*\.\.)(?!.*\.$)[a-z0-9][a-z0-9_.-]{0,62}$/u)
)
const secretParam = pathParam("name", SecretNamePattern)
const CreateSecretBody = Schema.Struct({ ...CreateSecretDoc.fields, name: SecretNamePattern })
const TenantSchema = Schema.Struct({ id: Schema.String, name: Schema.String, createdAt: Schema.String })
const idParam = pathParam("id", RunId)
const IdentityClaims = Schema.Struct({
  iss: Schema.String,
  sub: Schema.String,
  aud: Schema.String,
  iat: Schema.Int,
  exp: Schema.Int,
  jti: Schema.String
})
const IdentityVerdict = Schema.Struct({
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

type Operation = { readonly requestBody?: unknown; readonly responses: object }

/** Every operation documents 500, and 413 when it takes a body (every body is read through Http.bodyOr). */
const withStandardResponses = <D extends { readonly paths: Record<string, Record<string, Operation>> }>(doc: D): D => {
  const standard = (op: Operation) => ({
    ...(op.requestBody === undefined ? {} : { "413": tooLarge }),
    "500": internal,
    ...op.responses
  })
  return {
    ...doc,
    paths: Object.fromEntries(
      Object.entries(doc.paths).map(([path, item]) => [
        path,
        Object.fromEntries(Object.entries(item).map(([method, op]) => [method, { ...op, responses: standard(op) }]))
      ])
    )
  }
}

export const document = withStandardResponses({
  openapi: "3.1.0",
  info: {
    title: "Lantern API",
    version: "1",
    description:
      "Durable runs of AI agents. Every /v1 route but `POST /v1/receipts/verify` needs `Authorization: Bearer <token>`."
  },
  components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  security: [{ bearer: [] }],
  paths: {
    "/v1/agents": {
      post: {
        summary: "Create an agent (version 1)",
        requestBody: jsonBody(Api.CreateAgentRequest),
        responses: { "201": ok("Created", Api.AgentResponse), ...errors, ...conflict }
      },
      get: { summary: "List agents", responses: { "200": ok("Agents", list(Api.AgentResponse)), ...errors } }
    },
    "/v1/agents/{name}": {
      get: {
        summary: "Get an agent",
        parameters: [nameParam],
        responses: { "200": ok("Agent", Api.AgentResponse), ...errors, ...notFound }
      },
      put: {
        summary: "Publish a new version of an agent (no-op when the spec is unchanged)",
        parameters: [nameParam],
        requestBody: jsonBody(Api.UpdateAgentRequest),
        responses: { "200": ok("Agent", Api.AgentResponse), ...errors, ...notFound }
      }
    },
    "/v1/agents/{name}/versions": {
      get: {
        summary: "List an agent's immutable versions",
        parameters: [nameParam],
        responses: { "200": ok("Versions", list(Api.AgentVersionResponse)), ...errors, ...notFound }
      }
    },
    "/v1/agents/{name}/budget": {
      get: {
        summary: "The agent's budget: its caps and today's spend, reservations and runs",
        parameters: [nameParam],
        responses: { "200": ok("Budget", Budget.BudgetResponse), ...errors, ...notFound }
      },
      put: {
        summary: "Set the agent's budget caps (replacing the previous ones whole)",
        parameters: [nameParam],
        requestBody: jsonBody(Budget.SetBudgetRequest),
        responses: { "200": ok("Budget", Budget.BudgetResponse), ...errors, ...notFound }
      }
    },
    "/v1/agents/{name}/usage": {
      get: {
        summary: "The agent's spend per UTC day",
        parameters: [
          nameParam,
          ...queryParams(Budget.UsageQuery, { days: "UTC days back, today included (30 when absent)" })
        ],
        responses: { "200": ok("Usage", Budget.UsageResponse), ...errors, ...notFound }
      }
    },
    "/v1/budget": {
      get: { summary: "The tenant-wide budget", responses: { "200": ok("Budget", Budget.BudgetResponse), ...errors } },
      put: {
        summary: "Set the tenant-wide budget caps",
        requestBody: jsonBody(Budget.SetBudgetRequest),
        responses: { "200": ok("Budget", Budget.BudgetResponse), ...errors }
      }
    },
    "/v1/runs": {
      post: {
        summary: "Start a run of an agent's latest (or given) version",
        parameters: [
          headerParam(
            "Idempotency-Key",
            Api.IdempotencyKey,
            "The same key again answers the run it started (200); with a different body, 409"
          )
        ],
        requestBody: jsonBody(Api.CreateRunRequest),
        responses: {
          "201": ok("Started", Api.RunResponse),
          "200": ok("Already started with this Idempotency-Key", Api.RunResponse),
          ...errors,
          ...overBudget,
          ...notFound,
          ...conflict
        }
      },
      get: {
        summary:
          "List runs, newest first by creation time (ties by id); `lantern doctor`'s probe runs only with agentName=lantern-doctor-probe",
        parameters: queryParams(Api.RunListQuery, {
          cursor: "The previous page's nextCursor, passed back as it is (a bare run id is read as that run's position)"
        }),
        responses: { "200": ok("Runs", Api.RunListResponse), ...errors }
      }
    },
    "/v1/runs/forecast": {
      post: {
        summary: "Forecast a run's tokens and cost (p10/p50/p90) from the agent version's completed runs",
        requestBody: jsonBody(Forecast.ForecastRequest),
        responses: {
          "200": ok("Forecast", Forecast.ForecastResponse),
          "402": ok(
            "The forecast, when a run costing p90 would break a hard budget cap (`budget`)",
            Forecast.ForecastResponse
          ),
          ...errors,
          ...notFound
        }
      }
    },
    "/v1/runs/{id}": {
      get: {
        summary: "Get a run",
        parameters: [idParam],
        responses: { "200": ok("Run", Api.RunResponse), ...errors, ...notFound }
      }
    },
    "/v1/runs/{id}/events": {
      get: {
        summary: "The run's journal",
        parameters: [idParam],
        responses: { "200": ok("Events", list(Api.EventResponse)), ...errors, ...notFound }
      }
    },
    "/v1/runs/{id}/stream": {
      get: {
        summary:
          "The run's events as Server-Sent Events, live; ends after the terminal event. Resume with Last-Event-ID.",
        parameters: [
          idParam,
          headerParam(
            "Last-Event-ID",
            Api.LastEventId,
            "The `id` of the last event received: the stream resumes after it"
          )
        ],
        responses: {
          "200": { description: "text/event-stream", content: { "text/event-stream": { schema: { type: "string" } } } },
          ...errors,
          ...notFound
        }
      }
    },
    "/v1/runs/{id}/cancel": {
      post: {
        summary: "Cancel a run and its child runs; the step in flight is interrupted",
        parameters: [idParam],
        requestBody: { required: false, ...jsonBody(Api.CancelRunRequest) },
        responses: { "200": ok("Run", Api.RunResponse), ...errors, ...notFound, ...conflict }
      }
    },
    "/v1/runs/{id}/receipt": {
      get: {
        summary:
          "The run's signed receipt (docs/receipts.md); a run still going gets a partial one, signed now and not kept",
        parameters: [idParam],
        responses: { "200": ok("Receipt", Verify.Receipt), ...errors, ...notFound }
      }
    },
    "/v1/runs/{id}/journal": {
      get: {
        summary:
          "The run's journal export, one canonical JSON line {n, seq, envelope} per event: exactly what the receipt's digest covers",
        parameters: [idParam],
        responses: {
          "200": { description: "JSON lines", content: { "application/x-ndjson": { schema: { type: "string" } } } },
          ...errors,
          ...notFound
        }
      }
    },
    "/v1/receipts/verify": {
      post: {
        summary:
          "Verify a receipt (no token; any origin): its signature under the published keys, the `journal` sent with it, and, for a receipt Lantern signed, its run's stored journal. Always 200 with `valid` and every check",
        security: [],
        requestBody: jsonBody(VerifyBody),
        responses: {
          "200": ok("Verdict: every check with its outcome", Verdict),
          "400": ok("Invalid request", Api.ErrorResponse)
        }
      }
    },
    "/v1/admin/signing-keys/rotate": {
      post: {
        summary: "Make a new receipt-signing key and retire the current one, which stays published (scope `admin`)",
        responses: {
          "200": ok(
            "The new key and every published key",
            Schema.Struct({ current: PublicKeySchema, keys: Schema.Array(PublicKeySchema) })
          ),
          ...errors
        }
      }
    },
    "/.well-known/lantern-receipts": {
      get: {
        summary: "The public keys that verify receipts, retired ones included (no token; any origin)",
        security: [],
        responses: { "200": ok("Keys", Schema.Struct({ keys: Schema.Array(PublicKeySchema) })) }
      }
    },
    "/v1/runs/{id}/identity-token": {
      post: {
        summary:
          "A token of the running run's own Ed25519 identity for `audience` (an EdDSA JWT; ttlSeconds 1-3600, default 300); 409 once the run finished",
        parameters: [idParam],
        requestBody: jsonBody(MintRequest),
        responses: {
          "200": ok("Token", Schema.Struct({ token: Schema.String, expiresAt: Schema.String })),
          ...errors,
          ...notFound,
          ...conflict
        }
      }
    },
    "/.well-known/lantern-agent-identity": {
      get: {
        summary: "How run tokens are issued and where to verify them (no token; any origin)",
        security: [],
        responses: {
          "200": ok(
            "Issuer metadata",
            Schema.Struct({
              issuer: Schema.String,
              algorithm: Schema.String,
              tokenFormat: Schema.String,
              verify: Schema.String
            })
          )
        }
      }
    },
    "/.well-known/lantern-agent-identity/verify": {
      post: {
        summary:
          "Verify a run's token against the public key journaled on its RunStarted (no token; any origin). Always 200: `valid`, and the run, tenant, agent and claims, or the `reason`",
        security: [],
        requestBody: jsonBody(IdentityVerifyRequest),
        responses: { "200": ok("Verdict", IdentityVerdict), "400": ok("Invalid request", Api.ErrorResponse) }
      }
    },
    "/v1/tenants": {
      post: {
        summary:
          "Create a tenant and its first owner key (scope `*`; the key is shown only here). Needs `admin`, which only the operator tenant's keys hold",
        requestBody: jsonBody(CreateTenantRequest),
        responses: {
          "201": ok(
            "The tenant and its owner key",
            Schema.Struct({
              tenant: TenantSchema,
              key: Schema.Struct({
                id: Schema.String,
                name: Schema.String,
                key: Schema.String,
                scopes: Schema.Array(Schema.String),
                expiresAt: Schema.NullOr(Schema.String)
              })
            })
          ),
          ...errors,
          ...conflict
        }
      }
    },
    "/v1/api-keys": {
      post: {
        summary:
          "Create an API key with scopes (at most the caller's) and an optional expiry; `key` is shown only in this answer",
        requestBody: jsonBody(CreateKeyRequest),
        responses: { "201": ok("The key", NewKey), ...errors, ...conflict }
      },
      get: {
        summary: "List the tenant's live API keys (never their value)",
        responses: { "200": ok("Keys", list(KeyView)), ...errors }
      }
    },
    "/v1/api-keys/{id}": {
      delete: {
        summary: "Revoke an API key: it stops working at once on this host, within 30 s on others",
        parameters: [{
          name: "id",
          in: "path",
          required: true,
          schema: { type: "string", pattern: "^key_[0-9a-z]{26}$" }
        }],
        responses: { "204": { description: "Revoked" }, ...errors, ...notFound }
      }
    },
    "/v1/secrets": {
      post: {
        summary:
          "Store a secret (`value`: at most 64 KiB, never shown again); the same name again stores its next version (200)",
        requestBody: jsonBody(CreateSecretBody),
        responses: {
          "201": ok("The new secret's metadata", SecretView),
          "200": ok("The next version's metadata", SecretView),
          ...errors
        }
      },
      get: {
        summary: "List the tenant's secrets: metadata only, never values",
        responses: { "200": ok("Secrets", list(SecretView)), ...errors }
      }
    },
    "/v1/secrets/{name}": {
      get: {
        summary: "A secret's metadata (never its value)",
        parameters: [secretParam],
        responses: { "200": ok("Secret", SecretView), ...errors, ...notFound }
      },
      delete: {
        summary: "Delete a secret and its ciphertext; runs naming it fail with `secret_not_found`",
        parameters: [secretParam],
        responses: { "204": { description: "Deleted" }, ...errors, ...notFound }
      }
    },
    "/v1/admin/dead-letters": {
      get: {
        summary:
          "Events the projectors skipped because they could not decode or store them, every tenant's, newest first, with the total (scope `admin`; never a payload; ADR 0022)",
        parameters: [{
          name: "limit",
          in: "query",
          required: false,
          description: "How many, newest first (100 when absent), in plain decimal digits",
          schema: { type: "integer", minimum: 1, maximum: 1000 }
        }],
        responses: {
          "200": ok("Dead letters", Schema.Struct({ items: Schema.Array(DeadLetterView), total: Schema.Number })),
          ...errors
        }
      }
    },
    "/v1/admin/secrets/rewrap": {
      post: {
        summary:
          "Re-seal every secret under the current KEK after a rotation (scope `admin`); then LANTERN_KEK_PREVIOUS can go",
        responses: {
          "200": ok(
            "Counts",
            Schema.Struct({ rewrapped: Schema.Int, total: Schema.Int, unreadable: Schema.Array(Schema.String) })
          ),
          ...errors
        }
      }
    },
    "/v1/audit": {
      get: {
        summary:
          "The tenant's audit log, newest first: scope denials, API key changes, receipt issuance (`audit:read`). Failed authentications have no tenant and are the operator's (journal `lantern.audit._unknown.>`)",
        parameters: queryParams(AuditListQuery, {
          since: "An ISO-8601 day or time with offset: entries at or after it",
          cursor: "The previous page's nextCursor"
        }),
        responses: { "200": ok("Audit entries", Audit.AuditPage), ...errors }
      }
    },
    "/v1/runs/{id}/approvals/{stepId}": {
      post: {
        summary: "Approve or reject a tool call waiting for a human decision",
        parameters: [idParam, pathParam("stepId", StepId)],
        requestBody: jsonBody(Api.ApprovalRequest),
        responses: { "200": ok("Run", Api.RunResponse), ...errors, ...notFound, ...conflict }
      }
    }
  }
})
