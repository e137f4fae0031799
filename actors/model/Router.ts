// The model router: a ModelProvider over the catalogue's providers. It resolves a request's alias to candidate
// models, orders them by the routing strategy, skips providers whose shared circuit breaker is open, and fails
// over on retryable failures; temperature-0 requests may be answered from the exact-match response cache.
// Every answer carries its route: what was asked, what answered and why, and what failed first.
import { Clock, Duration, Effect } from "effect"
import type { Breakers } from "./Breakers.ts"
import { DEFAULT_MAX_TOKENS } from "../../schema/AgentSpec.ts"
import { ProviderError, type ProviderErrorKind } from "../../schema/Errors.ts"
import type { Route, RouteAttempt } from "../../schema/Events.ts"
import * as Catalog from "./Catalog.ts"
import { type Delta, emit, ModelProvider, type Request, type Response, type Strategy } from "./ModelProvider.ts"
import * as Offline from "./Offline.ts"
import * as Prices from "./Prices.ts"
import * as Quote from "./Quote.ts"
import * as ResponseCache from "./ResponseCache.ts"

export const NAME = "router"

// ---- what this host has seen of each model ----

/** Weight of the newest observation in the moving averages. */
const ALPHA = 0.3

export interface Health {
  /** Moving average of answered calls' latency; undefined before the first answer. */
  readonly latencyMs: number | undefined
  /** Moving average of retryable failures (1) and answers (0). */
  readonly errorRate: number
}

/** Per `provider/model` moving averages of latency and errors on this host (not shared: each host sees its own network). */
export const makeObservations = () => {
  const health = new Map<string, Health>()
  return {
    get: (c: Catalog.Candidate): Health | undefined => health.get(`${c.provider}/${c.model}`),
    record: (c: Catalog.Candidate, ok: boolean, latencyMs: number) => {
      const key = `${c.provider}/${c.model}`
      const h = health.get(key) ?? { latencyMs: undefined, errorRate: 0 }
      health.set(key, {
        latencyMs: !ok
          ? h.latencyMs
          : h.latencyMs === undefined
          ? latencyMs
          : h.latencyMs + ALPHA * (latencyMs - h.latencyMs),
        errorRate: h.errorRate + ALPHA * ((ok ? 0 : 1) - h.errorRate)
      })
    }
  }
}
export type Observations = ReturnType<typeof makeObservations>

// ---- ordering (pure) ----

/** In `balanced`, a candidate whose recent calls failed this often moves behind the others. */
export const TROUBLED_ERROR_RATE = 0.5
/** In `balanced`, a candidate this many times slower than the fastest observed one moves behind the others. */
export const TROUBLED_SLOWDOWN = 3

/** USD per million tokens in and out together; undefined for a model the price table lacks. */
export const priceOf = (table: Prices.Table, c: Catalog.Candidate): number | undefined => {
  const p = Prices.priceOf(table, c.model)
  return p === undefined ? undefined : p.price.inputPerMTok + p.price.outputPerMTok
}

/**
 * The candidates in the order they are tried:
 * - `best`: the catalogue's order.
 * - `cheap`: ascending input + output price; unpriced models after priced ones; ties keep the catalogue's order.
 * - `fast`: ascending observed latency among the observed candidates, in the places they hold; unobserved
 *   candidates keep their places.
 * - `balanced`: the catalogue's order, except that troubled candidates (error rate at least
 *   TROUBLED_ERROR_RATE, or slower than TROUBLED_SLOWDOWN times the fastest) move to the end, in order.
 */
export const order = (
  strategy: Strategy,
  candidates: ReadonlyArray<Catalog.Candidate>,
  facts: {
    readonly price: (c: Catalog.Candidate) => number | undefined
    readonly health: (c: Catalog.Candidate) => Health | undefined
  }
): ReadonlyArray<Catalog.Candidate> => {
  const indexed = candidates.map((c, i) => ({ c, i }))
  switch (strategy) {
    case "best":
      return candidates
    case "cheap": {
      const price = (c: Catalog.Candidate) => facts.price(c) ?? Number.POSITIVE_INFINITY
      return indexed.sort((a, b) => price(a.c) - price(b.c) || a.i - b.i).map((x) => x.c)
    }
    case "fast": {
      const latency = (c: Catalog.Candidate) => facts.health(c)?.latencyMs
      const observed = indexed.filter((x) => latency(x.c) !== undefined)
      const sorted = [...observed].sort((a, b) => latency(a.c)! - latency(b.c)! || a.i - b.i)
      const out = [...candidates]
      observed.forEach((slot, k) => (out[slot.i] = sorted[k]!.c))
      return out
    }
    case "balanced": {
      const latencies = candidates.flatMap((c) => {
        const l = facts.health(c)?.latencyMs
        return l === undefined ? [] : [l]
      })
      const fastest = latencies.length === 0 ? undefined : Math.min(...latencies)
      const troubled = (c: Catalog.Candidate) => {
        const h = facts.health(c)
        if (h === undefined) return false
        if (h.errorRate >= TROUBLED_ERROR_RATE) return true
        return h.latencyMs !== undefined && fastest !== undefined && fastest > 0 &&
          h.latencyMs > TROUBLED_SLOWDOWN * fastest
      }
      return [...candidates.filter((c) => !troubled(c)), ...candidates.filter(troubled)]
    }
  }
}

