// MCP servers used in runs (ADR 0044): a real MCP server over streamable HTTP (the official SDK's server, stateless)
// is registered with a secret header, its tools are pinned into an agent's version, a run calls one through the
// server, and a server that goes away fails the step as retryable. The offline model calls the tools its input names.
import { createServer, type IncomingMessage, type Server as HttpServer } from "node:http"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { freePort } from "../bus/NatsServer.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

const SECRET = "mcp-secret-71c0e4b9a2"
const BWRAP = ["/usr/bin/bwrap", "/bin/bwrap"].some((p) => existsSync(p))
const STDIO_SERVER = join(import.meta.dirname, "fixtures", "mcp-stdio-server.mjs")

let nats: TestServer
let dir: string
let http: HttpServer
let port: number
let stack: StackProcess
let call: ReturnType<typeof api>
const calls: Array<{ tool: string; args: unknown; authorization: string | undefined }> = []

const bodyOf = (req: IncomingMessage) =>
  new Promise<unknown>((resolve) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => resolve(body === "" ? undefined : JSON.parse(body)))
  })

/** A stateless MCP server: each HTTP request gets a server and transport of its own. */
const mcpServer = () =>
  createServer(async (req, res) => {
    const body = await bodyOf(req)
    const authorization = req.headers["authorization"]
    const server = new Server({ name: "test-tools", version: "1.0.0" }, { capabilities: { tools: {} } })
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [
        {
          name: "echo_text",
          description: "Echoes its text",
          inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] }
        },
        { name: "broken", description: "Always fails", inputSchema: { type: "object", properties: {} } }
      ]
    }))
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      calls.push({ tool: request.params.name, args: request.params.arguments, authorization })
      if (request.params.name === "broken") return { content: [{ type: "text", text: "it broke" }], isError: true }
      const text = (request.params.arguments as { text?: string } | undefined)?.text ?? ""
      return { content: [{ type: "text", text: `echo: ${text}` }] }
    })
    const transport = new StreamableHTTPServerTransport({})
    res.on("close", () => {
      void transport.close()
      void server.close()
    })
    await server.connect(transport)
    await transport.handleRequest(req, res, body)
  })

beforeAll(async () => {
  nats = await startServer("lantern-mcp")
  dir = mkdtempSync(join(tmpdir(), "lantern-mcp-"))
  http = mcpServer()
  port = await freePort()
  await new Promise<void>((r) => http.listen(port, "127.0.0.1", () => r()))
  // the operator's own catalogue entry: the stdio test server, installed "on the host"
  writeFileSync(
    join(dir, "catalog.json"),
    JSON.stringify({
      entries: [{
        id: "local-tools",
        title: "Local tools",
        description: "The test's stdio server",
        transport: "stdio",
        command: process.execPath,
        args: [STDIO_SERVER],
        env: { MCP_TOKEN: { description: "a token, as a lantern.secret:// reference", required: true } },
        isolation: "standard"
      }]
    })
  )
  stack = await startStack({
    natsUrl: nats.handle.url,
    home: join(dir, "home"),
    env: {
      LANTERN_EGRESS_ALLOW_PRIVATE: "127.0.0.1",
      LANTERN_WATCHDOG_INTERVAL: "200 millis",
      LANTERN_MCP_CATALOG: join(dir, "catalog.json")
    }
  })
  call = api(stack)
}, 120_000)

