// What a key's scopes grant. Which scope each endpoint needs is declared with it (edge/Api.ts).
import { describe, expect, it } from "vitest"
import * as Scopes from "./Scopes.ts"

describe("Scopes", () => {
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