// ---- failures ----

/** A failure worth trying the next candidate for: rate limits, 5xx, timeouts and network errors. */
export const isRetryable = (e: ProviderError): boolean => e.retryable || e.status === 429

/** The RouteAttempt code of a failed call. */
export const attemptCode = (e: ProviderError): string => ATTEMPT_CODE[e.kind]

const ATTEMPT_CODE: Record<ProviderErrorKind, string> = {
  rate_limited: "rate_limited",
  timeout: "timeout",
  unavailable: "provider_unavailable",
  refused: "provider_error"
}

const attemptMessage = (e: ProviderError) =>
  e.status === undefined ? e.reason : `HTTP ${e.status}: ${e.reason.replace(/^HTTP \d+: /, "")}`

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** Why the candidate that answered was chosen. */
export const reasonOf = (
  alias: string,
  strategy: Strategy,
  attempts: ReadonlyArray<RouteAttempt>,
  trial: boolean
): string => {
  const failed = attempts.filter((a) => a.code !== "circuit_open").length
  const open = attempts.length - failed
  const parts = [
    ...(failed > 0 ? [`failover after ${plural(failed, "failed attempt")}`] : []),
    ...(open > 0 ? [`${plural(open, "candidate")} skipped (circuit open)`] : []),
    ...(trial ? ["half-open trial call"] : [])
  ]
  return parts.length === 0
    ? `first healthy candidate of ${alias} (${strategy})`
    : `${parts.join("; ")}; ${alias} (${strategy})`
}

// ---- the router ----

export interface Settings {
  readonly catalog: Catalog.Catalog
  /** The catalogue's provider instances by name (the offline provider under `offline` when there are none). */
  readonly providers: ReadonlyMap<string, ModelProvider["Service"]>
  readonly prices: Prices.Table
  readonly breakers: Breakers["Service"]
  /** Null when the response cache is off. */
  readonly cache: ResponseCache.Service | null
  readonly observations?: Observations
}

/** How long past a provider's own deadline the router gives up on a call that has not ended by itself. */
const GRACE_MS = 1_000

