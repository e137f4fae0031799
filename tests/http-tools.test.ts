// HTTP tools end to end (ADR 0043): an agent's tool answered by a local API with a vended bearer secret, the tenant's
// egress allowlist, private addresses refused, and a non-idempotent call never repeated after its host is killed
// mid-call (an idempotent one is, with the same Idempotency-Key). The offline model calls the tools its input names.
import { createServer, type IncomingMessage, type Server } from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { freePort } from "../bus/NatsServer.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, startStack } from "./support/Stack.ts"

const SECRET = "wx-secret-3f9a1c7e5b2d4068"

interface Hit {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  readonly key: string | undefined
  readonly body: string
}

let nats: TestServer
let dir: string
let server: Server
let base: string
let port: number
const hits: Array<Hit> = []
/** Requests to /orders wait while this holds. */
let holdOrders = false
const held: Array<() => void> = []

const bodyOf = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => resolve(body))
  })

beforeAll(async () => {
  nats = await startServer("lantern-http-tools")
  dir = mkdtempSync(join(tmpdir(), "lantern-http-tools-"))
  server = createServer(async (req, res) => {
    const body = await bodyOf(req)
    const path = req.url ?? ""
    hits.push({
      method: req.method ?? "",
      path,
      authorization: req.headers["authorization"],
      key: req.headers["idempotency-key"] as string | undefined,
      body
    })
    if (path.startsWith("/weather/")) {
      if (req.headers["authorization"] !== `Bearer ${SECRET}`) {
        res.writeHead(401).end("no")
        return
      }
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({ data: { temp: 21, city: decodeURIComponent(path.slice(9)) } })
      )
      return
    }
    if (path.startsWith("/orders")) {
      const answer = () => res.writeHead(201, { "content-type": "application/json" }).end(`{"order":"o-1"}`)
      if (holdOrders) held.push(answer)
      else answer()
      return
    }
    res.writeHead(404).end()
  })
  port = await freePort()
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  base = `http://127.0.0.1:${port}`
}, 30_000)

