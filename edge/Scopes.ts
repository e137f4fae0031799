// The scopes a key may hold and what they grant. Which scope each endpoint needs is declared with the endpoint
// (edge/Api.ts), so a new route cannot forget its scope.
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
  "workloads:read",
  "workloads:write",
  "evals:read",
  "evals:write",
  "channels:read",
  "channels:write",
  "ingest:read",
  "ingest:write",
  "tasks:read",
  "tasks:write",
  "sensors:read",
  "sensors:write",
  "reports:read",
  "reports:write",
  "marketplace:read",
  "marketplace:publish",
  "marketplace:invoke",
  "schedules:read",
  "schedules:write",
  "admin",
  "*"
] as const
export type Scope = typeof SCOPES[number]

export const isScope = (s: string): s is Scope => (SCOPES as ReadonlyArray<string>).includes(s)

/** The tenant whose `admin` keys administer the deployment (create tenants, rotate signing keys). */
export const OPERATOR_TENANT = "dev"

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
