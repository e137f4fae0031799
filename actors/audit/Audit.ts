// The audit port: security-relevant facts (auth failures, scope denials, key creation and revocation, secret
// access, receipt issuance) recorded as events of the tenant's audit journal. This file is the contract; the
// journal (LANTERN_AUDIT), its projection (audit_events) and GET /v1/audit implement it; ADR 0019.
import { Clock, Context, Effect, Layer } from "effect"
import { Journal } from "../../bus/Journal.ts"
import type { ActorAddress } from "../../schema/Envelope.ts"
import type { AuditRecorded } from "../../schema/Events.ts"
import * as Envelopes from "../kernel/Envelopes.ts"
import { Ids } from "../kernel/Ids.ts"

export type AuditAction =
  | "auth.failed"
  | "scope.denied"
  | "api_key.created"
  | "api_key.revoked"
  | "tenant.created"
  | "secret.created"
  | "secret.accessed"
  | "secret.deleted"
  | "receipt.issued"
  | "egress.changed"
  | "workload.secret.vended"
  | "workload.model.refused"
  | "workload.terminated"
  | "hook.rejected"
  | "hook.deduplicated"
  | "dispatch.paused"
  | "dispatch.resumed"
  | "experiment.started"
  | "experiment.concluded"
  | "marketplace.published"
  | "marketplace.unpublished"
  | "marketplace.forked"
  | "marketplace.invoked"
  | "marketplace.served"

export interface AuditEntry {
  /** The tenant the fact belongs to; `_unknown` when a request failed authentication before one was known. */
  readonly tenant: string
  readonly action: AuditAction
  /** Who: `key:<id>`, `token:<tenant>`, `system`, or `anonymous`. Never a secret or a token. */
  readonly actor: string
  /** What it was about: a route, a key id, a secret name, a run id. */
  readonly target: string
  readonly outcome: "allowed" | "denied" | "failed"
  /** Short, safe details (a missing scope, the reason of a failure); never a secret value. */
  readonly detail: Readonly<Record<string, string>>
}

export class Audit extends Context.Service<Audit, {
  /** Records the entry; never fails the caller (a failure is logged): auditing must not take a route down. */
  readonly record: (entry: AuditEntry) => Effect.Effect<void>
}>()("lantern/actors/Audit") {
  /** For tests of code that audits, where the audit trail itself is not under test. */
  static readonly discard = Layer.succeed(Audit, Audit.of({ record: () => Effect.void }))

  /** Entries appended to the audit journal, one subject per entry (ADR 0019). Needs the journal and ids. */
  static readonly layer = Layer.effect(
    Audit,
    Effect.gen(function*() {
      const journal = yield* Journal
      const ids = yield* Ids
      const limiter = { window: 0, count: 0, dropped: 0 }

      /** Whether an entry without a known tenant may be journaled now: at most UNKNOWN_PER_SECOND a second per host. */
      const admit = (entry: AuditEntry) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          if (entry.tenant !== UNKNOWN_TENANT) return true
          const window = Math.floor(now / 1000)
          if (window !== limiter.window) {
            limiter.window = window
            limiter.count = 0
          }
          limiter.count++
          if (limiter.count <= UNKNOWN_PER_SECOND) return true
          limiter.dropped++
          return false
        })

      const append = (entry: AuditEntry) =>
        Effect.gen(function*() {
          const id = yield* ids.next("aud")
          const address: ActorAddress = { type: "audit", tenant: entry.tenant, id }
          // a retried publish of the same entry is dropped by the stream's duplicate window
          const origin = { correlationId: id, causationId: null, idempotencyKey: id }
          const envelopes = yield* Effect.provideService(Envelopes.make(address, [toEvent(entry)], origin), Ids, ids)
          yield* journal.append(address, envelopes, 0)
        })

      const record = (entry: AuditEntry): Effect.Effect<void> =>
        Effect.gen(function*() {
          if (!isTenantToken(entry.tenant)) {
            return yield* Effect.logWarning(
              `audit: not recorded, the tenant is not a subject token: ${JSON.stringify(entry.tenant.slice(0, 80))}`
            )
          }
          if (!(yield* admit(entry))) {
            if (limiter.dropped === 1 || limiter.dropped % 1000 === 0) {
              yield* Effect.logWarning(
                `audit: ${limiter.dropped} ${entry.action} entries without a tenant dropped (over ${UNKNOWN_PER_SECOND}/s)`
              )
            }
            return
          }
          yield* append(entry)
        }).pipe(
          Effect.catchCause((cause) =>
            Effect.logWarning(`audit: could not record ${entry.action} of ${entry.tenant}`, cause)
          ),
          Effect.withSpan("Audit.record", {
            attributes: { "lantern.tenant": entry.tenant, "lantern.audit.action": entry.action }
          }, { captureStackTrace: false })
        )

      return Audit.of({ record })
    })
  )
}

/** The tenant of facts that came before any tenant was known (a request that failed authentication). */
export const UNKNOWN_TENANT = "_unknown"

/** Per host, the most entries without a known tenant journaled a second: a flood of bad tokens must stay cheap. */
export const UNKNOWN_PER_SECOND = 50

/** What replaces a value that looks like a secret. */
export const REDACTED = "[redacted]"

const MAX_VALUE = 500
const MAX_DETAILS = 20

/** A Lantern API token (`lt_…`) or key (`lk_…`): two letters, an underscore, then base64url. */
const TOKEN_LIKE = /(?<![A-Za-z0-9])l[a-z]_[A-Za-z0-9_-]{16,}/
/** Other shapes of credentials: an Authorization value, a provider key, a PEM block. */
const CREDENTIAL_LIKE =
  /\bbearer\s+\S|\bbasic\s+[A-Za-z0-9+/=]{8,}|\bsk-[A-Za-z0-9_-]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY/i
/** Detail keys whose values are secrets by name, whatever they look like. */
const SECRET_KEY = /token|secret|password|passwd|authorization|credential|private|api[-_]?key/i

/** Whether a value looks like a credential and must not be journaled. */
export const looksSecret = (value: string): boolean => TOKEN_LIKE.test(value) || CREDENTIAL_LIKE.test(value)

const safe = (value: string): string =>
  looksSecret(value) ? REDACTED : value.length > MAX_VALUE ? `${value.slice(0, MAX_VALUE)}…` : value

/**
 * The entry as it is journaled: a value that looks like a token, a key or another credential, and any detail
 * whose key names a secret, becomes `[redacted]`; long values are cut and at most 20 details are kept.
 */
export const redact = (entry: AuditEntry): AuditEntry => ({
  ...entry,
  actor: safe(entry.actor),
  target: safe(entry.target),
  detail: Object.fromEntries(
    Object.entries(entry.detail).slice(0, MAX_DETAILS).map((
      [k, v]
    ) => [k, SECRET_KEY.test(k) ? REDACTED : safe(String(v))])
  )
})

/** The journaled event of an entry, redacted. */
export const toEvent = (entry: AuditEntry): AuditRecorded => {
  const e = redact(entry)
  return {
    _tag: "AuditRecorded",
    action: e.action,
    actor: e.actor,
    target: e.target,
    outcome: e.outcome,
    detail: e.detail
  }
}

/** A tenant usable as one token of a subject (lantern.audit.<tenant>.<id>). */
const isTenantToken = (tenant: string) => /^[A-Za-z0-9_-]{1,128}$/.test(tenant)
