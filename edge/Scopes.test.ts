// The scope table covers the API: every /v1 operation of the OpenAPI document has its scope, and nothing else.
import { describe, expect, it } from "vitest"
import { document } from "./OpenApi.ts"
import * as Scopes from "./Scopes.ts"

const operations = Object.entries(document.paths as Record<string, Record<string, unknown>>)
  .filter(([path]) => path.startsWith("/v1/"))
  .flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`)
  )
const isPublic = (op: string) => (Scopes.PUBLIC_ROUTES as ReadonlyArray<string>).includes(op)

describe("Scopes", () => {
  it("gives every /v1 operation of the OpenAPI document a scope", () => {
    expect(operations.length).toBeGreaterThan(20)
    for (const op of operations.filter((o) => !isPublic(o))) expect(Scopes.ROUTES, op).toHaveProperty([op])
  })

  it("documents the public /v1 routes without security, and gives them no scope", () => {
    for (const op of Scopes.PUBLIC_ROUTES) {
      expect(operations, op).toContain(op)
      expect(Scopes.ROUTES, op).not.toHaveProperty([op])
      const [method, path] = op.split(" ")
      expect(
        (document.paths as Record<string, Record<string, { security?: unknown }>>)[path!]![method!.toLowerCase()]!
          .security,
        op
      ).toEqual([])
    }
  })

  it("names no route the document lacks (beyond the audit log's, documented by its own module)", () => {
    const documented = new Set(operations)
    expect(Object.keys(Scopes.ROUTES).filter((k) => !documented.has(k) && k !== "GET /v1/audit")).toEqual([])
  })

  it("grants `*` everything but the operator's `admin` outside the operator tenant", () => {
    const owner = { tenant: "t-b", scopes: ["*"] }
    expect(Scopes.holds(owner, "runs:write")).toBe(true)
    expect(Scopes.holds(owner, "admin")).toBe(false)
    expect(Scopes.holds({ tenant: Scopes.OPERATOR_TENANT, scopes: ["*"] }, "admin")).toBe(true)
    expect(Scopes.holds({ tenant: Scopes.OPERATOR_TENANT, scopes: ["admin"] }, "admin")).toBe(true)
    expect(Scopes.holds({ tenant: Scopes.OPERATOR_TENANT, scopes: ["admin"] }, "runs:read")).toBe(false)
    expect(Scopes.holds({ tenant: "t-b", scopes: ["runs:read"] }, "runs:write")).toBe(false)
    expect(Scopes.holds({ tenant: "t-b", scopes: ["runs:read"] }, "*")).toBe(false)
  })
})
