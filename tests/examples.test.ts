// The examples run as a user would run them (examples/README in the main README): `lantern serve --workflows
// examples/index.ts` on the offline model provider, each example started over HTTP, its approvals decided.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, ROOT, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

beforeAll(async () => {
  nats = await startServer("lantern-examples")
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: { LANTERN_WORKFLOWS: join(ROOT, "examples/index.ts"), LANTERN_WATCHDOG_INTERVAL: "200 millis" }
  })
  call = api(stack)
}, 120_000)

afterAll(async () => {
  await stack?.kill()
  await nats?.cleanup()
})

const start = async (workflow: string, input: unknown) => {
  const r = await call("POST", "/v1/runs", { workflow, input })
  expect(r.status, r.text).toBe(201)
  return r.json.id as string
}

const waitingOn = (id: string, stepId: string) =>
  eventually(
    async () => (await call("GET", `/v1/runs/${id}`)).json.waiting?.stepId === stepId,
    30_000,
    `${id} to wait on ${stepId}`
  )

const finished = (id: string) =>
  eventually(
    async () => {
      const r = (await call("GET", `/v1/runs/${id}`)).json
      return r.status !== "running" ? r : null
    },
    60_000,
    `${id} to finish`
  )

describe("examples/email-triage.ts", () => {
  it("labels an urgent email, waits for a person, then sends the reply once", async () => {
    onTestFailed(() => console.error(stack.output()))
    const id = await start("email-triage", {
      from: "ana@example.com",
      subject: "URGENT: the checkout is down",
      body: "Customers cannot pay since 9:00."
    })
    await waitingOn(id, "approval-1")
    const ok = await call("POST", `/v1/runs/${id}/approvals/approval-1`, { approved: true, by: "oncall" })
    expect(ok.status, ok.text).toBe(200)
    const run = await finished(id)
    expect(run.status).toBe("succeeded")
    expect(run.output.label).toBe("urgent")
    expect(run.output.replied).toBe(true)
    expect(run.output.sent.idempotencyKey).toBe(`${id}:send-reply:1`)
  }, 120_000)

  it("answers a billing email without asking anyone", async () => {
    const id = await start("email-triage", { from: "bo@example.com", subject: "Invoice", body: "A billing question." })
    const run = await finished(id)
    expect(run.output).toMatchObject({ label: "billing", replied: true })
  }, 120_000)
})

describe("examples/research-loop.ts", () => {
  it("searches for a bounded number of rounds, then publishes once approved", async () => {
    const id = await start("research-loop", { question: "How does JetStream keep an event journal?", rounds: 2 })
    await waitingOn(id, "approval-1")
    await call("POST", `/v1/runs/${id}/approvals/approval-1`, { approved: true, by: "editor" })
    const run = await finished(id)
    expect(run.status).toBe("succeeded")
    expect(run.output.notes).toHaveLength(2)
    expect(run.output.notes[0]).toContain("JetStream")
    expect(run.output.published).toBe(true)
  }, 120_000)
})

describe("examples/triage-graph.json", () => {
  it("pages on-call for an urgent ticket once approved, and files the others", async () => {
    const created = await call("POST", "/v1/agents", { name: "triage-graph", spec: { systemPrompt: "Triage." } })
    expect(created.status, created.text).toBe(201)
    const graph = JSON.parse(readFileSync(join(ROOT, "examples/triage-graph.json"), "utf8"))
    const set = await call("PUT", "/v1/agents/triage-graph/workflow", graph)
    expect(set.status, set.text).toBe(200)
    const run = async (text: string) => {
      const r = await call("POST", "/v1/runs", { agentName: "triage-graph", input: { text } })
      expect(r.status, r.text).toBe(201)
      return r.json.id as string
    }
    // the offline model echoes its prompt, so an urgent ticket's answer says URGENT
    const urgent = await run("URGENT: the checkout is down")
    await waitingOn(urgent, "approval-1")
    await call("POST", `/v1/runs/${urgent}/approvals/approval-1`, { approved: true, by: "oncall" })
    const paged = await finished(urgent)
    expect(paged.status).toBe("succeeded")
    expect(paged.output.result).toBe(true)
    expect(paged.output.stepsRan).toEqual(["start", "classify", "urgent", "page", "paged"])
    const calm = await finished(await run("a typo on the pricing page"))
    expect(calm.output.stepsRan).toEqual(["start", "classify", "urgent", "filed"])
  }, 120_000)
})
