// The `lantern` CLI run as a real child process against a local HTTP server speaking the API's wire format:
// exit codes, one-line usage errors with no request sent, error bodies, connection refused, --follow, doctor;
// then `api-keys`, `tenants` and `audit` against the real `lantern serve`, where scopes are enforced.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api as stackApi, eventually, LAUNCHER, startStack, type StackProcess } from "./support/Stack.ts"

const ROOT = resolve(import.meta.dirname, "..")
const TOKEN = "lt_secret_token_for_tests_0123456789"

// ---- a fake API ----

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage["headers"]
  readonly body: string
}

type Handler = (req: Seen, res: ServerResponse) => void

interface FakeApi {
  readonly url: string
  readonly seen: Array<Seen>
  handler: Handler
  readonly close: () => Promise<void>
}

const sendJson = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

const apiError = (res: ServerResponse, status: number, code: string, message: string, issues?: unknown) =>
  sendJson(res, status, { error: { code, message, ...(issues === undefined ? {} : { issues }) } })

const answer500: Handler = (_req, res) => apiError(res, 500, "internal", "the fake API was not expecting this")

const startApi = async (): Promise<FakeApi> => {
  const seen: Array<Seen> = []
  const api = { handler: answer500 } as { handler: Handler }
  const server: Server = createServer((req, res) => {
    let body = ""
    req.setEncoding("utf8")
    req.on("data", (c: string) => (body += c))
    req.on("end", () => {
      const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body }
      seen.push(s)
      api.handler(s, res)
    })
  })
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
  const { port } = server.address() as AddressInfo
  return Object.assign(api, {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      })
  })
}

/** A port nothing listens on: bound, then released. */
const closedPort = async (): Promise<number> => {
  const s = createServer()
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((ok) => s.close(() => ok()))
  return port
}

// ---- the CLI as a child process ----
// run as users run it: the prebuilt bundle's launcher (ADR 0027), built once by the global setup, so a command
// starts without compiling TypeScript

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

let home: string

const cli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string | undefined>>): Promise<Result> =>
  new Promise((ok, ko) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LANTERN_")))
    const child = spawn(process.execPath, [LAUNCHER, ...args], {
      cwd: ROOT,
      env: { ...base, LANTERN_HOME: home, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c))
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c))
    child.on("error", ko)
    child.on("close", (code) => ok({ code, stdout, stderr }))
  })

// ---- fixtures in the API's shapes ----

const spec = { systemPrompt: "You are the Lantern doctor.", model: "auto", maxTurns: 2, tools: [] }

const runBody = (id: string, status: string, extra: Record<string, unknown> = {}) => ({
  id,
  status,
  agentName: "echo",
  agentVersion: 1,
  input: { q: "hi" },
  output: status === "succeeded" ? "pong" : null,
  error: status === "failed" ? { code: "model_error", message: "the model refused" } : null,
  steps: status === "running" ? 0 : 1,
  tokensIn: 10,
  tokensOut: 2,
  costUsd: 0,
  createdAt: "2025-01-01T00:00:00.000Z",
  updatedAt: "2025-01-01T00:00:01.000Z",
  finishedAt: status === "running" ? null : "2025-01-01T00:00:01.000Z",
  ...extra
})

const event = (seq: number, type: string, payload: unknown) => ({
  seq,
  eventId: `evt_${String(seq).padStart(26, "0")}`,
  type,
  version: 1,
  at: "2025-01-01T00:00:00.000Z",
  causationId: null,
  correlationId: "run_follow",
  payload
})

