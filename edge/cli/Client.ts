// The CLI's client of the Lantern HTTP API, derived from its declaration (edge/Api.ts): where the API is and which
// token to send, a typed error for each way a call can fail, answers decoded with the schemas each endpoint declares
// for its status, and a run's live event stream (SSE).
import { join } from "node:path"
import { Config, Context, Effect, FileSystem, Layer, Option, Redacted, Schema, Stream } from "effect"
import { Api, Issues } from "../../schema/index.ts"
import { endpoints } from "../Api.ts"
import * as Endpoint from "../Endpoint.ts"
import * as Sse from "./Sse.ts"

export const DEFAULT_URL = "http://127.0.0.1:8080"
const USER_AGENT = "lantern-cli/0.1.0"
/** Time allowed for an answer's headers and a non-streamed body. */
const REQUEST_TIMEOUT = "30 seconds"

// ---- errors ----

/** The API answered with an error (status ≥ 400), in its `{ error: { code, message, issues? } }` shape. */
export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  status: Schema.Int,
  code: Schema.String,
  message: Schema.String,
  issues: Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String }))
}) {}

/** Nothing answered at the base URL: connection refused, unknown host, timeout, a connection cut short. */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot reach the Lantern API at ${this.url} (${this.reason})`
  }
}

/** Something answered, but not in the API's format (a proxy's HTML page, a body that fails its schema). */
export class BadResponse extends Schema.TaggedError<BadResponse>()("BadResponse", {
  request: Schema.String,
  status: Schema.Int,
  reason: Schema.String
}) {
  override get message() {
    return `unexpected answer to ${this.request} (HTTP ${this.status}): ${this.reason}`
  }
}

/** A setting (environment or credentials file) that cannot be used, such as a LANTERN_URL that is no URL. */
export class BadSetting extends Schema.TaggedError<BadSetting>()("BadSetting", {
  setting: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.setting}: ${this.reason}`
  }
}

export type ClientError = ApiError | Unreachable | BadResponse

// ---- settings ----

export interface Settings {
  readonly baseUrl: string
  readonly token: Option.Option<Redacted.Redacted<string>>
}

/** Parses a credentials file: `KEY=VALUE` lines; blank lines, `#` comments and an `export ` prefix allowed. */
export const parseCredentials = (text: string): Readonly<Record<string, string>> => {
  const out: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, "")
    if (line === "" || line.startsWith("#")) continue
    const eq = line.indexOf("=")
    if (eq <= 0) continue
    let value = line.slice(eq + 1).trim()
    if (value.length >= 2 && (value[0] === "\"" || value[0] === "'") && value.endsWith(value[0]))
      value = value.slice(1, -1)
    out[line.slice(0, eq).trim()] = value
  }
  return out
}

/** Checks a base URL and drops its trailing slashes, so paths can be appended. */
export const normalizeBaseUrl = (raw: string, setting: string): Effect.Effect<string, BadSetting> => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Effect.fail(new BadSetting({ setting, reason: `not a URL: '${raw}'` }))
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Effect.fail(new BadSetting({ setting, reason: `expected an http:// or https:// URL, got '${raw}'` }))
  }
  return Effect.succeed(raw.replace(/\/+$/, ""))
}

/**
 * LANTERN_URL and LANTERN_API_TOKEN from the environment, else from `${LANTERN_HOME ?? ".lantern"}/credentials`
 * (written by `lantern dev`), else the default local URL and no token.
 */
export const settingsFromConfig: Effect.Effect<Settings, BadSetting, FileSystem.FileSystem> = Effect.gen(function*() {
  const envUrl = yield* Config.option(Config.NonEmptyString("LANTERN_URL"))
  const envToken = yield* Config.option(Config.NonEmptyString("LANTERN_API_TOKEN"))
  const home = yield* Config.String("LANTERN_HOME").pipe(Config.withDefault(".lantern"))
  const file = Option.isSome(envUrl) && Option.isSome(envToken)
    ? {}
    : yield* FileSystem.FileSystem.use((fs) => fs.readFileString(join(home, "credentials"))).pipe(
      Effect.map(parseCredentials),
      Effect.orElseSucceed((): Readonly<Record<string, string>> => ({}))
    )
  const fromFile = (key: string) => Option.fromNullishOr(file[key]).pipe(Option.filter((v) => v !== ""))
  const baseUrl = yield* Option.match(envUrl, {
    onSome: (url) => normalizeBaseUrl(url, "LANTERN_URL"),
    onNone: () =>
      Option.match(fromFile("LANTERN_URL"), {
        onSome: (url) => normalizeBaseUrl(url, `LANTERN_URL in ${join(home, "credentials")}`),
        onNone: () => Effect.succeed(DEFAULT_URL)
      })
  })
  const token = Option.orElse(envToken, () => fromFile("LANTERN_API_TOKEN")).pipe(Option.map(Redacted.make))
  return { baseUrl, token }
}).pipe(
  Effect.catchTag("ConfigError", (e) => Effect.fail(new BadSetting({ setting: "environment", reason: e.message })))
)

