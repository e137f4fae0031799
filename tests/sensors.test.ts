// Sensor events against a real stack (ADR 0056): an event creates its task or queue workflow once; a repeat of its
// event id (per sensor) or of its dedupe key (per tenant), sequential or concurrent, is a 200 duplicate naming the
// original and creates nothing; an unknown template is a 400 that writes nothing; the workflow a sensor proposes
// starts at `plan`; sensor events published on the NATS ingest source `sensors` are posted the same way (bad data is a
// dead letter naming the field); the CLI posts them (bad usage exits 2).
import { jetstream } from "@nats-io/jetstream"
import { headers } from "@nats-io/nats-core"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, spawnLantern, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let nc: NatsConnection

/** Dispatch is paused for these tests (nothing is claimed), so what they read of the queue stays as submitted. */
const SLOW = { type: "script", command: [process.execPath, "-e", "process.exit(3)"] }
const task = (kind: string, extra: Record<string, unknown> = {}) => ({
  kind,
  source: "sensor-test",
  payload: { kind },
  adapter: SLOW,
  ...extra
})

beforeAll(async () => {
  nats = await startServer("lantern-sensors")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  expect(
    (await call("PUT", "/v1/dispatch", { paused: true, reason: "sensor tests read the queue as submitted" })).status
  )
    .toBe(200)
  nc = await connect({ servers: nats.handle.url })
}, 180_000)

afterAll(async () => {
  await nc?.close()
  await stack?.kill()
  await nats?.cleanup()
})

const events = async () => (await call("GET", "/v1/sensors/events")).json.items as Array<any>
const tasksOf = async (kind: string) => ((await call("GET", `/v1/tasks?kind=${kind}`)).json.items as Array<any>)

