// Writes the client SDK's types (sdk/src/Api.generated.ts) from the OpenAPI document the server serves
// (edge/OpenApi.ts): one entry per operationId with its method, path, parameters, body and answer, so the SDK's field
// names are the server's. tests/sdk.test.ts renders it again and fails while the checked-in file differs (ADR 0036).
import { writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

export const TARGET = resolve(import.meta.dirname, "../sdk/src/Api.generated.ts")

type Json = Record<string, any>

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const key = (name: string) => (IDENTIFIER.test(name) ? name : JSON.stringify(name))
const pad = (depth: number) => "  ".repeat(depth)
const doc = (text: unknown, depth: number) =>
  typeof text === "string" && text !== "" ? `${pad(depth)}/** ${text.replace(/\*\//g, "*\\/")} */\n` : ""

/** The TypeScript type of a JSON Schema as Effect writes them: types, enums, anyOf, objects, arrays, records. */
export const typeOf = (s: Json | undefined, depth = 0): string => {
  if (s === undefined || s === null || typeof s !== "object") return "unknown"
  if (Array.isArray(s["anyOf"])) return union(s["anyOf"].map((m: Json) => typeOf(m, depth)))
  if (Array.isArray(s["enum"])) return union(s["enum"].map((v: unknown) => JSON.stringify(v)))
  if ("const" in s) return JSON.stringify(s["const"])
  if (Array.isArray(s["type"])) return union(s["type"].map((t: string) => typeOf({ ...s, type: t }, depth)))
  switch (s["type"]) {
    case "string":
      return "string"
    case "number":
    case "integer":
      return "number"
    case "boolean":
      return "boolean"
    case "null":
      return "null"
    case "array":
      return `ReadonlyArray<${typeOf(s["items"], depth)}>`
    case "object":
      return objectOf(s, depth)
  }
  return "unknown"
}

const union = (members: ReadonlyArray<string>) => {
  const unique = [...new Set(members)]
  return unique.length === 1 ? unique[0]! : unique.map((m) => (m.includes("\n") ? `(${m})` : m)).join(" | ")
}

const objectOf = (s: Json, depth: number): string => {
  const properties = Object.entries((s["properties"] ?? {}) as Record<string, Json>)
  const required = new Set<string>(s["required"] ?? [])
  const patterns = Object.values((s["patternProperties"] ?? {}) as Record<string, Json>)
  const lines = properties.map(([name, p]) =>
    `${doc(p["description"], depth + 1)}${pad(depth + 1)}readonly ${key(name)}${required.has(name) ? "" : "?"}: ${
      typeOf(p, depth + 1)
    }`
  )
  if (patterns.length > 0) {
    lines.push(`${pad(depth + 1)}readonly [key: string]: ${union(patterns.map((p) => typeOf(p, depth + 1)))}`)
  } else if (properties.length === 0) return "{ readonly [key: string]: unknown }"
  return `{\n${lines.join("\n")}\n${pad(depth)}}`
}

const METHODS = ["get", "put", "post", "delete", "patch"] as const

/** A failure's answer is the error envelope `{error: {...}}` and nothing else; any other answer is a success. */
const isErrorBody = (schema: Json | undefined) =>
  schema !== undefined && Object.keys(schema["properties"] ?? {}).join() === "error"

interface Operation {
  readonly id: string
  readonly method: string
  readonly path: string
  readonly op: Json
}

const operationsOf = (document: Json): ReadonlyArray<Operation> =>
  Object.entries(document["paths"] as Record<string, Json>).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m] !== undefined).map((m) => ({
      id: String(item[m]["operationId"]),
      method: m.toUpperCase(),
      path,
      op: item[m]
    }))
  )

type Success =
  | { readonly status: number; readonly kind: "json"; readonly schema: Json }
  | { readonly status: number; readonly kind: "text" | "none" }

