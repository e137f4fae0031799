// Run identity end to end against the real `lantern serve`: RunStarted journals the run's public key, a running
// run's token verifies at /.well-known/lantern-agent-identity/verify (no token, CORS), altered or misdirected
// tokens do not, unknown runs are no existence oracle, and a finished run gets no more tokens.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, readReply, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

const AUDIENCE = "https://tools.example.com"

const publicPost = async (path: string, body: unknown) =>
  readReply(
    await fetch(`${stack.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://else.example.com" },
      body: JSON.stringify(body)
    })
  )

const verify = (body: unknown) => publicPost("/.well-known/lantern-agent-identity/verify", body)

const run = async (agentName: string, input: unknown) => {
  const r = await call("POST", "/v1/runs", { agentName, input })
  expect(r.status, JSON.stringify(r.json)).toBe(201)
  return r.json.id as string
}

type Event = { type: string; payload: Record<string, any> }
const events = async (id: string): Promise<Array<Event>> => (await call("GET", `/v1/runs/${id}/events`)).json.items

beforeAll(async () => {
  nats = await startServer("lantern-identity")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  const tool = {
    name: "echo",
    description: "echo",
    parameters: { type: "object", properties: {} },
    approval: { expiresInSeconds: 600 }
  }
  for (
    const a of [
      { name: "careful", spec: { systemPrompt: "You are careful.", maxTurns: 4, tools: [tool] } },
      { name: "plain", spec: { systemPrompt: "You are plain.", maxTurns: 2 } }
    ]
  ) {
    const r = await call("POST", "/v1/agents", a)
    expect(r.status, JSON.stringify(r.json)).toBe(201)
  }
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("run identity", () => {
  it("journals the run's public key, mints its tokens and verifies them publicly", async () => {
    const id = await run("careful", "please echo hello")
    // the approval keeps the run running
    await eventually(
      async () => (await events(id)).some((e) => e.type === "StepStarted" && e.payload.request?._tag === "approval"),
      20_000,
      "the approval step"
    )
    const started = (await events(id)).find((e) => e.type === "RunStarted")!
    expect(started.payload.identity.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(started.payload.identity.keyId).toMatch(/^[0-9a-f]{16}$/)

    const minted = await call("POST", `/v1/runs/${id}/identity-token`, { audience: AUDIENCE, ttlSeconds: 120 })
    expect(minted.status, JSON.stringify(minted.json)).toBe(200)
    const token = minted.json.token as string
    expect(Date.parse(minted.json.expiresAt)).toBeGreaterThan(Date.now() + 60_000)
    const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString())
    expect(header).toEqual({ alg: "EdDSA", typ: "JWT", kid: started.payload.identity.keyId })

    const ok = await verify({ token, audience: AUDIENCE })
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({
      valid: true,
      runId: id,
      tenant: "dev",
      agent: "careful",
      claims: { iss: "lantern", sub: `run:dev/${id}`, aud: AUDIENCE }
    })
    expect((await verify({ token })).json.valid).toBe(true)

    // altered: the payload now claims another audience under the old signature
    const [h, p, s] = token.split(".")
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString())
    const tampered = `${h}.${
      Buffer.from(JSON.stringify({ ...claims, aud: "https://evil.example.com" })).toString("base64url")
    }.${s}`
    expect((await verify({ token: tampered })).json).toMatchObject({ valid: false, reason: "bad signature" })
    expect((await verify({ token, audience: "https://other.example.com" })).json).toMatchObject({
      valid: false,
      reason: "wrong audience"
    })
    expect((await verify({ token: "nonsense" })).json).toMatchObject({ valid: false, reason: "malformed" })

    // a token naming a run that does not exist is "unknown subject", never a 404
    const ghost = `${h}.${
      Buffer.from(JSON.stringify({ ...claims, sub: "run:dev/run_00000000000000000000000000" })).toString("base64url")
    }.${s}`
    const unknown = await verify({ token: ghost })
    expect(unknown.status).toBe(200)
    expect(unknown.json).toEqual({ valid: false, reason: "unknown subject" })

    // bad input is a 400 with CORS, so a browser can read it
    const invalid = await fetch(`${stack.url}/.well-known/lantern-agent-identity/verify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}"
    })
    expect(invalid.status).toBe(400)
    expect(invalid.headers.get("access-control-allow-origin")).toBe("*")

    const canceled = await call("POST", `/v1/runs/${id}/cancel`, { reason: "done testing" })
    expect(canceled.status).toBe(200)
    const after = await call("POST", `/v1/runs/${id}/identity-token`, { audience: AUDIENCE })
    expect(after.status).toBe(409)
  }, 60_000)

  it("serves issuer metadata and a CORS preflight without a token", async () => {
    const r = await fetch(`${stack.url}/.well-known/lantern-agent-identity`)
    expect(r.status).toBe(200)
    expect(r.headers.get("access-control-allow-origin")).toBe("*")
    expect(await r.json()).toMatchObject({
      issuer: "lantern",
      algorithm: "EdDSA",
      verify: "/.well-known/lantern-agent-identity/verify"
    })
    const pre = await fetch(`${stack.url}/.well-known/lantern-agent-identity/verify`, {
      method: "OPTIONS",
      headers: { origin: "https://else.example.com", "access-control-request-method": "POST" }
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get("access-control-allow-origin")).toBe("*")
    const verified = await verify({ token: "a.b.c" })
    expect(verified.status).toBe(200)
  })

  it("refuses tokens for a finished run (409), and checks the minting request", async () => {
    const id = await run("plain", "hello")
    await eventually(
      async () => (await call("GET", `/v1/runs/${id}`)).json?.status === "succeeded",
      30_000,
      "the run to succeed"
    )
    const r = await call("POST", `/v1/runs/${id}/identity-token`, { audience: AUDIENCE })
    expect(r.status).toBe(409)
    expect(r.json.error.code).toBe("run_already_finished")
    expect((await call("POST", `/v1/runs/${id}/identity-token`, { audience: AUDIENCE, ttlSeconds: 7200 })).status).toBe(
      400
    )
    expect(
      (await call("POST", "/v1/runs/run_00000000000000000000000000/identity-token", { audience: AUDIENCE })).status
    ).toBe(404)
    // the finished run's RunStarted still carries its identity
    expect((await events(id)).find((e) => e.type === "RunStarted")?.payload.identity?.keyId).toMatch(/^[0-9a-f]{16}$/)
  }, 60_000)
})
