// The OpenAPI 3.1 document of the API, generated from its one declaration (edge/Api.ts): the same Schemas that
// decode requests and type answers, the scopes the router checks and the failures it answers (ADR 0030).
import { Schema } from "effect"
import { ErrorResponse } from "../schema/Api.ts"
import * as Api from "./Api.ts"
import { type Endpoint, type Failure, openApiPath } from "./Endpoint.ts"
import { MAX_BODY_BYTES } from "./Http.ts"
import { failuresOf } from "./Serve.ts"

const NON_FINITE = ["Infinity", "-Infinity", "NaN"]
const isNonFinite = (s: unknown) =>
  typeof s === "object" && s !== null && Array.isArray((s as { enum?: unknown }).enum) &&
  (s as { enum: Array<unknown> }).enum.every((v) => NON_FINITE.includes(v as string))

/**
 * Drops the "NaN"/"Infinity" strings Effect's JSON codec writes for a `Schema.Number`: the edge decodes a
 * parsed body against the schema's type, which refuses those strings (and JSON has no such numbers), and no
 * answer carries them. This API's own schemas use `Schema.Finite`, which also keeps their ranges; this covers
 * the schemas of other modules (budget refusals, receipts).
 */
const finite = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(finite)
  if (v === null || typeof v !== "object") return v
  const node: Record<string, unknown> = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, finite(x)]))
  if (!Array.isArray(node["anyOf"]) || !node["anyOf"].some(isNonFinite)) return node
  const { anyOf, ...rest } = node
  const kept = (anyOf as Array<unknown>).filter((s) => !isNonFinite(s))
  return kept.length === 1 ? { ...rest, ...(kept[0] as object) } : { ...rest, anyOf: kept }
}

const schemaOf = (s: Schema.Top) => {
  const doc = Schema.toJsonSchemaDocument(s)
  return finite({
    ...doc.schema,
    ...(Object.keys(doc.definitions ?? {}).length > 0 ? { $defs: doc.definitions } : {})
  }) as Record<string, unknown>
}

/** A parameter's schema is its decoded value: a number sent as text is documented as the integer and its range. */
const valueOf = (s: Schema.Top) => schemaOf(Schema.toType(s))

/** The parameters of a struct Schema (path or query), one per field. */
const paramsOf = (s: Schema.Top, where: "path" | "query", descriptions: Readonly<Record<string, string>> = {}) => {
  const doc = valueOf(s) as { properties: Record<string, unknown>; required?: Array<string> }
  return Object.entries(doc.properties).map(([name, schema]) => ({
    name,
    in: where,
    required: where === "path" || (doc.required?.includes(name) ?? false),
    schema,
    ...(descriptions[name] === undefined ? {} : { description: descriptions[name] })
  }))
}

const jsonBody = (s: Schema.Top) => ({ content: { "application/json": { schema: schemaOf(s) } } })

/**
 * A request's objects take no other fields (the edge refuses unknown ones, naming each): `additionalProperties:
 * false` on every object with declared properties. Answers keep `true`, so a client tolerates fields added later.
 */
const closed = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(closed)
  if (v === null || typeof v !== "object") return v
  const node: Record<string, unknown> = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, closed(x)]))
  return node["properties"] !== undefined && node["additionalProperties"] === true
    ? { ...node, additionalProperties: false }
    : node
}
const requestBody = (s: Schema.Top) => ({ content: { "application/json": { schema: closed(schemaOf(s)) } } })
const errorBody = jsonBody(ErrorResponse)

/** One answer per status: a status several failures share lists each code. */
const failureResponses = (failures: ReadonlyArray<Failure>) => {
  const byStatus = new Map<number, Array<Failure>>()
  for (const f of failures) byStatus.set(f.status, [...byStatus.get(f.status) ?? [], f])
  return Object.fromEntries([...byStatus].map(([status, fs]) => {
    const unique = [...new Map(fs.map((f) => [f.code, f])).values()]
    const description = unique.length === 1
      ? unique[0]!.description
      : unique.map((f) => `\`${f.code}\`: ${f.description}`).join("; ")
    return [String(status), { description, ...errorBody }]
  }))
}

const operationOf = (e: Endpoint) => {
  const parameters = [
    ...(e.params === undefined ? [] : paramsOf(e.params, "path")),
    ...(e.query === undefined ? [] : paramsOf(e.query, "query", e.queryDescriptions)),
    ...e.headers.map((h) => ({
      name: h.name,
      in: "header",
      required: false,
      schema: valueOf(h.schema),
      description: h.description
    }))
  ]
  const successes = Object.fromEntries(
    Object.entries(e.success).map(([status, s]) => [
      status,
      s._tag === "Json"
        ? { description: s.description, ...jsonBody(s.schema) }
        : s._tag === "None"
        ? { description: s.description }
        : { description: s.description, content: { [s.media]: { schema: { type: "string" } } } }
    ])
  )
  const failures = failureResponses(failuresOf(e))
  return {
    operationId: e.name,
    summary: e.summary,
    ...(e.scope === null ? { security: [] } : { "x-lantern-scope": e.scope }),
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(e.body === undefined
      ? {}
      : { requestBody: { required: e.body.required, ...requestBody(e.body.documented ?? e.body.schema) } }),
    responses: {
      ...successes,
      ...failures,
      ...(e.body === undefined
        ? {}
        : {
          "413": {
            description: `The request body exceeds ${MAX_BODY_BYTES} bytes, or its event the bus's limit`,
            ...errorBody
          }
        }),
      "500": { description: "Internal error: the body tells nothing of the cause, which the server logs", ...errorBody }
    }
  }
}

/** The document of `endpoints`: paths in OpenAPI's syntax, one operation per method. */
export const make = (endpoints: ReadonlyArray<Endpoint>) => {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const e of endpoints) {
    const path = openApiPath(e.path)
    paths[path] = { ...paths[path], [e.method.toLowerCase()]: operationOf(e) }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Lantern API",
      version: "1",
      description:
        "Durable runs of AI agents. Every /v1 route but `POST /v1/receipts/verify` needs `Authorization: Bearer <token>`; "
        + "each operation's `x-lantern-scope` names the scope its key must hold."
    },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths
  }
}

let built: ReturnType<typeof make> | undefined

/** The document of every declared endpoint, built at its first use: 0.15-0.5 s of `serve`'s start otherwise. */
export const document = (): ReturnType<typeof make> => (built ??= make(Api.every))
