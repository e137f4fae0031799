// The router derived from the declaration (edge/Api.ts): each endpoint authenticates and checks its scope, decodes
// its path, query, headers and body with the declared schemas, runs its handler, and answers with a declared status;
// a failure answers with the status its declaration gives, and anything undeclared is a 500 that tells nothing.
import { Cause, Config, Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Audit, UNKNOWN_TENANT } from "../actors/audit/Audit.ts"
import type { Unauthorized } from "../schema/Errors.ts"
import * as Issues from "../schema/Issues.ts"
import type * as Api from "./Api.ts"
import { Auth, type Principal } from "./Auth.ts"
import type { Endpoint, ErrorOf, Failure, Input, Out } from "./Endpoint.ts"
import * as Failures from "./Failures.ts"
import { body, bodyOr, decode, errorResponse, Forbidden, json, query } from "./Http.ts"
import * as Scopes from "./Scopes.ts"

/** An answer with a status (and headers) of the endpoint's choosing among those it declares. */
export class Reply<A> {
  constructor(readonly status: number, readonly body: A, readonly headers: Readonly<Record<string, string>> = {}) {}
}
export const reply = <A>(status: number, body: A, headers?: Readonly<Record<string, string>>) =>
  new Reply(status, body, headers)

/** Who called: the key's tenant and principal, for an endpoint that needs a token. */
export type Caller<E extends Endpoint> = E["scope"] extends null ? {} : {
  readonly tenant: string
  readonly principal: Principal
}

type Standard = ErrorOf<
  | typeof Failures.standard[number]
  | typeof Failures.authenticated[number]
  | typeof Failures.withBody[number]
  | typeof Failures.writing[number]
>

/** The handler of an endpoint: what it may fail with is what the endpoint declares, and the standard failures. */
export type Handler<E extends Endpoint, R = any> = (
  input: Input<E> & Caller<E>
) => Effect.Effect<Out<E> | Reply<Out<E>>, ErrorOf<E["failures"][number]> | Standard, R>

export type Handlers<K extends Api.Name = Api.Name> = { readonly [P in K]: Handler<Api.Endpoints[P]> }

/** Handlers of some endpoints, typed by their declarations (the router takes the handlers of all of them). */
export const handlers = <
  H extends { readonly [P in keyof H]: P extends Api.Name ? Handler<Api.Endpoints[P]> : never }
>(h: H): H => h

type RequirementsOf<H> = {
  [K in keyof H]: H[K] extends (...a: any) => Effect.Effect<any, any, infer R> ? R : never
}[keyof H]

/** Who the caller is, for the record: a key's id, or the bootstrap token of its tenant. Never a secret. */
export const actorOf = (principal: Principal) =>
  principal.keyId === null ? `token:${principal.tenant}` : `key:${principal.keyId}`

const CORS = { "access-control-allow-origin": "*" }

/**
 * Fails with Forbidden, audited as `scope.denied`, unless `principal` holds `scope`, which `target` (the route)
 * needs; `why` says what for when the route's own scope is not the reason.
 */
export const demand = (principal: Principal, scope: Scopes.Scope, target: string, why = "") =>
  Scopes.holds(principal, scope) ? Effect.void : Effect.gen(function*() {
    yield* (yield* Audit).record({
      tenant: principal.tenant,
      action: "scope.denied",
      actor: actorOf(principal),
      target,
      outcome: "denied",
      detail: { missingScope: scope }
    })
    return yield* new Forbidden({
      missingScope: scope,
      reason: `this key lacks the scope '${scope}' that ${target} needs${why}`
    })
  })

/** The caller, after its key is checked to hold the endpoint's scope (a refusal is audited as `scope.denied`). */
const authorize = (endpoint: Endpoint) =>
  Effect.gen(function*() {
    const principal = yield* (yield* Auth).principal
    // the request's span and every span under it name the tenant
    yield* Effect.annotateCurrentSpan({ tenant_id: principal.tenant })
    yield* demand(principal, endpoint.scope!, `${endpoint.method} ${endpoint.path}`)
    return { tenant: principal.tenant, principal }
  })

