// The marketplace against the real `lantern serve` (ADR 0059), the seed's scenario: tenant A publishes an agent,
// tenant B finds it, forks it and invokes it; the invocation's run is in A (B cannot see it), gated by A's budget
// (402 when over), and its settlement receipt verifies offline with the published receipt keys (the CLI too);
// an unpublished slug is 404 everywhere; bad bodies and inputs are 400 naming the field and start nothing.
import { execFile } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { verifySettlement } from "../schema/Marketplace.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, LAUNCHER, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let callA: ReturnType<typeof api>
let callB: ReturnType<typeof api>
let tenantA: string
let tenantB: string
let slug: string

const spec = { systemPrompt: "You summarize what you are given in one line.", maxTurns: 2 }
const inputSchema = { type: "string", minLength: 1, maxLength: 500 }

const runsOfA = async () => ((await callA("GET", "/v1/runs?limit=200")).json.items as Array<{ id: string }>).length

beforeAll(async () => {
  nats = await startServer("lantern-marketplace")
  stack = await startStack({ natsUrl: nats.handle.url })
  callA = api(stack)
  tenantA = "dev"
  expect((await callA("POST", "/v1/agents", { name: "summarize", spec })).status).toBe(201)
  const created = await callA("POST", "/v1/tenants", { name: "buyer" })
  expect(created.status, created.text).toBe(201)
  tenantB = created.json.tenant.id
  callB = api({ url: stack.url, token: created.json.key.key })
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("the marketplace", () => {
  it("refuses bad listings naming the field, and answers 404 for a slug nobody published", async () => {
    const unknown = await callA("POST", "/v1/marketplace/publish", {
      agentName: "summarize",
      description: "d",
      category: "text",
      price: 3
    })
    expect(unknown.status).toBe(400)
    expect(JSON.stringify(unknown.json)).toContain("price")
    const missing = await callA("POST", "/v1/marketplace/publish", { agentName: "summarize", description: "d" })
    expect(missing.status).toBe(400)
    expect(JSON.stringify(missing.json)).toContain("category")
    const noAgent = await callA("POST", "/v1/marketplace/publish", {
      agentName: "nobody",
      description: "d",
      category: "text"
    })
    expect(noAgent.status).toBe(404)
    for (
      const [method, path, body] of [
        ["GET", `/v1/marketplace/${tenantA}.summarize`, undefined],
        ["POST", `/v1/marketplace/${tenantA}.summarize/fork`, {}],
        ["POST", `/v1/marketplace/${tenantA}.summarize/invoke`, { input: "x" }]
      ] as const
    ) {
      const r = await callB(method, path, body)
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(404)
      expect(r.json.error.code).toBe("listing_not_found")
    }
    expect((await callB("GET", "/v1/marketplace")).json.items).toEqual([])
  })

  it("A publishes, B finds and forks it: the spec is copied into B's tenant", async () => {
    const published = await callA("POST", "/v1/marketplace/publish", {
      agentName: "summarize",
      description: "One-line summaries of any text",
      category: "text",
      tags: ["summaries", "writing"],
      readme: "# Summarize\nGive it text.",
      inputSchema
    })
    expect(published.status, published.text).toBe(201)
    slug = published.json.slug
    expect(slug).toBe(`${tenantA}.summarize`)
    expect(published.json).toMatchObject({ sellerTenant: tenantA, agentVersion: 1, inputSchema })
    // publishing again updates the listing
    const again = await callA("POST", "/v1/marketplace/publish", {
      agentName: "summarize",
      description: "One-line summaries of any text",
      category: "text",
      tags: ["summaries", "writing"],
      inputSchema
    })
    expect(again.status).toBe(200)
    expect(again.json.publishedAt).toBe(published.json.publishedAt)

    expect((await callB("GET", "/v1/marketplace?q=ONE-LINE%20writing")).json.items.map((l: any) => l.slug)).toEqual([
      slug
    ])
    expect((await callB("GET", "/v1/marketplace?category=images")).json.items).toEqual([])
    expect((await callB("GET", "/v1/marketplace?q=nothing-like-it")).json.items).toEqual([])

    const fork = await callB("POST", `/v1/marketplace/${slug}/fork`, { newName: "my-summarize" })
    expect(fork.status, fork.text).toBe(201)
    expect(fork.json).toMatchObject({ name: "my-summarize", latestVersion: 1 })
    const mine = await callB("GET", "/v1/agents/my-summarize")
    expect(mine.status).toBe(200)
    expect(mine.json.spec.systemPrompt).toBe(spec.systemPrompt)
    // a fork is B's own: A has no agent of that name, and a second fork of the same name conflicts
    expect((await callA("GET", "/v1/agents/my-summarize")).status).toBe(404)
    expect((await callB("POST", `/v1/marketplace/${slug}/fork`, { newName: "my-summarize" })).status).toBe(409)
  })

  it("B invokes it: the run is A's, the settlement receipt verifies offline, a bad input starts nothing", async () => {
    const before = await runsOfA()
    const bad = await callB("POST", `/v1/marketplace/${slug}/invoke`, { input: 42 })
    expect(bad.status, bad.text).toBe(400)
    expect(bad.json.error.issues[0].field).toBe("input")
    const unknown = await callB("POST", `/v1/marketplace/${slug}/invoke`, { input: "x", tip: 1 })
    expect(unknown.status).toBe(400)
    expect(JSON.stringify(unknown.json)).toContain("tip")
    expect(await runsOfA()).toBe(before)

    const invoked = await callB("POST", `/v1/marketplace/${slug}/invoke`, { input: "Lanterns light the way." })
    expect(invoked.status, invoked.text).toBe(200)
    const inv = invoked.json
    expect(inv).toMatchObject({ slug, buyerTenant: tenantB, sellerTenant: tenantA, status: "succeeded" })
    expect(inv.invocationId).toMatch(/^inv_[0-9a-z]{26}$/)
    expect(inv.output).not.toBeNull()
    expect(inv.receipt).toMatchObject({
      kind: "settlement",
      invocationId: inv.invocationId,
      buyerTenant: tenantB,
      sellerTenant: tenantA,
      agent: "summarize",
      runId: inv.runId,
      costUsd: inv.costUsd
    })
    // the run is the seller's: A sees it, B does not
    const run = await callA("GET", `/v1/runs/${inv.runId}`)
    expect(run.status).toBe(200)
    expect(run.json.costUsd).toBe(inv.costUsd)
    expect((await callB("GET", `/v1/runs/${inv.runId}`)).status).toBe(404)

    // offline: the published keys and the receipt are all it takes; any change breaks it
    const keys = ((await (await fetch(`${stack.url}/.well-known/lantern-receipts`)).json()) as any).keys
    expect(verifySettlement(inv.receipt, keys).valid).toBe(true)
    const forged = verifySettlement({ ...inv.receipt, costUsd: inv.receipt.costUsd + 1.5 }, keys)
    expect(forged.valid).toBe(false)
    expect(forged.checks.find((c) => c.name === "signature")?.ok).toBe(false)
    expect(verifySettlement({ ...inv.receipt, buyerTenant: tenantA }, keys).valid).toBe(false)
    expect(verifySettlement({ ...inv.receipt, keyId: "0000000000000000" }, keys).valid).toBe(false)

    // and the CLI's offline verifier: exit 0 valid, 1 forged, 2 not a settlement
    const dir = mkdtempSync(join(tmpdir(), "lantern-settlement-"))
    writeFileSync(join(dir, "keys.json"), JSON.stringify({ keys }))
    writeFileSync(join(dir, "good.json"), JSON.stringify(inv.receipt))
    writeFileSync(join(dir, "forged.json"), JSON.stringify({ ...inv.receipt, costUsd: inv.receipt.costUsd + 1.5 }))
    writeFileSync(join(dir, "other.json"), JSON.stringify({ runId: inv.runId }))
    const cli = (file: string) =>
      promisify(execFile)(
        process.execPath,
        [LAUNCHER, "receipts", "verify-settlement", join(dir, file), "--key", join(dir, "keys.json")],
        { env: { ...process.env, LANTERN_URL: stack.url } }
      ).then(() => 0, (e: { code: number }) => e.code)
    expect(await cli("good.json")).toBe(0)
    expect(await cli("forged.json")).toBe(1)
    expect(await cli("other.json")).toBe(2)

    // each side's list
    expect((await callB("GET", "/v1/marketplace/invocations")).json.items.map((i: any) => i.invocationId)).toEqual([
      inv.invocationId
    ])
    expect((await callA("GET", "/v1/marketplace/invocations?as=seller")).json.items.map((i: any) => i.invocationId))
      .toEqual([inv.invocationId])
    expect((await callB("GET", "/v1/marketplace/invocations?as=seller")).json.items).toEqual([])
    expect((await callA("GET", "/v1/marketplace/invocations?as=broker")).status).toBe(400)
    await eventually(
      async () => {
        const served = (await callA("GET", "/v1/audit?action=marketplace.served")).json.items
        return served.length >= 1 ? served : null
      },
      30_000,
      "the seller's audit entry"
    )
  }, 120_000)

  it("the seller's budget gates an invocation (402), and an unpublished listing is 404 again", async () => {
    // the invocation before ran the agent once today in A: a cap of one run a day refuses the next
    const capped = await callA("PUT", "/v1/agents/summarize/budget", { maxRunsPerDay: 1, hardFail: true })
    expect(capped.status, capped.text).toBe(200)
    const before = await runsOfA()
    const over = await eventually(
      async () => {
        const r = await callB("POST", `/v1/marketplace/${slug}/invoke`, { input: "One more, please." })
        return r.status === 402 ? r : null
      },
      30_000,
      "a 402 from the seller's budget"
    )
    expect(over.json.error.code).toBe("budget_exceeded")
    expect(await runsOfA()).toBe(before)

    // only the seller can take it down; then it is gone for everyone
    expect((await callB("DELETE", `/v1/marketplace/${slug}`)).status).toBe(404)
    expect((await callA("DELETE", `/v1/marketplace/${slug}`)).status).toBe(204)
    expect((await callB("GET", `/v1/marketplace/${slug}`)).status).toBe(404)
    expect((await callB("POST", `/v1/marketplace/${slug}/invoke`, { input: "x" })).status).toBe(404)
    // its invocations stay on record
    expect((await callB("GET", "/v1/marketplace/invocations")).json.items).toHaveLength(1)
  }, 120_000)
})
