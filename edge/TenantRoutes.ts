// Tenants and API keys: `POST /v1/tenants` (the operator's admin keys), and each tenant's own keys with their
// scopes and expiry, `POST/GET /v1/api-keys`, `DELETE /v1/api-keys/{id}`. A key's plain value is answered
// once, by the request that makes it; lists never show it nor its hash. A key never outlives the key that
// minted it, revoking a key revokes the keys below it, and revoking needs every scope of the key (ADR 0023).
import { Clock, Effect } from "effect"
import { Audit } from "../actors/audit/Audit.ts"
import * as Tokens from "../projections/Tokens.ts"
import { Auth } from "./Auth.ts"
import { KeyNotFound } from "./Failures.ts"
import { badRequest, Forbidden } from "./Http.ts"
import { actorOf, handlers, reply } from "./Serve.ts"
import * as Scopes from "./Scopes.ts"

/** An ISO 8601 time in the future, normalised; null when absent. */
const expiryOf = (raw: string | null | undefined) =>
  Effect.gen(function*() {
    if (raw === undefined || raw === null) return null
    const at = Date.parse(raw)
    if (!/^\d{4}-\d{2}-\d{2}T/.test(raw) || Number.isNaN(at)) {
      return yield* badRequest("expiresAt", "Expected an ISO 8601 date-time like 2027-01-31T00:00:00Z")
    }
    if (at <= (yield* Clock.currentTimeMillis)) return yield* badRequest("expiresAt", "Expected a time in the future")
    return new Date(at).toISOString()
  })

const view = (k: Tokens.KeyView) => ({
  id: k.id,
  name: k.name,
  scopes: k.scopes,
  last4: k.last4,
  expiresAt: k.expiresAt,
  createdAt: k.createdAt,
  parentId: k.parentId
})

export const tenantHandlers = handlers({
  createTenant: ({ principal, body: request }) =>
    Effect.gen(function*() {
      const { tenant, key } = yield* Tokens.createTenant(request.name)
      const audit = yield* Audit
      yield* audit.record({
        tenant: principal.tenant,
        action: "tenant.created",
        actor: actorOf(principal),
        target: tenant.id,
        outcome: "allowed",
        detail: { name: tenant.name }
      })
      yield* audit.record({
        tenant: tenant.id,
        action: "api_key.created",
        actor: actorOf(principal),
        target: key.id,
        outcome: "allowed",
        detail: { name: key.name, scopes: key.scopes.join(" ") }
      })
      return reply(
        201,
        { tenant, key: { id: key.id, name: key.name, key: key.key, scopes: key.scopes, expiresAt: key.expiresAt } },
        { location: `/v1/tenants/${tenant.id}` }
      )
    }),
  createApiKey: ({ tenant, principal, body: request }) =>
    Effect.gen(function*() {
      const expiresAt = yield* expiryOf(request.expiresAt)
      const scopes = [...new Set(request.scopes)]
      // a key grants at most what its creator holds
      const beyond = scopes.find((s) => !Scopes.holds(principal, s))
      if (beyond !== undefined) {
        yield* (yield* Audit).record({
          tenant,
          action: "scope.denied",
          actor: actorOf(principal),
          target: "POST /v1/api-keys",
          outcome: "denied",
          detail: { missingScope: beyond, reason: "a key cannot grant a scope its creator lacks" }
        })
        return yield* new Forbidden({
          missingScope: beyond,
          reason: `this key cannot grant the scope '${beyond}', which it does not hold`
        })
      }
      // the answer's expiresAt is the effective one: capped at the caller's own
      const key = yield* Tokens.createKey(tenant, request.name, scopes, expiresAt, principal)
      yield* (yield* Audit).record({
        tenant,
        action: "api_key.created",
        actor: actorOf(principal),
        target: key.id,
        outcome: "allowed",
        detail: { name: key.name, scopes: scopes.join(" ") }
      })
      return reply(201, { ...view(key), key: key.key }, { location: `/v1/api-keys/${key.id}` })
    }),
  listApiKeys: ({ tenant }) => Effect.map(Tokens.listKeys(tenant), (keys) => ({ items: keys.map(view) })),
  revokeApiKey: ({ tenant, principal, params: { id } }) =>
    Effect.gen(function*() {
      const target = yield* Tokens.findKey(tenant, id)
      if (target === null) return yield* new KeyNotFound({ id })
      // revoking needs every scope of the key revoked (a key may always revoke itself); its descendants hold
      // no more than it does, so that covers them too
      const missing = principal.keyId === id
        ? undefined
        : target.scopes.find((s) => !Scopes.holds(principal, s as Scopes.Scope))
      if (missing !== undefined) {
        yield* (yield* Audit).record({
          tenant,
          action: "scope.denied",
          actor: actorOf(principal),
          target: "DELETE /v1/api-keys/:id",
          outcome: "denied",
          detail: { missingScope: missing, key: id, reason: "revoking a key needs every scope it holds" }
        })
        return yield* new Forbidden({
          missingScope: missing,
          reason: `this key cannot revoke '${id}', which holds the scope '${missing}' that it does not`
        })
      }
      const revoked = yield* Tokens.revokeKey(tenant, id)
      if (revoked === null) return yield* new KeyNotFound({ id })
      const auth = yield* Auth
      yield* auth.forget(revoked.tokenHash)
      yield* Effect.forEach(revoked.descendants, (d) => auth.forget(d.tokenHash), { discard: true })
      // one entry per key revoked: the key asked for, with how many came down with it, and each descendant
      // naming it
      const audit = yield* Audit
      const actor = actorOf(principal)
      yield* audit.record({
        tenant,
        action: "api_key.revoked",
        actor,
        target: id,
        outcome: "allowed",
        detail: { descendantsRevoked: String(revoked.descendants.length) }
      })
      yield* Effect.forEach(revoked.descendants, (d) =>
        audit.record({
          tenant,
          action: "api_key.revoked",
          actor,
          target: d.id,
          outcome: "allowed",
          detail: { revokedWith: id }
        }), { discard: true })
      return null
    })
})
