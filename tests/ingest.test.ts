// NATS ingest (ADR 0051) against a real stack: producers publish straight onto lantern.ingest.<tenant>.<source>;
// exactly the unique valid events are accepted (recorded, or started as runs by a rule), duplicates are dropped for
// good whether or not JetStream's window saw them, every malformed message is a dead letter with its reason; and on a
// server configured as docs/ingest.md says, one tenant's user cannot publish into another tenant's subjects.
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { headers } from "@nats-io/nats-core"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Ingest from "../actors/ingest/Ingest.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let nc: NatsConnection

const TENANT = "dev"

beforeAll(async () => {
  nats = await startServer("lantern-ingest")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  expect((await call("POST", "/v1/agents", { name: "helper", spec: { systemPrompt: "You help." } })).status).toBe(201)
  nc = await connect({ servers: nats.handle.url })
}, 180_000)

afterAll(async () => {
  await nc?.close()
  await stack?.kill()
  await nats?.cleanup()
})

/**
 * Resolves once the ingest router has acknowledged every message of its stream up to `seq` (the durable's ack floor):
 * after it, everything published up to `seq` has been routed, so a count taken then is final for those messages.
 */
const routed = async (seq: number) => {
  const jsm = await jetstreamManager(nc)
  return eventually(
    async () => {
      const info = await jsm.consumers.info(Ingest.durable.stream, Ingest.durable.durable)
      return info.ack_floor.stream_seq >= seq ? info : null
    },
    60_000,
    `the ingest router past stream sequence ${seq}`
  )
}

const sources = async () =>
  Object.fromEntries(((await call("GET", "/v1/ingest/sources")).json.items as Array<any>).map((s) => [s.source, s]))

describe("rules", () => {
  it("refuses a bad rule naming the field, and an unknown agent", async () => {
    const bad = await call("POST", "/v1/ingest/rules", { source: "Bad.Source", agentName: "helper" })
    expect(bad.status).toBe(400)
    expect(bad.json.error.issues[0].field).toBe("source")
    expect((await call("POST", "/v1/ingest/rules", { source: "x", agentName: "nobody" })).status).toBe(404)
    const action = await call("POST", "/v1/ingest/rules", { source: "x", agentName: "helper", action: "later" })
    expect(action.json.error.issues[0].field).toBe("action")
  })
})

describe("10,000 events, 5% duplicates, 1% malformed", () => {
  it("accepts exactly the unique valid ones and dead-letters every malformed one with its reason", async () => {
    const rule = await call("POST", "/v1/ingest/rules", { source: "clicks", agentName: "helper", action: "record" })
    expect(rule.status).toBe(201)
    const js = jetstream(nc)
    const total = 10_000
    const malformed = new Map<string, string>()
    const unique = new Set<string>()
    const publishes: Array<Promise<{ seq: number }>> = []
    let last = 0
    const settle = async () => {
      for (const ack of await Promise.all(publishes.splice(0))) last = Math.max(last, ack.seq)
    }
    for (let i = 0; i < total; i++) {
      const subject = `lantern.ingest.${TENANT}.clicks`
      if (i % 100 === 7) {
        // 1% malformed: each kind of fault the contract names
        const kind = i % 400
        const body = kind === 7
          ? "{not json"
          : kind === 107
          ? JSON.stringify({ eventId: `m-${i}`, type: "click" })
          : kind === 207
          ? JSON.stringify({ eventId: "", type: "click", data: {} })
          : JSON.stringify({ eventId: `m-${i}`, type: "click", data: {}, occurredAt: "yesterday" })
        malformed.set(`m-${i}`, body)
        publishes.push(js.publish(subject, body))
        continue
      }
      // 5% duplicates of an earlier event: half with Nats-Msg-Id (the stream drops them), half without (the KV does)
      const dup = i % 20 === 3
      const id = dup ? `c-${i - 1}` : `c-${i}`
      if (!dup) unique.add(id)
      const body = JSON.stringify({ eventId: id, type: "click", occurredAt: "2026-12-03T08:00:00Z", data: { n: i } })
      const h = headers()
      if (!dup || i % 40 === 3) h.set("Nats-Msg-Id", id)
      publishes.push(js.publish(subject, body, { headers: h }))
      if (publishes.length >= 512) await settle()
    }
    await settle()
    const counted = await eventually(
      async () => {
        const s = (await sources())["clicks"]
        return s !== undefined && s.accepted === unique.size && s.dead === malformed.size ? s : null
      },
      120_000,
      `${unique.size} accepted and ${malformed.size} dead`
    )
    expect(counted).toEqual({ source: "clicks", accepted: unique.size, dead: malformed.size })
    expect(total - unique.size - malformed.size).toBe(500)
    const dead = await call("GET", "/v1/ingest/dead?source=clicks&limit=1000")
    expect(dead.json.total).toBe(malformed.size)
    expect(dead.json.items).toHaveLength(malformed.size)
    const fields = new Set(dead.json.items.map((d: any) => d.field))
    expect(fields).toEqual(new Set(["(body)", "data", "eventId", "occurredAt"]))
    for (const d of dead.json.items) {
      expect(d.reason.length).toBeGreaterThan(0)
      expect(d.subject).toBe(`lantern.ingest.${TENANT}.clicks`)
      expect([...malformed.values()]).toContain(d.data)
    }
    // settled: once the router is past the last message, nothing more arrives
    await routed(last)
    expect((await sources())["clicks"]).toEqual(counted)
  }, 240_000)
})

