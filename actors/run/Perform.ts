// Performs the calls a run's steps need: a model call through the provider (with the tenant's own provider keys,
// resolved for this call only, and the step's timeout) and a tool call through the Tools service. A failure
// comes back as the step's error, to be journaled, never as a defect.
import { Duration, Effect, Option, type Redacted } from "effect"
import { Tokens } from "../../bus/Tokens.ts"
import { ModelProvider, type Request as ModelRequest } from "../model/ModelProvider.ts"
import { Tools } from "../model/Tools.ts"
import { HttpTools } from "../tools/Http.ts"
import { McpServers } from "../tools/Mcp.ts"
import { Secrets } from "../secrets/Secrets.ts"
import type { State } from "./Decider.ts"
import { type Call, codeOf, type Failure, type Performed, toolOutput } from "./Decisions.ts"
import * as Plan from "./Plan.ts"
import * as TokenSink from "./TokenSink.ts"

/** The step attempt a model call is made for. */
interface Step {
  readonly stepId: string
  readonly attempt: number
}

export const make = Effect.gen(function*() {
  const provider = yield* ModelProvider
  const secrets = yield* Secrets
  const tools = yield* Tools
  const http = yield* HttpTools
  const mcp = yield* McpServers
  // optional: a host without the bus's token port (some tests) makes its calls without live tokens
  const tokens = yield* Effect.serviceOption(Tokens)

  /** The tenant's own provider keys its agent names (`routing.credentials`), resolved now, for this call only. */
  const apiKeysOf = (
    tenant: string,
    state: State
  ): Effect.Effect<
    Readonly<Record<string, Redacted.Redacted<string>>> | null,
    Effect.Error<ReturnType<typeof secrets.resolve>>
  > => {
    const credentials = state.spec?.routing?.credentials
    if (credentials === undefined || Object.keys(credentials).length === 0) return Effect.succeed(null)
    return Effect.map(
      Effect.forEach(
        Object.entries(credentials),
        ([providerName, uri]) =>
          Effect.map(secrets.resolve(tenant, uri, `run:${state.runId}`), (value) => [providerName, value] as const)
      ),
      (pairs) => Object.fromEntries(pairs)
    )
  }

  /**
   * The provider's call with the step's answer text published as live tokens while it streams (ADR 0061), when
   * the bus's token port is here; the sink is closed however the call ends.
   */
  const completeLive = (tenant: string, runId: string, step: Step | undefined, request: ModelRequest) => {
    if (Option.isNone(tokens) || step === undefined) return provider.complete(request)
    const live = tokens.value
    return Effect.suspend(() => {
      // published only while someone watches the run (ADR 0066): an unwatched step costs the bus nothing
      const sink = TokenSink.make(step, (frame) => live.publish(tenant, runId, frame), {
        watched: () => live.watched(tenant, runId)
      })
      return provider.complete({ ...request, onDelta: sink.push }).pipe(
        Effect.onExit((exit) => Effect.sync(() => sink.close(exit._tag === "Failure")))
      )
    })
  }

  /** A model call of a run's step: `request` as the step asks it, within `timeoutMs`; `step` names it for live tokens. */
  const callModel = (
    tenant: string,
    state: State,
    request: ModelRequest,
    timeoutMs: number,
    step?: Step
  ): Effect.Effect<Performed, Failure> =>
    apiKeysOf(tenant, state).pipe(
      Effect.flatMap((apiKeys) =>
        completeLive(tenant, state.runId, step, { ...request, ...(apiKeys === null ? {} : { apiKeys }) })
      ),
      // the provider's usage and route are the step's own (schema/StepOutcome.ts): only the answer is wrapped
      Effect.map(({ answer, ...used }): Performed => ({ result: { _tag: "model", answer }, ...used })),
      Effect.mapError((e): Failure =>
        e._tag === "ProviderError"
          ? {
            error: { code: codeOf(e), message: e.message },
            ...(e.route === undefined ? {} : { route: e.route }),
            ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs })
          }
          : {
            error: {
              code: e._tag === "SecretNotFound" || e._tag === "InvalidSecretUri"
                ? "secret_not_found"
                : "secret_unavailable",
              message: e.message
            }
          }
      ),
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMs),
        orElse: () =>
          Effect.fail<Failure>({
            error: { code: "timeout", message: `the step took longer than ${timeoutMs} ms` }
          })
      })
    )

  const model = (tenant: string, state: State, call: Extract<Call, { _tag: "CallModel" }>) =>
    callModel(tenant, state, Plan.modelRequest(state, call.request, call.key, tenant), call.timeoutMs, {
      stepId: call.step.stepId,
      attempt: call.step.attempt
    })

  /** The call a step needs, performed. */
  const perform = (
    tenant: string,
    state: State,
    call: Exclude<Call, { _tag: "Wait" }>
  ): Effect.Effect<Performed, Failure> =>
    call._tag === "CallModel"
      ? model(tenant, state, call)
      : Effect.map(toolOf(tenant, state, call), (output) => toolOutput(call.call, output))

  /**
   * A tool call's output: an HTTP or MCP tool of the spec, else a built-in; `starts > 1`: its host died mid-call. An
   * MCP server that cannot be reached fails the step, retryable as an unavailable provider is.
   */
  const toolOf = (
    tenant: string,
    state: State,
    call: Extract<Call, { _tag: "CallTool" }>
  ): Effect.Effect<string, Failure> => {
    const spec = state.spec?.tools.find((t) => t.name === call.call.name)
    if (spec?.http !== undefined) {
      return http.call(tenant, { ...spec, http: spec.http }, call.call, call.key, call.step.starts > 1)
    }
    if (spec?.a2a !== undefined) {
      return http.call(tenant, { ...spec, a2a: spec.a2a }, call.call, call.key, call.step.starts > 1)
    }
    if (spec?.mcp !== undefined) {
      return mcp.call(tenant, spec.mcp.server, spec.mcp.tool, call.call.arguments).pipe(
        Effect.mapError((e): Failure => ({
          error: {
            code: "provider_unavailable",
            message: e._tag === "McpUnavailable" ? e.message : "the bus is unavailable"
          }
        }))
      )
    }
    return tools.run(call.call)
  }

  /** The worst case of a model call, for its budget reservation. */
  const quote = (tenant: string, state: State, call: Extract<Call, { _tag: "CallModel" }>) =>
    provider.quote(Plan.modelRequest(state, call.request, call.key, tenant))

  return { perform, quote, callModel, quoteRequest: provider.quote }
})
