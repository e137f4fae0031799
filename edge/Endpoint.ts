// The vocabulary of the one declaration of the HTTP API (edge/Api.ts): an endpoint is its method, path, the scope
// it needs, its request schemas, its answers by status and the typed failures it may answer. Router, scope checks,
// the OpenAPI document and the CLI's client are all derived from these values (ADR 0030).
import type { Schema } from "effect"
import type { HttpServerResponse } from "effect/http"
import type { Scope } from "./Scopes.ts"

export type Method = "GET" | "POST" | "PUT" | "DELETE"

/** An answer an endpoint gives on success: a JSON body, no body (204), or a stream of another media type. */
export type Success =
  | { readonly _tag: "Json"; readonly description: string; readonly schema: Schema.Top }
  | { readonly _tag: "None"; readonly description: string }
  | { readonly _tag: "Media"; readonly description: string; readonly media: string }

export const Json = <S extends Schema.Top>(schema: S, description: string) =>
  ({ _tag: "Json", description, schema }) as const
export const None = (description: string) => ({ _tag: "None", description }) as const
export const Media = (media: string, description: string) => ({ _tag: "Media", description, media }) as const

/** A typed error an endpoint may fail with, the HTTP status and code it answers, and what the status means there. */
export interface Failure<E extends { readonly _tag: string } = any> {
  readonly tag: E["_tag"]
  readonly status: number
  readonly code: string
  readonly description: string
  /** The answer's body beyond `{error: {code}}`: the message by default; issues, the budget, the scope… */
  readonly render?: (e: E) => { readonly message: string } & Record<string, unknown>
  readonly headers?: (e: E) => Record<string, string>
}

export const failure = <E extends { readonly _tag: string }>(
  tag: E["_tag"],
  status: number,
  code: string,
  description: string,
  options: Pick<Failure<E>, "render" | "headers"> = {}
): Failure<E> => ({ tag, status, code, description, ...options })

export type ErrorOf<F> = F extends Failure<infer E> ? E : never

/** A request header an endpoint reads; an empty value is no value when `emptyIsAbsent`. */
export interface Header {
  readonly name: string
  readonly schema: Schema.Top
  readonly description: string
  readonly emptyIsAbsent?: boolean
}

/** The request body: required, or optional with the value an empty body means. */
export interface Body<S extends Schema.Top = Schema.Top> {
  readonly schema: S
  readonly required: boolean
  /** What the document shows when it differs from what decodes (a value checked by hand, so no message quotes it). */
  readonly documented?: Schema.Top
}

export interface Endpoint<
  Name extends string = string,
  M extends Method = Method,
  P extends Schema.Top | undefined = Schema.Top | undefined,
  Q extends Schema.Top | undefined = Schema.Top | undefined,
  H extends ReadonlyArray<Header> = ReadonlyArray<Header>,
  B extends Body | undefined = Body | undefined,
  S extends Readonly<Record<number, Success>> = Readonly<Record<number, Success>>,
  F extends ReadonlyArray<Failure> = ReadonlyArray<Failure>,
  Sc extends Scope | null = Scope | null
> {
  readonly name: Name
  readonly method: M
  /** In the router's syntax: `/v1/runs/:id`. */
  readonly path: string
  /** The scope a key needs; `null`: public, no token, any origin (CORS). */
  readonly scope: Sc
  readonly summary: string
  readonly params: P
  readonly query: Q
  /** Descriptions of query parameters, by name. */
  readonly queryDescriptions?: Readonly<Record<string, string>>
  readonly headers: H
  readonly body: B
  readonly success: S
  readonly failures: F
  /** Extra response headers for every success (caching of public documents). */
  readonly cacheControl?: string
}

type Options<
  M extends Method,
  P extends Schema.Top | undefined,
  Q extends Schema.Top | undefined,
  H extends ReadonlyArray<Header>,
  B extends Body | undefined,
  S extends Readonly<Record<number, Success>>,
  F extends ReadonlyArray<Failure>,
  Sc extends Scope | null
> = {
  readonly method: M
  readonly path: string
  readonly scope: Sc
  readonly summary: string
  readonly params?: P
  readonly query?: Q
  readonly queryDescriptions?: Readonly<Record<string, string>>
  readonly headers?: H
  readonly body?: B
  readonly success: S
  readonly failures?: F
  readonly cacheControl?: string
}

export const make = <
  const Name extends string,
  const M extends Method,
  const S extends Readonly<Record<number, Success>>,
  P extends Schema.Top | undefined = undefined,
  Q extends Schema.Top | undefined = undefined,
  const H extends ReadonlyArray<Header> = readonly [],
  B extends Body | undefined = undefined,
  const F extends ReadonlyArray<Failure> = readonly [],
  const Sc extends Scope | null = null
>(name: Name, options: Options<M, P, Q, H, B, S, F, Sc>): Endpoint<Name, M, P, Q, H, B, S, F, Sc> => ({
  name,
  method: options.method,
  path: options.path,
  scope: options.scope,
  summary: options.summary,
  params: options.params as P,
  query: options.query as Q,
  ...(options.queryDescriptions === undefined ? {} : { queryDescriptions: options.queryDescriptions }),
  headers: (options.headers ?? []) as unknown as H,
  body: options.body as B,
  success: options.success,
  failures: (options.failures ?? []) as unknown as F,
  ...(options.cacheControl === undefined ? {} : { cacheControl: options.cacheControl })
})

export const body = <S extends Schema.Top>(schema: S, documented?: Schema.Top): Body<S> => ({
  schema,
  required: true,
  ...(documented === undefined ? {} : { documented })
})
export const optionalBody = <S extends Schema.Top>(schema: S): Body<S> => ({ schema, required: false })

// ---- what a handler is given and answers ----

type TypeOf<S> = S extends Schema.Top ? S["Type"] : undefined

export type HeadersOf<H extends ReadonlyArray<Header>> = {
  readonly [K in H[number] as Lowercase<K["name"]>]?: K["schema"]["Type"]
}

export type BodyOf<B> = B extends Body<infer S> ? S["Type"] : undefined

/** The JSON body type of the endpoint's successes (void for 204; a raw response for media streams). */
export type SuccessBody<S> = S extends { readonly _tag: "Json"; readonly schema: infer X extends Schema.Top } ?
  X["Type"]
  : S extends { readonly _tag: "None" } ? null
  : S extends { readonly _tag: "Media" } ? HttpServerResponse.HttpServerResponse
  : never

export type Out<E extends Endpoint> = SuccessBody<E["success"][keyof E["success"]]>

export interface Input<E extends Endpoint> {
  readonly params: TypeOf<E["params"]>
  readonly query: TypeOf<E["query"]>
  readonly headers: HeadersOf<E["headers"]>
  readonly body: BodyOf<E["body"]>
}

/** The endpoint's path with its parameters filled in (each percent-encoded). */
export const pathOf = (path: string, params: Readonly<Record<string, unknown>> | undefined): string =>
  path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(String(params?.[name] ?? "")))

/** The path in OpenAPI's syntax: `/v1/runs/{id}`. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}")