describe("rules to runs", () => {
  it("starts one run per unique event with the template's input; a redelivery long after starts nothing", async () => {
    const rule = await call("POST", "/v1/ingest/rules", {
      source: "orders",
      type: "order.created",
      agentName: "helper",
      inputTemplate: "order {{data.id}} from {{source}} ({{type}})"
    })
    expect(rule.status).toBe(201)
    const js = jetstream(nc)
    const publish = (eventId: string, type: string, msgId = true) => {
      const h = headers()
      if (msgId) h.set("Nats-Msg-Id", eventId)
      return js.publish(
        `lantern.ingest.${TENANT}.orders`,
        JSON.stringify({ eventId, type, data: { id: eventId.toUpperCase() } }),
        { headers: h }
      )
    }
    for (let i = 0; i < 10; i++) await publish(`o-${i}`, "order.created")
    await publish("o-3", "order.created")
    await publish("o-x", "order.shipped")
    // Nats-Msg-Id not equal to eventId: a dead letter
    const h = headers()
    h.set("Nats-Msg-Id", "other")
    await js.publish(
      `lantern.ingest.${TENANT}.orders`,
      JSON.stringify({ eventId: "o-y", type: "order.created", data: 1 }),
      {
        headers: h
      }
    )
    const runs = await eventually(
      async () => {
        const items = (await call("GET", "/v1/runs?agentName=helper&limit=100")).json.items as Array<any>
        return items.length >= 10 ? items : null
      },
      60_000,
      "ten runs"
    )
    await eventually(async () => (await sources())["orders"]?.accepted === 11, 30_000, "eleven accepted")
    // the same event again, without the header: past JetStream's window as far as the stream knows
    const again = await publish("o-5", "order.created", false)
    await routed(again.seq)
    // a fresh event routed after it: its run is journaled after anything the redelivery could have started, and the
    // projection applies the runs journal in order, so once it is listed a second O-5 would be listed too
    await publish("o-10", "order.created")
    const after = await eventually(
      async () => {
        const items = (await call("GET", "/v1/runs?agentName=helper&limit=100")).json.items as Array<any>
        return items.some((r) => r.input === "order O-10 from orders (order.created)") ? items : null
      },
      60_000,
      "the run of o-10"
    )
    expect(after).toHaveLength(11)
    expect(runs.map((r) => r.input).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `order O-${i} from orders (order.created)`).sort()
    )
    const dead = await call("GET", "/v1/ingest/dead?source=orders")
    expect(dead.json.items).toEqual([expect.objectContaining({ field: "Nats-Msg-Id" })])
    expect((await sources())["orders"]).toEqual({ source: "orders", accepted: 12, dead: 1 })
  }, 120_000)
})

describe("tenancy on the bus", () => {
  it("a tenant's user publishes into its own lantern.ingest.<tenant>.> only", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lantern-ingest-auth-"))
    // the server configuration docs/ingest.md gives, one user per tenant
    const user = (name: string) =>
      `{ user: ${name}, password: ${name}-pw, permissions: { publish: { allow: ["lantern.ingest.${name}.>"] }, subscribe: { allow: ["_INBOX.>"] } } }`
    const server = await NatsServer.start({
      storeDir: join(dir, "js"),
      extraConfig: [
        "authorization {",
        "  users = [",
        "    { user: lantern, password: lantern-pw }",
        `    ${user("alice")}`,
        `    ${user("bob")}`,
        "  ]",
        "}",
        "no_auth_user: lantern"
      ].join("\n")
    })
    const conns: Array<NatsConnection> = []
    try {
      const admin = await connect({ servers: server.url })
      conns.push(admin)
      await (await jetstreamManager(admin)).streams.add({ name: "LANTERN_INGEST", subjects: ["lantern.ingest.>"] })
      const alice = await connect({ servers: server.url, user: "alice", pass: "alice-pw" })
      const bob = await connect({ servers: server.url, user: "bob", pass: "bob-pw" })
      conns.push(alice, bob)
      const body = JSON.stringify({ eventId: "e1", type: "t", data: {} })
      expect((await jetstream(alice).publish("lantern.ingest.alice.orders", body)).seq).toBe(1)
      await expect(jetstream(bob).publish("lantern.ingest.alice.orders", body, { timeout: 2000 })).rejects.toThrow()
      await expect(jetstream(alice).publish("lantern.ingest.bob.orders", body, { timeout: 2000 })).rejects.toThrow()
      expect((await jetstream(bob).publish("lantern.ingest.bob.orders", body)).seq).toBe(2)
      const info = await (await jetstreamManager(admin)).streams.info("LANTERN_INGEST", { subjects_filter: ">" })
      expect(info.state.subjects).toEqual({ "lantern.ingest.alice.orders": 1, "lantern.ingest.bob.orders": 1 })
    } finally {
      for (const c of conns) await c.close()
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
