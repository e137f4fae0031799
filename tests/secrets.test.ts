// Secrets against the real `lantern serve`: values are write-only (no answer, list or error shows them), another
// tenant sees none of them (404), keys without `secrets:*` are refused (403), writes and deletes are audited.
import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let callB: ReturnType<typeof api>

beforeAll(async () => {
  nats = await startServer("lantern-secrets-api")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  const tenant = await call("POST", "/v1/tenants", { name: "other" })
  expect(tenant.status, tenant.text).toBe(201)
  callB = api({ url: stack.url, token: tenant.json.key.key })
}, 240_000)

afterAll(() => stopStack(stack, nats))

const newKey = async (scopes: ReadonlyArray<string>) => {
  const r = await call("POST", "/v1/api-keys", { name: `k-${randomBytes(4).toString("hex")}`, scopes })
  expect(r.status, r.text).toBe(201)
  return api({ url: stack.url, token: r.json.key })
}

describe("secrets API", () => {
  it("stores values write-only: create, next version, list and get show metadata, delete", async () => {
    const value = `sk-${randomBytes(16).toString("hex")}`
    const created = await call("POST", "/v1/secrets", { name: "openai.key", value })
    expect(created.status, created.text).toBe(201)
    expect(created.json).toEqual({
      name: "openai.key",
      version: 1,
      createdAt: expect.any(String),
      updatedAt: expect.any(String)
    })
    const next = await call("POST", "/v1/secrets", { name: "openai.key", value: `${value}-2` })
    expect(next.status, next.text).toBe(200)
    expect(next.json).toMatchObject({ name: "openai.key", version: 2, createdAt: created.json.createdAt })
    const list = await call("GET", "/v1/secrets")
    expect(list.status).toBe(200)
    expect(list.json.items).toEqual([next.json])
    const one = await call("GET", "/v1/secrets/openai.key")
    expect(one.json).toEqual(next.json)
    for (const r of [created, next, list, one]) expect(r.text).not.toContain(value)
    expect((await call("DELETE", "/v1/secrets/openai.key")).status).toBe(204)
    const gone = await call("GET", "/v1/secrets/openai.key")
    expect(gone.status).toBe(404)
    expect(gone.json.error.code).toBe("secret_not_found")
    expect((await call("DELETE", "/v1/secrets/openai.key")).status).toBe(404)
    const audit = await eventually(
      async () => {
        const items = (await call("GET", "/v1/audit?limit=100")).json?.items as Array<any> | undefined
        return items?.some((e) => e.action === "secret.deleted") ? items : null
      },
      30_000,
      "secret audit entries"
    )
    expect(audit.filter((e) => e.action === "secret.created").map((e) => e.target)).toEqual([
      "openai.key",
      "openai.key"
    ])
    expect(JSON.stringify(audit)).not.toContain(value)
    expect(stack.output()).not.toContain(value)
  })

  it("refuses bad input naming the field, without echoing the value", async () => {
    const long = "x".repeat(64 * 1024 + 1)
    const cases: Array<[unknown, string]> = [
      [{ name: "Bad Name", value: "v" }, "name"],
      [{ name: "a..b", value: "v" }, "name"],
      [{ name: "ok", value: 42 }, "value"],
      [{ name: "ok", value: "" }, "value"],
      [{ name: "ok", value: long }, "value"],
      [{ value: "v" }, "name"]
    ]
    for (const [body, field] of cases) {
      const r = await call("POST", "/v1/secrets", body)
      expect(r.status, r.text).toBe(400)
      expect(r.json.error.issues.map((i: any) => i.field)).toContain(field)
      expect(r.text).not.toContain("x".repeat(100))
    }
    expect((await call("GET", "/v1/secrets/Bad%20Name")).status).toBe(400)
  })

  it("another tenant's secrets are not found, and not listed", async () => {
    expect((await call("POST", "/v1/secrets", { name: "mine", value: "v" })).status).toBe(201)
    expect((await callB("GET", "/v1/secrets/mine")).status).toBe(404)
    expect((await callB("DELETE", "/v1/secrets/mine")).status).toBe(404)
    expect((await callB("GET", "/v1/secrets")).json.items).toEqual([])
    // B's own secret of the same name is another secret
    expect((await callB("POST", "/v1/secrets", { name: "mine", value: "w" })).status).toBe(201)
    expect((await call("GET", "/v1/secrets/mine")).json.version).toBe(1)
  })

  it("needs secrets:read / secrets:write, and admin to rewrap", async () => {
    const reader = await newKey(["secrets:read"])
    const writer = await newKey(["secrets:write"])
    const none = await newKey(["runs:read"])
    expect((await reader("GET", "/v1/secrets")).status).toBe(200)
    const denied = await reader("POST", "/v1/secrets", { name: "r", value: "v" })
    expect(denied.status).toBe(403)
    expect(denied.json.error.missingScope).toBe("secrets:write")
    expect((await writer("POST", "/v1/secrets", { name: "w", value: "v" })).status).toBe(201)
    expect((await none("GET", "/v1/secrets/w")).json.error.missingScope).toBe("secrets:read")
    expect((await callB("POST", "/v1/admin/secrets/rewrap")).status).toBe(403)
    const rewrap = await call("POST", "/v1/admin/secrets/rewrap")
    expect(rewrap.status, rewrap.text).toBe(200)
    expect(rewrap.json).toEqual({ rewrapped: 0, total: expect.any(Number), unreadable: [] })
  })
})
