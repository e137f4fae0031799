// The port every model call goes through. A request carries the step's idempotency key
// `(runId, stepId, attempt)`, sent to providers that honour one, and an abort signal for cancellation.
// The router (Router.ts) is itself a ModelProvider over the configured providers: it resolves capability
// aliases, fails over, and reports its choice in `Response.route`. A request may carry a delta sink: the answer's
// text as it streams in (ADR 0061); the Response stays the authority.
import { Context } from "effect"
import type { Redacted } from "effect"
import type { Effect } from "effect"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { ProviderError } from "../../schema/Errors.ts"
import type { ModelAnswer, Route, Usage } from "../../schema/StepOutcome.ts"
import type { Message } from "../../schema/Message.ts"

export interface Request {
  /** Capability alias (`auto`, `fast`, `cheap`, ...) or a model name, optionally `provider/model`. */
  readonly model: string
  readonly messages: ReadonlyArray<Message>
  readonly tools: ReadonlyArray<ToolSpec>
  readonly idempotencyKey: string
  /** The tenant the call is made for: scopes the response cache. */
  readonly tenant?: string
  /** Sampling temperature; unset leaves the provider's default. 0 makes the request cacheable. */
  readonly temperature?: number
  /** Cap on output tokens, sent to the provider: what a budget reservation counts on. */
  readonly maxTokens?: number
  /** Routing strategy among an alias's candidates; the configured default when unset. */
  readonly strategy?: Strategy
  /** False turns the exact-match response cache off for this request. */
  readonly cache?: boolean
  /** Per provider name, the tenant's own API key to use instead of the configured one (resolved secrets). */
  readonly apiKeys?: Readonly<Record<string, Redacted.Redacted<string>>>
  /**
   * Called with the answer's text as it arrives (ADR 0061): each `text` delta in order, and `reset` when text
   * already given is to be discarded (the router failed over to another candidate after some deltas). Never
   * called with tool-call arguments; must not throw nor block (it runs inside the stream's read loop).
   */
  readonly onDelta?: (delta: Delta) => void
}

/** A piece of an answer's text as it streams in, or the order to forget the pieces given so far. */
export type Delta =
  | { readonly _tag: "text"; readonly text: string }
  | { readonly _tag: "reset" }

/** Gives `text` to the request's delta sink, when it has one and the text is not empty. */
export const emit = (request: Request, text: string | null | undefined): void => {
  if (request.onDelta !== undefined && text != null && text !== "") request.onDelta({ _tag: "text", text })
}

export type Strategy = "balanced" | "cheap" | "best" | "fast"

/** A model's answer and what the call used (tokens and cost, as a step journals them). */
export interface Response extends Usage {
  readonly answer: ModelAnswer
  /** How the router chose the model that answered; absent for a provider called directly. */
  readonly route?: Route
}

/** What a request may cost at worst, computed before the call: what a budget reserves. */
export interface Quote {
  /** Estimated prompt tokens (a real tokenizer's count plus the chat format's overhead). */
  readonly promptTokens: number
  /** The output cap the call is made with. */
  readonly maxTokens: number
  /** Highest `promptTokens × input price + maxTokens × output price` over the models the call may use. */
  readonly worstCaseUsd: number
  /** The models the call may use, best first, as `provider/model`. */
  readonly models: ReadonlyArray<string>
}

export class ModelProvider extends Context.Service<ModelProvider, {
  /** Short name shown in answers and events, e.g. `offline` or `openai`. */
  readonly name: string
  readonly complete: (request: Request) => Effect.Effect<Response, ProviderError>
  /** The worst-case cost of a request before it is made; never calls a provider. */
  readonly quote: (request: Request) => Effect.Effect<Quote>
}>()("lantern/actors/ModelProvider") {}