/** The declared request headers, decoded (an absent one is absent; an empty one too where the header says so). */
const headersOf = (endpoint: Endpoint) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const out: Record<string, unknown> = {}
    for (const h of endpoint.headers) {
      const raw = request.headers[h.name.toLowerCase()]
      if (raw === undefined || (raw === "" && h.emptyIsAbsent === true)) continue
      out[h.name.toLowerCase()] = yield* decode(h.schema, raw, h.name)
    }
    return out
  })

/** The failures an endpoint answers: its own, and the standard ones. */
export const failuresOf = (endpoint: Endpoint): ReadonlyArray<Failure> => [
  ...endpoint.failures,
  ...Failures.standard,
  ...(endpoint.scope === null ? [] : Failures.authenticated),
  ...(endpoint.body === undefined ? [] : Failures.withBody),
  ...(endpoint.method === "GET" ? [] : Failures.writing)
]

/**
 * Records a refused authentication as `auth.failed` of the `_unknown` tenant (no tenant is known yet), with the
 * route as target and the reason (which never quotes the token). Forked: the 401 does not wait for the journal.
 */
const auditAuthFailure = (error: Unauthorized) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const audit = yield* Audit
    // the path only: a query string is the caller's text and may carry anything
    const path = new URL(request.url, "http://localhost").pathname
    yield* Effect.forkDetach(audit.record({
      tenant: UNKNOWN_TENANT,
      action: "auth.failed",
      actor: "anonymous",
      target: `${request.method} ${path}`,
      outcome: "failed",
      detail: { reason: error.reason }
    }))
  })

/** The answer of a declared failure. */
const answerOf = (f: Failure, error: any) => {
  const { message, ...rest } = f.render?.(error) ?? { message: error instanceof Error ? error.message : f.code }
  return json({ error: { code: f.code, message, ...rest } }, f.status, f.headers?.(error))
}

/**
 * Turns every failure of a handler into a JSON error: a failure among `failures` by its declared status, anything
 * else (a defect, an undeclared error) into a 500 that says nothing of the internals. The cause is logged.
 */
export const handled = <E, R>(
  failures: ReadonlyArray<Failure>,
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) =>
  effect.pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const failure = Cause.findErrorOption(cause)
      const error = failure._tag === "Some" ? failure.value : undefined
      const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : ""
      const declared = failures.find((f) => f.tag === tag)
      if (declared !== undefined) {
        const answer = answerOf(declared, error)
        if (tag === "Unauthorized") return Effect.as(auditAuthFailure(error as Unauthorized), answer)
        return answer.status >= 500
          ? Effect.as(Effect.logWarning("request failed", cause), answer)
          : Effect.succeed(answer)
      }
      return Effect.as(
        Effect.logError("unexpected failure while handling a request", cause),
        errorResponse(500, "internal", "internal error")
      )
    })
  )

/** Whether a JSON answer decodes with its documented schema, as a client reads it; the issues when not. */
const undocumented = (schema: Schema.Top, body: unknown): string | null => {
  const seen = JSON.parse(JSON.stringify(body ?? null))
  const result = Schema.decodeUnknownExit(schema as Schema.Codec<unknown, unknown>)(seen, {
    errors: "all",
    onExcessProperty: "error"
  })
  if (result._tag === "Success") return null
  const issue = Cause.findErrorOption(result.cause)
  return issue._tag === "Some" && Schema.isSchemaError(issue.value)
    ? Issues.toText(issue.value.issue)
    : "does not decode"
}

