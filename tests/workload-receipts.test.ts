// Workload receipts (ADR 0062): a workload that ended has a signed receipt in the run receipts' format
// (`subject: "workload"`), issued once when it ends, that the offline verifier (CLI and pure module) accepts against
// its journal export and rejects, naming `journal-digest`, when one event is altered; 409 while it runs; another
// tenant's is a 404.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Receipt from "../schema/Receipt.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, ROOT, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let callB: ReturnType<typeof api>
let dir: string

const ENTRY = join(ROOT, "scripts/lantern.mjs")

/** The CLI as shipped, stdout and stderr apart. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((ok, ko) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LANTERN_")))
    const child = spawn(process.execPath, [ENTRY, ...args], {
      cwd: ROOT,
      env: { ...base, LANTERN_HOME: dir, LANTERN_URL: "http://127.0.0.1:9", NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c))
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c))
    child.on("error", ko)
    child.on("close", (code) => ok({ code, stdout, stderr }))
  })

const spec = (name: string, script: string) => ({
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name },
  spec: {
    command: [process.execPath, "-e", script],
    isolation: "trusted",
    limits: { vcpu: 1, memoryMb: 256, timeoutSeconds: 120 },
    network: "none"
  }
})

const ended = (id: string) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/workloads/${id}`)
      return r.json?.state !== undefined && !["scheduled", "placed", "running"].includes(r.json.state) ? r.json : null
    },
    60_000,
    `workload ${id} to end`
  )

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lantern-wl-receipts-"))
  nats = await startServer("lantern-wl-receipts")
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: { LANTERN_SPAWNER_BACKENDS: "process", LANTERN_WORKLOAD_DIR: join(dir, "wl") }
  })
  call = api(stack)
  const tenant = await call("POST", "/v1/tenants", { name: "other" })
  expect(tenant.status, tenant.text).toBe(201)
  callB = api({ url: stack.url, token: tenant.json.key.key })
}, 240_000)

afterAll(async () => {
  await stopStack(stack, nats)
  rmSync(dir, { recursive: true, force: true })
})

describe("a workload's receipt", () => {
  it(
    "is issued once when it ends and verifies offline against its journal; one altered event fails journal-digest",
    async () => {
      const r = await call("POST", "/v1/workloads", spec("hello", "console.log('hello receipts')"))
      expect(r.status, r.text).toBe(201)
      const id = r.json.id as string
      expect((await ended(id)).state).toBe("exited")

      // issued when it ended, by the host that journaled the end: the audit log has it before anyone asks
      const issued = await eventually(
        async () => {
          const a = await call("GET", "/v1/audit?action=receipt.issued")
          const mine = a.json.items.filter((e: { target: string }) => e.target === id)
          return mine.length > 0 ? mine : null
        },
        30_000,
        "the receipt to be issued"
      )
      expect(issued).toHaveLength(1)

      const got = await call("GET", `/v1/workloads/${id}/receipt`)
      expect(got.status, got.text).toBe(200)
      const receipt = got.json as Receipt.Receipt
      expect(receipt).toMatchObject({
        version: 1,
        subject: "workload",
        runId: id,
        tenantId: "dev",
        agent: "hello",
        status: "succeeded",
        partial: false,
        costUsd: 0,
        tokensIn: 0,
        tokensOut: 0
      })
      expect(receipt.agentVersionDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
      // kept: asked again, the very same receipt
      expect((await call("GET", `/v1/workloads/${id}/receipt`)).json).toEqual(receipt)

      const j = await fetch(`${stack.url}/v1/workloads/${id}/journal`, {
        headers: { authorization: `Bearer ${stack.token}` }
      })
      expect(j.status).toBe(200)
      expect(j.headers.get("content-type")).toMatch(/^application\/x-ndjson/)
      const journal = await j.text()
      const keys = await (await fetch(`${stack.url}/.well-known/lantern-receipts`)).json() as { keys: Array<unknown> }

      // the pure verifier (the SDK's receipts.verify) and the CLI, offline
      const verdict = Receipt.verify(receipt, Receipt.parseJsonl(journal), Receipt.parseKeys(JSON.stringify(keys)))
      expect(verdict.valid, Receipt.failureOf(verdict) ?? "").toBe(true)
      const paths = { receipt: join(dir, "r.json"), journal: join(dir, "j.jsonl"), keys: join(dir, "k.json") }
      writeFileSync(paths.receipt, JSON.stringify(receipt))
      writeFileSync(paths.journal, journal)
      writeFileSync(paths.keys, JSON.stringify(keys))
      const ok = await cli(["receipts", "verify", paths.receipt, paths.journal, "--key", paths.keys])
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.stdout).toContain(`receipt of ${id} is valid`)

      // the CLI fetches both from the server
      const env = { LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token }
      const fetched = await cli(["workloads", "receipt", id], env)
      expect(fetched.code, fetched.stderr).toBe(0)
      expect(JSON.parse(fetched.stdout)).toEqual(receipt)
      const exported = await cli(["workloads", "journal", id], env)
      expect(exported.stdout).toBe(journal)

      // one event altered (its output, not the spec that names the text too): the digest check fails by name,
      // offline and on the server
      const changed = journal.split("\n").map((line) =>
        line.includes(`"type":"WorkloadOutput"`) ? line.replace("hello receipts", "hello receiptz") : line
      ).join("\n")
      expect(changed).not.toBe(journal)
      writeFileSync(paths.journal, changed)
      const bad = await cli(["receipts", "verify", paths.receipt, paths.journal, "--key", paths.keys])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain("journal-digest")
      const server = await call("POST", "/v1/receipts/verify", { receipt, journal: changed })
      expect(server.json.valid).toBe(false)
      expect(server.json.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { name: string }) => c.name)).toEqual([
        "journal-digest"
      ])
      const stored = await call("POST", "/v1/receipts/verify", { receipt, journal })
      expect(stored.json.valid, JSON.stringify(stored.json)).toBe(true)
      expect(stored.json.checks.at(-1)).toMatchObject({ name: "stored-journal", ok: true })
      // a workload receipt passed off as a run's does not verify
      const asRun = Receipt.verify(
        { ...receipt, subject: undefined } as unknown as Receipt.Receipt,
        Receipt.parseJsonl(journal),
        Receipt.parseKeys(JSON.stringify(keys))
      )
      expect(asRun.valid).toBe(false)

      // another tenant: no such workload, receipt or journal
      expect((await callB("GET", `/v1/workloads/${id}/receipt`)).status).toBe(404)
      expect((await callB("GET", `/v1/workloads/${id}/journal`)).status).toBe(404)
    },
    120_000
  )

  it("is a 409 while the workload runs; a terminated one's says canceled, a failing one's failed", async () => {
    const long = await call("POST", "/v1/workloads", spec("sleeper", "setTimeout(() => {}, 100000)"))
    expect(long.status, long.text).toBe(201)
    const id = long.json.id as string
    const early = await call("GET", `/v1/workloads/${id}/receipt`)
    expect(early.status, early.text).toBe(409)
    expect(early.json.error.code).toBe("workload_not_ended")
    expect((await call("POST", `/v1/workloads/${id}/terminate`)).status).toBe(200)
    const receipt = await call("GET", `/v1/workloads/${id}/receipt`)
    expect(receipt.status, receipt.text).toBe(200)
    expect(receipt.json.status).toBe("canceled")

    const failing = await call("POST", "/v1/workloads", spec("failing", "process.exit(3)"))
    const failed = failing.json.id as string
    await ended(failed)
    const r = await call("GET", `/v1/workloads/${failed}/receipt`)
    expect(r.json.status).toBe("failed")
    const j = await call("GET", `/v1/workloads/${failed}/journal`)
    const keys = await (await fetch(`${stack.url}/.well-known/lantern-receipts`)).json()
    const verdict = Receipt.verify(r.json, Receipt.parseJsonl(j.text), Receipt.parseKeys(JSON.stringify(keys)))
    expect(verdict.valid, Receipt.failureOf(verdict) ?? "").toBe(true)
    expect((await call("GET", `/v1/workloads/wl_${"0".repeat(26)}/receipt`)).status).toBe(404)
  }, 120_000)
})
