// Identifiers of the system (tenants, agents, runs, steps, events) and whole numbers as URLs and headers carry
// them. Every id that becomes a NATS subject token is restricted to characters that cannot form wildcards or
// extra tokens. Patterns carry the `u` flag: Effect exports only those to JSON Schema (the OpenAPI document).
import { Schema, SchemaTransformation } from "effect"

const token = (pattern: RegExp, what: string) =>
  Schema.String.check(Schema.isPattern(pattern, { message: `Expected ${what}` }))

/** A tenant id: lowercase letters, digits and dashes, 1-63 characters. */
export const TenantId = token(
  /^[a-z0-9][a-z0-9-]{0,62}$/u,
  "a tenant id: lowercase letters, digits, '-', 1-63 characters"
).pipe(
  Schema.brand("TenantId")
)
export type TenantId = typeof TenantId.Type

/** An agent name: lowercase letters, digits, '-' and '_', 1-63 characters, starting with a letter or digit. */
export const AgentName = token(
  /^[a-z0-9][a-z0-9_-]{0,62}$/u,
  "an agent name: lowercase letters, digits, '-' or '_', 1-63 characters"
)
export type AgentName = typeof AgentName.Type

/** A run id: `run_` followed by 26 base32 characters (time-ordered). */
export const RunId = token(/^run_[0-9a-z]{26}$/u, "a run id like run_01j…")
export type RunId = typeof RunId.Type

export const StepId = token(/^[a-z0-9][a-z0-9:._-]{0,127}$/u, "a step id")
export type StepId = typeof StepId.Type

export const EventId = token(/^evt_[0-9a-z]{26}$/u, "an event id like evt_01j…")
export type EventId = typeof EventId.Type

/**
 * A whole number sent as text, as a page size, a day count or a journal position travels in a URL or a header:
 * decimal digits only, then the range. JavaScript's Number (behind `Schema.FiniteFromString`) would also read
 * `0x10`, `1e1`, ` 5` or `+5`.
 */
export const DecimalInt = (range: { readonly minimum: number; readonly maximum: number }) =>
  Schema.String.check(Schema.isPattern(/^[0-9]{1,16}$/u, { message: "Expected a decimal integer: digits only" })).pipe(
    Schema.decodeTo(Schema.Int.check(Schema.isBetween(range)), SchemaTransformation.numberFromString)
  )

export const isRunId = Schema.is(RunId)
export const isAgentName = Schema.is(AgentName)

/** The alphabet of generated ids: lowercase Crockford base32. */
export const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

/** 10 characters of milliseconds then 16 of randomness, like a ULID in lowercase Crockford base32. */
export const encode = (millis: number, random: Uint8Array): string => {
  let time = ""
  let t = millis
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time
    t = Math.floor(t / 32)
  }
  let rand = ""
  for (let i = 0; i < 16; i++) rand += ALPHABET[random[i]! % 32]!
  return time + rand
}
