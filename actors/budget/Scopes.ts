// Where a budget applies: the tenant, or one agent of it. Each scope has its own journal (its address below) and a
// name refusals and the API use; its view is what the API shows of its budget today.
import type { BudgetLimits } from "../../schema/Budget.ts"
import type { ActorAddress } from "../../schema/Envelope.ts"
import * as Caps from "./Caps.ts"
import * as Decider from "./Decider.ts"

export type Scope = { readonly kind: "tenant" } | { readonly kind: "agent"; readonly name: string }

export const TENANT: Scope = { kind: "tenant" }
export const agentScope = (name: string): Scope => ({ kind: "agent", name })

/** `tenant` or `agent:<name>`: how refusals and the API name a scope. */
export const scopeName = (s: Scope) => s.kind === "tenant" ? "tenant" : `agent:${s.name}`

/** Agent names start with a letter or digit, so `_tenant` cannot be one. */
export const addressOf = (tenant: string, s: Scope): ActorAddress => ({
  type: "budget",
  tenant,
  id: s.kind === "tenant" ? "_tenant" : s.name
})

/** A scope's budget as the API shows it: its caps and today's figures. */
export interface View {
  readonly scope: string
  readonly limits: BudgetLimits | null
  readonly updatedBy: string | null
  readonly today: {
    readonly day: string
    readonly spentUsd: number
    readonly reservedUsd: number
    readonly runs: number
    readonly tokens: number
  }
  /** Soft caps passed today. */
  readonly alerts: ReadonlyArray<string>
  /** Reservations held right now (their host is calling a model). */
  readonly openReservations: number
}

/** The scopes whose budgets apply to a run of `agentName`: the agent's, then the tenant's. */
export const applying = (agentName: string): ReadonlyArray<Scope> => [agentScope(agentName), TENANT]

/** The scope's budget as the API shows it at `now`. */
export const viewOf = (scope: Scope, state: Decider.State, now: number): View => {
  const day = Decider.dayOf(now)
  const today = Decider.dayIn(state, day)
  return {
    scope: scopeName(scope),
    limits: state.limits,
    updatedBy: state.setBy,
    today: {
      day,
      spentUsd: Caps.round(today.spentUsd),
      reservedUsd: Caps.round(Decider.reservedOn(state, day, now)),
      runs: today.runs,
      tokens: today.tokens
    },
    alerts: today.alerted,
    openReservations: Object.values(state.open).filter((r) => r.expiresAt > now).length
  }
}
