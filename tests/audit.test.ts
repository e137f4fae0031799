// The audit log end to end against the real `lantern serve`: a finished run's receipt issuance is listed by
// GET /v1/audit; a refused token is journaled under `_unknown` (the operator's, never a tenant's, and never with
// the token); the query's bad fields are named.
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AUDIT } from "../bus/Topology.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

beforeAll(async () => {
  nats = await startServer("lantern-audit")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  const r = await call("POST", "/v1/agents", {
    name: "calc",
    spec: {
      systemPrompt: "You compute.",
      maxTurns: 4,
      tools: [{ name: "calculator", description: "calculator", parameters: { type: "object", properties: {} } }]
    }
  })
  expect(r.status, r.text).toBe(201)
}, 240_000)

afterAll(() => stopStack(stack, nats))

/** The entries journaled without a tenant, as the operator reads them: straight from the audit stream. */
const unknownEntries = async (): Promise<ReadonlyArray<{ data: string; payload: any }>> => {
  const nc = await connect({ servers: nats.handle.url })
  try {
    const jsm = await jetstreamManager(nc)
    const last = (await jsm.streams.info(AUDIT)).state.last_seq
    const out: Array<{ data: string; payload: any }> = []
    for (let seq = 1; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(AUDIT, { seq })
      if (m !== null && m.subject.startsWith("lantern.audit._unknown."))
        out.push({ data: m.string(), payload: JSON.parse(m.string()).payload })
    }
    return out
  } finally {
    await nc.close()
  }
}

describe("audit log", () => {
  it("lists a finished run's receipt issuance, with the run as target", async () => {
    const started = await call("POST", "/v1/runs", { agentName: "calc", input: "use the calculator on 2+3*4" })
    expect(started.status, started.text).toBe(201)
    const id = started.json.id as string
    const entry = await eventually(
      async () => {
        const r = await call("GET", "/v1/audit?action=receipt.issued")
        expect(r.status, r.text).toBe(200)
        return (r.json.items as Array<any>).find((e) => e.target === id)
      },
      30_000,
      `receipt.issued of ${id}`
    )
    expect(entry).toMatchObject({
      action: "receipt.issued",
      actor: "system",
      outcome: "allowed",
      detail: { keyId: expect.any(String), status: "succeeded" }
    })
    expect(entry.id).toMatch(/^aud_[0-9a-z]{26}$/)
    // issued once, however often the receipt is read afterwards
    expect((await call("GET", `/v1/runs/${id}/receipt`)).status).toBe(200)
    const all = await call("GET", "/v1/audit")
    expect((all.json.items as Array<any>).filter((e) => e.target === id)).toHaveLength(1)
  })

  it("shows a tenant only its own entries: another tenant's key creation and receipts are invisible to it", async () => {
    const created = await call("POST", "/v1/tenants", { name: "audit-other" })
    expect(created.status, created.text).toBe(201)
    const other = api({ url: stack.url, token: created.json.key.key as string })
    const key = await other("POST", "/v1/api-keys", { name: "reader", scopes: ["runs:read"] })
    expect(key.status, key.text).toBe(201)
    // the other tenant sees its own key creation ...
    const own = await eventually(
      async () => {
        const r = await other("GET", "/v1/audit")
        expect(r.status, r.text).toBe(200)
        const items = r.json.items as Array<any>
        return items.some((e) => e.action === "api_key.created" && e.target === key.json.id) ? items : null
      },
      20_000,
      "the other tenant's api_key.created entry"
    )
    // ... and none of this tenant's receipts; this tenant sees none of its key creations
    expect(own.filter((e) => e.action === "receipt.issued")).toEqual([])
    const mine = (await call("GET", "/v1/audit")).json.items as Array<any>
    expect(mine.some((e) => e.target === key.json.id)).toBe(false)
    expect(mine.some((e) => e.action === "receipt.issued")).toBe(true)
  })

  it("journals a refused token as auth.failed of `_unknown`, without the token, and shows it to no tenant", async () => {
    const wrong = "lt_not_a_real_token_0123456789abcdef"
    const r = await fetch(`${stack.url}/v1/runs?token=${wrong}`, { headers: { authorization: `Bearer ${wrong}` } })
    expect(r.status).toBe(401)
    const missing = await fetch(`${stack.url}/v1/agents`)
    expect(missing.status).toBe(401)
    const entries = await eventually(
      async () => {
        const found = await unknownEntries()
        return found.length >= 2 ? found : null
      },
      20_000,
      "two auth.failed entries"
    )
    expect(entries.map((e) => e.payload)).toEqual(expect.arrayContaining([
      expect.objectContaining({
        action: "auth.failed",
        actor: "anonymous",
        target: "GET /v1/runs",
        outcome: "failed",
        detail: { reason: "invalid API token" }
      }),
      expect.objectContaining({
        action: "auth.failed",
        actor: "anonymous",
        target: "GET /v1/agents",
        outcome: "failed"
      })
    ]))
    for (const e of entries) expect(e.data).not.toContain(wrong)
    const listed = await call("GET", "/v1/audit?action=auth.failed")
    expect(listed.status).toBe(200)
    expect(listed.json.items).toEqual([])
  })

  it("refuses bad query parameters with 400 naming the field", async () => {
    for (
      const [q, field] of [
        ["action=nope", "action"],
        ["limit=0", "limit"],
        ["limit=abc", "limit"],
        ["since=yesterday", "since"],
        ["since=2026-02-31", "since"],
        ["cursor=run_01jd0000000000000000000001", "cursor"]
      ] as const
    ) {
      const r = await call("GET", `/v1/audit?${q}`)
      expect(r.status, q).toBe(400)
      expect([...new Set(r.json.error.issues.map((i: { field: string }) => i.field))], q).toEqual([field])
    }
    const ok = await call("GET", "/v1/audit?since=2026-01-01&limit=5")
    expect(ok.status, ok.text).toBe(200)
  })
})