// ---- the service ----

/** A decoded answer, with the JSON body as it came for `--json`. */
export interface Reply<A> {
  readonly status: number
  readonly body: unknown
  readonly value: A
}

export interface Probe {
  readonly status: number
  readonly text: string
}

/** What a call of an endpoint sends: its declared path parameters, query, headers and body, as JSON carries them. */
export type CallInput<E extends Endpoint.Endpoint> =
  & (E["params"] extends Schema.Top ? { readonly params: E["params"]["Encoded"] } : {})
  & (E["query"] extends Schema.Top
    ? { readonly query?: { readonly [K in keyof E["query"]["Encoded"]]?: E["query"]["Encoded"][K] | undefined } }
    : {})
  & (E["body"] extends Endpoint.Body<infer S> ? { readonly body: S["Encoded"] } : {})
  & { readonly headers?: Readonly<Record<string, string>> }

/** What a call of an endpoint answers: a JSON success decoded with its declared schema, null for 204, text for a stream. */
export type CallValue<E extends Endpoint.Endpoint> = E["success"][keyof E["success"]] extends infer S
  ? S extends { readonly _tag: "Json"; readonly schema: infer X extends Schema.Top } ? X["Type"]
  : S extends { readonly _tag: "None" } ? null
  : string
  : never

export interface Service {
  readonly baseUrl: string
  /** Whether a token was found; the token itself never leaves this module. */
  readonly hasToken: boolean
  /**
   * Calls a declared endpoint (edge/Api.ts): the path, query, headers and body from `input`, the answer decoded with
   * the schema the endpoint declares for its status; an undeclared status, or any error status, is a typed error.
   */
  readonly call: <E extends Endpoint.Endpoint>(
    endpoint: E,
    input: CallInput<E>
  ) => Effect.Effect<Reply<CallValue<E>>, ClientError>
  /** A GET whose status and text are the answer, whatever they are (health checks). */
  readonly probe: (path: string) => Effect.Effect<Probe, Unreachable>
  /** Opens an event stream; `lastEventId` asks the server to resume after that id. */
  readonly sse: (path: string, lastEventId: string | null) => Stream.Stream<Sse.Message, ClientError>
}

const describe = (e: unknown): string => {
  const cause = e instanceof Error && e.cause !== undefined ? e.cause : e
  const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : ""
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found"
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "connection reset"
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connection timed out"
  }
  return cause instanceof Error ? cause.message : String(cause)
}

const ErrorBody = Schema.fromJsonString(Api.ErrorResponse)
const decodeErrorBody = Schema.decodeUnknownOption(ErrorBody)

/** The typed error for a non-2xx answer; a body outside the API's error shape still gives a readable error. */
export const errorOf = (status: number, statusText: string, text: string): ApiError =>
  Option.match(decodeErrorBody(text), {
    onSome: ({ error }) =>
      new ApiError({ status, code: error.code, message: error.message, issues: error.issues ?? [] }),
    onNone: () =>
      new ApiError({
        status,
        code: `http_${status}`,
        message: text.trim() === "" || text.length > 300 || /<html/i.test(text)
          ? statusText || "no details"
          : text.trim(),
        issues: []
      })
  })

async function* messages(body: AsyncIterable<Uint8Array>): AsyncGenerator<Sse.Message> {
  const decoder = Sse.makeDecoder()
  const text = new TextDecoder()
  for await (const chunk of body) yield* decoder.push(text.decode(chunk, { stream: true }))
  yield* decoder.push(text.decode())
  yield* decoder.end()
}

