// Identifiers of the system: tenants, agents, runs, steps, events. Every id that becomes a NATS subject
// token is restricted to characters that cannot form wildcards or extra tokens.
import { Schema } from "effect"

const token = (pattern: RegExp, what: string) =>
  Schema.String.check(Schema.isPattern(pattern, { message: `Expected ${what}` }))

/** A tenant id: lowercase letters, digits and dashes, 1-63 characters. */
export const TenantId = token(/^[a-z0-9][a-z0-9-]{0,62}$/, "a tenant id: lowercase letters, digits, '-', 1-63 characters").pipe(
  Schema.brand("TenantId")
)
export type TenantId = typeof TenantId.Type

/** An agent name: lowercase letters, digits, '-' and '_', 1-63 characters, starting with a letter or digit. */
export const AgentName = token(/^[a-z0-9][a-z0-9_-]{0,62}$/, "an agent name: lowercase letters, digits, '-' or '_', 1-63 characters")
export type AgentName = typeof AgentName.Type

/** A run id: `run_` followed by 26 base32 characters (time-ordered). */
export const RunId = token(/^run_[0-9a-z]{26}$/, "a run id like run_01j…")
export type RunId = typeof RunId.Type

export const StepId = token(/^[a-z0-9][a-z0-9:._-]{0,127}$/, "a step id")
export type StepId = typeof StepId.Type

export const EventId = token(/^evt_[0-9a-z]{26}$/, "an event id like evt_01j…")
export type EventId = typeof EventId.Type

export const isRunId = Schema.is(RunId)
export const isAgentName = Schema.is(AgentName)
