// An agent as the agent actor takes and gives it: a new agent or a new version of one, and the agent and its
// versions as read back. The HTTP API sends these as its bodies (schema/Api.ts, under its own names).
import { Schema } from "effect"
import { AgentSpec, ResolvedSpec } from "./AgentSpec.ts"
import { AgentName } from "./Ids.ts"

/** A new agent: its first version. */
export const NewAgent = Schema.Struct({
  name: AgentName,
  description: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(2000))),
  spec: AgentSpec
})
export type NewAgent = typeof NewAgent.Type

/** A new version of an agent. */
export const AgentUpdate = Schema.Struct({
  description: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(2000))),
  spec: AgentSpec
})
export type AgentUpdate = typeof AgentUpdate.Type

/** An agent at its latest version. */
export const AgentView = Schema.Struct({
  name: Schema.String,
  description: Schema.String,
  latestVersion: Schema.Int,
  digest: Schema.String,
  spec: ResolvedSpec,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type AgentView = typeof AgentView.Type

/** One version of an agent. */
export const AgentVersionView = Schema.Struct({
  name: Schema.String,
  version: Schema.Int,
  digest: Schema.String,
  description: Schema.String,
  spec: ResolvedSpec,
  createdAt: Schema.String
})
export type AgentVersionView = typeof AgentVersionView.Type