export const make = (settings: Settings): ModelProvider["Service"] => {
  const { catalog, providers, prices, breakers, cache } = settings
  const observations = settings.observations ?? makeObservations()
  const timeoutOf = new Map(catalog.providers.map((p) => [p.name, p.timeoutMs]))
  const apiOf = new Map(catalog.providers.map((p) => [p.name, p.api]))

  const routeOf = (
    request: Request,
    strategy: Strategy,
    chosen: string | null,
    reason: string,
    cached: boolean,
    attempts: ReadonlyArray<RouteAttempt>
  ): Route => ({ alias: request.model, strategy, chosen, reason, cached, attempts })

  /**
   * One call to one candidate, under the provider's deadline, traced as a GenAI span. Its text deltas go to the
   * request's sink; when it fails after giving some, the sink is told to reset, since the next candidate's answer
   * starts over (ADR 0061).
   */
  const attempt = (request: Request, c: Catalog.Candidate, provider: ModelProvider["Service"]) => {
    const timeoutMs = timeoutOf.get(c.provider)
    const sink = request.onDelta
    let gave = false
    const call = provider.complete({
      ...request,
      model: c.model,
      ...(sink === undefined ? {} : {
        onDelta: (delta: Delta) => {
          gave = delta._tag === "text"
          sink(delta)
        }
      })
    }).pipe(
      Effect.onError(() =>
        Effect.sync(() => {
          if (sink !== undefined && gave) sink({ _tag: "reset" })
          gave = false
        })
      )
    )
    const bounded = timeoutMs === undefined ? call : call.pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMs + GRACE_MS),
        orElse: () =>
          Effect.fail(
            new ProviderError({
              provider: c.provider,
              kind: "timeout",
              reason: `no answer within ${timeoutMs} ms`,
              retryable: true
            })
          )
      })
    )
    return bounded.pipe(
      Effect.tap((r) =>
        Effect.annotateCurrentSpan({
          "gen_ai.response.model": r.answer.model,
          "gen_ai.usage.input_tokens": r.tokensIn,
          "gen_ai.usage.output_tokens": r.tokensOut,
          "gen_ai.usage.cached_input_tokens": r.cachedTokensIn ?? 0,
          "gen_ai.usage.reasoning_tokens": r.reasoningTokens ?? 0,
          "lantern.cost_usd": r.costUsd
        })
      ),
      Effect.tapError((e) => Effect.annotateCurrentSpan({ "error.type": attemptCode(e) })),
      Effect.withSpan("gen_ai.route.attempt", {
        attributes: {
          "gen_ai.operation.name": "chat",
          "gen_ai.system": apiOf.get(c.provider) ?? c.provider,
          "gen_ai.request.model": c.model,
          "lantern.provider": c.provider,
          ...(request.temperature === undefined ? {} : { "gen_ai.request.temperature": request.temperature }),
          ...(request.maxTokens === undefined ? {} : { "gen_ai.request.max_tokens": request.maxTokens })
        }
      }, { captureStackTrace: false })
    )
  }

  const fromCache = (request: Request, candidates: ReadonlyArray<Catalog.Candidate>, strategy: Strategy) =>
    Effect.gen(function*() {
      if (cache === null || !ResponseCache.isCacheable(request)) return { key: undefined, hit: undefined }
      const key = ResponseCache.keyOf(request, candidates)
      if (key === undefined) return { key: undefined, hit: undefined }
      const entry = yield* cache.get(key)
      if (entry === undefined) return { key, hit: undefined }
      // the step costs nothing and processed no tokens; the entry keeps what the original call cost
      const hit: Response = {
        answer: entry.answer,
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        route: routeOf(request, strategy, entry.chosen, "cache hit", true, [])
      }
      return { key, hit }
    })

  const complete = (request: Request): Effect.Effect<Response, ProviderError> =>
    Effect.gen(function*() {
      const strategy = request.strategy ?? catalog.strategy
      const candidates = Catalog.resolve(catalog, request.model)
      const cached = yield* fromCache(request, candidates, strategy)
      if (cached.hit !== undefined) {
        yield* Effect.annotateCurrentSpan({
          "lantern.route.chosen": cached.hit.route!.chosen ?? "",
          "lantern.route.cached": true
        })
        // a cached answer streams as one delta: a viewer sees the text it would have seen live
        emit(request, cached.hit.answer.content)
        return cached.hit
      }
      const ordered = order(strategy, candidates, { price: (c) => priceOf(prices, c), health: observations.get })
      const attempts: Array<RouteAttempt> = []
      let last: ProviderError | undefined
      let anyRetryable = false
      /** Per candidate that may answer later, how long until it may be tried again (undefined: at once). */
      const retryAfters: Array<number | undefined> = []
      const cooldownOf = (provider: string, now: number): number | undefined => {
        const b = breakers.current(provider)
        return b === undefined || b.state === "closed" || b.until <= now ? undefined : b.until - now
      }
      for (const c of ordered) {
        const provider = providers.get(c.provider)
        if (provider === undefined) {
          attempts.push({
            provider: c.provider,
            model: c.model,
            code: "provider_error",
            message: `no provider named ${c.provider}`,
            durationMs: 0
          })
          continue
        }
        const admitted = yield* breakers.admit(c.provider)
        if (admitted === "open") {
          attempts.push({
            provider: c.provider,
            model: c.model,
            code: "circuit_open",
            message: `circuit of ${c.provider} is open`,
            durationMs: 0
          })
          anyRetryable = true
          retryAfters.push(cooldownOf(c.provider, yield* Clock.currentTimeMillis))
          continue
        }
        const started = yield* Clock.currentTimeMillis
        const outcome = yield* Effect.result(attempt(request, c, provider))
        const durationMs = (yield* Clock.currentTimeMillis) - started
        if (outcome._tag === "Success") {
          observations.record(c, true, durationMs)
          yield* breakers.succeeded(c.provider, admitted)
          const chosen = `${c.provider}/${c.model}`
          const r = outcome.success
          const route = routeOf(
            request,
            strategy,
            chosen,
            reasonOf(request.model, strategy, attempts, admitted === "trial"),
            false,
            attempts
          )
          if (cached.key !== undefined) {
            yield* cache!.put(cached.key, {
              format: ResponseCache.FORMAT,
              answer: r.answer,
              chosen,
              tokensIn: r.tokensIn,
              tokensOut: r.tokensOut,
              costUsd: r.costUsd,
              ...(r.cachedTokensIn === undefined ? {} : { cachedTokensIn: r.cachedTokensIn }),
              ...(r.reasoningTokens === undefined ? {} : { reasoningTokens: r.reasoningTokens }),
              storedAt: yield* Clock.currentTimeMillis
            })
          }
          yield* Effect.annotateCurrentSpan({
            "lantern.route.chosen": chosen,
            "lantern.route.attempts": attempts.length,
            "lantern.cost_usd": r.costUsd
          })
          return { ...r, route }
        }
        const e = outcome.failure
        last = e
        attempts.push({
          provider: c.provider,
          model: c.model,
          code: attemptCode(e),
          message: attemptMessage(e),
          durationMs
        })
        if (isRetryable(e)) {
          anyRetryable = true
          observations.record(c, false, durationMs)
          yield* breakers.failed(c.provider, admitted)
          const cooldown = cooldownOf(c.provider, yield* Clock.currentTimeMillis)
          retryAfters.push(
            cooldown === undefined && e.retryAfterMs === undefined
              ? undefined
              : Math.max(cooldown ?? 0, e.retryAfterMs ?? 0)
          )
          continue
        }
        // the provider answered, so it is up (a trial it answered closes its breaker); the request is at fault
        if (admitted === "trial") yield* breakers.succeeded(c.provider, admitted)
        const route = routeOf(
          request,
          strategy,
          null,
          `stopped: ${c.provider}/${c.model} refused the request (not retryable)`,
          false,
          attempts
        )
        return yield* new ProviderError({ ...errorFields(e), retryable: false, route })
      }
      const route = routeOf(request, strategy, null, `every candidate of ${request.model} failed`, false, attempts)
      yield* Effect.annotateCurrentSpan({ "lantern.route.attempts": attempts.length })
      const summary = attempts.map((a) => `${a.provider}/${a.model}: ${a.code}`).join("; ")
      const wait = waitOf(retryAfters)
      return yield* new ProviderError({
        provider: last?.provider ?? NAME,
        kind: last?.kind ?? (anyRetryable ? "unavailable" : "refused"),
        ...(last?.status === undefined ? {} : { status: last.status }),
        ...(wait === undefined ? {} : { retryAfterMs: wait }),
        reason: `every candidate of ${request.model} failed (${summary})${
          last === undefined ? "" : `; last: ${attemptMessage(last)}`
        }`,
        retryable: anyRetryable,
        route
      })
    }).pipe(
      Effect.withSpan("gen_ai.route", {
        attributes: {
          "lantern.route.alias": request.model,
          "lantern.route.strategy": request.strategy ?? catalog.strategy
        }
      }, { captureStackTrace: false })
    )

  const quote = (request: Request) =>
    Effect.gen(function*() {
      const candidates = Catalog.resolve(catalog, request.model)
      const closed = yield* Effect.filter(candidates, (c) => Effect.map(breakers.isOpen(c.provider), (open) => !open))
      const usable = closed.length === 0 ? candidates : closed
      const allAnthropic = usable.every((c) => apiOf.get(c.provider) === "anthropic")
      return Quote.of(prices, request, usable, allAnthropic ? catalog.anthropicMaxTokens : DEFAULT_MAX_TOKENS)
    })

  // with no real provider the router is the offline provider in all but name, and says so where a host shows it
  return ModelProvider.of({ name: catalog.providers.length === 0 ? Offline.PROVIDER : NAME, complete, quote })
}

/**
 * How long until any candidate may be tried again: the shortest of their waits (a `Retry-After`, an open
 * breaker's remaining cooldown), and none when one of them may be tried at once.
 */
const waitOf = (waits: ReadonlyArray<number | undefined>): number | undefined =>
  waits.length === 0 || waits.some((w) => w === undefined) ? undefined : Math.min(...(waits as ReadonlyArray<number>))

const errorFields = (e: ProviderError) => ({
  provider: e.provider,
  kind: e.kind,
  reason: e.reason,
  ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }),
  ...(e.status === undefined ? {} : { status: e.status })
})