afterAll(async () => {
  await stack?.kill()
  await new Promise<void>((r) => (http.listening ? http.close(() => r()) : r()))
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const finished = (id: string) =>
  eventually(
    async () => {
      const r = (await call("GET", `/v1/runs/${id}`)).json
      return r.status !== "running" ? r : null
    },
    90_000,
    `run ${id} to finish`
  )

const events = async (id: string): Promise<Array<any>> => (await call("GET", `/v1/runs/${id}/events`)).json.items

describe("an MCP server over streamable HTTP", () => {
  it("is registered with its tools once its host is allowed, and a run calls one with the secret header", async () => {
    onTestFailed(() => console.error(stack.output()))
    expect((await call("POST", "/v1/secrets", { name: "mcp-token", value: `Bearer ${SECRET}` })).status).toBe(201)
    const server = {
      name: "calc",
      transport: "streamable-http",
      url: `http://127.0.0.1:${port}/mcp`,
      headers: { Authorization: "lantern.secret://mcp-token" }
    }
    const refused = await call("POST", "/v1/mcp/servers", server)
    expect(refused.status).toBe(502)
    expect(refused.json.error.code).toBe("mcp_unavailable")
    expect(refused.json.error.message).toContain("egress allowlist")

    await call("PUT", "/v1/egress", { hosts: [`127.0.0.1:${port}`] })
    const registered = await call("POST", "/v1/mcp/servers", server)
    expect(registered.status, registered.text).toBe(201)
    expect(registered.json.tools.map((t: { name: string }) => t.name)).toEqual(["echo_text", "broken"])
    expect(JSON.stringify(registered.json)).not.toContain(SECRET)
    expect((await call("GET", "/v1/mcp/servers/calc/tools")).json.items).toHaveLength(2)

    const agent = await call("POST", "/v1/agents", {
      name: "mcp-user",
      spec: { systemPrompt: "Use the tools.", mcp: [{ server: "calc", tools: ["echo_text"] }] }
    })
    expect(agent.status, agent.text).toBe(201)
    expect(agent.json.spec.tools.map((t: { name: string }) => t.name)).toEqual(["calc__echo_text"])

    const started = await call("POST", "/v1/runs", { agentName: "mcp-user", input: "calc__echo_text lanterns" })
    expect(started.status).toBe(201)
    const run = await finished(started.json.id)
    expect(run.status).toBe("succeeded")
    const outputs = (await events(started.json.id))
      .filter((e) => e.type === "StepCompleted" && e.payload.result._tag === "tool")
      .map((e) => e.payload.result.output)
    expect(outputs).toEqual(["echo: calc__echo_text lanterns"])
    const echo = calls.find((c) => c.tool === "echo_text")!
    expect(echo.authorization).toBe(`Bearer ${SECRET}`)
    expect(JSON.stringify(await events(started.json.id))).not.toContain(SECRET)
  }, 120_000)

  it("makes a call of an MCP tool named in approval wait for a human, then calls the server", async () => {
    const agent = await call("POST", "/v1/agents", {
      name: "mcp-careful",
      spec: {
        systemPrompt: "Use the tools.",
        mcp: [{ server: "calc", tools: ["echo_text"], approval: ["echo_text"], approvalExpiresInSeconds: 600 }]
      }
    })
    expect(agent.status, agent.text).toBe(201)
    expect(agent.json.spec.tools[0].approval).toEqual({ expiresInSeconds: 600 })
    const before = calls.length
    const started = await call("POST", "/v1/runs", { agentName: "mcp-careful", input: "calc__echo_text careful" })
    const waiting = await eventually(
      async () => {
        const r = (await call("GET", `/v1/runs/${started.json.id}`)).json
        return r.waiting?.kind === "approval" ? r.waiting : null
      },
      30_000,
      "the call to wait for approval"
    )
    expect(calls.length).toBe(before)
    const approved = await call("POST", `/v1/runs/${started.json.id}/approvals/${waiting.stepId}`, {
      approved: true,
      by: "reviewer"
    })
    expect(approved.status, approved.text).toBe(200)
    expect((await finished(started.json.id)).status).toBe("succeeded")
    expect(calls.slice(before).map((c) => c.tool)).toEqual(["echo_text"])
    const refused = await call("POST", "/v1/agents", {
      name: "mcp-careless",
      spec: { systemPrompt: "x", mcp: [{ server: "calc", tools: ["echo_text"], approval: ["broken"] }] }
    })
    expect(refused.status).toBe(400)
    expect(refused.json.error.issues.map((i: { field: string }) => i.field)).toEqual(["spec.mcp[0].approval[0]"])
  }, 120_000)

  it("answers 400 naming the field for a server or tool nobody registered", async () => {
    const noServer = await call("POST", "/v1/agents", {
      name: "mcp-bad",
      spec: { systemPrompt: "x", mcp: [{ server: "nope" }] }
    })
    expect(noServer.status).toBe(400)
    expect(noServer.json.error.issues.map((i: { field: string }) => i.field)).toEqual(["spec.mcp[0].server"])
    const noTool = await call("POST", "/v1/agents", {
      name: "mcp-bad",
      spec: { systemPrompt: "x", mcp: [{ server: "calc", tools: ["missing"] }] }
    })
    expect(noTool.status).toBe(400)
    expect(noTool.json.error.issues.map((i: { field: string }) => i.field)).toEqual(["spec.mcp[0].tools[0]"])
    expect((await call("GET", "/v1/mcp/servers/nope/tools")).status).toBe(404)
  }, 60_000)

  it("fails the step as retryable while the server is down", async () => {
    const agent = await call("POST", "/v1/agents", {
      name: "mcp-down",
      spec: { systemPrompt: "x", mcp: [{ server: "calc" }], retry: { maxAttempts: 2, initialBackoffMs: 100 } }
    })
    expect(agent.status, agent.text).toBe(201)
    await new Promise<void>((r) => http.close(() => r()))
    const started = await call("POST", "/v1/runs", { agentName: "mcp-down", input: "calc__broken now" })
    const run = await finished(started.json.id)
    const failed = (await events(started.json.id)).filter((e) => e.type === "StepFailed")
    expect(failed.length).toBeGreaterThan(0)
    expect(failed[0].payload.error.code).toBe("provider_unavailable")
    expect(failed[0].payload.retryable).toBe(true)
    expect(run.status).toBe("failed")
  }, 120_000)
})

describe.skipIf(!BWRAP)(`an MCP server over stdio, in a sandbox${BWRAP ? "" : " (skipped: no bwrap)"}`, () => {
  it("is launched in its tier (bwrap for standard), its secret env resolved, and a run calls its tools", async () => {
    onTestFailed(() => console.error(stack.output()))
    const token = "stdio-token-5d1e9c2a77"
    expect((await call("POST", "/v1/secrets", { name: "mcp-stdio", value: token })).status).toBe(201)
    const server = {
      name: "local",
      transport: "stdio",
      command: process.execPath,
      args: [STDIO_SERVER],
      env: { MCP_TOKEN: "lantern.secret://mcp-stdio" },
      isolation: "standard"
    }
    const registered = await call("POST", "/v1/mcp/servers", server)
    expect(registered.status, registered.text).toBe(201)
    expect(registered.json.tools.map((t: { name: string }) => t.name)).toEqual(["echo_text", "whoami", "env_secret"])
    expect(registered.json.env).toEqual({ MCP_TOKEN: "lantern.secret://mcp-stdio" })

    const agent = await call("POST", "/v1/agents", {
      name: "stdio-user",
      spec: { systemPrompt: "Use the tools.", mcp: [{ server: "local" }] }
    })
    expect(agent.status, agent.text).toBe(201)
    const outputOf = async (input: string) => {
      const started = await call("POST", "/v1/runs", { agentName: "stdio-user", input })
      expect(started.status).toBe(201)
      expect((await finished(started.json.id)).status).toBe("succeeded")
      const all = await events(started.json.id)
      expect(JSON.stringify(all)).not.toContain(token)
      return all.filter((e) => e.type === "StepCompleted" && e.payload.result._tag === "tool")
        .map((e) => e.payload.result.output)[0]
    }
    // bubblewrap's sandbox: nobody's uid, its own host name
    expect(JSON.parse(await outputOf("local__whoami please"))).toEqual({ uid: 65534, hostname: "sandbox" })
    expect(await outputOf("local__env_secret please")).toBe(
      `token sha256 ${createHash("sha256").update(token).digest("hex")}`
    )
  }, 120_000)

  it("refuses a tier no configured backend provides, and a command that is no MCP server", async () => {
    const hostile = await call("POST", "/v1/mcp/servers", {
      name: "far",
      transport: "stdio",
      command: process.execPath,
      args: [STDIO_SERVER],
      isolation: "hostile"
    })
    expect(hostile.status).toBe(502)
    expect(hostile.json.error.message).toContain("hostile")
    const silent = await call("POST", "/v1/mcp/servers", {
      name: "silent",
      transport: "stdio",
      command: process.execPath,
      args: ["-e", "process.exit(3)"]
    })
    expect(silent.status).toBe(502)
    expect(silent.json.error.code).toBe("mcp_unavailable")
    const bad = await call("POST", "/v1/mcp/servers", { name: "x", transport: "stdio", command: "node", shell: true })
    expect(bad.status).toBe(400)
    expect(JSON.stringify(bad.json)).toContain("shell")
    expect((await call("GET", "/v1/mcp/servers")).json.items.map((s: { name: string }) => s.name)).not.toContain(
      "silent"
    )
  }, 120_000)
})

describe("the MCP catalogue", () => {
  it("lists the built-in and the operator's entries, and attaches one in a call naming what it lacks", async () => {
    const catalog = await call("GET", "/v1/mcp/catalog")
    expect(catalog.status).toBe(200)
    const ids = catalog.json.items.map((e: { id: string }) => e.id)
    expect(ids).toEqual(expect.arrayContaining(["filesystem", "git", "github", "memory", "local-tools"]))
    expect(catalog.json.items.find((e: { id: string }) => e.id === "github").headers.Authorization.required).toBe(true)

    const missing = await call("POST", "/v1/mcp/catalog/local-tools/attach", {})
    expect(missing.status).toBe(400)
    expect(missing.json.error.issues.map((i: { field: string }) => i.field)).toEqual(["env.MCP_TOKEN"])
    const wrong = await call("POST", "/v1/mcp/catalog/github/attach", { env: { X: "y" } })
    expect(wrong.status).toBe(400)
    expect(wrong.json.error.issues.map((i: { field: string }) => i.field)).toEqual(["headers.Authorization", "env"])
    expect((await call("POST", "/v1/mcp/catalog/nothing-here/attach", {})).status).toBe(404)
    const unknownField = await call("POST", "/v1/mcp/catalog/local-tools/attach", { env: {}, url: "http://x" })
    expect(unknownField.status).toBe(400)
    expect(JSON.stringify(unknownField.json)).toContain("url")

    if (BWRAP) {
      expect((await call("POST", "/v1/secrets", { name: "catalog-token", value: "catalog-token-1" })).status).toBe(
        201
      )
      const attached = await call("POST", "/v1/mcp/catalog/local-tools/attach", {
        name: "mine",
        env: { MCP_TOKEN: "lantern.secret://catalog-token" }
      })
      expect(attached.status, attached.text).toBe(201)
      expect(attached.json).toMatchObject({ name: "mine", transport: "stdio", isolation: "standard" })
      expect(attached.json.tools.map((t: { name: string }) => t.name)).toEqual(["echo_text", "whoami", "env_secret"])
      expect((await call("GET", "/v1/mcp/servers/mine/tools")).json.items).toHaveLength(3)
    }
    // a built-in whose executable this host lacks: refused, not registered
    const absent = await call("POST", "/v1/mcp/catalog/memory/attach", {})
    expect(absent.status).toBe(502)
    expect((await call("GET", "/v1/mcp/servers/memory/tools")).status).toBe(404)
  }, 120_000)
})

describe("Lantern as an MCP server at /mcp", () => {
  /** A client of the SDK on `/mcp` with `token` as its bearer. */
  const client = async (token: string) => {
    const c = new Client({ name: "test-client", version: "1.0.0" })
    await c.connect(
      new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } }
      })
    )
    return c
  }
  const textOf = (r: unknown) => ((r as { content: Array<{ text: string }> }).content[0]?.text ?? "")

  it("lists its tools, starts a run, reads it and decides its approval, with the SDK's own client", async () => {
    const agent = await call("POST", "/v1/agents", {
      name: "careful",
      spec: {
        systemPrompt: "Echo.",
        tools: [{
          name: "echo",
          description: "echo",
          parameters: { type: "object", properties: {} },
          approval: { expiresInSeconds: 600 }
        }]
      }
    })
    expect(agent.status, agent.text).toBe(201)
    const c = await client(stack.token)
    try {
      const tools = await c.listTools()
      expect(tools.tools.map((t) => t.name)).toEqual(["list_agents", "start_run", "get_run", "approve_step"])
      // the list reads the projections, which follow the journal closely
      await eventually(
        async () => {
          const listed = JSON.parse(textOf(await c.callTool({ name: "list_agents", arguments: {} })))
          return listed.some((a: { name: string }) => a.name === "careful")
        },
        30_000,
        "the agent to be listed"
      )
      const started = JSON.parse(
        textOf(await c.callTool({ name: "start_run", arguments: { agentName: "careful", input: "echo hi" } }))
      )
      expect(started.runId).toMatch(/^run_/)
      const waiting = await eventually(
        async () => {
          const r = JSON.parse(textOf(await c.callTool({ name: "get_run", arguments: { runId: started.runId } })))
          return r.waiting?.kind === "approval" ? r : null
        },
        30_000,
        "the run to wait for approval"
      )
      const approved = await c.callTool({
        name: "approve_step",
        arguments: { runId: started.runId, stepId: waiting.waiting.stepId, approved: true }
      })
      expect(approved.isError ?? false).toBe(false)
      const done = await finished(started.runId)
      expect(done.status).toBe("succeeded")
      // a tool the client does not know is an error result, not a crash
      const unknown = await c.callTool({ name: "nope", arguments: {} })
      expect(unknown.isError).toBe(true)
    } finally {
      await c.close()
    }
  }, 120_000)

  it("refuses a missing or wrong key, and a tool the key's scopes do not allow", async () => {
    await expect(client("lt_wrong_token")).rejects.toThrow()
    const key = await call("POST", "/v1/api-keys", { name: "reader", scopes: ["runs:read"] })
    expect(key.status, key.text).toBe(201)
    const c = await client(key.json.key as string)
    try {
      const refused = await c.callTool({ name: "start_run", arguments: { agentName: "careful", input: "x" } })
      expect(refused.isError).toBe(true)
      expect(textOf(refused)).toContain("runs:write")
    } finally {
      await c.close()
    }
  }, 60_000)
})
