// NatsServer against the real binary: start answers JetStream, stop and kill end the process and free the
// port, servers run side by side, NATS_SERVER_BIN is honoured, and the store survives a restart.
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { connect } from "@nats-io/transport-node"
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream"
import { Effect, Layer } from "effect"
import { accepts, eventually } from "../tests/support/Stack.ts"
import * as NatsServer from "./NatsServer.ts"

const dirs: Array<string> = []
const handles: Array<NatsServer.Handle> = []

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "lantern-natsserver-"))
  dirs.push(dir)
  return dir
}

/** Starts a server that is always stopped after the test, whatever the test did with it. */
const started = async (options: NatsServer.Options) => {
  const h = await NatsServer.start(options)
  handles.push(h)
  return h
}

afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.kill()))
})

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** JetStream's account info through a fresh connection. */
const jetStreamAnswers = async (url: string) => {
  const nc = await connect({ servers: url, reconnect: false, timeout: 2000 })
  try {
    return await (await jetstreamManager(nc)).getAccountInfo()
  } finally {
    await nc.close()
  }
}

describe("NatsServer.start", () => {
  it("gives a server that JetStream answers on, with its store directory created", async () => {
    const storeDir = join(tempDir(), "deep", "store")
    expect(existsSync(storeDir)).toBe(false)
    const h = await started({ storeDir })
    expect(h.url).toBe(`nats://127.0.0.1:${h.port}`)
    expect(h.storeDir).toBe(storeDir)
    expect(existsSync(storeDir)).toBe(true)
    expect(existsSync(join(storeDir, "nats-server.conf"))).toBe(true)
    expect(h.version).toMatch(/^\d+\.\d+\.\d+$/)
    const [major = 0, minor = 0] = h.version.split(".").map(Number)
    expect(h.syncAlways).toBe(major > 2 || (major === 2 && minor >= 10))
    const info = await jetStreamAnswers(h.url)
    expect(info.limits).toBeDefined()
    expect(h.process.exitCode).toBeNull()
  })

  it("starts two servers side by side on different free ports", async () => {
    const [a, b] = await Promise.all([started({ storeDir: tempDir() }), started({ storeDir: tempDir() })])
    expect(a.port).not.toBe(b.port)
    await Promise.all([jetStreamAnswers(a.url), jetStreamAnswers(b.url)])
    // separate servers: a stream on one is not on the other
    const nc = await connect({ servers: a.url })
    try {
      await (await jetstreamManager(nc)).streams.add({ name: "ONLY_A", subjects: ["only.a"] })
    } finally {
      await nc.close()
    }
    const other = await connect({ servers: b.url })
    try {
      await expect((await jetstreamManager(other)).streams.info("ONLY_A")).rejects.toThrow(/stream not found/i)
    } finally {
      await other.close()
    }
  })

  // a requested port that another server holds is refused, never mistaken for our child being ready
  it("rejects when the requested port is taken by another server", async () => {
    const first = await started({ storeDir: tempDir() })
    const attempt = NatsServer.start({ storeDir: tempDir(), port: first.port })
    const outcome = await attempt.then(
      (h) => {
        handles.push(h)
        return { started: h }
      },
      (e: unknown) => ({ error: e })
    )
    expect("error" in outcome ? String(outcome.error) : "resolved").toMatch(/nats-server|address already in use/i)
  })

  it("honours LANTERN_NATS_SERVER: a path that does not exist is a clear error naming it and how to fix it", async () => {
    const missing = join(tempDir(), "no-such-nats-server")
    const before = process.env["LANTERN_NATS_SERVER"]
    process.env["LANTERN_NATS_SERVER"] = missing
    try {
      expect(() => NatsServer.findBinary()).toThrow(missing)
      expect(() => NatsServer.findBinary()).toThrow(/ensure-deps.*>= 2\.12/)
      const storeDir = join(tempDir(), "store")
      await expect(NatsServer.start({ storeDir })).rejects.toThrow(missing)
    } finally {
      if (before === undefined) delete process.env["LANTERN_NATS_SERVER"]
      else process.env["LANTERN_NATS_SERVER"] = before
    }
  })

  it("refuses a nats-server older than 2.12, saying how to get a newer one", async () => {
    const old = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p))
    if (old === undefined || NatsServer.atLeast(NatsServer.serverVersion(old), 2, 12)) return
    const before = process.env["LANTERN_NATS_SERVER"]
    process.env["LANTERN_NATS_SERVER"] = old
    try {
      await expect(NatsServer.start({ storeDir: join(tempDir(), "store") })).rejects.toThrow(
        /needs >= 2\.12\.0.*ensure-deps/
      )
    } finally {
      if (before === undefined) delete process.env["LANTERN_NATS_SERVER"]
      else process.env["LANTERN_NATS_SERVER"] = before
    }
  })

  it("runs the pinned version, durable by default", async () => {
    const h = await started({ storeDir: tempDir() })
    expect(NatsServer.atLeast(h.version, 2, 12)).toBe(true)
    expect(h.syncAlways).toBe(true)
  })
})

describe("NatsServer stop and kill", () => {
  it("stop ends the process and frees the port", async () => {
    const h = await started({ storeDir: tempDir() })
    expect(await accepts(h.port)).toBe(true)
    await h.stop()
    expect(h.process.exitCode !== null || h.process.signalCode !== null).toBe(true)
    await eventually(async () => !(await accepts(h.port)), 10_000, "the port to refuse connections")
    await h.stop() // a second stop is a no-op
  })

  it("kill ends the process with SIGKILL", async () => {
    const h = await started({ storeDir: tempDir() })
    await h.kill()
    expect(h.process.signalCode).toBe("SIGKILL")
    await eventually(async () => !(await accepts(h.port)), 10_000, "the port to refuse connections")
  })

  it("the layer stops its server when its scope closes", async () => {
    const storeDir = tempDir()
    const h = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const ctx = yield* Layer.build(NatsServer.NatsServer.layer({ storeDir }))
          const server = yield* Effect.service(NatsServer.NatsServer).pipe(Effect.provide(ctx))
          yield* Effect.promise(() => jetStreamAnswers(server.url))
          return server
        })
      )
    )
    handles.push(h)
    expect(h.process.exitCode !== null || h.process.signalCode !== null).toBe(true)
    await eventually(async () => !(await accepts(h.port)), 10_000, "the port to refuse connections")
  })
})

describe("NatsServer store", () => {
  it("keeps stream data across a stop and a start on the same store directory", async () => {
    const storeDir = tempDir()
    const first = await started({ storeDir })
    const nc = await connect({ servers: first.url })
    try {
      await (await jetstreamManager(nc)).streams.add({
        name: "DURABLE",
        subjects: ["durable.>"],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File
      })
      const ack = await jetstream(nc).publish("durable.one", "kept across restarts")
      expect(ack.seq).toBe(1)
    } finally {
      await nc.close()
    }
    await first.stop()

    const second = await started({ storeDir })
    const again = await connect({ servers: second.url })
    try {
      const jsm = await jetstreamManager(again)
      expect((await jsm.streams.info("DURABLE")).state.messages).toBe(1)
      const m = await jsm.streams.getMessage("DURABLE", { seq: 1 })
      expect(m?.subject).toBe("durable.one")
      expect(m?.string()).toBe("kept across restarts")
    } finally {
      await again.close()
    }
  })
})
