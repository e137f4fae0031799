// Receipts end to end against the real `lantern serve`: a finished run's receipt is issued and kept, its
// journal exports, and it verifies offline (the CLI as a child process, with no server) and through the API;
// a running run gets a partial receipt; rotation keeps old receipts verifiable; the keys are public.
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, statSync, writeFileSync } from "node:fs"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { jetstream } from "@nats-io/jetstream"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { TOOL_TURN_JOURNAL } from "./support/Scripted.ts"
import { api, eventually, ROOT, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let dir: string

// the CLI as shipped: the prebuilt bundle (built once per test run by tests/support/globalSetup.ts)
const ENTRY = join(ROOT, "scripts/lantern.mjs")

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The CLI as a child process, pointed at a server that does not exist: verification must not need one. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Result> =>
  new Promise((ok, ko) => {
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

const tool = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  description: name,
  parameters: { type: "object", properties: {} },
  ...extra
})

const run = async (agentName: string, input: unknown) => {
  const r = await call("POST", "/v1/runs", { agentName, input })
  expect(r.status, r.text).toBe(201)
  return r.json.id as string
}

const finished = (id: string) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/runs/${id}`)
      return r.json?.status !== "running" ? r.json : null
    },
    30_000,
    `run ${id} to finish`
  )

const journalOf = async (id: string) => {
  const r = await fetch(`${stack.url}/v1/runs/${id}/journal`, { headers: { authorization: `Bearer ${stack.token}` } })
  expect(r.status).toBe(200)
  expect(r.headers.get("content-type")).toMatch(/^application\/x-ndjson/)
  return r.text()
}

const wellKnown = async () => {
  const r = await fetch(`${stack.url}/.well-known/lantern-receipts`)
  return {
    status: r.status,
    cors: r.headers.get("access-control-allow-origin"),
    json: await r.json() as { keys: Array<{ keyId: string; publicKey: string; retiredAt?: string }> }
  }
}

/** Writes a receipt, its journal and the keys to files, as an auditor would receive them. */
const files = (name: string, receipt: unknown, journal: string, keys: unknown) => {
  const paths = {
    receipt: join(dir, `${name}.receipt.json`),
    journal: join(dir, `${name}.jsonl`),
    keys: join(dir, `${name}.keys.json`)
  }
  writeFileSync(paths.receipt, JSON.stringify(receipt, null, 2))
  writeFileSync(paths.journal, journal)
  writeFileSync(paths.keys, JSON.stringify(keys))
  return paths
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lantern-receipts-"))
  nats = await startServer("lantern-receipts")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  for (
    const a of [
      { name: "calc", spec: { systemPrompt: "You compute.", maxTurns: 4, tools: [tool("calculator")] } },
      {
        name: "toolsmith",
        spec: { systemPrompt: "Use the tools.", maxTurns: 4, tools: [tool("calculator"), tool("word_count")] }
      },
      {
        name: "careful",
        spec: {
          systemPrompt: "You are careful.",
          maxTurns: 4,
          tools: [tool("echo", { approval: { expiresInSeconds: 600 } })]
        }
      }
    ]
  ) {
    const r = await call("POST", "/v1/agents", a)
    expect(r.status, r.text).toBe(201)
  }
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("receipts", () => {
  let finishedRun: { id: string; receipt: any; journal: string }

  it("a finished run has a stored receipt that verifies offline (CLI) and through the API", async () => {
    const id = await run("calc", "use the calculator on 2+3*4")
    const done = await finished(id)
    expect(done.status).toBe("succeeded")
    // the driver issued and stored it when the run ended, before anyone asked
    const nc = await connect({ servers: nats.handle.url })
    try {
      const kv = await new Kvm(jetstream(nc)).open("lantern-receipts")
      const kept = await eventually(
        async () => (await kv.get(`dev.${id}`))?.json<{ runId: string }>(),
        10_000,
        "the stored receipt"
      )
      expect(kept.runId).toBe(id)
    } finally {
      await nc.close()
    }
    // no LANTERN_KEK: the dev KEK was made in the home, readable by its owner only
    const kek = join(stack.home, "signing-kek")
    expect(existsSync(kek)).toBe(true)
    expect(statSync(kek).mode & 0o777).toBe(0o600)
    const receipt = (await call("GET", `/v1/runs/${id}/receipt`)).json
    expect(receipt).toMatchObject({
      version: 1,
      runId: id,
      tenantId: "dev",
      agent: "calc",
      status: "succeeded",
      partial: false
    })
    expect(receipt.journalDigest).toMatch(/^[0-9a-f]{64}$/)
    expect(receipt.tokensIn).toBe(done.tokensIn)
    // issued once and kept: asking again gives the same receipt
    expect((await call("GET", `/v1/runs/${id}/receipt`)).json).toEqual(receipt)

    const journal = await journalOf(id)
    const lines = journal.trim().split("\n").map((l) => JSON.parse(l))
    expect(lines).toHaveLength(receipt.eventCount)
    expect(lines[0]).toMatchObject({ n: 1, seq: receipt.firstSeq, envelope: { type: "RunStarted" } })
    finishedRun = { id, receipt, journal }

    const keys = await wellKnown()
    const paths = files("done", receipt, journal, keys.json)
    const offline = await cli(["receipts", "verify", paths.receipt, paths.journal, "--key", paths.keys])
    expect(offline.code, offline.stderr + offline.stdout).toBe(0)
    expect(offline.stdout).toContain(`receipt of ${id} is valid`)
    // a raw public key works too, written --key=KEY: a base64url key may begin with '-' (one in 64), which after a
    // separate --key would read as flags
    const raw = await cli([
      "receipts",
      "verify",
      paths.receipt,
      paths.journal,
      `--key=${keys.json.keys.find((k) => k.keyId === receipt.keyId)!.publicKey}`
    ])
    expect(raw.code, raw.stderr).toBe(0)

    const verified = await call("POST", "/v1/receipts/verify", { receipt })
    expect(verified.status).toBe(200)
    expect(verified.json.valid).toBe(true)
    expect(verified.json.checks.map((c: { name: string }) => c.name)).toContain("journal-digest")
    const withJournal = await call("POST", "/v1/receipts/verify", { receipt, journal })
    expect(withJournal.json).toMatchObject({ valid: true })
    expect(withJournal.json.checks.at(-1)).toMatchObject({ name: "stored-journal", ok: true })
  }, 60_000)

  it(
    "a model turn's answer and its local steps journaled together (one StepsCompleted, ADR 0067, 0075) are counted and verify offline",
    async () => {
      const id = await run("toolsmith", "use the calculator on 2+3*4 and the word_count of this sentence")
      const done = await finished(id)
      // the projection counts each step of the one event
      expect(done).toMatchObject({ status: "succeeded", steps: 4 })
      const events = (await call("GET", `/v1/runs/${id}/events`)).json.items as Array<{ type: string; payload: any }>
      expect(events.map((e) => e.type)).toEqual(TOOL_TURN_JOURNAL)
      // the model step's answer first (started before its call: no request), then the calls it asked for
      const [answer, ...tools] = events[2]!.payload.steps
      expect(answer).toMatchObject({ stepId: "turn-1", attempt: 1, result: { _tag: "model" } })
      expect(answer.request).toBeUndefined()
      expect(answer.tokensOut).toBeGreaterThan(0)
      expect(tools.map((s: any) => [s.stepId, s.request.call.name, s.result.output])).toEqual([
        ["turn-1.tool-0", "calculator", "14"],
        ["turn-1.tool-1", "word_count", expect.any(String)]
      ])
      const receipt = (await call("GET", `/v1/runs/${id}/receipt`)).json
      expect(receipt).toMatchObject({ eventCount: 5, tokensIn: done.tokensIn, tokensOut: done.tokensOut })
      const journal = await journalOf(id)
      const paths = files("together", receipt, journal, (await wellKnown()).json)
      const offline = await cli(["receipts", "verify", paths.receipt, paths.journal, "--key", paths.keys])
      expect(offline.code, offline.stderr + offline.stdout).toBe(0)
      expect((await call("POST", "/v1/receipts/verify", { receipt, journal })).json).toMatchObject({ valid: true })
    },
    60_000
  )

  it("tampering is caught offline and by the API, naming the check", async () => {
    const { receipt, journal } = finishedRun
    const keys = (await wellKnown()).json
    const changed = journal.replace("2+3*4", "2+3*5")
    expect(changed).not.toBe(journal)
    const paths = files("tampered", receipt, changed, keys)
    const offline = await cli(["receipts", "verify", paths.receipt, paths.journal, "--key", paths.keys])
    expect(offline.code).toBe(1)
    expect(offline.stderr).toContain("journal-digest")

    const forged = files("forged", { ...receipt, tokensIn: receipt.tokensIn + 1 }, journal, keys)
    const forgedResult = await cli(["receipts", "verify", forged.receipt, forged.journal, "--key", forged.keys])
    expect(forgedResult.code).toBe(1)
    expect(forgedResult.stderr).toContain("signature")

    const api = await call("POST", "/v1/receipts/verify", { receipt, journal: changed })
    expect(api.json.valid).toBe(false)
    expect(api.json.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { name: string }) => c.name)).toEqual([
      "journal-digest"
    ])
    // the stored journal is always rechecked: a forged receipt does not pass on its signature's say-so
    const apiForged = await call("POST", "/v1/receipts/verify", {
      receipt: { ...receipt, journalDigest: "0".repeat(64) }
    })
    expect(apiForged.json.valid).toBe(false)
  }, 60_000)

  it("bad input exits 2: a missing file, malformed JSON", async () => {
    const missing = await cli([
      "receipts",
      "verify",
      join(dir, "nope.json"),
      join(dir, "nope.jsonl"),
      "--key",
      "00".repeat(32)
    ])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("no such file")
    const bad = join(dir, "bad.json")
    writeFileSync(bad, "{not json")
    const malformed = await cli(["receipts", "verify", bad, bad, "--key", "00".repeat(32)])
    expect(malformed.code).toBe(2)
    expect(malformed.stderr).toContain("not valid JSON")
    const api = await call("POST", "/v1/receipts/verify", { receipt: { runId: 1 } })
    expect(api.status).toBe(400)
  }, 30_000)

  it("a running run gets a partial receipt, signed but not kept", async () => {
    const id = await run("careful", "echo hello")
    await eventually(
      async () => {
        const events = (await call("GET", `/v1/runs/${id}/events`)).json.items as Array<
          { type: string; payload: { stepId?: string } }
        >
        return events.some((e) => e.type === "StepStarted" && e.payload.stepId === "turn-1.tool-0.approval")
      },
      20_000,
      "the approval step"
    )
    const partial = (await call("GET", `/v1/runs/${id}/receipt`)).json
    expect(partial).toMatchObject({ runId: id, status: "running", partial: true })
    const verified = await call("POST", "/v1/receipts/verify", { receipt: partial })
    expect(verified.json.valid, JSON.stringify(verified.json)).toBe(true)
    const paths = files("partial", partial, await journalOf(id), (await wellKnown()).json)
    expect((await cli(["receipts", "verify", paths.receipt, paths.journal, "--key", paths.keys])).code).toBe(0)
    await call("POST", `/v1/runs/${id}/cancel`, { reason: "test over" })
  }, 60_000)

  it("rotation signs new receipts with a new key and old receipts still verify", async () => {
    const before = await wellKnown()
    const old = finishedRun.receipt
    const rotated = await cli(["keys", "rotate"], { LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token })
    expect(rotated.code, rotated.stderr).toBe(0)
    const after = await wellKnown()
    expect(after.json.keys).toHaveLength(before.json.keys.length + 1)
    expect(after.json.keys.find((k) => k.keyId === old.keyId)?.retiredAt).toBeDefined()

    const id = await run("calc", "use the calculator on 1+1")
    await finished(id)
    const fresh = (await call("GET", `/v1/runs/${id}/receipt`)).json
    expect(fresh.keyId).not.toBe(old.keyId)
    expect((await call("POST", "/v1/receipts/verify", { receipt: fresh })).json.valid).toBe(true)
    // the old receipt is unchanged and still verifies, through the API and offline with the new key document
    expect((await call("GET", `/v1/runs/${old.runId}/receipt`)).json).toEqual(old)
    expect((await call("POST", "/v1/receipts/verify", { receipt: old })).json.valid).toBe(true)
    const paths = files("rotated", old, finishedRun.journal, after.json)
    const offline = await cli(["receipts", "verify", paths.receipt, paths.journal, "--key", paths.keys])
    expect(offline.code, offline.stderr).toBe(0)
    expect(offline.stdout).toContain("retired")
  }, 60_000)

  it("the public keys need no token and allow any origin; everything else needs a token", async () => {
    const keys = await wellKnown()
    expect(keys.status).toBe(200)
    expect(keys.cors).toBe("*")
    expect(keys.json.keys[0]).toMatchObject({ algorithm: "Ed25519" })
    expect((await fetch(`${stack.url}/v1/runs/${finishedRun.id}/receipt`)).status).toBe(401)
    expect((await fetch(`${stack.url}/v1/runs/${finishedRun.id}/journal`)).status).toBe(401)
    expect((await fetch(`${stack.url}/v1/admin/signing-keys/rotate`, { method: "POST" })).status).toBe(401)
    expect((await call("GET", "/v1/runs/run_00000000000000000000000000/receipt")).status).toBe(404)
  }, 30_000)

  it(
    "the verifier is public too: no token, any origin, a preflight; a forged receipt learns nothing of stored runs",
    async () => {
      const { id, receipt, journal } = finishedRun
      const origin = "https://auditor.example.com"
      const verify = async (body: unknown) => {
        const r = await fetch(`${stack.url}/v1/receipts/verify`, {
          method: "POST",
          headers: { "content-type": "application/json", origin },
          body: typeof body === "string" ? body : JSON.stringify(body)
        })
        return { status: r.status, cors: r.headers.get("access-control-allow-origin"), text: await r.text() }
      }
      const plain = await verify({ receipt })
      expect(plain.status, plain.text).toBe(200)
      expect(plain.cors).toBe("*")
      expect(JSON.parse(plain.text)).toMatchObject({ valid: true })
      const both = JSON.parse((await verify({ receipt, journal })).text)
      expect(both.valid).toBe(true)
      expect(both.checks.at(-1)).toMatchObject({ name: "stored-journal", ok: true })
      // the stored journal still counts for a genuine receipt: a journal altered on the way is caught
      const altered = JSON.parse((await verify({ receipt, journal: journal.replace("2+3*4", "2+3*5") })).text)
      expect(altered.valid).toBe(false)

      // a receipt that Lantern did not sign is checked against what it came with only: the stored run is never read
      const forged = await verify({ receipt: { ...receipt, eventCount: 1, journalDigest: "0".repeat(64) } })
      expect(forged.status).toBe(200)
      const verdict = JSON.parse(forged.text)
      expect(verdict.valid).toBe(false)
      expect(verdict.checks.find((c: { name: string }) => c.name === "signature")).toMatchObject({ ok: false })
      expect(verdict.checks.at(-1)).toMatchObject({ name: "stored-journal", ok: false })
      expect(forged.text).toContain("(empty journal)")
      const firstLine = journal.split("\n")[0]!
      expect(forged.text).not.toContain(JSON.parse(firstLine).envelope.eventId)
      expect(forged.text).not.toContain("2+3*4")
      expect(forged.text).not.toContain(
        `${receipt.lastSeq}`.length > 2 ? `journal spans sequences ${receipt.firstSeq}` : "never"
      )

      // bad bodies are 400s a browser can read
      const bad = await verify("{not json")
      expect(bad.status).toBe(400)
      expect(bad.cors).toBe("*")
      const pre = await fetch(`${stack.url}/v1/receipts/verify`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" }
      })
      expect(pre.status).toBe(204)
      expect(pre.headers.get("access-control-allow-origin")).toBe("*")
      expect(pre.headers.get("access-control-allow-methods")).toContain("POST")
      expect(pre.headers.get("access-control-allow-headers")).toContain("content-type")
      expect(id).toBe(receipt.runId)
    },
    30_000
  )
})
