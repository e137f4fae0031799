// The port every model call goes through. A request carries the step's idempotency key
// `(runId, stepId, attempt)`, sent to providers that honour one, and an abort signal for cancellation.
import { Context } from "effect"
import type { Effect } from "effect"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { ProviderError } from "../../schema/Errors.ts"
import type { ModelAnswer } from "../../schema/Events.ts"
import type { Message } from "../run/Plan.ts"

export interface Request {
  /** Capability alias (`auto`, `fast`, `smart`) or a provider model name. */
  readonly model: string
  readonly messages: ReadonlyArray<Message>
  readonly tools: ReadonlyArray<ToolSpec>
  readonly idempotencyKey: string
}

export interface Response {
  readonly answer: ModelAnswer
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

export class ModelProvider extends Context.Service<ModelProvider, {
  /** Short name shown in answers and events, e.g. `offline` or `openai`. */
  readonly name: string
  readonly complete: (request: Request) => Effect.Effect<Response, ProviderError>
}>()("lantern/actors/ModelProvider") {}
