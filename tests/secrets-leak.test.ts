// A secret used by a run leaves no trace: an agent names the tenant's own provider key as
// `lantern.secret://...` (routing.credentials); the run's model call authenticates with it (the provider saw
// it); another agent's HTTP tool sends another secret as its bearer (the API saw it); and then every message of every stream and KV bucket but the sealed secrets bucket, every row of every
// projection table, the process's whole output and every exported span are scanned for the value (and its
// base64): none holds it.
import { randomBytes } from "node:crypto"
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createServer, type Server } from "node:http"
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "../bus/NatsServer.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as Postgres from "./support/Postgres.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"

const postgres = Postgres.privateCluster()

/** The base URL a server started by `listen` answers on. */
const providerUrlOf = (server: Server) => {
  const address = server.address()
  return `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
}

const listen = async (server: Server) => {
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return `http://127.0.0.1:${port}`
}

/** Everything a request body carried, as text. */
const bodyOf = (req: import("node:http").IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => resolve(body))
  })

describe.skipIf(!postgres.available)(
  `a run that used a secret${postgres.available ? "" : ` — skipped: ${postgres.reason}`}`,
  () => {
    const secret = `sk-leak-${randomBytes(18).toString("hex")}`
    /** The bearer an HTTP tool sends its API (ADR 0043): scanned for like the provider key. */
    const toolSecret = `tk-leak-${randomBytes(18).toString("hex")}`
    /** A secret vended to a sandboxed workload (ADR 0046), which sends it to the API through the egress gate. */
    const workloadSecret = `wk-leak-${randomBytes(18).toString("hex")}`
    const workloadDir = mkdtempSync(join(tmpdir(), "lantern-leak-wl-"))
    const toolAuthorizations: Array<string> = []
    const authorizations: Array<string> = []
    const spans: Array<string> = []
    let provider: Server
    let collector: Server
    let nats: TestServer
    let db: Postgres.PrivateCluster
    let stack: StackProcess

    beforeAll(async () => {
      // an OpenAI-compatible provider that answers plainly and records how each call authenticated
      // it also serves the HTTP tool's API at /api/, recording how that was authenticated
      provider = createServer(async (req, res) => {
        const body = await bodyOf(req)
        if (req.url?.startsWith("/api/") === true) {
          toolAuthorizations.push(req.headers.authorization ?? "")
          res.writeHead(200, { "content-type": "application/json" }).end(`{"answer":"42"}`)
          return
        }
        authorizations.push(req.headers.authorization ?? "")
        const request = JSON.parse(body) as { tools?: Array<unknown>; messages: Array<{ role: string }> }
        // an agent with tools gets one call of its tool first, then the answer
        const callTool = (request.tools?.length ?? 0) > 0 && !request.messages.some((m) => m.role === "tool")
        const message = callTool
          ? {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: `{"q":"x"}` } }]
          }
          : { role: "assistant", content: "done" }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
          id: "chatcmpl-1",
          object: "chat.completion",
          created: 0,
          model: "fake-1",
          choices: [{ index: 0, message, finish_reason: callTool ? "tool_calls" : "stop" }],
          usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 }
        }))
      })
      const providerUrl = await listen(provider)
      collector = createServer(async (req, res) => {
        spans.push(await bodyOf(req))
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
      const collectorUrl = await listen(collector)
      nats = await startServer("lantern-secret-leak")
      if (!postgres.available) return
      db = await postgres.start()
      stack = await startStack({
        natsUrl: nats.handle.url,
        env: {
          OPENAI_API_KEY: "configured-deployment-key",
          OPENAI_BASE_URL: providerUrl,
          LANTERN_OPENAI_MODEL: "fake-1",
          OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl,
          DATABASE_URL: db.url,
          LANTERN_EGRESS_ALLOW_PRIVATE: "127.0.0.1",
          LANTERN_WORKLOAD_DIR: workloadDir
        }
      })
    }, 120_000)

    afterAll(async () => {
      await stack?.stop()
      await db?.stop()
      await nats?.cleanup()
      await new Promise<void>((r) => (provider === undefined ? r() : provider.close(() => r())))
      await new Promise<void>((r) => (collector === undefined ? r() : collector.close(() => r())))
    })

    it(
      "authenticates the model call with it, and no stream, bucket, row, log line or span holds its value",
      async () => {
        const call = api(stack)
        expect((await call("POST", "/v1/secrets", { name: "openai-key", value: secret })).status).toBe(201)
        const agent = await call("POST", "/v1/agents", {
          name: "byok",
          spec: { systemPrompt: "Answer.", routing: { credentials: { openai: "lantern.secret://openai-key" } } }
        })
        expect(agent.status, agent.text).toBe(201)
        const started = await call("POST", "/v1/runs", { agentName: "byok", input: "hello" })
        expect(started.status, started.text).toBe(201)
        const run = await eventually(
          async () => {
            const r = await call("GET", `/v1/runs/${started.json.id}`)
            return r.json?.status !== "running" ? r.json : null
          },
          30_000,
          "the run to finish"
        )
        expect(run.status, JSON.stringify(run.error)).toBe("succeeded")
        // the secret, not the deployment's key, authenticated the call
        expect(authorizations).toEqual([`Bearer ${secret}`])

        // an HTTP tool authenticated with another secret
        expect((await call("POST", "/v1/secrets", { name: "api-key", value: toolSecret })).status).toBe(201)
        const toolApi = new URL(providerUrlOf(provider))
        expect((await call("PUT", "/v1/egress", { hosts: [`127.0.0.1:${toolApi.port}`] })).status).toBe(200)
        const tooled = await call("POST", "/v1/agents", {
          name: "tooled",
          spec: {
            systemPrompt: "Look it up.",
            tools: [{
              name: "lookup",
              description: "Looks a thing up",
              parameters: { type: "object", properties: { q: { type: "string" } } },
              http: { method: "GET", url: `${toolApi.origin}/api/{q}`, auth: { bearer: "lantern.secret://api-key" } }
            }]
          }
        })
        expect(tooled.status, tooled.text).toBe(201)
        const toolRun = await call("POST", "/v1/runs", { agentName: "tooled", input: "what is it?" })
        expect(toolRun.status, toolRun.text).toBe(201)
        const toolDone = await eventually(
          async () => {
            const r = await call("GET", `/v1/runs/${toolRun.json.id}`)
            return r.json?.status !== "running" ? r.json : null
          },
          30_000,
          "the tool run to finish"
        )
        expect(toolDone.status, JSON.stringify(toolDone.error)).toBe("succeeded")
        expect(toolAuthorizations).toEqual([`Bearer ${toolSecret}`])
        toolAuthorizations.length = 0
        // a sandboxed workload gets a third secret vended and sends it to the API through the egress gate
        expect((await call("POST", "/v1/secrets", { name: "wl-key", value: workloadSecret })).status).toBe(201)
        const script =
          `const u = new URL(process.env.HTTP_PROXY); require("node:http").get({ host: u.hostname, port: u.port, ` +
          `path: "${toolApi.origin}/api/workload", headers: { authorization: "Bearer " + process.env.WL_KEY } }, ` +
          `(m) => { console.log("api answered " + m.statusCode); process.exit(0) })`
        const workload = await call("POST", "/v1/workloads", {
          apiVersion: "lantern.dev/v1",
          kind: "AgentSpec",
          metadata: { name: "leak-probe" },
          spec: {
            command: [process.execPath, "-e", script],
            isolation: "trusted",
            limits: { vcpu: 1, memoryMb: 256, timeoutSeconds: 60 },
            network: "allowlist",
            egressRules: [{ host: "127.0.0.1", ports: [Number(toolApi.port)] }],
            secrets: [{ envName: "WL_KEY", secretRef: "lantern.secret://wl-key" }]
          }
        })
        expect(workload.status, workload.text).toBe(201)
        const ended = await eventually(
          async () => {
            const r = await call("GET", `/v1/workloads/${workload.json.id}`)
            return ["exited", "terminated", "failed"].includes(r.json?.state) ? r.json : null
          },
          60_000,
          "the workload to end"
        )
        expect(ended.exitCode, JSON.stringify(ended)).toBe(0)
        expect(toolAuthorizations).toContain(`Bearer ${workloadSecret}`)

        // the run's spans have reached the collector, and the projections have the run
        await eventually(async () => spans.some((s) => s.includes(started.json.id)), 20_000, "the run's spans")
        await eventually(
          async () =>
            (await call("GET", `/v1/runs?agentName=byok`)).json?.items?.length === 1 &&
            (await call("GET", `/v1/runs?agentName=tooled`)).json?.items?.[0]?.status === "succeeded",
          20_000,
          "the projected run"
        )

        const needles = [secret, toolSecret, workloadSecret].flatMap((x) => [
          x,
          Buffer.from(x).toString("base64"),
          Buffer.from(x).toString("base64url")
        ])
        const leaks: Array<string> = []
        const scan = (where: string, text: string) => {
          for (const n of needles) if (text.includes(n)) leaks.push(where)
        }

        // every message of every stream, KV buckets included, but the sealed secrets themselves
        const nc = await connect({ servers: nats.handle.url })
        let messages = 0
        try {
          const jsm = await jetstreamManager(nc)
          for await (const info of jsm.streams.list()) {
            const name = info.config.name
            if (name === "KV_lantern-secrets") continue
            for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
              const m = await jsm.streams.getMessage(name, { seq }).catch(() => null)
              if (m === null) continue
              messages++
              scan(
                `${name} #${seq} ${m.subject}`,
                `${m.string()} ${m.header === undefined ? "" : JSON.stringify([...m.header])}`
              )
            }
          }
        } finally {
          await nc.close()
        }
        expect(messages).toBeGreaterThan(10)

        // every row of every table of the projections (as the owner, across tenants)
        const client = new pg.Client({ connectionString: db.url })
        await client.connect()
        let rows = 0
        try {
          const tables = await client.query(
            `select table_name from information_schema.tables where table_schema = 'public'`
          )
          for (const { table_name } of tables.rows as Array<{ table_name: string }>) {
            const all = await client.query(`select * from "${table_name}"`)
            rows += all.rows.length
            scan(`table ${table_name}`, JSON.stringify(all.rows))
          }
        } finally {
          await client.end()
        }
        expect(rows).toBeGreaterThan(5)

        scan("lantern serve output", stack.output())
        // the harnesses' own logs and whatever they leave in the workloads' folders
        const walk = (dir: string): Array<string> =>
          readdirSync(dir).flatMap((name) => {
            const path = join(dir, name)
            const st = statSync(path)
            return st.isDirectory() ? walk(path) : st.isFile() ? [path] : []
          })
        const files = walk(workloadDir)
        expect(files.some((f) => f.endsWith("harness.log"))).toBe(true)
        for (const file of files) scan(file, readFileSync(file, "utf8"))
        scan("exported spans", spans.join("\n"))
        expect(leaks).toEqual([])
      },
      120_000
    )
  }
)
