// Dead letters against the real `lantern serve`: a run event the database refuses (a NUL in its input), put
// straight on the runs stream, does not hold up the runs started after it; /readyz stays 200 and counts it; the
// operator lists it at GET /v1/admin/dead-letters (scope `admin`), another tenant's owner cannot.
import { jetstream } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { subjectOf } from "../bus/Journal.ts"
import * as Fixtures from "../projections/Fixtures.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

const MARKER = "payload-marker-91c2"

beforeAll(async () => {
  nats = await startServer("lantern-dead-letters-e2e")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  const r = await call("POST", "/v1/agents", { name: "echo", spec: { systemPrompt: "You answer." } })
  expect(r.status, r.text).toBe(201)
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("dead letters", () => {
  it("skips a run event the database refuses, lists it for the operator, and keeps /readyz at 200", async () => {
    const ready = await call("GET", "/readyz")
    expect(ready.json).toMatchObject({ bus: "ok", database: "ok", deadLetters: 0 })
    // a foreign writer's RunStarted for tenant `ta` whose input holds a NUL: valid JSON, refused by Postgres
    const entry = Fixtures.startedRuns("ta", 1, 1)[0]!
    const poison = { ...entry, event: { ...entry.event, input: `${MARKER}\u0000` } as Fixtures.Entry["event"] }
    const nc = await connect({ servers: nats.handle.url })
    let seq: number
    try {
      seq =
        (await jetstream(nc).publish(subjectOf(poison.address), JSON.stringify(Fixtures.envelopeOf(poison, "poison"))))
          .seq
    } finally {
      await nc.close()
    }
    // a run started after it, by the operator's tenant, is listed
    const started = await call("POST", "/v1/runs", { agentName: "echo", input: "hello" })
    expect(started.status, started.text).toBe(201)
    const id = started.json.id as string
    await eventually(
      async () => {
        const r = await call("GET", "/v1/runs")
        return (r.json.items as Array<{ id: string; status: string }>).some((x) =>
          x.id === id && x.status === "succeeded"
        )
      },
      30_000,
      `run ${id} listed as succeeded`
    )

    const after = await call("GET", "/readyz")
    expect(after.status).toBe(200)
    expect(after.json).toMatchObject({ bus: "ok", database: "ok", deadLetters: 1 })
    const listed = await call("GET", "/v1/admin/dead-letters")
    expect(listed.status, listed.text).toBe(200)
    expect(listed.json.total).toBe(1)
    expect(listed.json.items).toEqual([{
      projector: "projector-runs",
      stream: "LANTERN_RUNS",
      seq,
      tenant: "ta",
      subject: subjectOf(poison.address),
      eventType: "RunStarted",
      reason: expect.stringMatching(/^SQLSTATE 22P05: /),
      failedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    }])
    expect(listed.text).not.toContain(MARKER)
    expect(stack.output()).toContain(`dead-lettered #${seq} of LANTERN_RUNS (tenant ta)`)
    expect(stack.output()).not.toContain(MARKER)
    expect((await call("GET", "/v1/admin/dead-letters?limit=0")).status).toBe(400)
  })

  it("is the operator's: another tenant's owner key gets 403 naming `admin`", async () => {
    const created = await call("POST", "/v1/tenants", { name: "acme" })
    expect(created.status, created.text).toBe(201)
    const asAcme = api({ url: stack.url, token: created.json.key.key })
    const r = await asAcme("GET", "/v1/admin/dead-letters")
    expect(r.status).toBe(403)
    expect(r.json.error.missingScope).toBe("admin")
  })
})
