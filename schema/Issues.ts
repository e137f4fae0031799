// Turns a Schema decoding issue into `{ field, message }` pairs: the shape of every 400 answer and CLI
// usage error, so a caller always learns which field was wrong and why.
import { SchemaIssue } from "effect"

export interface FieldIssue {
  readonly field: string
  readonly message: string
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const pathText = (path: ReadonlyArray<unknown> | undefined): string =>
  (path ?? [])
    .map((p) => (typeof p === "object" && p !== null && "key" in p ? (p as { key: PropertyKey }).key : p))
    .map((k, i) => (typeof k === "number" ? `[${k}]` : `${i === 0 ? "" : "."}${String(k)}`))
    .join("")

export const toFieldIssues = (issue: SchemaIssue.Issue, root = ""): ReadonlyArray<FieldIssue> =>
  formatter(issue).issues.map((i) => {
    const path = pathText(i.path)
    const field = root === "" ? path : path === "" ? root : path.startsWith("[") ? `${root}${path}` : `${root}.${path}`
    return { field: field === "" ? "(body)" : field, message: i.message }
  })

export const toText = (issue: SchemaIssue.Issue, root = ""): string =>
  toFieldIssues(issue, root).map((i) => `${i.field}: ${i.message}`).join("; ")