afterAll(async () => {
  for (const release of held) release()
  await new Promise<void>((r) => server.close(() => r()))
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const host = async (home: string) => {
  const stack = await startStack({
    natsUrl: nats.handle.url,
    home,
    env: { LANTERN_EGRESS_ALLOW_PRIVATE: "127.0.0.1", LANTERN_WATCHDOG_INTERVAL: "200 millis" }
  })
  onTestFailed(() => console.error(`--- host ${stack.child.pid} ---\n${stack.output()}`))
  return stack
}

type Call = ReturnType<typeof api>

const tool = (name: string, http: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  description: name,
  parameters: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
  http,
  ...extra
})

const createAgent = async (call: Call, name: string, tools: ReadonlyArray<unknown>) => {
  const r = await call("POST", "/v1/agents", { name, spec: { systemPrompt: "Use the tools.", tools } })
  expect(r.status, r.text).toBe(201)
}

const finished = (call: Call, id: string) =>
  eventually(
    async () => {
      const r = (await call("GET", `/v1/runs/${id}`).catch(() => null))?.json
      return r !== undefined && r !== null && r.status !== undefined && r.status !== "running" ? r : null
    },
    60_000,
    `run ${id} to finish`
  )

const toolOutputs = async (call: Call, id: string): Promise<Array<string>> =>
  ((await call("GET", `/v1/runs/${id}/events`)).json.items as Array<any>)
    .filter((e) => e.type === "StepCompleted" && e.payload.result._tag === "tool")
    .map((e) => e.payload.result.output)

const run = async (call: Call, agentName: string, input: string) => {
  const r = await call("POST", "/v1/runs", { agentName, input })
  expect(r.status, r.text).toBe(201)
  return r.json.id as string
}

describe("an HTTP tool", () => {
  it(
    "calls the API with the vended secret, the step's key and the allowlist; the secret is nowhere in the run",
    async () => {
      const stack = await host(join(dir, "weather"))
      const call = api(stack)
      expect((await call("POST", "/v1/secrets", { name: "weather-key", value: SECRET })).status).toBe(201)
      const weather = tool("get_weather", {
        method: "GET",
        url: `${base}/weather/{text}`,
        auth: { bearer: "lantern.secret://weather-key" },
        responsePath: "data.temp"
      })
      await createAgent(call, "weatherbot", [weather])

      // no allowlist yet: nothing is reachable
      const refused = await run(call, "weatherbot", "get_weather Paris")
      await finished(call, refused)
      expect((await toolOutputs(call, refused))[0]).toContain("not on this tenant's egress allowlist")
      expect(hits).toEqual([])

      const set = await call("PUT", "/v1/egress", { hosts: [`127.0.0.1:${port}`] })
      expect(set.status, set.text).toBe(200)
      expect((await call("GET", "/v1/egress")).json).toEqual({ hosts: [`127.0.0.1:${port}`] })
      const id = await run(call, "weatherbot", "get_weather Paris")
      const done = await finished(call, id)
      expect(done.status).toBe("succeeded")
      expect(await toolOutputs(call, id)).toEqual(["21"])
      const hit = hits.find((h) => h.path.startsWith("/weather/"))!
      expect(hit.authorization).toBe(`Bearer ${SECRET}`)
      expect(hit.key).toMatch(new RegExp(`^${id}:[a-z0-9:._-]+:1$`))
      // the secret's value is in no event of the run
      const everything = JSON.stringify((await call("GET", `/v1/runs/${id}/events`)).json)
      expect(everything).not.toContain(SECRET)
      expect(stack.output()).not.toContain(SECRET)
      await stack.kill()
    },
    120_000
  )

  it("refuses private and metadata addresses even when the allowlist names them", async () => {
    const stack = await host(join(dir, "private"))
    const call = api(stack)
    await call("PUT", "/v1/egress", { hosts: ["10.1.2.3", "169.254.169.254", "localhost"] })
    await createAgent(call, "snoop", [
      tool("internal", { method: "GET", url: "http://10.1.2.3/admin?q={text}" }),
      tool("metadata", { method: "GET", url: "http://169.254.169.254/latest/meta-data/{text}" }),
      tool("local_name", { method: "GET", url: "http://localhost:1/{text}" })
    ])
    const id = await run(call, "snoop", "internal metadata local_name")
    await finished(call, id)
    const outputs = await toolOutputs(call, id)
    expect(outputs).toHaveLength(3)
    expect(outputs[0]).toContain("10.1.2.3 is a private address")
    expect(outputs[1]).toContain("169.254.169.254 is a private address")
    // a name that resolves to loopback (127.0.0.1 is allowed here by address, ::1 is not): refused or unreachable
    expect(outputs[2]).toMatch(/^error: /)
    await stack.kill()
  }, 120_000)

  it(
    "answers 400 naming the field for a URL placeholder no parameter declares, and for a built-in's name",
    async () => {
      const stack = await host(join(dir, "bad"))
      const call = api(stack)
      const bad = await call("POST", "/v1/agents", {
        name: "bad-http",
        spec: { systemPrompt: "x", tools: [tool("lookup", { method: "GET", url: `${base}/x/{nope}` })] }
      })
      expect(bad.status).toBe(400)
      expect(bad.json.error.issues.map((i: { field: string }) => i.field)).toContain("spec.tools[0].http.url")
      const builtin = await call("POST", "/v1/agents", {
        name: "bad-http",
        spec: { systemPrompt: "x", tools: [tool("calculator", { method: "GET", url: `${base}/x` })] }
      })
      expect(builtin.status).toBe(400)
      expect(builtin.json.error.issues.map((i: { field: string }) => i.field)).toContain("spec.tools[0].name")
      await stack.kill()
    },
    120_000
  )
})

describe("a host killed while its HTTP call is in flight", () => {
  for (const idempotent of [false, true]) {
    it(
      `${
        idempotent ? "repeats an idempotent call with the same key" : "does not repeat a call that is not idempotent"
      }`,
      async () => {
        const home = join(dir, `orders-${idempotent}`)
        const first = await host(home)
        const call = api(first)
        await call("PUT", "/v1/egress", { hosts: [`127.0.0.1:${port}`] })
        const name = idempotent ? "orderer-idem" : "orderer"
        await createAgent(call, name, [
          tool("place_order", { method: "POST", url: `${base}/orders`, body: "json" }, { idempotent })
        ])
        const before = hits.filter((h) => h.path === "/orders").length
        holdOrders = true
        const id = await run(call, name, "place_order for one lantern")
        await eventually(async () => hits.filter((h) => h.path === "/orders").length > before, 30_000, "the call")
        await first.kill()
        holdOrders = false
        for (const release of held.splice(0)) release()
        const second = await host(home)
        const again = api(second)
        const done = await finished(again, id)
        expect(done.status).toBe("succeeded")
        const orders = hits.filter((h) => h.path === "/orders").slice(before)
        const output = (await toolOutputs(again, id))[0]!
        if (idempotent) {
          expect(orders).toHaveLength(2)
          expect(orders[1]!.key).toBe(orders[0]!.key)
          expect(output).toBe(`{"order":"o-1"}`)
        } else {
          expect(orders).toHaveLength(1)
          expect(output).toContain("not idempotent, so it was not repeated")
        }
        expect(JSON.parse(orders[0]!.body)).toEqual({ text: "place_order for one lantern" })
        await second.kill()
      },
      180_000
    )
  }
})
