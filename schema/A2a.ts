// The A2A protocol's documents Lantern answers (ADR 0045), as A2A v0.3.0 defines them (specification/json/a2a.json
// of a2aproject/A2A at tag v0.3.0): the AgentCard with its skills, capabilities and security schemes.
import { Schema } from "effect"

/** The version of the A2A protocol Lantern speaks. */
export const PROTOCOL_VERSION = "0.3.0"

export const AgentSkill = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: Schema.String,
  tags: Schema.Array(Schema.String),
  inputModes: Schema.optionalKey(Schema.Array(Schema.String)),
  outputModes: Schema.optionalKey(Schema.Array(Schema.String))
})
export type AgentSkill = typeof AgentSkill.Type

export const AgentCapabilities = Schema.Struct({
  streaming: Schema.Boolean,
  pushNotifications: Schema.Boolean,
  stateTransitionHistory: Schema.Boolean
})

/** An HTTP authentication scheme (A2A's HTTPAuthSecurityScheme): Lantern's is a bearer API key. */
export const HttpAuthSecurityScheme = Schema.Struct({
  type: Schema.Literal("http"),
  scheme: Schema.String,
  description: Schema.optionalKey(Schema.String)
})

export const AgentCard = Schema.Struct({
  name: Schema.String,
  description: Schema.String,
  url: Schema.String,
  preferredTransport: Schema.Literal("JSONRPC"),
  version: Schema.String,
  protocolVersion: Schema.String,
  provider: Schema.optionalKey(Schema.Struct({ organization: Schema.String, url: Schema.String })),
  capabilities: AgentCapabilities,
  defaultInputModes: Schema.Array(Schema.String),
  defaultOutputModes: Schema.Array(Schema.String),
  skills: Schema.Array(AgentSkill),
  securitySchemes: Schema.Record(Schema.String, HttpAuthSecurityScheme),
  security: Schema.Array(Schema.Record(Schema.String, Schema.Array(Schema.String)))
})
export type AgentCard = typeof AgentCard.Type

/** The body of `PUT /v1/agents/{name}/visibility`. */
export const Visibility = Schema.Struct({ public: Schema.Boolean })
export type Visibility = typeof Visibility.Type