describe("sensor events", () => {
  it("refuses bad events with 400 naming the field, writing nothing (an unknown template included)", async () => {
    onTestFailed(() => console.error(stack.output()))
    const before = (await events()).length
    const unknown = await call("POST", "/v1/sensors/events", {
      sensorId: "github",
      eventId: "bad-1",
      payload: {},
      proposedWorkflow: { template: "no-such-template", instanceKey: "k" }
    })
    expect(unknown.status).toBe(400)
    expect(JSON.stringify(unknown.json)).toContain("proposedWorkflow.template")
    const missing = await call("POST", "/v1/sensors/events", { eventId: "bad-2", payload: {} })
    expect(missing.status).toBe(400)
    expect(JSON.stringify(missing.json)).toContain("sensorId")
    const extra = await call("POST", "/v1/sensors/events", { sensorId: "s", eventId: "bad-3", payload: {}, when: 1 })
    expect(extra.status).toBe(400)
    expect(JSON.stringify(extra.json)).toContain("when")
    const noAdapter = await call("POST", "/v1/sensors/events", {
      sensorId: "github",
      eventId: "bad-4",
      payload: {},
      proposedTask: { kind: "x", source: "y", payload: {} }
    })
    expect(noAdapter.status).toBe(400)
    expect(noAdapter.json.error.issues[0].field).toBe("proposedTask.adapter")
    const unrunnable = await call("POST", "/v1/sensors/events", {
      sensorId: "github",
      eventId: "bad-5",
      payload: {},
      proposedWorkflow: { template: "goal-loop", instanceKey: "k" }
    })
    expect(unrunnable.status).toBe(400)
    expect(unrunnable.json.error.issues[0].field).toBe("proposedWorkflow.task")
    expect((await events()).length).toBe(before)
    // the unknown template's event id is still free: nothing was written for it
    const fine = await call("POST", "/v1/sensors/events", { sensorId: "github", eventId: "bad-1", payload: {} })
    expect(fine.status).toBe(201)
    expect(fine.json).toMatchObject({ accepted: true, taskId: null, workflowId: null })
  })

  it("dedupes by event id (per sensor): the repeat is a 200 naming the original and submits nothing", async () => {
    const first = await call("POST", "/v1/sensors/events", {
      sensorId: "github",
      eventId: "delivery-1",
      payload: { n: 1 },
      proposedTask: task("sensor-eid")
    })
    expect(first.status).toBe(201)
    expect(first.json.accepted).toBe(true)
    expect(first.json.taskId).toMatch(/^tsk_/)
    const again = await call("POST", "/v1/sensors/events", {
      sensorId: "github",
      eventId: "delivery-1",
      payload: { n: 2 },
      proposedTask: task("sensor-eid")
    })
    expect(again.status).toBe(200)
    expect(again.json).toMatchObject({ accepted: false, duplicateOf: first.json.sensorEventId, duplicateBy: "eventId" })
    // the same event id from another sensor is another event
    const other = await call("POST", "/v1/sensors/events", {
      sensorId: "gitlab",
      eventId: "delivery-1",
      payload: {},
      proposedTask: task("sensor-eid")
    })
    expect(other.status).toBe(201)
    const tasks = await tasksOf("sensor-eid")
    expect(tasks.map((t) => t.id).sort()).toEqual([first.json.taskId, other.json.taskId].sort())
    const byId = await call("GET", `/v1/tasks/${first.json.taskId}`)
    expect(byId.json.origin).toMatchObject({ sensorEventId: first.json.sensorEventId })
  })

  it("dedupes by dedupe key (per tenant, whatever the sensor or event id)", async () => {
    const first = await call("POST", "/v1/sensors/events", {
      sensorId: "pager",
      eventId: "incident-1",
      dedupeKey: "db-down",
      payload: {},
      proposedTask: task("sensor-key")
    })
    expect(first.status).toBe(201)
    const second = await call("POST", "/v1/sensors/events", {
      sensorId: "grafana",
      eventId: "alert-77",
      dedupeKey: "db-down",
      payload: {},
      proposedTask: task("sensor-key")
    })
    expect(second.status).toBe(200)
    expect(second.json).toMatchObject({
      accepted: false,
      duplicateOf: first.json.sensorEventId,
      duplicateBy: "dedupeKey"
    })
    // a repeat of the duplicate's own event id names the original too
    const third = await call("POST", "/v1/sensors/events", {
      sensorId: "grafana",
      eventId: "alert-77",
      payload: {}
    })
    expect(third.status).toBe(200)
    expect(third.json.duplicateOf).toBe(first.json.sensorEventId)
    expect((await tasksOf("sensor-key")).map((t) => t.id)).toEqual([first.json.taskId])
    const listed = (await events()).filter((e) => e.dedupeKey === "db-down" || e.eventId === "alert-77")
    expect(listed.map((e) => e.status).sort()).toEqual(["accepted", "duplicate", "duplicate"])
  })

  it("of concurrent posts of one event, exactly one wins", async () => {
    const body = (i: number) => ({
      sensorId: "burst",
      eventId: "same",
      dedupeKey: `burst-${i % 2}`,
      payload: { i },
      proposedTask: task("sensor-burst")
    })
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => call("POST", "/v1/sensors/events", body(i))))
    const won = answers.filter((a) => a.status === 201)
    expect(won).toHaveLength(1)
    expect(answers.filter((a) => a.status === 200)).toHaveLength(11)
    for (const a of answers) if (a.status === 200) expect(a.json.duplicateOf).toBe(won[0]!.json.sensorEventId)
    expect(await tasksOf("sensor-burst")).toHaveLength(1)
  })

  it("a proposed workflow is created at plan, once", async () => {
    const proposed = {
      template: "goal-loop",
      instanceKey: "issue-42",
      context: { goal: "fix #42" },
      task: { adapter: SLOW }
    }
    const first = await call("POST", "/v1/sensors/events", {
      sensorId: "github",
      eventId: "issue-42-opened",
      payload: {},
      proposedWorkflow: proposed
    })
    expect(first.status).toBe(201)
    expect(first.json.workflowId).toMatch(/^qfw_/)
    const flow = await call("GET", `/v1/queue-workflows/${first.json.workflowId}`)
    expect(flow.status).toBe(200)
    expect(flow.json).toMatchObject({
      template: "goal-loop",
      instanceKey: "issue-42",
      status: "running",
      phase: "plan",
      sensorEventId: first.json.sensorEventId,
      artifactPaths: ["plans/issue-42-plan.md"]
    })
    const plan = await call("GET", `/v1/tasks/${flow.json.currentTaskId}`)
    expect(plan.json).toMatchObject({
      kind: "goal-loop.plan",
      origin: { workflowId: first.json.workflowId, phase: "plan" }
    })
    // another event proposing the same instance finds it: one workflow per (template, instanceKey)
    const second = await call("POST", "/v1/sensors/events", {
      sensorId: "github",
      eventId: "issue-42-edited",
      payload: {},
      proposedWorkflow: proposed
    })
    expect(second.status).toBe(201)
    expect(second.json.workflowId).toBe(first.json.workflowId)
    const all = (await call("GET", "/v1/queue-workflows")).json.items as Array<any>
    expect(all.filter((f) => f.instanceKey === "issue-42")).toHaveLength(1)
  })
})

