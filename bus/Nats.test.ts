// NATS_URL parsing: one server or a comma-separated list of a cluster's nodes, a connection that finds the node
// that is up when the first one listed is down, and requests that survive a reconnect.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect } from "effect"
import { startServer, type TestServer } from "../tests/support/Bus.ts"
import * as NatsServer from "./NatsServer.ts"
import { freePort } from "./NatsServer.ts"
import { type Connection, Nats, serversOf, unavailable } from "./Nats.ts"

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

describe("requests across a reconnect (survivingReconnects)", () => {
  /** A server on a store of its own, the Nats layer connected to it, and a way to kill and start it again. */
  const withServer = <A>(
    f: (c: Connection, restart: { kill: () => Promise<void>; start: () => Promise<void> }) => Promise<A>
  ) =>
    Effect.runPromise(
      Effect.gen(function*() {
        const dir = mkdtempSync(join(tmpdir(), "lantern-nats-reconnect-"))
        let handle = yield* Effect.promise(() => NatsServer.start({ storeDir: join(dir, "js") }))
        const port = handle.port
        yield* Effect.addFinalizer(() =>
          Effect.promise(async () => {
            await handle.kill()
            rmSync(dir, { recursive: true, force: true })
          })
        )
        const restart = {
          kill: () => handle.kill(),
          start: async () => {
            handle = await NatsServer.start({ storeDir: join(dir, "js"), port })
          }
        }
        return yield* Effect.gen(function*() {
          const c = yield* Nats
          return yield* Effect.promise(() => f(c, restart))
        }).pipe(Effect.provide(Nats.layerUrl(handle.url, "lantern-reconnect-test")))
      }).pipe(Effect.scoped)
    )

  /** Resolves at the connection's next status of `type`. */
  const next = async (c: Connection, type: string) => {
    for await (const s of c.nc.status()) if (s.type === type) return
  }

  it(
    "sends a request made while the connection is down once it is back, instead of losing it",
    () =>
      withServer(async (c, server) => {
        await c.jsm.streams.add({ name: "RECONNECT", subjects: ["reconnect.>"] })
        await c.js.publish("reconnect.a", "x")
        const down = next(c, "disconnect")
        await server.kill()
        await down
        // written while nothing is connected: nats.js drops its buffer at the next dial, so without the guard this
        // request would never reach the server and would end in its timeout
        const asked = c.jsm.streams.getMessage("RECONNECT", { last_by_subj: "reconnect.a" })
        await server.start()
        const m = await asked
        expect(m?.seq).toBe(1)
      }),
    60_000
  )

  it(
    "fails a request in flight when the connection drops, at once rather than at its timeout",
    () =>
      withServer(async (c, server) => {
        // a responder that never answers: the request stays in flight
        const sub = c.nc.subscribe("reconnect.silent", { callback: () => undefined })
        await c.nc.flush()
        const asked = c.nc.request("reconnect.silent", "", { timeout: 30_000 }).then(
          () => "answered",
          (e: Error) => e.message
        )
        await server.kill()
        expect(await asked).toBe("connection disconnected")
        sub.unsubscribe()
      }),
    60_000
  )
})

describe("writes once per turn of the event loop (batchedWrites)", () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer("lantern-batched-writes")
  }, 30_000)
  afterAll(async () => {
    await server?.cleanup()
  })

  /** The connection's socket writes while `f` runs, and what a subscriber to `batched.>` received. */
  const writesDuring = (f: (c: Connection) => Promise<void>, expected: number) =>
    Effect.gen(function*() {
      const c = yield* Nats
      const received: Array<string> = []
      let arrived = () => {}
      const all = new Promise<void>((resolve) => (arrived = resolve))
      const sub = c.nc.subscribe("batched.>", {
        callback: (_e, m) => {
          received.push(m.string())
          if (received.length === expected) arrived()
        }
      })
      yield* Effect.promise(() => c.nc.flush())
      const transport = (c.nc as unknown as { protocol: { transport: { send: (d: Uint8Array) => void } } }).protocol
        .transport
      let writes = 0
      const send = transport.send.bind(transport)
      transport.send = (d) => {
        writes++
        send(d)
      }
      yield* Effect.promise(() => f(c))
      yield* Effect.promise(() => all)
      transport.send = send
      sub.unsubscribe()
      return { writes, received }
    }).pipe(Effect.provide(Nats.layerUrl(server.handle.url, "lantern-batched-writes-test")), Effect.runPromise)

  it("sends what callbacks of one turn publish in one write, in order", async () => {
    // ten callbacks of one turn, as effect's scheduler runs fibers: nats.js alone wrote after each
    const { writes, received } = await writesDuring(async (c) => {
      await new Promise<void>((resolve) => {
        for (let i = 0; i < 10; i++) {
          setImmediate(() => {
            c.nc.publish(`batched.${i}`, `m${i}`)
            if (i === 9) resolve()
          })
        }
      })
    }, 10)
    expect(received).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`))
    expect(writes).toBe(1)
  })

  it("writes at once what is past nats.js's buffer limit, and the rest after", async () => {
    const big = "x".repeat(40 * 1024)
    const { writes, received } = await writesDuring(async (c) => {
      for (let i = 0; i < 8; i++) c.nc.publish(`batched.${i}`, big)
    }, 8)
    expect(received.length).toBe(8)
    expect(received.every((m) => m === big)).toBe(true)
    // 320 KiB in one turn: more than one write (the limit is nats.js's pendingLimit, 32 KiB by default)
    expect(writes).toBeGreaterThan(1)
  })
})
