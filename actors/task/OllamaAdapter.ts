// The `ollama` task adapter (issue 16, ADR 0057): asks a model behind an OpenAI-compatible server (Ollama, vLLM,
// llama.cpp, a gateway) through Lantern's router, so the catalogue's base URL, key, deadline, breakers and prices
// apply as for any run. The task becomes a prompt asking for an Outcome JSON block; the answer is normalized
// (actors/task/Normalize.ts); a 429 becomes a rate-limit hint; cost and tokens are the router's.
import { Duration, Effect, Redacted } from "effect"
import * as Catalog from "../model/Catalog.ts"
import { ModelProvider } from "../model/ModelProvider.ts"
import type { ProviderError } from "../../schema/Errors.ts"
import type { AdapterSpec } from "../../schema/Task.ts"
import {
  type Adapter,
  attemptFailure,
  type AttemptContext,
  type AttemptFailure,
  type AttemptResult
} from "./Adapter.ts"
import * as Normalize from "./Normalize.ts"
import * as Prompt from "./Prompt.ts"

export const DEFAULT_TIMEOUT_SECONDS = 600
/** How long a probe waits for the server's model list. */
export const PROBE_TIMEOUT_MS = 5_000

type Spec = Extract<AdapterSpec, { type: "ollama" }>

export interface Settings {
  /** The host's model provider: the router. */
  readonly provider: ModelProvider["Service"]
  /** The router's catalogue: where a model name resolves to, for the probe. */
  readonly catalog: Catalog.Catalog
  readonly fetch?: typeof globalThis.fetch
}

const failure = attemptFailure

/** The messages the model is sent for a task. */
export const messagesOf = (ctx: Pick<AttemptContext, "kind" | "subject" | "description" | "payload">) => [
  { role: "system" as const, content: Prompt.system(false) },
  { role: "user" as const, content: Prompt.task(ctx) }
]

/** Whether the model list of an OpenAI-compatible server holds `model` (Ollama answers `name:latest` for `name`). */
const served = (ids: ReadonlyArray<string>, model: string) =>
  ids.some((id) => id === model || id === `${model}:latest` || `${id}:latest` === model)

