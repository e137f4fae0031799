// Tenants, scoped API keys and scope checks against the real `lantern serve`: the operator creates tenant B,
// whose owner key sees none of A's agents, runs, budgets, receipts, journals or keys (404 on every route, never
// 403); every route refuses a key without its scope with 403 naming it; expired and revoked keys are 401; a
// key's value is shown once.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Api from "../edge/Api.ts"
import * as Tokens from "../projections/Tokens.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let callA: ReturnType<typeof api>
let callB: ReturnType<typeof api>
let runId: string
let keyIdA: string
let tenantB: { id: string; name: string }
let ownerKeyIdB: string

const spec = {
  systemPrompt: "You compute.",
  maxTurns: 4,
  tools: [{ name: "calculator", description: "calculator", parameters: { type: "object", properties: {} } }]
}

const as = (token: string) => api({ url: stack.url, token })

const newKey = async (scopes: ReadonlyArray<string>, extra: Record<string, unknown> = {}, call = callA) => {
  const r = await call("POST", "/v1/api-keys", { name: `k-${Math.random().toString(36).slice(2)}`, scopes, ...extra })
  expect(r.status, r.text).toBe(201)
  return r.json as { id: string; key: string; scopes: Array<string>; expiresAt: string | null }
}

/** A concrete request for a route pattern of the scope table, naming A's resources. */
const concrete = (key: string) => {
  const [method, pattern] = key.split(" ") as [string, string]
  const path = pattern.replace(":name", "calc").replace(":id", key.includes("api-keys") ? keyIdA : runId).replace(
    ":stepId",
    "turn-1"
  )
  return { method, path, body: method === "POST" || method === "PUT" ? {} : undefined }
}

