// The declarative agent specification: what an agent version pins. Tools are JSON-schema functions; for now
// they are answered by Lantern's built-in deterministic tools, so a spec may only name those.
import { Schema } from "effect"

export const ToolSpec = Schema.Struct({
  name: Schema.String.check(
    Schema.isPattern(/^[a-zA-Z0-9_-]{1,64}$/, { message: "Expected a tool name: letters, digits, '_' or '-', 1-64 characters" })
  ),
  description: Schema.String.check(Schema.isMaxLength(1024)),
  parameters: Schema.Record(Schema.String, Schema.Unknown)
})
export type ToolSpec = typeof ToolSpec.Type

/** A model capability alias (`auto`, `fast`, `smart`) or a provider model name. */
export const ModelRef = Schema.String.check(
  Schema.isPattern(/^[a-zA-Z0-9][a-zA-Z0-9._:/-]{0,127}$/, { message: "Expected a model capability alias such as \"auto\"" })
)

export const AgentSpec = Schema.Struct({
  systemPrompt: Schema.String.check(Schema.isBetweenLength(1, 32_000)),
  model: Schema.optionalKey(ModelRef),
  maxTurns: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }))),
  tools: Schema.optionalKey(Schema.Array(ToolSpec).check(Schema.isMaxLength(32)))
})
export type AgentSpec = typeof AgentSpec.Type

/** A spec with every default filled in; this is what is digested, versioned and pinned by runs. */
export const ResolvedSpec = Schema.Struct({
  systemPrompt: Schema.String,
  model: Schema.String,
  maxTurns: Schema.Int,
  tools: Schema.Array(ToolSpec)
})
export type ResolvedSpec = typeof ResolvedSpec.Type

export const DEFAULT_MODEL = "auto"
export const DEFAULT_MAX_TURNS = 8

export const resolve = (spec: AgentSpec): ResolvedSpec => ({
  systemPrompt: spec.systemPrompt,
  model: spec.model ?? DEFAULT_MODEL,
  maxTurns: spec.maxTurns ?? DEFAULT_MAX_TURNS,
  tools: spec.tools ?? []
})
