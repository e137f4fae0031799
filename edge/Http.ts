// The edge's HTTP vocabulary: JSON answers, the error body every failure uses, and request decoding with the
// field and reason of each problem. Which typed error answers which status is declared in edge/Failures.ts.
import { ByteSize, Effect, Schema } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import type { ErrorResponse } from "../schema/Api.ts"
import * as Issues from "../schema/Issues.ts"
import { Text } from "../schema/index.ts"

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

export class PayloadTooLarge
  extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", { limit: Schema.Number }) {}

/** A body that is not JSON in UTF-8 (by its Content-Type): 415. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", {
  received: Schema.NullOr(Schema.String)
}) {
  override get message() {
    return this.received === null
      ? "a body needs the header Content-Type: application/json"
      : `the body's Content-Type must be application/json (UTF-8), not '${this.received}'`
  }
}

export const MAX_BODY_BYTES = 1024 * 1024

/** Refusals of the body as a whole name this field. */
const BODY = "(body)"

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** A body's media type must be JSON (`application/json` or `application/*+json`), in UTF-8 if a charset is named. */
const checkContentType = (header: string | undefined) => {
  if (header === undefined || header.trim() === "") {
    return Effect.fail(new UnsupportedMediaType({ received: null }))
  }
  const [type, ...parameters] = header.split(";").map((p) => p.trim().toLowerCase())
  const json = type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type ?? "")
  const charset = parameters.find((p) => p.startsWith("charset="))?.slice("charset=".length).replace(/"/g, "")
  return json && (charset === undefined || charset === "utf-8" || charset === "utf8")
    ? Effect.void
    : Effect.fail(new UnsupportedMediaType({ received: header.slice(0, 100) }))
}

/**
 * The raw body, read while counting bytes: a body past MAX_BODY_BYTES (declared or, when chunked, as it
 * arrives) is refused with 413 as soon as the limit is crossed; the rest is drained, never buffered.
 */
const readBody = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const declared = request.headers["content-length"]
  if (declared !== undefined && !/^\d+$/.test(declared))
    return yield* badRequest("Content-Length", "Expected a decimal number of bytes")
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES)
    return yield* new PayloadTooLarge({ limit: MAX_BODY_BYTES })
  return new Uint8Array(
    yield* request.arrayBuffer.pipe(
      Effect.provideService(HttpServerRequest.MaxBodySize, ByteSize.fromInputUnsafe(MAX_BODY_BYTES)),
      Effect.catch((e): Effect.Effect<never, PayloadTooLarge | BadRequest> =>
        e.reason._tag === "RequestParseError" && e.reason.reason === "BodyTooLarge"
          ? Effect.fail(new PayloadTooLarge({ limit: MAX_BODY_BYTES }))
          : Effect.fail(badRequest(BODY, "the request body could not be read"))
      )
    )
  )
})

/** The request body as JSON, decoded with `schema`. */
export const body = <S extends Schema.Top>(schema: S) => bodyOr(schema, null)

/**
 * The request body decoded with `schema`, or `empty` when the request has no body (only when `empty` is given).
 * A body must be JSON in valid UTF-8 whose strings can all be stored (schema/Text.ts); each refusal names the
 * field (a 400), the media type (415) or the limit (413), and nothing is done.
 */
export const bodyOr = <S extends Schema.Top, B>(schema: S, empty: B) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const bytes = yield* readBody
    if (bytes.byteLength === 0) {
      if (empty !== null) return empty
      return yield* badRequest(BODY, "a JSON body is required")
    }
    yield* checkContentType(request.headers["content-type"])
    let text: string
    try {
      text = utf8.decode(bytes)
    } catch {
      return yield* badRequest(BODY, "the body is not valid UTF-8")
    }
    if (text.trim() === "") {
      if (empty !== null) return empty
      return yield* badRequest(BODY, "a JSON body is required")
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      return yield* badRequest(BODY, `invalid JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
    const issues = Text.inspect(parsed)
    if (issues.length > 0) {
      return yield* new BadRequest({
        issues: issues.map((i) => ({ field: i.path === "" ? BODY : i.path, message: i.message }))
      })
    }
    return (yield* decode(schema, parsed)) as S["Type"]
  })

/** A text parameter that reached the edge outside a body (query value, header) but cannot be stored: 400 naming it. */
export const checkText = (field: string, value: string) => {
  const why = Text.problem(value)
  return why === null ? Effect.void : Effect.fail(badRequest(field, why))
}

/**
 * The query string as a flat record (the last value of a repeated key wins). Percent-encoding that is not
 * UTF-8, and text that cannot be stored, are refused with 400 naming the parameter.
 */
export const query = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const search = new URL(request.url, "http://localhost").search.slice(1)
  const out: Record<string, string> = {}
  for (const pair of search === "" ? [] : search.split("&")) {
    if (pair === "") continue
    const at = pair.indexOf("=")
    const [rawKey, rawValue] = at === -1 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)]
    let key: string
    let value: string
    try {
      key = decodeURIComponent(rawKey.replace(/\+/g, " "))
      value = decodeURIComponent(rawValue.replace(/\+/g, " "))
    } catch {
      return yield* badRequest(`(query)`, "malformed percent-encoding (not UTF-8) in the query string")
    }
    yield* checkText(Text.displayable(key), key)
    yield* checkText(Text.displayable(key), value)
    out[key] = value
  }
  return out
})

export const json = (body: unknown, status = 200, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe(body, { status, ...(headers === undefined ? {} : { headers }) })

export const errorResponse = (
  status: number,
  code: string,
  message: string,
  issues?: ReadonlyArray<Issues.FieldIssue>,
  headers?: Record<string, string>
) => {
  const body: ErrorResponse = { error: { code, message, ...(issues === undefined ? {} : { issues }) } }
  return json(body, status, headers)
}

export const badRequest = (field: string, message: string) => new BadRequest({ issues: [{ field, message }] })

/**
 * Decodes `input` with `schema`; failures become a 400 naming each field (prefixed with `root`). Unknown
 * fields are refused, each named: a misspelt `maxTurn` must not be dropped and answered with defaults.
 */
export const decode = <S extends Schema.Top>(schema: S, input: unknown, root = "") =>
  Schema.decodeUnknownEffect(schema as unknown as Schema.Codec<S["Type"], unknown>)(input, {
    errors: "all",
    onExcessProperty: "error"
  }).pipe(
    Effect.mapError((e) =>
      new BadRequest({
        issues: Issues.toFieldIssues(e.issue, root).map((i) =>
          i.message === "Expected no excess property"
            ? { field: i.field, message: "unknown field: not part of this request" }
            : i
        )
      })
    )
  )
