// The edge's HTTP vocabulary: JSON answers, the error body every failure uses, request decoding with the
// field and reason of each problem, and the one place where typed errors become status codes.
import { Cause, Effect, Schema } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import type { ErrorResponse } from "../schema/Api.ts"
import { Audit, UNKNOWN_TENANT } from "../actors/audit/Audit.ts"
import { BudgetExceeded, Unauthorized } from "../schema/Errors.ts"
import * as Issues from "../schema/Issues.ts"

/** A request the API refuses before doing anything: 400 with the offending fields. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  issues: Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String }))
}) {
  override get message() {
    return this.issues.map((i) => `${i.field}: ${i.message}`).join("; ")
  }
}

/** The caller's key lacks the scope a route needs: 403 naming it. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  missingScope: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", { limit: Schema.Number }) {}

export const MAX_BODY_BYTES = 1024 * 1024
/** Deepest nesting of arrays/objects a body may have: deeper JSON is refused before anything walks it. */
export const MAX_DEPTH = 64

/** The path of the first value nested deeper than `max`, or null; iterative, so any depth is safe to check. */
export const tooDeep = (value: unknown, max = MAX_DEPTH): string | null => {
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: value, depth: 0, path: "" }]
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!
    if (v === null || typeof v !== "object") continue
    if (depth >= max) return path === "" ? "(body)" : path
    if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, depth: depth + 1, path: `${path}[${i}]` }))
    else for (const [k, x] of Object.entries(v)) stack.push({ v: x, depth: depth + 1, path: path === "" ? k : `${path}.${k}` })
  }
  return null
}

export const json = (body: unknown, status = 200, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe(body, { status, ...(headers === undefined ? {} : { headers }) })

export const errorResponse = (status: number, code: string, message: string, issues?: ReadonlyArray<Issues.FieldIssue>, headers?: Record<string, string>) => {
  const body: ErrorResponse = { error: { code, message, ...(issues === undefined ? {} : { issues }) } }
  return json(body, status, headers)
}

export const badRequest = (field: string, message: string) => new BadRequest({ issues: [{ field, message }] })

/** Decodes `input` with `schema`; failures become a 400 naming each field (prefixed with `root`). */
export const decode = <S extends Schema.Top>(schema: S, input: unknown, root = "") =>
  Schema.decodeUnknownEffect(schema as unknown as Schema.Codec<S["Type"], unknown>)(input, { errors: "all" }).pipe(
    Effect.mapError((e) => new BadRequest({ issues: Issues.toFieldIssues(e.issue, root) }))
  )

/** The request body as JSON, decoded with `schema`. */
export const body = <S extends Schema.Top>(schema: S) => bodyOr(schema, null)

/** The request body decoded with `schema`, or `empty` when the request has no body (only when `empty` is given). */
export const bodyOr = <S extends Schema.Top, B>(schema: S, empty: B) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const length = Number(request.headers["content-length"] ?? "0")
    if (length > MAX_BODY_BYTES) return yield* new PayloadTooLarge({ limit: MAX_BODY_BYTES })
    const text = yield* request.text.pipe(Effect.mapError(() => badRequest("(body)", "the request body could not be read")))
    if (text.length > MAX_BODY_BYTES) return yield* new PayloadTooLarge({ limit: MAX_BODY_BYTES })
    if (text.trim() === "") {
      if (empty !== null) return empty
      return yield* badRequest("(body)", "a JSON body is required")
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      return yield* badRequest("(body)", `invalid JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
    const deep = tooDeep(parsed)
    if (deep !== null) {
      // name the field that holds the nesting, not the 64th index inside it
      const field = deep.replace(/(\[\d+\])+$/, "").replace(/^(.{200}).+$/, "$1…")
      return yield* badRequest(field === "" ? "(body)" : field, `nested deeper than ${MAX_DEPTH} levels`)
    }
    return (yield* decode(schema, parsed)) as S["Type"]
  })

/** The query string as a flat record (the last value of a repeated key wins). */
export const query = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const out: Record<string, string> = {}
  for (const [k, v] of new URL(request.url, "http://localhost").searchParams) out[k] = v
  return out
})

const STATUS: Record<string, readonly [number, string]> = {
  BadRequest: [400, "invalid_request"],
  Unauthorized: [401, "unauthorized"],
  BudgetExceeded: [402, "budget_exceeded"],
  Forbidden: [403, "forbidden"],
  KeyNotFound: [404, "api_key_not_found"],
  SecretNotFound: [404, "secret_not_found"],
  InvalidSecretUri: [400, "invalid_secret_uri"],
  SecretUnavailable: [503, "secret_unavailable"],
  AgentNotFound: [404, "agent_not_found"],
  AgentVersionNotFound: [404, "agent_version_not_found"],
  RunNotFound: [404, "run_not_found"],
  StepNotFound: [404, "step_not_found"],
  NotAwaitingApproval: [409, "not_awaiting_approval"],
  AgentAlreadyExists: [409, "agent_exists"],
  IdempotencyKeyReused: [409, "idempotency_key_reused"],
  RunAlreadyFinished: [409, "run_already_finished"],
  InvalidCommand: [409, "conflict"],
  PayloadTooLarge: [413, "payload_too_large"],
  AppendConflict: [503, "busy"],
  BusUnavailable: [503, "bus_unavailable"],
  SigningKeyUnavailable: [503, "signing_key_unavailable"],
  IdentityUnavailable: [503, "identity_unavailable"],
  NoRunIdentity: [409, "no_identity"],
  DatabaseUnavailable: [503, "database_unavailable"],
  UnknownEventVersion: [500, "journal_unreadable"],
  CorruptEvent: [500, "journal_unreadable"]
}

const toErrorResponse = (error: unknown) => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : ""
  const mapped = STATUS[tag]
  if (mapped === undefined) return null
  const [status, code] = mapped
  if (error instanceof BadRequest) return errorResponse(400, code, "the request is invalid", error.issues)
  if (error instanceof PayloadTooLarge) return errorResponse(413, code, `the request body exceeds ${error.limit} bytes`)
  if (error instanceof Forbidden) return json({ error: { code, message: error.message, missingScope: error.missingScope } }, 403)
  if (error instanceof BudgetExceeded) return json({ error: { code, message: error.message, budget: error.refusal } }, 402)
  const message = error instanceof Error ? error.message : code
  return errorResponse(status, code, message, undefined, status === 503 ? { "retry-after": "1" } : undefined)
}

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

/**
 * Turns every failure of a handler into a JSON error: typed errors by their status, anything else
 * (a defect, a foreign error) into a 500 that says nothing of the internals. The cause is logged.
 */
export const handled = <E, R>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  effect.pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const failure = Cause.findErrorOption(cause)
      const mapped = failure._tag === "Some" ? toErrorResponse(failure.value) : null
      if (failure._tag === "Some" && failure.value instanceof Unauthorized) return Effect.as(auditAuthFailure(failure.value), mapped!)
      if (mapped !== null) {
        return mapped.status >= 500 ? Effect.as(Effect.logWarning("request failed", cause), mapped) : Effect.succeed(mapped)
      }
      return Effect.as(Effect.logError("unexpected failure while handling a request", cause), errorResponse(500, "internal", "internal error"))
    })
  )