const events = (last: "RunSucceeded" | "RunFailed") => [
  event(1, "RunStarted", {
    runId: "run_follow",
    agentName: "echo",
    agentVersion: 1,
    agentDigest: "sha256:00",
    spec,
    input: { q: "hi" },
    requestDigest: "sha256:11"
  }),
  event(2, "StepStarted", { stepId: "model:1", attempt: 1, request: { _tag: "model", model: "auto", turn: 1 } }),
  event(3, "StepCompleted", {
    stepId: "model:1",
    attempt: 1,
    result: {
      _tag: "model",
      answer: { content: "pong", toolCalls: [], finishReason: "stop", provider: "offline", model: "offline-1" }
    },
    tokensIn: 10,
    tokensOut: 2,
    costUsd: 0,
    durationMs: 3
  }),
  last === "RunSucceeded"
    ? event(4, "RunSucceeded", { output: "pong" })
    : event(4, "RunFailed", { error: { code: "model_error", message: "the model refused" } })
]

/** Writes the events as SSE, split at awkward places, with a keep-alive comment in between. */
const streamEvents = (res: ServerResponse, items: ReadonlyArray<ReturnType<typeof event>>) => {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  const text = ": keep-alive\n\n" +
    items.map((e) => `id: ${e.seq}\r\nevent: ${e.type}\r\ndata: ${JSON.stringify(e)}\r\n\r\n`).join("")
  const cuts = [5, 17, 40, 41, 200, 201, 600]
  let at = 0
  for (const cut of cuts) {
    if (cut > at && cut < text.length) res.write(text.slice(at, cut))
    at = Math.max(at, Math.min(cut, text.length))
  }
  res.end(text.slice(at))
}

// ---- the tests ----