beforeAll(async () => {
  nats = await startServer("lantern-tenants")
  stack = await startStack({ natsUrl: nats.handle.url })
  callA = api(stack)
  const agent = await callA("POST", "/v1/agents", { name: "calc", spec })
  expect(agent.status, agent.text).toBe(201)
  const run = await callA("POST", "/v1/runs", { agentName: "calc", input: "use the calculator on 2+3*4" })
  expect(run.status, run.text).toBe(201)
  runId = run.json.id
  await eventually(
    async () => (await callA("GET", `/v1/runs/${runId}`)).json?.status === "succeeded",
    30_000,
    "A's run"
  )
  expect((await callA("PUT", "/v1/agents/calc/budget", { maxCostUsdPerDay: 5, hardFail: true })).status).toBe(200)
  expect((await callA("PUT", "/v1/budget", { maxCostUsdPerDay: 50, hardFail: true })).status).toBe(200)
  keyIdA = (await newKey(["runs:read"])).id
  const created = await callA("POST", "/v1/tenants", { name: "acme" })
  expect(created.status, created.text).toBe(201)
  expect(created.json.key).toMatchObject({ scopes: ["*"], expiresAt: null })
  expect(created.json.key.id).toMatch(/^key_[0-9a-z]{26}$/)
  tenantB = created.json.tenant
  ownerKeyIdB = created.json.key.id
  callB = as(created.json.key.key)
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("tenants", () => {
  it("creates a tenant whose owner key works in it alone; names are unique; bad bodies name the field", async () => {
    expect(tenantB).toMatchObject({ name: "acme" })
    expect(tenantB.id).toMatch(/^t-[0-9a-z]{26}$/)
    const agent = await callB("POST", "/v1/agents", { name: "calc", spec })
    expect(agent.status, agent.text).toBe(201)
    await eventually(async () => (await callB("GET", "/v1/agents")).json.items.length > 0, 10_000, "B's agent listed")
    expect((await callB("GET", "/v1/agents")).json.items.map((a: { name: string }) => a.name)).toEqual(["calc"])
    expect((await callA("POST", "/v1/tenants", { name: "acme" })).status).toBe(409)
    const bad = await callA("POST", "/v1/tenants", {})
    expect(bad.status).toBe(400)
    expect(bad.json.error.issues[0].field).toBe("name")
    // B's owner holds `*`, but `admin` is the operator tenant's: B cannot make tenants or rotate signing keys
    for (const path of ["/v1/tenants", "/v1/admin/signing-keys/rotate"]) {
      const r = await callB("POST", path, { name: "other" })
      expect(r.status, r.text).toBe(403)
      expect(r.json.error).toMatchObject({ code: "forbidden", missingScope: "admin" })
    }
  })

  it("another tenant's resources are 404 on every route, and lists show none of them", async () => {
    const cases: Array<[string, string, unknown?]> = [
      ["GET", `/v1/runs/${runId}`],
      ["GET", `/v1/runs/${runId}/events`],
      ["GET", `/v1/runs/${runId}/stream`],
      ["GET", `/v1/runs/${runId}/receipt`],
      ["GET", `/v1/runs/${runId}/journal`],
      ["POST", `/v1/runs/${runId}/cancel`, {}],
      ["POST", `/v1/runs/${runId}/approvals/turn-1`, { approved: true, by: "mallory" }],
      ["DELETE", `/v1/api-keys/${keyIdA}`],
      ["POST", `/v1/runs/${runId}/identity-token`, { audience: "mallory" }]
    ]
    for (const [method, path, body] of cases) {
      const r = await callB(method, path, body)
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(404)
    }
    // verifying is public and purely cryptographic: A's receipt, handed to B, verifies (against A's stored journal,
    // which its signature vouches for), and the answer holds nothing of A's journal beyond the receipt's own fields
    const receiptA = await callA("GET", `/v1/runs/${runId}/receipt`)
    expect(receiptA.status, receiptA.text).toBe(200)
    const verified = await callB("POST", "/v1/receipts/verify", { receipt: receiptA.json })
    expect(verified.status, verified.text).toBe(200)
    expect(verified.json.valid, verified.text).toBe(true)
    expect(verified.text).not.toContain("2+3*4")
    expect(verified.text).not.toContain("evt_")
    // B has its own `calc` (previous test): A's budget is not B's
    expect((await callB("GET", "/v1/agents/calc/budget")).json.limits).toBeNull()
    expect((await callB("GET", "/v1/budget")).json.limits).toBeNull()
    // an agent only A has
    expect((await callA("POST", "/v1/agents", { name: "only-a", spec })).status).toBe(201)
    for (
      const [method, path, body] of [
        ["GET", "/v1/agents/only-a"],
        ["GET", "/v1/agents/only-a/versions"],
        ["GET", "/v1/agents/only-a/usage"],
        ["PUT", "/v1/agents/only-a", { spec: { ...spec, systemPrompt: "taken over" } }],
        ["GET", "/v1/agents/only-a/budget"],
        ["PUT", "/v1/agents/only-a/budget", { maxCostUsdPerDay: 1, hardFail: true }],
        ["POST", "/v1/runs", { agentName: "only-a", input: "x" }],
        ["POST", "/v1/runs/forecast", { agentName: "only-a", input: "x" }]
      ] as Array<[string, string, unknown?]>
    ) {
      const r = await callB(method, path, body)
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(404)
    }
    expect((await callB("GET", "/v1/runs")).json.items).toEqual([])
    expect((await callB("GET", "/v1/agents")).json.items.map((a: { name: string }) => a.name)).toEqual(["calc"])
    const keysB = (await callB("GET", "/v1/api-keys")).json.items
    expect(keysB.map((k: { name: string }) => k.name)).toEqual(["owner"])
    expect(JSON.stringify(keysB)).not.toContain(keyIdA)
    // A's key survived B's attempt
    expect((await callA("GET", "/v1/api-keys")).json.items.map((k: { id: string }) => k.id)).toContain(keyIdA)
    // A's agent is unchanged
    expect((await callA("GET", "/v1/agents/only-a")).json.latestVersion).toBe(1)
  })
})

describe("scopes", () => {
  it("every route refuses a key without its scope: 403 naming the missing scope", async () => {
    const auditOnly = as((await newKey(["audit:read"])).key)
    const runsOnly = as((await newKey(["runs:read"])).key)
    const auditRoute = (await callA("GET", "/v1/audit")).json?.error?.code !== "not_found"
    for (const endpoint of Api.every.filter((e) => e.scope !== null)) {
      const key = `${endpoint.method} ${endpoint.path}`
      if (key === "GET /v1/audit" && !auditRoute) continue
      const scope = endpoint.scope
      const { method, path, body } = concrete(key)
      const r = await (scope === "audit:read" ? runsOnly : auditOnly)(method, path, body)
      expect(r.status, `${key}: ${r.text}`).toBe(403)
      expect(r.json.error, key).toMatchObject({ code: "forbidden", missingScope: scope })
    }
    // each denial is in the tenant's audit log, with the route and the missing scope
    if (auditRoute) {
      // every page of them: one denial per scoped route, more than a page holds
      const denied = await eventually(
        async () => {
          const items: Array<any> = []
          let cursor: string | null = null
          do {
            const r = await callA("GET", `/v1/audit?action=scope.denied&limit=200${cursor ? `&cursor=${cursor}` : ""}`)
            items.push(...r.json.items)
            cursor = r.json.nextCursor
          } while (cursor !== null)
          return items.some((e) => e.target === "POST /v1/runs") ? items : null
        },
        60_000,
        "scope.denied entries"
      )
      expect(denied.find((e) => e.target === "POST /v1/runs")).toMatchObject({
        action: "scope.denied",
        actor: expect.stringMatching(/^key:key_[0-9a-z]{26}$/),
        outcome: "denied",
        detail: { missingScope: "runs:write" }
      })
    }
    // a request per scoped route (well over a hundred), each audited: generous on a busy machine
  }, 300_000)

  it("a key grants the routes of its scopes, and cannot grant more than its creator holds", async () => {
    const reader = as((await newKey(["runs:read"])).key)
    expect((await reader("GET", `/v1/runs/${runId}`)).status).toBe(200)
    expect((await reader("POST", "/v1/runs", { agentName: "calc", input: "x" })).json.error.missingScope).toBe(
      "runs:write"
    )
    const keyMaker = as((await newKey(["keys:write", "runs:read"])).key)
    const ok = await keyMaker("POST", "/v1/api-keys", { name: "narrower", scopes: ["runs:read"] })
    expect(ok.status, ok.text).toBe(201)
    const wider = await keyMaker("POST", "/v1/api-keys", { name: "wider", scopes: ["runs:read", "runs:write"] })
    expect(wider.status, wider.text).toBe(403)
    expect(wider.json.error.missingScope).toBe("runs:write")
    const all = await keyMaker("POST", "/v1/api-keys", { name: "all", scopes: ["*"] })
    expect(all.json.error.missingScope).toBe("*")
    const unknown = await callA("POST", "/v1/api-keys", { name: "bad", scopes: ["runs:read", "runs:delete"] })
    expect(unknown.status).toBe(400)
    expect(unknown.json.error.issues[0].field).toBe("scopes[1]")
    const dup = await callA("POST", "/v1/api-keys", { name: "narrower", scopes: ["runs:read"] })
    // the key just made by keyMaker is A's: a live name is unique in its tenant
    expect(dup.status, dup.text).toBe(409)
  })
})

describe("api keys", () => {
  it("shows a key once: lists carry its id, name, scopes and last 4 characters, never the key or its hash", async () => {
    const made = await newKey(["runs:read"], { expiresAt: "2999-01-01T00:00:00Z" })
    expect(made.key).toMatch(/^lk_[A-Za-z0-9_-]{43}$/)
    expect(made.expiresAt).toBe("2999-01-01T00:00:00.000Z")
    const listed = await callA("GET", "/v1/api-keys")
    const item = listed.json.items.find((k: { id: string }) => k.id === made.id)
    expect(item).toMatchObject({
      id: made.id,
      scopes: ["runs:read"],
      last4: made.key.slice(-4),
      expiresAt: "2999-01-01T00:00:00.000Z"
    })
    expect(item.key).toBeUndefined()
    expect(listed.text).not.toContain(made.key)
    expect(listed.text).not.toContain(Tokens.hash(made.key))
  })

  it("an expired key is 401", async () => {
    const past = await callA("POST", "/v1/api-keys", {
      name: "past",
      scopes: ["runs:read"],
      expiresAt: "2020-01-01T00:00:00Z"
    })
    expect(past.status).toBe(400)
    expect(past.json.error.issues[0].field).toBe("expiresAt")
    const soon = await newKey(["runs:read"], { expiresAt: new Date(Date.now() + 1500).toISOString() })
    const call = as(soon.key)
    expect((await call("GET", "/v1/runs")).status).toBe(200)
    const r = await eventually(
      async () => {
        const r = await call("GET", "/v1/runs")
        return r.status === 200 ? null : r
      },
      15_000,
      "the key to expire"
    )
    expect(r.status, r.text).toBe(401)
  })

  it("a revoked key is 401 at once, and gone from the list", async () => {
    const made = await newKey(["runs:read"])
    const call = as(made.key)
    expect((await call("GET", "/v1/runs")).status).toBe(200)
    expect((await callA("DELETE", `/v1/api-keys/${made.id}`)).status).toBe(204)
    expect((await call("GET", "/v1/runs")).status).toBe(401)
    expect((await callA("GET", "/v1/api-keys")).json.items.map((k: { id: string }) => k.id)).not.toContain(made.id)
    expect((await callA("DELETE", `/v1/api-keys/${made.id}`)).status).toBe(404)
    const revoked = await eventually(
      async () => {
        const r = await callA("GET", "/v1/audit?action=api_key.revoked")
        return r.status === 404 ? { skipped: true } : (r.json.items as Array<any>).find((e) => e.target === made.id)
      },
      30_000,
      "api_key.revoked entry"
    )
    if (!("skipped" in revoked))
      expect(revoked).toMatchObject({ action: "api_key.revoked", actor: "token:dev", outcome: "allowed" })
    expect((await callA("DELETE", "/v1/api-keys/nope")).status).toBe(400)
  })
})

describe("key lineage", () => {
  const live = async (call: ReturnType<typeof api>) => (await call("GET", "/v1/runs")).status
  const revokedEntry = (id: string) =>
    eventually(
      async () => {
        const r = await callA("GET", "/v1/audit?action=api_key.revoked&limit=200")
        return (r.json.items as Array<any>).find((e) => e.target === id)
      },
      30_000,
      `api_key.revoked entry of ${id}`
    )

  it("a key minted by an expiring key gets the parent's expiry at most, and stops working with it", async () => {
    const parent = await newKey(["keys:write", "runs:read"], { expiresAt: new Date(Date.now() + 3_000).toISOString() })
    const byParent = as(parent.key)
    const mint = async (extra: Record<string, unknown>) => {
      const r = await byParent("POST", "/v1/api-keys", {
        name: `child-${Math.random().toString(36).slice(2)}`,
        scopes: ["runs:read"],
        ...extra
      })
      expect(r.status, r.text).toBe(201)
      return r.json as { id: string; key: string; expiresAt: string | null }
    }
    // no expiry and a later one are both capped to the parent's; an earlier one is kept
    const forever = await mint({})
    expect(forever.expiresAt).toBe(parent.expiresAt)
    expect((await mint({ expiresAt: "2999-01-01T00:00:00Z" })).expiresAt).toBe(parent.expiresAt)
    const earlier = new Date(Date.parse(parent.expiresAt!) - 1_000).toISOString()
    expect((await mint({ expiresAt: earlier })).expiresAt).toBe(earlier)
    // the list shows the effective expiry and the parent
    const listed = (await callA("GET", "/v1/api-keys")).json.items.find((k: { id: string }) => k.id === forever.id)
    expect(listed).toMatchObject({ expiresAt: parent.expiresAt, parentId: parent.id })
    const child = as(forever.key)
    expect(await live(child)).toBe(200)
    await eventually(async () => await live(byParent) === 401, 15_000, "the parent to expire")
    expect(await live(child)).toBe(401)
  }, 30_000)

  it("revoking a key revokes every key it minted, at once, and audits each", async () => {
    const parent = await newKey(["keys:write", "runs:read"])
    const childR = await as(parent.key)("POST", "/v1/api-keys", {
      name: `child-${Math.random().toString(36).slice(2)}`,
      scopes: ["keys:write", "runs:read"]
    })
    expect(childR.status, childR.text).toBe(201)
    const grandR = await as(childR.json.key)("POST", "/v1/api-keys", {
      name: `grand-${Math.random().toString(36).slice(2)}`,
      scopes: ["runs:read"]
    })
    expect(grandR.status, grandR.text).toBe(201)
    const bystander = await newKey(["runs:read"])
    const [child, grand] = [as(childR.json.key), as(grandR.json.key)]
    // used once, so each is in the edge's token cache when the parent is revoked
    for (const call of [as(parent.key), child, grand, as(bystander.key)]) expect(await live(call)).toBe(200)
    expect((await callA("DELETE", `/v1/api-keys/${parent.id}`)).status).toBe(204)
    expect(await live(as(parent.key))).toBe(401)
    expect(await live(child)).toBe(401)
    expect(await live(grand)).toBe(401)
    expect(await live(as(bystander.key))).toBe(200)
    const ids = (await callA("GET", "/v1/api-keys")).json.items.map((k: { id: string }) => k.id)
    expect(ids).not.toContain(childR.json.id)
    expect(ids).not.toContain(grandR.json.id)
    expect(ids).toContain(bystander.id)
    // already revoked with its parent
    expect((await callA("DELETE", `/v1/api-keys/${childR.json.id}`)).status).toBe(404)
    expect(await revokedEntry(parent.id)).toMatchObject({ outcome: "allowed", detail: { descendantsRevoked: "2" } })
    expect(await revokedEntry(grandR.json.id)).toMatchObject({ outcome: "allowed", detail: { revokedWith: parent.id } })
  }, 60_000)

  it(
    "a keys:write-only key cannot revoke the owner key: 403 naming the missing scope, audited, nothing changes",
    async () => {
      const keysOnly = await newKey(["keys:write"], {}, callB)
      const r = await as(keysOnly.key)("DELETE", `/v1/api-keys/${ownerKeyIdB}`)
      expect(r.status, r.text).toBe(403)
      expect(r.json.error).toMatchObject({ code: "forbidden", missingScope: "*" })
      expect((await callB("GET", "/v1/agents")).status).toBe(200)
      expect((await callB("GET", "/v1/api-keys")).json.items.map((k: { id: string }) => k.id)).toContain(ownerKeyIdB)
      const denied = await eventually(
        async () => {
          const items = (await callB("GET", "/v1/audit?action=scope.denied&limit=200")).json.items as Array<any>
          return items.find((e) => e.detail?.key === ownerKeyIdB)
        },
        30_000,
        "the scope.denied entry"
      )
      expect(denied).toMatchObject({ outcome: "denied", actor: `key:${keysOnly.id}`, detail: { missingScope: "*" } })
      // a key may always revoke itself
      expect((await as(keysOnly.key)("DELETE", `/v1/api-keys/${keysOnly.id}`)).status).toBe(204)
      expect((await as(keysOnly.key)("GET", "/v1/api-keys")).status).toBe(401)
    },
    60_000
  )

  it("a key can revoke a key with a subset of its scopes, and not one with a scope beyond them", async () => {
    const revoker = as((await newKey(["keys:write", "runs:read", "runs:write"])).key)
    const subset = await newKey(["runs:read"])
    const beyond = await newKey(["runs:read", "secrets:read"])
    const refused = await revoker("DELETE", `/v1/api-keys/${beyond.id}`)
    expect(refused.status, refused.text).toBe(403)
    expect(refused.json.error.missingScope).toBe("secrets:read")
    expect(await live(as(beyond.key))).toBe(200)
    expect((await revoker("DELETE", `/v1/api-keys/${subset.id}`)).status).toBe(204)
    expect(await live(as(subset.key))).toBe(401)
  })
})
