// The audit log as the API shows it: GET /v1/audit's query (validated, each bad field named) and its page of
// entries, newest first. The entries are the tenant's `AuditRecorded` events as projected (audit_events).
import { Schema } from "effect"
import { DecimalInt } from "./Ids.ts"

/** Every `AuditAction` of actors/audit/Audit.ts (tests/audit.test.ts checks they agree). */
export const AUDIT_ACTIONS = [
  "auth.failed",
  "scope.denied",
  "api_key.created",
  "api_key.revoked",
  "tenant.created",
  "secret.created",
  "secret.accessed",
  "secret.deleted",
  "receipt.issued",
  "egress.changed",
  "workload.secret.vended",
  "workload.model.refused",
  "workload.terminated",
  "hook.rejected",
  "hook.deduplicated",
  "dispatch.paused",
  "dispatch.resumed",
  "experiment.started",
  "experiment.concluded",
  "marketplace.published",
  "marketplace.unpublished",
  "marketplace.forked",
  "marketplace.invoked",
  "marketplace.served"
] as const

export const AuditId = Schema.String.check(
  Schema.isPattern(/^aud_[0-9a-z]{26}$/u, { message: "Expected an audit entry id like aud_01j…" })
)

/** A UTC day (`2026-11-21`) or an instant with its offset (`2026-11-21T05:00:00Z`, `…+01:00`). */
export const Since = Schema.String.check(Schema.isPattern(
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))?$/u,
  { message: "Expected an ISO-8601 day (2026-11-21) or time with offset (2026-11-21T05:00:00Z)" }
))

export const AuditQuery = Schema.Struct({
  action: Schema.optionalKey(Schema.Literals(AUDIT_ACTIONS)),
  since: Schema.optionalKey(Since),
  /** plain decimal digits: `0x10`, `1e1` or ` 5` are refused */
  limit: Schema.optionalKey(DecimalInt({ minimum: 1, maximum: 200 })),
  cursor: Schema.optionalKey(AuditId)
})
export type AuditQuery = typeof AuditQuery.Type

export const AuditEntryResponse = Schema.Struct({
  id: Schema.String,
  /** When it was recorded, ISO-8601 in UTC. */
  at: Schema.String,
  action: Schema.String,
  actor: Schema.String,
  target: Schema.String,
  outcome: Schema.Literals(["allowed", "denied", "failed"]),
  detail: Schema.Record(Schema.String, Schema.String)
})
export type AuditEntryResponse = typeof AuditEntryResponse.Type

export const AuditPage = Schema.Struct({
  items: Schema.Array(AuditEntryResponse),
  /** The cursor of the next (older) page; null on the last page. */
  nextCursor: Schema.NullOr(Schema.String)
})
export type AuditPage = typeof AuditPage.Type
