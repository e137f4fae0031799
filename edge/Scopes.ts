// What each /v1 route needs a key to hold, in one table keyed by method and route pattern, and what a key's
// scopes grant. `route` (Routes.ts) only accepts a pattern of this table, so a new route cannot forget its scope.
import type { Principal } from "../projections/Tokens.ts"

export const SCOPES = [
  "runs:read",
  "runs:write",
  "agents:read",
  "agents:write",
  "budgets:read",
  "budgets:write",
  "receipts:read",
  "audit:read",
  "keys:read",
  "keys:write",
  "secrets:read",
  "secrets:write",
  "admin",
  "*"
] as const
export type Scope = typeof SCOPES[number]

export const isScope = (s: string): s is Scope => (SCOPES as ReadonlyArray<string>).includes(s)

/** The tenant whose `admin` keys administer the deployment (create tenants, rotate signing keys). */
export const OPERATOR_TENANT = "dev"

/** Every /v1 route, as `METHOD /pattern` in the router's `:param` syntax, and the scope it needs. */
export const ROUTES = {
  "POST /v1/agents": "agents:write",
  "GET /v1/agents": "agents:read",
  "GET /v1/agents/:name": "agents:read",
  "PUT /v1/agents/:name": "agents:write",
  "GET /v1/agents/:name/versions": "agents:read",
  "PUT /v1/agents/:name/budget": "budgets:write",
  "GET /v1/agents/:name/budget": "budgets:read",
  "GET /v1/agents/:name/usage": "budgets:read",
  "PUT /v1/budget": "budgets:write",
  "GET /v1/budget": "budgets:read",
  "POST /v1/runs": "runs:write",
  "GET /v1/runs": "runs:read",
  "POST /v1/runs/forecast": "runs:read",
  "GET /v1/runs/:id": "runs:read",
  "GET /v1/runs/:id/events": "runs:read",
  "GET /v1/runs/:id/stream": "runs:read",
  "POST /v1/runs/:id/cancel": "runs:write",
  "POST /v1/runs/:id/approvals/:stepId": "runs:write",
  "POST /v1/runs/:id/identity-token": "runs:write",
  "GET /v1/runs/:id/receipt": "receipts:read",
  "GET /v1/runs/:id/journal": "receipts:read",
  "POST /v1/admin/signing-keys/rotate": "admin",
  "GET /v1/audit": "audit:read",
  "POST /v1/tenants": "admin",
  "POST /v1/api-keys": "keys:write",
  "GET /v1/api-keys": "keys:read",
  "DELETE /v1/api-keys/:id": "keys:write",
  "POST /v1/secrets": "secrets:write",
  "GET /v1/secrets": "secrets:read",
  "GET /v1/secrets/:name": "secrets:read",
  "DELETE /v1/secrets/:name": "secrets:write",
  "POST /v1/admin/secrets/rewrap": "admin",
  "GET /v1/admin/dead-letters": "admin"
} as const satisfies Record<string, Scope>

/**
 * The /v1 routes that need no token, served beside the table: verifying a receipt is public, as the keys that
 * verify it are (/.well-known/lantern-receipts), so anyone handed a receipt can check it.
 */
export const PUBLIC_ROUTES = ["POST /v1/receipts/verify"] as const

export type RouteKey = keyof typeof ROUTES
export type Method = "GET" | "POST" | "PUT" | "DELETE"
/** The route patterns of `method` in the table. */
export type PathOf<M extends Method> = RouteKey extends infer K ? K extends `${M} ${infer P}` ? P : never : never

export const required = (method: Method, path: string): Scope => ROUTES[`${method} ${path}` as RouteKey]

/**
 * Whether `principal` holds `scope`. `*` holds every scope; `admin` is deployment-wide, so only the operator
 * tenant's keys can hold it, even through `*`: another tenant's owner key administers its own tenant only.
 */
export const holds = (principal: Pick<Principal, "tenant" | "scopes">, scope: Scope): boolean => {
  if (scope === "admin" || scope === "*") {
    if (principal.tenant !== OPERATOR_TENANT && scope === "admin") return false
    return principal.scopes.includes("*") || principal.scopes.includes(scope)
  }
  return principal.scopes.includes("*") || principal.scopes.includes(scope)
}