/** The statuses an operation answers on success, and how its body comes: JSON, text (a stream, JSON lines) or none. */
const successesOf = (op: Json): ReadonlyArray<Success> =>
  Object.entries(op["responses"] as Record<string, Json>).flatMap(([status, r]): ReadonlyArray<Success> => {
    const content = (r["content"] ?? {}) as Record<string, Json>
    const json = content["application/json"]?.["schema"] as Json | undefined
    if (Number(status) >= 400 && (json === undefined || isErrorBody(json))) return []
    if (json !== undefined) return [{ status: Number(status), kind: "json", schema: json }]
    return [{ status: Number(status), kind: Object.keys(content).length === 0 ? "none" : "text" }]
  })

const parametersOf = (op: Json, where: string) =>
  ((op["parameters"] ?? []) as Array<Json>).filter((p) => p["in"] === where)

const paramsType = (params: ReadonlyArray<Json>, depth: number) =>
  params.length === 0 ?
    "{}" :
    `{\n${
      params.map((p) =>
        `${doc(p["description"], depth + 1)}${pad(depth + 1)}readonly ${key(p["name"])}${p["required"] ? "" : "?"}: ${
          typeOf(p["schema"], depth + 1)
        }`
      ).join("\n")
    }\n${pad(depth)}}`

/** The generated module's text. */
export const render = (document: Json): string => {
  const ops = operationsOf(document)
  const table = ops.map(({ id, method, path, op }) => {
    const successes = successesOf(op)
    const kind = successes[0]?.kind ?? "none"
    const params = parametersOf(op, "path").map((p) => JSON.stringify(p["name"]))
    return `  ${id}: {\n` +
      `    method: ${JSON.stringify(method)},\n` +
      `    path: ${JSON.stringify(path)},\n` +
      `    params: [${params.join(", ")}],\n` +
      `    success: [${successes.map((s) => s.status).join(", ")}],\n` +
      `    answer: ${JSON.stringify(kind)},\n` +
      `    authenticated: ${op["security"] === undefined || op["security"].length > 0}\n` +
      `  }`
  })
  const types = ops.map(({ id, op }) => {
    const successes = successesOf(op)
    const response = union(
      successes.map((s) => (s.kind === "json" ? typeOf(s.schema, 2) : s.kind === "text" ? "string" : "null"))
    )
    const body = op["requestBody"]?.["content"]?.["application/json"]?.["schema"] as Json | undefined
    return `${doc(op["summary"], 1)}  readonly ${id}: {\n` +
      `    readonly params: ${paramsType(parametersOf(op, "path"), 2)}\n` +
      `    readonly query: ${paramsType(parametersOf(op, "query"), 2)}\n` +
      `    readonly headers: ${paramsType(parametersOf(op, "header"), 2)}\n` +
      `    readonly body: ${body === undefined ? "undefined" : typeOf(body, 2)}\n` +
      `    readonly bodyRequired: ${op["requestBody"]?.["required"] === true}\n` +
      `    readonly response: ${response}\n` +
      `  }`
  })
  return [
    "// Generated by scripts/sdk-types.ts from the OpenAPI document of the server (edge/OpenApi.ts): do not edit.",
    "// `npm run sdk:types` writes it again; tests/sdk.test.ts fails while it differs from what the document gives.",
    "",
    "/** Every operation by its operationId: method, path, path parameters in order, success statuses, answer kind. */",
    "export const operations = {",
    table.join(",\n"),
    "} as const",
    "",
    "export type OperationId = keyof typeof operations",
    "",
    "/** What each operation takes (path parameters, query, headers, JSON body) and answers, as the document says. */",
    "export interface Operations {",
    types.join("\n"),
    "}",
    ""
  ].join("\n")
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { document } = await import("../edge/OpenApi.ts")
  writeFileSync(TARGET, render(document()))
  console.log(`wrote ${join("sdk/src", "Api.generated.ts")}`)
}
