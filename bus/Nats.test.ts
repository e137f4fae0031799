// NATS_URL parsing: one server or a comma-separated list of a cluster's nodes, and a connection that finds
// the node that is up when the first one listed is down.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect } from "effect"
import { startServer, type TestServer } from "../tests/support/Bus.ts"
import { freePort } from "./NatsServer.ts"
import { Nats, serversOf, unavailable } from "./Nats.ts"

describe("serversOf", () => {
  it("reads one URL or a comma-separated list, ignoring blanks and spaces", () => {
    expect(serversOf("nats://127.0.0.1:4222")).toEqual(["nats://127.0.0.1:4222"])
    expect(serversOf("nats://a:4231, nats://b:4232,,nats://c:4233 ")).toEqual([
      "nats://a:4231",
      "nats://b:4232",
      "nats://c:4233"
    ])
  })
})

describe("unavailable", () => {
  it("keeps the subject in the error's fields for logs but says what failed without it in the message clients see", () => {
    const e = unavailable("append to lantern.run.acme.run_01jd0000000000000000000001")(
      new Error("Permissions Violation for Publish to \"lantern.work.run.acme.run_01jd0000000000000000000001\"")
    )
    expect(e.operation).toContain("lantern.run.acme.run_01jd0000000000000000000001")
    expect(e.message).toBe(
      "bus unavailable during append to a run journal: Permissions Violation for Publish to \"the work queue\""
    )
    expect(unavailable("follow lantern.agent.acme.bot")(new Error("timeout")).message).toBe(
      "bus unavailable during follow an agent journal: timeout"
    )
    expect(unavailable("cancel on lantern.ctl.cancel.acme.x")("gone").message).not.toContain("lantern.")
  })
})

describe("Nats.layerUrl with a list of servers", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer("lantern-nats-list")
  })
  afterAll(async () => {
    await server?.cleanup()
  })

  it("connects through whichever listed server answers", async () => {
    const dead = `nats://127.0.0.1:${await freePort()}`
    const url = `${dead},${server.handle.url}`
    const connected = await Effect.runPromise(
      Effect.gen(function*() {
        const c = yield* Nats
        return { url: c.url, port: c.nc.info?.port }
      }).pipe(Effect.provide(Nats.layerUrl(url, "lantern-test")))
    )
    expect(connected).toEqual({ url, port: server.handle.port })
  })
})