const toResponse = (endpoint: Endpoint, out: unknown, check: boolean) => {
  if (HttpServerResponse.isHttpServerResponse(out)) return out
  const chosen = out instanceof Reply ? out : null
  const statuses = Object.keys(endpoint.success).map(Number)
  const status = chosen?.status ?? (statuses.length === 1 ? statuses[0]! : -1)
  const success = endpoint.success[status]
  if (success === undefined) {
    return Effect.die(new Error(`${endpoint.name} answered ${status}, which it does not declare`))
  }
  const value = chosen === null ? out : chosen.body
  const headers = {
    ...chosen?.headers,
    ...(endpoint.cacheControl === undefined ? {} : { "cache-control": endpoint.cacheControl })
  }
  if (success._tag === "None") return HttpServerResponse.empty({ status, headers })
  if (success._tag === "Json" && check) {
    const why = undocumented(success.schema, value)
    if (why !== null) {
      return Effect.as(
        Effect.logError(`${endpoint.name}: the ${status} answer does not match its documented schema: ${why}`),
        errorResponse(500, "undocumented_response", `the ${status} answer does not match its documented schema: ${why}`)
      )
    }
  }
  return json(value, status, headers)
}

/** The route of one endpoint. */
const route = (endpoint: Endpoint, handler: Handler<any, any>, check: boolean) => {
  const failures = failuresOf(endpoint)
  const answer = Effect.gen(function*() {
    const caller = endpoint.scope === null ? {} : yield* authorize(endpoint)
    const params = endpoint.params === undefined
      ? undefined
      : yield* decode(endpoint.params, yield* HttpRouter.params)
    const runId = (params as { readonly id?: unknown } | undefined)?.id
    if (typeof runId === "string" && runId.startsWith("run_")) yield* Effect.annotateCurrentSpan({ run_id: runId })
    const q = endpoint.query === undefined ? undefined : yield* decode(endpoint.query, yield* query)
    const headers = yield* headersOf(endpoint)
    const b = endpoint.body === undefined
      ? undefined
      : endpoint.body.required
      ? yield* body(endpoint.body.schema)
      : yield* bodyOr(endpoint.body.schema, {})
    const out = yield* handler({ ...caller, params, query: q, headers, body: b })
    const response = toResponse(endpoint, out, check)
    return Effect.isEffect(response) ? yield* response : response
  })
  const served = handled(failures, answer)
  // a public endpoint answers any origin, refusals included, so a browser can read why
  const withCors = endpoint.scope === null
    ? Effect.map(served, (r) => HttpServerResponse.setHeaders(r, CORS))
    : served
  return HttpRouter.add(endpoint.method, endpoint.path as HttpRouter.PathInput, withCors)
}

/** The preflight a browser sends before a cross-origin JSON request to a public path. */
const preflight = (path: string, methods: ReadonlyArray<string>) =>
  HttpRouter.add(
    "OPTIONS",
    path as HttpRouter.PathInput,
    Effect.succeed(HttpServerResponse.empty({
      status: 204,
      headers: {
        ...CORS,
        "access-control-allow-methods": [...methods, "OPTIONS"].join(", "),
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "86400"
      }
    }))
  )

/**
 * The router of every endpoint of `endpoints`, each served by its handler. With LANTERN_CHECK_RESPONSES (the test
 * stacks set it), every JSON answer is checked against its documented schema and a mismatch answers 500.
 */
export const layer = <H extends Handlers>(
  endpoints: ReadonlyArray<Endpoint>,
  h: H,
  options: { readonly check?: boolean } = {}
) =>
  Layer.unwrap(Effect.gen(function*() {
    const check = options.check ??
      (yield* Config.Boolean("LANTERN_CHECK_RESPONSES").pipe(Config.withDefault(false)))
    const byName = h as unknown as Record<string, Handler<any, any>>
    const routes = endpoints.map((e) => route(e, byName[e.name]!, check))
    const publicPosts = new Map<string, Array<string>>()
    for (const e of endpoints) {
      if (e.scope === null && e.method !== "GET") publicPosts.set(e.path, [...publicPosts.get(e.path) ?? [], e.method])
    }
    const preflights = [...publicPosts].map(([path, methods]) => preflight(path, methods))
    return Layer.mergeAll(...(routes as [any]), ...preflights) as unknown as Layer.Layer<
      never,
      never,
      Exclude<RequirementsOf<H>, HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext> | Auth | Audit
    >
  }))