describe("sensor events over NATS ingest", () => {
  it("posts events published on the sensors source, deduped the same way; bad data is a dead letter", async () => {
    const js = jetstream(nc)
    const publish = (eventId: string, data: unknown) => {
      const h = headers()
      h.set("Nats-Msg-Id", eventId)
      return js.publish("lantern.ingest.dev.sensors", JSON.stringify({ eventId, type: "sensor.event", data }), {
        headers: h
      })
    }
    await publish("nats-1", { sensorId: "bus", payload: { via: "nats" }, proposedTask: task("sensor-nats") })
    // past JetStream's window: a different message id, the same event id
    await js.publish(
      "lantern.ingest.dev.sensors",
      JSON.stringify({
        eventId: "nats-1",
        type: "sensor.event",
        data: { sensorId: "bus", payload: {}, proposedTask: task("sensor-nats") }
      })
    )
    await publish("nats-2", { sensorId: "bus", payload: {}, proposedWorkflow: { template: "nope", instanceKey: "k" } })
    const seen = await eventually(
      async () => {
        const mine = (await events()).filter((e) => e.sensorId === "bus")
        return mine.length === 2 && mine.every((e) => e.status !== "received") ? mine : null
      },
      60_000,
      "both arrivals recorded"
    )
    expect(seen.map((e) => [e.via, e.status]).sort()).toEqual([["ingest", "accepted"], ["ingest", "duplicate"]])
    expect(await tasksOf("sensor-nats")).toHaveLength(1)
    const dead = await eventually(
      async () => {
        const d = (await call("GET", "/v1/ingest/dead?source=sensors")).json
        return d.items.find((l: any) => l.field === "data.proposedWorkflow.template") ?? null
      },
      60_000,
      "the dead letter"
    )
    expect(dead.data).toContain("nats-2")
  })
})

describe("lantern sensors", () => {
  const cli = async (args: ReadonlyArray<string>) => {
    const p = spawnLantern(["sensors", ...args], { LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token })
    const code = await p.exited
    return { code, output: p.output() }
  }

  it("posts an event, then reports the repeat; bad usage exits 2", async () => {
    const first = await cli(["post", "--sensor", "cli", "--event-id", "c-1", "--payload", "{\"a\":1}"])
    expect(first.code).toBe(0)
    expect(first.output).toMatch(/accepted sev_/)
    const again = await cli(["post", "--sensor", "cli", "--event-id", "c-1"])
    expect(again.code).toBe(0)
    expect(again.output).toContain("duplicate of sev_")
    expect((await cli(["post", "--sensor", "cli"])).code).toBe(2)
    expect((await cli(["post", "--sensor", "cli", "--event-id", "c-2", "--payload", "{nope"])).code).toBe(2)
    expect((await cli(["post", "--sensor", "Bad Id", "--event-id", "c-3"])).code).toBe(2)
    expect(
      (await cli(["post", "--sensor", "cli", "--event-id", "c-4", "--workflow", "nope", "--instance-key", "k"])).code
    )
      .toBe(2)
    expect((await cli(["post", "--sensor", "cli", "--event-id", "c-5", "--workflow", "goal-loop"])).code).toBe(2)
    expect((await events()).filter((e) => e.sensorId === "cli").map((e) => e.eventId)).toEqual(["c-1", "c-1"])
  })
})