export const make = (settings: Settings): Service => {
  const { baseUrl } = settings
  const unreachable = (e: unknown) => new Unreachable({ url: baseUrl, reason: describe(e) })
  const timedOut = Effect.fail(new Unreachable({ url: baseUrl, reason: `no answer within ${REQUEST_TIMEOUT}` }))

  const headers = (extra: Readonly<Record<string, string>> | undefined, accept: string, hasBody: boolean) => {
    const h: Record<string, string> = { accept, "user-agent": USER_AGENT, ...extra }
    if (hasBody) h["content-type"] = "application/json"
    if (Option.isSome(settings.token)) h["authorization"] = `Bearer ${Redacted.value(settings.token.value)}`
    return h
  }

  const urlOf = (path: string, query?: Readonly<Record<string, string | undefined>>) => {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, v)
    const qs = params.toString()
    return `${baseUrl}${path}${qs === "" ? "" : `?${qs}`}`
  }

  const exchange = (url: string, init: RequestInit) =>
    Effect.tryPromise({
      try: async (signal) => {
        const res = await fetch(url, { ...init, signal })
        return { res, text: await res.text() }
      },
      catch: unreachable
    }).pipe(Effect.timeoutOrElse({ duration: REQUEST_TIMEOUT, orElse: () => timedOut }))

  const call: Service["call"] = (endpoint, input) =>
    Effect.gen(function*() {
      const { params, query, body, headers: extra } = input as {
        readonly params?: Readonly<Record<string, unknown>>
        readonly query?: Readonly<Record<string, string | undefined>>
        readonly body?: unknown
        readonly headers?: Readonly<Record<string, string>>
      }
      const path = Endpoint.pathOf(endpoint.path, params)
      const label = `${endpoint.method} ${path}`
      const hasBody = endpoint.body !== undefined
      const init: RequestInit = { method: endpoint.method, headers: headers(extra, "application/json", hasBody) }
      if (hasBody) init.body = JSON.stringify(body ?? {})
      const { res, text } = yield* exchange(urlOf(path, query), init)
      if (res.status >= 400 && endpoint.success[res.status] === undefined) {
        return yield* errorOf(res.status, res.statusText, text)
      }
      const success = endpoint.success[res.status]
      if (success === undefined) {
        return yield* new BadResponse({
          request: label,
          status: res.status,
          reason: "a status the API does not declare"
        })
      }
      if (success._tag === "None")
        return { status: res.status, body: null, value: null as unknown as CallValue<typeof endpoint> }
      if (success._tag === "Media")
        return { status: res.status, body: text, value: text as unknown as CallValue<typeof endpoint> }
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        return yield* new BadResponse({ request: label, status: res.status, reason: "the body is not JSON" })
      }
      const value = yield* Schema.decodeUnknownEffect(success.schema as Schema.Codec<unknown, unknown>)(parsed).pipe(
        Effect.mapError((e) => new BadResponse({ request: label, status: res.status, reason: Issues.toText(e.issue) }))
      )
      return { status: res.status, body: parsed, value: value as unknown as CallValue<typeof endpoint> }
    })

  const probe: Service["probe"] = (path) =>
    exchange(urlOf(path), { method: "GET", headers: headers(undefined, "application/json, text/plain", false) }).pipe(
      Effect.map(({ res, text }) => ({ status: res.status, text }))
    )

  const sse: Service["sse"] = (path, lastEventId) =>
    Stream.unwrap(
      Effect.gen(function*() {
        const label = `GET ${path}`
        const controller = yield* Effect.acquireRelease(
          Effect.sync(() => new AbortController()),
          (c) => Effect.sync(() => c.abort())
        )
        const extra: Record<string, string> = lastEventId === null ? {} : { "last-event-id": lastEventId }
        const res = yield* Effect.tryPromise({
          try: () =>
            fetch(urlOf(path), { headers: headers(extra, "text/event-stream", false), signal: controller.signal }),
          catch: unreachable
        }).pipe(Effect.timeoutOrElse({ duration: REQUEST_TIMEOUT, orElse: () => timedOut }))
        if (res.status >= 400) {
          const text = yield* Effect.tryPromise({ try: () => res.text(), catch: unreachable })
          return yield* errorOf(res.status, res.statusText, text)
        }
        const type = res.headers.get("content-type") ?? ""
        if (!type.startsWith("text/event-stream") || res.body === null) {
          return yield* new BadResponse({
            request: label,
            status: res.status,
            reason: `expected text/event-stream, got '${type}'`
          })
        }
        return Stream.fromAsyncIterable(messages(res.body), (e) =>
          new Unreachable({ url: baseUrl, reason: `event stream broke: ${describe(e)}` }))
      })
    )

  return { baseUrl, hasToken: Option.isSome(settings.token), call, probe, sse }
}

export class Client extends Context.Service<Client, Service>()("lantern/edge/cli/Client") {
  static readonly layer = (settings: Settings) => Layer.succeed(Client, make(settings))

  /** Settings from the environment and the credentials file; fails on a setting that cannot be used. */
  static readonly layerConfig = Layer.effect(Client, Effect.map(settingsFromConfig, make))
}

// ---- the API's calls ----

/** Calls a declared endpoint with the client of the context. */
export const call = <E extends Endpoint.Endpoint>(endpoint: E, input: CallInput<E>) =>
  Client.use((c) => c.call(endpoint, input))

/** The Idempotency-Key header, when one is given. */
export const idempotencyKey = (key: Option.Option<string>): Readonly<Record<string, string>> =>
  Option.match(key, { onNone: () => ({}), onSome: (k) => ({ "idempotency-key": k }) })

const decodeEvent = Schema.decodeUnknownEffect(Schema.fromJsonString(Api.EventResponse))

/** A run's events as the server streams them, from after `afterSeq` (0: from the start). */
export const runStream = (id: string, afterSeq: number): Stream.Stream<Api.EventResponse, ClientError, Client> =>
  Stream.unwrap(
    Client.useSync((c) => {
      const path = Endpoint.pathOf(endpoints.runStream.path, { id })
      return c.sse(path, afterSeq > 0 ? String(afterSeq) : null).pipe(
        Stream.mapEffect((m) =>
          decodeEvent(m.data).pipe(
            Effect.mapError((e) =>
              new BadResponse({
                request: `GET ${path}`,
                status: 200,
                reason: `event ${m.id ?? "?"}: ${Issues.toText(e.issue)}`
              })
            )
          )
        )
      )
    })
  )
