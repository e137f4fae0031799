// The real `lantern dev`: embedded nats-server and PGlite under a private LANTERN_HOME, a generated owner
// token kept in LANTERN_HOME/credentials, Ctrl-C stopping everything (no orphaned nats-server), and a
// second start on the same home keeping the token and the data.
import type { ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { connect } from "@nats-io/transport-node"
import { jetstreamManager } from "@nats-io/jetstream"
import { freePort } from "../bus/NatsServer.ts"
import { AGENTS } from "../bus/Topology.ts"
import { processesWith, spawnDev } from "./support/Dev.ts"
import { accepts, api, eventually } from "./support/Stack.ts"

interface Dev {
  readonly url: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const children: Array<ChildProcess> = []
const home = mkdtempSync(join(tmpdir(), "lantern-dev-home-"))
const natsConfig = join(home, "nats", "nats-server.conf")

/** Pids of live nats-server processes started with this test's LANTERN_HOME (read from /proc). */
const embeddedServers = (): Array<number> => processesWith(natsConfig)

/** `lantern dev` as users run it: no NATS_URL, DATABASE_URL or LANTERN_API_TOKEN, only LANTERN_HOME. */
const startDev = async (): Promise<Dev> => {
  const port = await freePort()
  const { child, output: outputOf, exited } = spawnDev(home, port)
  children.push(child)
  const url = `http://127.0.0.1:${port}`
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`lantern dev exited with ${child.exitCode}`)
        return (await fetch(`${url}/readyz`)).status === 200
      },
      240_000,
      "lantern dev to become ready"
    ) // a first start creates PGlite's database: slow on a busy machine
    await eventually(async () => outputOf().includes("Ctrl-C stops everything."), 10_000, "the banner")
  } catch (e) {
    child.kill("SIGKILL")
    throw new Error(`${String(e)}\n--- lantern output ---\n${outputOf()}`)
  }
  return { url, child, output: outputOf, exited }
}

const bannerLine = (dev: Dev, label: string) => {
  const line = dev.output().split("\n").find((l) => l.trimStart().startsWith(`${label}:`))
  if (line === undefined) throw new Error(`no '${label}:' line in the banner:\n${dev.output()}`)
  return line
}

const embeddedNatsUrl = (dev: Dev) => {
  const m = /embedded nats-server .* at (nats:\/\/127\.0\.0\.1:(\d+))/.exec(bannerLine(dev, "bus"))
  if (m === null) throw new Error(`no embedded nats URL in the banner:\n${dev.output()}`)
  return { url: m[1]!, port: Number(m[2]) }
}

const credentials = () => {
  const file = join(home, "credentials")
  const text = readFileSync(file, "utf8")
  return { mode: statSync(file).mode & 0o777, text, token: /^LANTERN_API_TOKEN=(.*)$/m.exec(text)?.[1] }
}

/** Ctrl-C, then the process and its embedded nats-server are gone. */
const interrupt = async (dev: Dev, natsPort: number) => {
  dev.child.kill("SIGINT")
  const code = await eventually(
    async () => (dev.child.exitCode !== null || dev.child.signalCode !== null ? { code: dev.child.exitCode } : null),
    30_000,
    "lantern dev to exit after SIGINT"
  )
  expect(code.code, dev.output()).toBe(130)
  await eventually(async () => !(await accepts(natsPort)), 15_000, "the embedded nats-server port to close")
  await eventually(async () => embeddedServers().length === 0, 15_000, "no nats-server left from this home")
}

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  for (const pid of embeddedServers()) process.kill(pid, "SIGKILL") // only servers this test's home started
  rmSync(home, { recursive: true, force: true })
})

const agent = { name: "persisted", spec: { systemPrompt: "Say hello.", model: "auto", maxTurns: 2 } }

describe("lantern dev", () => {
  let firstToken = ""

  it(
    "boots embedded, writes a 0600 credentials file whose generated token works, and stops cleanly on Ctrl-C",
    async () => {
      const dev = await startDev()
      const nats = embeddedNatsUrl(dev)
      expect(embeddedServers()).toHaveLength(1)
      expect(bannerLine(dev, "database")).toContain("embedded PGlite")
      // bin/lantern execs Node itself with the V8 flag of ADR 0090: the process the pid names is Lantern's own
      const argv = readFileSync(`/proc/${dev.child.pid}/cmdline`, "utf8").split("\0")
      expect(argv.slice(0, 3).map((a) => a.split("/").at(-1))).toEqual(["node", "--liftoff-only", "lantern.mjs"])

      const creds = credentials()
      expect(creds.mode).toBe(0o600)
      expect(creds.text).toContain("LANTERN_API_TOKEN=")
      const printed = /token:\s+(lt_\S+)/.exec(bannerLine(dev, "token"))?.[1]
      expect(printed, dev.output()).toBeDefined()
      expect(creds.token).toBe(printed)
      firstToken = printed!

      const call = api({ url: dev.url, token: firstToken })
      expect((await call("GET", "/v1/agents")).status).toBe(200)
      expect((await api({ url: dev.url, token: "lt_wrong" })("GET", "/v1/agents")).status).toBe(401)
      expect((await call("POST", "/v1/agents", agent)).status).toBe(201)
      await eventually(
        async () => {
          const r = await call("GET", "/v1/agents")
          return r.json?.items?.some((a: { name: string }) => a.name === "persisted")
        },
        20_000,
        "the agent to be listed"
      )

      await interrupt(dev, nats.port)
      expect(existsSync(join(home, "nats"))).toBe(true)
      expect(existsSync(join(home, "pglite"))).toBe(true)
    },
    300_000
  )

  it("starts again on the same home with the same token and the agent from the first start", async () => {
    expect(firstToken).not.toBe("")
    const dev = await startDev()
    const nats = embeddedNatsUrl(dev)
    try {
      const creds = credentials()
      expect(creds.token).toBe(firstToken)
      expect(creds.mode).toBe(0o600)
      // not regenerated, so not printed again
      expect(bannerLine(dev, "token")).toContain(`(in ${join(home, "credentials")})`)
      expect(dev.output()).not.toContain(firstToken)

      const call = api({ url: dev.url, token: firstToken })
      // the projection (PGlite) kept it: listed as soon as the stack is ready
      const listed = await call("GET", "/v1/agents")
      expect(listed.status).toBe(200)
      expect(listed.json.items.map((a: { name: string }) => a.name)).toContain("persisted")
      const one = await call("GET", "/v1/agents/persisted")
      expect(one.status).toBe(200)
      expect(one.json.spec.systemPrompt).toBe("Say hello.")

      // the journal (embedded JetStream store) kept it too
      const nc = await connect({ servers: nats.url })
      try {
        const info = await (await jetstreamManager(nc)).streams.info(AGENTS, { subjects_filter: "lantern.agent.dev.>" })
        expect(Object.keys(info.state.subjects ?? {})).toContain("lantern.agent.dev.persisted")
      } finally {
        await nc.close()
      }
    } finally {
      await interrupt(dev, nats.port)
    }
  }, 300_000)
})