describe("lantern CLI (child process)", () => {
  let api: FakeApi

  beforeAll(async () => {
    api = await startApi()
    home = mkdtempSync(join(tmpdir(), "lantern-cli-"))
  })
  afterAll(async () => {
    await api.close()
    rmSync(home, { recursive: true, force: true })
  })
  beforeEach(() => {
    api.seen.length = 0
    api.handler = answer500
  })

  const env = () => ({ LANTERN_URL: api.url, LANTERN_API_TOKEN: TOKEN })

  describe("bad input exits 2 with one line naming the flag, and sends no request", () => {
    const okSpec = "{\"systemPrompt\":\"Repeat the input.\"}"
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, RegExp]> = [
      ["an unknown flag", ["runs", "list", "--bogus"], /^error: --bogus: unknown flag/m],
      ["a missing required flag", ["agents", "create", "--spec", okSpec], /^error: --name: required flag is missing/m],
      [
        "no spec at all",
        ["agents", "create", "--name", "echo"],
        /^error: --spec, --spec-file: one of them is required/m
      ],
      [
        "both spec flags",
        ["agents", "create", "--name", "echo", "--spec", okSpec, "--spec-file", "<spec-file>"],
        /^error: --spec, --spec-file: give one of them, not both/m
      ],
      ["a spec file that is not an agent spec", [
        "agents",
        "create",
        "--name",
        "echo",
        "--spec-file",
        join(ROOT, "package.json")
      ], /^error: --spec-file: .*package\.json: not an agent spec: name: unknown field; .*; and \d+ more$/m],
      [
        "a --spec that is not JSON",
        ["agents", "create", "--name", "echo", "--spec", "{systemPrompt:"],
        /^error: --spec: not valid JSON/m
      ],
      ["a --spec that is not an agent spec", [
        "agents",
        "create",
        "--name",
        "echo",
        "--spec",
        "{\"systemPrompt\":\"\",\"maxTurns\":500}"
      ], /^error: --spec: not an agent spec: (?=.*maxTurns: Expected a value between 1 and 100)(?=.*systemPrompt: )/m],
      ["a --spec with an unknown field", [
        "agents",
        "update",
        "echo",
        "--spec",
        "{\"systemPrompt\":\"x\",\"maxturns\":3}"
      ], /^error: --spec: not an agent spec: maxturns: /m],
      ["a spec file that does not exist", [
        "agents",
        "create",
        "--name",
        "echo",
        "--spec-file",
        "/nonexistent/spec.json"
      ], /^error: --spec-file: no such file: \/nonexistent\/spec\.json/m],
      [
        "a bad agent name",
        ["agents", "create", "--name", "Echo Bot", "--spec", okSpec],
        /^error: --name: 'Echo Bot' is not an agent name/m
      ],
      ["a missing --input", ["runs", "create", "--agent", "echo"], /^error: --input: required flag is missing/m],
      [
        "an out-of-range --limit",
        ["runs", "list", "--limit", "0"],
        /^error: --limit: expected an integer from 1 to 200, got 0/m
      ],
      ["an unknown --status", ["runs", "list", "--status", "done"], /^error: --status: invalid value 'done'/m],
      [
        "a value that begins with '-' after its flag",
        ["receipts", "verify", "receipt.json", "journal.jsonl", "--key", "-rS7xkBPIOr3Zd"],
        /^error: --key: a value is required \(expected KEY\); a value that begins with '-' is written --key=VALUE$/m
      ],
      ["a missing run id", ["runs", "get"], /^error: ID: required argument is missing/m],
      [
        "an approval without --by",
        ["runs", "approve", "run_x", "turn-1.tool-0.approval"],
        /^error: --by: required flag is missing/m
      ],
      [
        "an approval with an empty --by",
        ["runs", "approve", "run_x", "turn-1.tool-0.approval", "--by", ""],
        /^error: --by: 1-200 characters/m
      ],
      [
        "an approval without a step",
        ["runs", "approve", "run_x", "--by", "ops"],
        /^error: STEP: required argument is missing/m
      ],
      ["a key without --scope", ["api-keys", "create", "--name", "ci"], /^error: --scope: required flag is missing/m],
      [
        "an unknown --scope",
        ["api-keys", "create", "--name", "ci", "--scope", "runs:read", "--scope", "runs:reed"],
        /^error: --scope: 'runs:reed' is not a scope; expected one of runs:read, /m
      ],
      ["an --expires that is no ISO time", [
        "api-keys",
        "create",
        "--name",
        "ci",
        "--scope",
        "runs:read",
        "--expires",
        "next week"
      ], /^error: --expires: 'next week' is not an ISO 8601 date-time/m],
      ["an --expires in the past", [
        "api-keys",
        "create",
        "--name",
        "ci",
        "--scope",
        "runs:read",
        "--expires",
        "2020-01-01T00:00:00Z"
      ], /^error: --expires: '2020-01-01T00:00:00Z' is not in the future/m],
      [
        "a key --name starting with a space",
        ["api-keys", "create", "--name", " ci", "--scope", "runs:read"],
        /^error: --name: expected 1-100 printable ASCII characters/m
      ],
      [
        "a revoke of something that is no key id",
        ["api-keys", "revoke", "run_x"],
        /^error: ID: 'run_x' is not a key id/m
      ],
      ["a tenant without a name", ["tenants", "create"], /^error: NAME: required argument is missing/m],
      ["an unknown --action", ["audit", "--action", "key.made"], /^error: --action: invalid value 'key\.made'/m],
      [
        "a --since that is no date",
        ["audit", "--since", "yesterday"],
        /^error: --since: 'yesterday' is not an ISO 8601 day/m
      ],
      [
        "a --since on a day that does not exist",
        ["audit", "--since", "2026-02-30"],
        /^error: --since: '2026-02-30' is not/m
      ],
      [
        "an out-of-range audit --limit",
        ["audit", "--limit", "201"],
        /^error: --limit: expected an integer from 1 to 200, got 201/m
      ]
    ]
    it.each(cases)("%s", async (_name, args, message) => {
      const specFile = join(home, "spec.json")
      writeFileSync(specFile, okSpec)
      const r = await cli(args.map((a) => (a === "<spec-file>" ? specFile : a)), env())
      expect(r.stderr).toMatch(message)
      expect(r.code).toBe(2)
      expect(api.seen).toHaveLength(0)
      expect(r.stdout).toBe("")
    })
  })

  it("prints a server error as `error: code: message`, exits 1, and never prints the token", async () => {
    api.handler = (req, res) =>
      req.method === "GET" && req.url === "/v1/runs/run_x"
        ? apiError(res, 404, "not_found", "run 'run_x' not found")
        : answer500(req, res)
    const r = await cli(["runs", "get", "run_x"], env())
    expect(r.stderr.trim()).toBe("error: not_found: run 'run_x' not found")
    expect(r.code).toBe(1)
    expect(api.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["GET /v1/runs/run_x"])
    expect(api.seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`)
    expect(r.stdout + r.stderr).not.toContain(TOKEN)
  })

  it("prints each issue of a 400 under the error line", async () => {
    api.handler = (_req, res) =>
      apiError(res, 400, "invalid_request", "the body does not match the schema", [
        { field: "spec.model", message: "Expected a model capability alias such as \"auto\"" }
      ])
    const r = await cli(["agents", "create", "--name", "echo", "--spec", "{\"systemPrompt\":\"x\"}"], env())
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split("\n")).toEqual([
      "error: invalid_request: the body does not match the schema",
      "  spec.model: Expected a model capability alias such as \"auto\""
    ])
    expect(JSON.parse(api.seen[0]?.body ?? "")).toEqual({ name: "echo", spec: { systemPrompt: "x" } })
  })

  it("on connection refused exits 1 with a hint naming LANTERN_URL", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`
    const r = await cli(["agents", "list"], { LANTERN_URL: url, LANTERN_API_TOKEN: TOKEN })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`cannot reach the Lantern API at ${url} (connection refused)`)
    expect(r.stderr).toContain(`is \`lantern dev\` running? LANTERN_URL=${url}`)
    expect(r.stdout + r.stderr).not.toContain(TOKEN)
  })

  it("reads the URL and token from LANTERN_HOME/credentials when the environment has none", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lantern-home-"))
    writeFileSync(
      join(dir, "credentials"),
      `# written by lantern dev\nLANTERN_API_TOKEN=from_file_token\nLANTERN_URL=${api.url}/\n`
    )
    api.handler = (_req, res) => sendJson(res, 200, { items: [] })
    const r = await cli(["agents", "list"], { LANTERN_HOME: dir })
    rmSync(dir, { recursive: true, force: true })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("no agents yet")
    expect(api.seen[0]?.url).toBe("/v1/agents")
    expect(api.seen[0]?.headers.authorization).toBe("Bearer from_file_token")
  })

  it("--json prints the body as the server sent it", async () => {
    const body = runBody("run_ok", "succeeded", { laterField: "kept" })
    api.handler = (_req, res) => sendJson(res, 200, body)
    const r = await cli(["runs", "get", "run_ok", "--json"], env())
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual(body)
  })

  it("runs approve posts the decision to the step's approval route", async () => {
    api.handler = (_req, res) => sendJson(res, 200, runBody("run_wait", "running"))
    const r = await cli([
      "runs",
      "approve",
      "run_wait",
      "turn-1.tool-0.approval",
      "--by",
      "ops",
      "--reject",
      "--reason",
      "not today"
    ], env())
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^rejected turn-1\.tool-0\.approval of run_wait$/m)
    expect(api.seen[0]?.method).toBe("POST")
    expect(api.seen[0]?.url).toBe("/v1/runs/run_wait/approvals/turn-1.tool-0.approval")
    expect(JSON.parse(api.seen[0]?.body ?? "")).toEqual({ approved: false, by: "ops", reason: "not today" })
  })

  it("runs create sends plain text input as a JSON string, and the Idempotency-Key header", async () => {
    api.handler = (_req, res) => sendJson(res, 201, runBody("run_new", "running"))
    const r = await cli(
      ["runs", "create", "--agent", "echo", "--input", "hello there", "--idempotency-key", "k-1"],
      env()
    )
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^id: +run_new$/m)
    expect(JSON.parse(api.seen[0]?.body ?? "")).toEqual({ agentName: "echo", input: "hello there" })
    expect(api.seen[0]?.headers["idempotency-key"]).toBe("k-1")
  })

  const followApi = (last: "RunSucceeded" | "RunFailed"): Handler => (req, res) => {
    if (req.method === "POST" && req.url === "/v1/runs") return sendJson(res, 201, runBody("run_follow", "running"))
    if (req.url === "/v1/runs/run_follow/stream") return streamEvents(res, events(last))
    if (req.url === "/v1/runs/run_follow") {
      return sendJson(res, 200, runBody("run_follow", last === "RunSucceeded" ? "succeeded" : "failed"))
    }
    answer500(req, res)
  }

  it("runs create --follow prints one line per event until the end, then the run", async () => {
    api.handler = followApi("RunSucceeded")
    const r = await cli(["runs", "create", "--agent", "echo", "--input", "{\"q\":\"hi\"}", "--follow"], env())
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const lines = r.stdout.split("\n")
    expect(lines[0]).toBe("started run_follow (echo v1)")
    expect(lines.filter((l) => l.startsWith("#"))).toEqual([
      "#1 RunStarted echo v1 input={\"q\":\"hi\"}",
      "#2 StepStarted model:1 model auto turn 1",
      "#3 StepCompleted model:1 offline/offline-1 \"pong\" (10/2 tokens $0.0000 3 ms)",
      "#4 RunSucceeded output=\"pong\""
    ])
    expect(r.stdout).toMatch(/^status: +succeeded$/m)
    expect(JSON.parse(api.seen[0]?.body ?? "")).toEqual({ agentName: "echo", input: { q: "hi" } })
    expect(api.seen[1]?.headers.accept).toBe("text/event-stream")
  })

  it("runs follow exits 1 when the run failed", async () => {
    api.handler = followApi("RunFailed")
    const r = await cli(["runs", "follow", "run_follow"], env())
    expect(r.code).toBe(1)
    expect(r.stdout).toContain("#4 RunFailed model_error: the model refused")
    expect(r.stdout).toMatch(/^error: +model_error: the model refused$/m)
  })

  it("follow reconnects after the last event it printed when the stream drops, printing each event once", async () => {
    let connections = 0
    const base = followApi("RunSucceeded")
    api.handler = (req, res) => {
      if (req.url !== "/v1/runs/run_follow/stream") return base(req, res)
      connections++
      // The first connection drops after two events; the next replays everything, as a server may.
      return streamEvents(res, connections === 1 ? events("RunSucceeded").slice(0, 2) : events("RunSucceeded"))
    }
    const r = await cli(["runs", "follow", "run_follow"], env())
    expect(r.code).toBe(0)
    expect(r.stdout.split("\n").filter((l) => l.startsWith("#")).map((l) => l.split(" ")[0])).toEqual([
      "#1",
      "#2",
      "#3",
      "#4"
    ])
    const streams = api.seen.filter((s) => s.url === "/v1/runs/run_follow/stream")
    expect(streams.map((s) => s.headers["last-event-id"])).toEqual([undefined, "2"])
  })

  it("follow ends with exit code 130 on Ctrl-C", async () => {
    api.handler = (req, res) => {
      if (req.url !== "/v1/runs/run_follow/stream") return answer500(req, res)
      res.writeHead(200, { "content-type": "text/event-stream" })
      const first = events("RunSucceeded")[0]
      res.write(`id: 1\nevent: RunStarted\ndata: ${JSON.stringify(first)}\n\n`)
    }
    const child = spawn(process.execPath, [LAUNCHER, "runs", "follow", "run_follow"], {
      cwd: ROOT,
      env: { ...process.env, ...env(), LANTERN_HOME: home },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    await new Promise<void>((ok) =>
      child.stdout.setEncoding("utf8").on("data", (c: string) => {
        stdout += c
        if (stdout.includes("#1 RunStarted")) ok()
      })
    )
    child.kill("SIGINT")
    const code = await new Promise<number | null>((ok) => child.on("close", ok))
    expect(code).toBe(130)
  })

  const doctorApi = (ready: { status: number; body: unknown }): Handler => {
    let polls = 0
    return (req, res) => {
      const route = `${req.method} ${req.url}`
      if (route === "GET /healthz") {
        res.writeHead(200, { "content-type": "text/plain" })
        return res.end("ok")
      }
      if (route === "GET /readyz") return sendJson(res, ready.status, ready.body)
      if (route === "GET /v1/agents") return sendJson(res, 200, { items: [] })
      if (route === "GET /v1/agents/lantern-doctor-probe")
        return apiError(res, 404, "not_found", "agent 'lantern-doctor-probe' not found")
      if (route === "POST /v1/agents") {
        return sendJson(res, 201, {
          name: "lantern-doctor-probe",
          description: "",
          latestVersion: 1,
          digest: "sha256:00",
          spec,
          createdAt: "2025-01-01T00:00:00.000Z",
          updatedAt: "2025-01-01T00:00:00.000Z"
        })
      }
      if (route === "POST /v1/runs") return sendJson(res, 201, runBody("run_doctor", "running"))
      if (route === "GET /v1/runs/run_doctor") {
        polls++
        return sendJson(res, 200, runBody("run_doctor", polls < 3 ? "running" : "succeeded"))
      }
      answer500(req, res)
    }
  }

  it("doctor passes every check against a healthy API and exits 0", async () => {
    api.handler = doctorApi({
      status: 200,
      body: { bus: "ok", database: "ok", nats: { version: "2.15.1", sync: "always" } }
    })
    const r = await cli(["doctor"], env())
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    // the bus check names the server's version and durability
    expect(r.stdout).toMatch(/^✓ bus .*nats-server 2\.15\.1, sync always$/m)
    const checks = r.stdout.split("\n").filter((l) => /^[✓✗] /.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(" "))
    expect(checks).toEqual(["✓ edge", "✓ bus", "✓ database", "✓ auth", "✓ agent", "✓ run"])
    expect(r.stdout).toContain("all checks passed")
    const created = JSON.parse(api.seen.find((s) => s.method === "POST" && s.url === "/v1/agents")?.body ?? "")
    expect(created.spec).toEqual({ systemPrompt: "You are the Lantern doctor.", model: "auto", maxTurns: 2 })
    expect(JSON.parse(api.seen.find((s) => s.url === "/v1/runs")?.body ?? "")).toEqual({
      agentName: "lantern-doctor-probe",
      input: "ping"
    })
  })

  it("doctor names the part that is not ready and exits 1", async () => {
    api.handler = doctorApi({ status: 503, body: { bus: "ok", database: "unavailable: connection refused" } })
    const r = await cli(["doctor"], env())
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^✓ bus /m)
    expect(r.stdout).toMatch(/^✗ database .*unavailable: connection refused$/m)
    expect(r.stdout).toMatch(/^✗ run .*skipped: the edge is not ready$/m)
    expect(api.seen.some((s) => s.url === "/v1/runs")).toBe(false)
  })
})

