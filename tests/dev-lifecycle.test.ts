// How `lantern dev` starts and dies as a process: a SIGKILLed dev takes its embedded nats-server with it, a
// server left behind on the store is stopped by the next start (one server per store), and a port already in
// use fails the start before anything is printed or stored.
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Dev from "./support/Dev.ts"
import type { DevProcess } from "./support/Dev.ts"
import { eventually } from "./support/Stack.ts"

const homes: Array<string> = []
const children: Array<ChildProcess> = []

const newHome = () => {
  const home = mkdtempSync(join(tmpdir(), "lantern-lifecycle-"))
  homes.push(home)
  return home
}

type Dev = DevProcess

/** `lantern dev` as `npm run dev` runs it, on `home` and `port`; killed when the file ends. */
const spawnDev = (home: string, port: number): Dev => {
  const dev = Dev.spawnDev(home, port)
  children.push(dev.child)
  return dev
}
const { processesWith, serversOn } = Dev

const healthy = async (dev: Dev, port: number) => {
  try {
    await eventually(
      async () => {
        if (dev.child.exitCode !== null) throw new Error(`lantern dev exited with ${dev.child.exitCode}`)
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200
      },
      240_000,
      "lantern dev to answer /healthz"
    )
  } catch (e) {
    dev.child.kill("SIGKILL")
    throw new Error(`${String(e)}\n--- lantern output ---\n${dev.output()}`)
  }
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  for (const home of homes) {
    for (const pid of serversOn(home)) process.kill(pid, "SIGKILL") // only servers this file's homes started
    rmSync(home, { recursive: true, force: true })
  }
})

describe("lantern dev as a process", () => {
  it("a SIGKILLed lantern dev leaves no nats-server running on its store", async () => {
    const home = newHome()
    const port = await NatsServer.freePort()
    const dev = spawnDev(home, port)
    await healthy(dev, port)
    const [server, ...more] = serversOn(home)
    expect(more).toEqual([])
    expect(server).toBeDefined()

    dev.child.kill("SIGKILL") // no finalizer runs
    await dev.exited
    await eventually(
      async () => serversOn(home).length === 0,
      20_000,
      `nats-server ${server} to stop after its parent was killed`
    )
  }, 300_000)

  it(
    "a port in use fails the start before the banner: no token printed or stored, no nats-server started",
    async () => {
      const home = newHome()
      const taken: Server = createServer()
      await new Promise<void>((ok) => taken.listen(0, "127.0.0.1", ok))
      const address = taken.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      try {
        const dev = spawnDev(home, port)
        const code = await dev.exited
        const output = dev.output()
        expect(code, output).toBe(2)
        expect(output).toContain(
          `error: --port: port ${port} on 127.0.0.1 is in use: set LANTERN_PORT or --port to a free port`
        )
        expect(output).not.toContain("Lantern is running")
        expect(output).not.toMatch(/lt_[A-Za-z0-9_-]{8,}/)
        expect(existsSync(join(home, "credentials"))).toBe(false)
        expect(serversOn(home)).toEqual([])
      } finally {
        await new Promise<void>((ok) => taken.close(() => ok()))
      }
    },
    120_000
  )
})

describe("one nats-server per store", () => {
  /** A nats-server on `storeDir` as if a dead process had started it and its watchdog had died too. */
  const orphan = (storeDir: string, owner: number) => {
    mkdirSync(storeDir, { recursive: true })
    const config = join(storeDir, "nats-server.conf")
    writeFileSync(
      config,
      [`host: "127.0.0.1"`, `port: -1`, `jetstream {`, `  store_dir: "${storeDir}"`, `}`].join("\n")
    )
    const child = spawn(NatsServer.findBinary(), ["-c", config], { stdio: "ignore" })
    children.push(child)
    writeFileSync(join(storeDir, NatsServer.LOCK_FILE), `${child.pid} ${owner}\n`)
    return { child, config }
  }

  it("the next start stops a server left on the store by a process that died, and runs alone on it", async () => {
    const storeDir = join(newHome(), "store")
    // the recorded owner is not the left server's parent: its parent died and it was adopted
    const left = orphan(storeDir, 999_999_999)
    await eventually(async () => processesWith(left.config).length === 1, 10_000, "the left server to run")
    const h = await NatsServer.start({ storeDir })
    try {
      expect(left.child.exitCode !== null || left.child.signalCode !== null).toBe(true)
      expect(processesWith(left.config)).toEqual([h.process.pid])
      expect(readFileSync(join(storeDir, NatsServer.LOCK_FILE), "utf8").trim()).toBe(`${h.process.pid} ${process.pid}`)
    } finally {
      await h.stop()
    }
  }, 60_000)

  it(
    "a start on a store whose server's owner is alive fails, naming the store, and leaves that server alone",
    async () => {
      const storeDir = join(newHome(), "store")
      // this process started it and is alive: the store is in use
      const busy = orphan(storeDir, process.pid)
      await eventually(async () => processesWith(busy.config).length === 1, 10_000, "the busy server to run")
      await expect(NatsServer.start({ storeDir })).rejects.toThrow(
        `the JetStream store ${storeDir} is in use by nats-server (pid ${busy.child.pid})`
      )
      expect(processesWith(busy.config)).toEqual([busy.child.pid])
      busy.child.kill("SIGKILL")
    },
    60_000
  )
})