export const make = (settings: Settings): Adapter => {
  const { provider, catalog } = settings
  const fetch = settings.fetch ?? globalThis.fetch

  /** The catalogue's provider for the model, and its model list (GET {baseUrl}/models). */
  const probe = (_tenant: string, spec: AdapterSpec) =>
    Effect.gen(function*() {
      if (spec.type !== "ollama") return { ok: false as const, reason: `not an ollama spec (${spec.type})` }
      if (catalog.providers.length === 0) {
        return {
          ok: false as const,
          reason:
            "no model provider is configured (only the offline one): set OPENAI_BASE_URL and OPENAI_API_KEY, or LANTERN_MODELS_FILE, to reach the Ollama server"
        }
      }
      const candidates = Catalog.resolve(catalog, spec.model)
      const reasons: Array<string> = []
      for (const c of candidates) {
        const p = catalog.providers.find((x) => x.name === c.provider)
        if (p === undefined) {
          reasons.push(`${c.provider}: no such provider`)
          continue
        }
        // an Anthropic-API provider is routable but has no model list to ask
        if (p.api !== "openai") return { ok: true as const }
        const key = Redacted.value(p.apiKey)
        const answer = yield* Effect.tryPromise({
          try: async (signal) => {
            const res = await fetch(`${p.baseUrl.replace(/\/+$/u, "")}/models`, {
              headers: key === "" ? {} : { authorization: `Bearer ${key}` },
              signal: AbortSignal.any([signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)])
            })
            if (!res.ok) return { status: res.status, ids: [] as ReadonlyArray<string> }
            const body = (await res.json()) as { data?: ReadonlyArray<{ id?: unknown }> }
            return {
              status: res.status,
              ids: (body.data ?? []).flatMap((m) => (typeof m.id === "string" ? [m.id] : []))
            }
          },
          catch: (e) => (e instanceof Error ? e.cause instanceof Error ? e.cause.message : e.message : String(e))
        }).pipe(Effect.result)
        if (answer._tag === "Failure") {
          reasons.push(`${p.name} is unreachable (${answer.failure})`)
          continue
        }
        if (answer.success.status !== 200) {
          reasons.push(`${p.name} answered its model list with HTTP ${answer.success.status}`)
          continue
        }
        if (served(answer.success.ids, c.model)) return { ok: true as const }
        reasons.push(
          `${p.name} does not serve ${c.model} (it serves ${answer.success.ids.slice(0, 10).join(", ") || "none"})`
        )
      }
      return { ok: false as const, reason: `model ${spec.model} is not reachable: ${reasons.join("; ")}` }
    })

  const execute = (spec: AdapterSpec, ctx: AttemptContext): Effect.Effect<AttemptResult, AttemptFailure> =>
    Effect.gen(function*() {
      if (spec.type !== "ollama") return yield* Effect.fail(failure(`not an ollama spec (${spec.type})`, false, null))
      const s: Spec = spec
      const messages = messagesOf(ctx)
      const seen = { model: s.model, messages }
      const timeoutSeconds = s.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS
      const call = provider.complete({
        model: s.model,
        messages,
        tools: [],
        idempotencyKey: `${ctx.taskId}:ollama:${ctx.attempt}`,
        tenant: ctx.tenant,
        temperature: 0,
        // a task is asked again on a retry: an answer cached from an earlier attempt would only repeat it
        cache: false
      }).pipe(
        Effect.mapError((e: ProviderError) => fromProviderError(e, seen)),
        Effect.timeoutOrElse({
          duration: Duration.seconds(timeoutSeconds),
          orElse: () => Effect.fail(failure(`the model did not answer within ${timeoutSeconds} s`, true, seen))
        })
      )
      const response = yield* abortable(call, ctx.signal, seen)
      const text = response.answer.content ?? ""
      if (text.trim() === "") return yield* Effect.fail(failure("the model answered with no text", true, seen))
      return {
        outcome: Normalize.fromText(text),
        seen,
        usage: { costUsd: response.costUsd, tokens: response.tokensIn + response.tokensOut },
        ref: {}
      }
    })

  return { type: "ollama", probe, execute }
}

/** A router failure as an attempt failure: a 429 (or a rate-limit text) carries its Retry-After as a hint. */
export const fromProviderError = (e: ProviderError, seen: unknown): AttemptFailure => {
  const rateLimited = e.status === 429 || e.kind === "rate_limited"
  const hinted = e.retryAfterMs === undefined ? undefined : Normalize.clampSeconds(e.retryAfterMs / 1000)
  const retryAfterSeconds = rateLimited
    ? hinted ?? Normalize.retryAfterOf(e.reason) ?? Normalize.DEFAULT_RATE_LIMIT_SECONDS
    : undefined
  return failure(e.message, e.retryable || rateLimited, seen, retryAfterSeconds)
}

/** `effect`, stopped with a non-retryable failure when `signal` aborts (the task was canceled). */
export const abortable = <A>(
  effect: Effect.Effect<A, AttemptFailure>,
  signal: AbortSignal,
  seen: unknown
): Effect.Effect<A, AttemptFailure> =>
  Effect.raceFirst(
    effect,
    Effect.callback<never, AttemptFailure>((resume) => {
      const onAbort = () => resume(Effect.fail(failure("canceled", false, seen)))
      if (signal.aborted) onAbort()
      else signal.addEventListener("abort", onAbort, { once: true })
      return Effect.sync(() => signal.removeEventListener("abort", onAbort))
    })
  )

/** The adapter over the host's router and catalogue (the catalogue read as Providers.layerConfig reads it). */
export const fromHost = Effect.gen(function*() {
  const provider = yield* ModelProvider
  const catalog = yield* Catalog.fromConfig.pipe(Effect.orDie)
  return make({ provider, catalog })
})