describe("lantern api-keys, tenants and audit (child process, real stack)", () => {
  let nats: TestServer
  let stack: StackProcess

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), "lantern-cli-"))
    nats = await startServer("lantern-cli-access")
    stack = await startStack({ natsUrl: nats.handle.url })
  }, 90_000)
  afterAll(async () => {
    try {
      await stack?.stop()
    } finally {
      await nats?.cleanup()
      rmSync(home, { recursive: true, force: true })
    }
  })

  const owner = () => ({ LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token })
  const as = (token: string) => stackApi({ url: stack.url, token })
  const keyOf = (stdout: string) => /^key: +(\S+)$/m.exec(stdout)?.[1] ?? ""

  it(
    "doctor twice leaves one probe agent and no run in the run list (its probe runs are asked for by name)",
    async () => {
      const owner_ = as(stack.token)
      for (let i = 0; i < 2; i++) {
        const r = await cli(["doctor"], owner())
        expect(r.code, r.stdout + r.stderr).toBe(0)
      }
      const agents = (await owner_("GET", "/v1/agents")).json.items as Array<{ name: string }>
      expect(agents.filter((a) => a.name.startsWith("lantern-doctor")).map((a) => a.name)).toEqual([
        "lantern-doctor-probe"
      ])
      const probes = await eventually(
        async () => {
          const r = await owner_("GET", "/v1/runs?agentName=lantern-doctor-probe")
          // a list lags the journal by up to a projector batch window (ADR 0037): the runs' ends may come later
          const items = r.json.items as Array<{ status: string }>
          return items.length === 2 && items.every((run) => run.status === "succeeded") ? items : null
        },
        20_000,
        "the two probe runs to be projected as succeeded"
      )
      expect(probes.map((r: { status: string }) => r.status)).toEqual(["succeeded", "succeeded"])
      const listed = (await owner_("GET", "/v1/runs?limit=200")).json.items as Array<{ agentName: string }>
      expect(listed.filter((r) => r.agentName === "lantern-doctor-probe")).toEqual([])
      expect(
        (await owner_("GET", "/v1/runs?status=succeeded")).json.items.filter((r: { agentName: string }) =>
          r.agentName === "lantern-doctor-probe"
        )
      ).toEqual([])
    },
    120_000
  )

  it("creates a runs:read key shown once, lists it without the key, enforces its scope, and revokes it", async () => {
    const created = await cli([
      "api-keys",
      "create",
      "--name",
      "reader",
      "--scope",
      "runs:read",
      "--expires",
      "2099-01-01T00:00:00Z"
    ], owner())
    expect(created.stderr).toBe("")
    expect(created.code).toBe(0)
    const key = keyOf(created.stdout)
    const id = /^id: +(key_[0-9a-z]{26})$/m.exec(created.stdout)?.[1] ?? ""
    expect(key).toMatch(/^lk_/)
    expect(id).not.toBe("")
    expect(created.stdout).toMatch(/^scopes: +runs:read$/m)
    expect(created.stdout).toMatch(/^expires: +2099-01-01T00:00:00\.000Z$/m)
    expect(created.stdout).toContain("will not be shown again")

    const listed = await cli(["api-keys", "list"], owner())
    expect(listed.code).toBe(0)
    const row = listed.stdout.split("\n").find((l) => l.startsWith(id)) ?? ""
    expect(row.split(/\s{2,}/)).toEqual([id, "reader", "runs:read", "2099-01-01T00:00:00.000Z", `…${key.slice(-4)}`])
    expect(listed.stdout.split("\n")[0]?.split(/\s+/)).toEqual(["ID", "NAME", "SCOPES", "EXPIRES", "LAST4"])
    expect(listed.stdout).not.toContain(key)
    expect((await cli(["api-keys", "list", "--json"], owner())).stdout).not.toContain(key)

    const reader = as(key)
    expect((await reader("GET", "/v1/runs")).status).toBe(200)
    const denied = await reader("POST", "/v1/agents", { name: "nope", spec: { systemPrompt: "x" } })
    expect(denied.status, denied.text).toBe(403)
    // the reader's own key cannot use the CLI to list keys either: exit 1, the server's error on one line
    const refused = await cli(["api-keys", "list"], { LANTERN_URL: stack.url, LANTERN_API_TOKEN: key })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^error: forbidden: /m)

    const revoked = await cli(["api-keys", "revoke", id], owner())
    expect(revoked.stderr).toBe("")
    expect(revoked.code).toBe(0)
    expect(revoked.stdout).toContain(`revoked ${id}`)
    expect((await reader("GET", "/v1/runs")).status).toBe(401)
    expect((await cli(["api-keys", "list"], owner())).stdout).not.toContain(id)
    const again = await cli(["api-keys", "revoke", id], owner())
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/^error: \w+: /m)
  }, 60_000)

  it(
    "a key made with an expiring key prints the parent's expiry; revoking the parent revokes it; revoking needs the target's scopes",
    async () => {
      const idOf = (stdout: string) => /^id: +(key_[0-9a-z]{26})$/m.exec(stdout)?.[1] ?? ""
      const parent = await cli([
        "api-keys",
        "create",
        "--name",
        "minter",
        "--scope",
        "keys:write",
        "--scope",
        "runs:read",
        "--expires",
        "2099-01-01T00:00:00Z"
      ], owner())
      expect(parent.code, parent.stderr).toBe(0)
      const asParent = { LANTERN_URL: stack.url, LANTERN_API_TOKEN: keyOf(parent.stdout) }
      // asked for no expiry: capped at the parent's, and the CLI prints the effective one
      const child = await cli(["api-keys", "create", "--name", "minted", "--scope", "runs:read"], asParent)
      expect(child.code, child.stderr).toBe(0)
      expect(child.stdout).toMatch(/^expires: +2099-01-01T00:00:00\.000Z$/m)
      // the parent (keys:write runs:read) may not revoke the `*` key made by the owner
      const all = await cli(["api-keys", "create", "--name", "everything", "--scope", "*"], owner())
      const refused = await cli(["api-keys", "revoke", idOf(all.stdout)], asParent)
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/^error: forbidden: .*'\*'/m)
      expect((await as(keyOf(all.stdout))("GET", "/v1/runs")).status).toBe(200)
      const childCall = as(keyOf(child.stdout))
      expect((await childCall("GET", "/v1/runs")).status).toBe(200)
      const revoked = await cli(["api-keys", "revoke", idOf(parent.stdout)], owner())
      expect(revoked.code, revoked.stderr).toBe(0)
      expect((await childCall("GET", "/v1/runs")).status).toBe(401)
      expect((await cli(["api-keys", "list"], owner())).stdout).not.toContain(idOf(child.stdout))
    },
    60_000
  )

  it("tenants create prints the tenant id and an owner key that works in it", async () => {
    const r = await cli(["tenants", "create", "acme"], owner())
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^tenant: +t-[0-9a-z]{26}$/m)
    expect(r.stdout).toContain("will not be shown again")
    const key = /^owner key: +(\S+)$/m.exec(r.stdout)?.[1] ?? ""
    expect(key).toMatch(/^lk_/)
    const agents = await as(key)("GET", "/v1/agents")
    expect(agents.status, agents.text).toBe(200)
    expect(agents.json.items).toEqual([])
  }, 30_000)

  it("audit prints the scope.denied entry on one line, filtered by --action and --since", async () => {
    const created = await cli(["api-keys", "create", "--name", "narrow", "--scope", "runs:read"], owner())
    expect((await as(keyOf(created.stdout))("POST", "/v1/agents", {})).status).toBe(403)
    const since = new Date(Date.now() - 3_600_000).toISOString()
    const line = await eventually(
      async () => {
        const r = await cli(["audit", "--action", "scope.denied", "--since", since, "--limit", "50"], owner())
        expect(r.code).toBe(0)
        return r.stdout.split("\n").find((l) => l.includes("POST /v1/agents"))
      },
      20_000,
      "the scope.denied entry"
    )
    expect(line).toMatch(
      /^\d{4}-\d{2}-\d{2}T\S+ scope\.denied denied by \S+ on POST \/v1\/agents .*missingScope="agents:write"/
    )
    const all = await cli(["audit"], owner())
    expect(all.stdout).toMatch(/ api_key\.created allowed /)
    expect(all.stdout).not.toMatch(/lk_[A-Za-z0-9_-]{20,}/)
  }, 60_000)
})
