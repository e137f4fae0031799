// End to end over HTTP against the real `lantern serve` process, a real nats-server and PGlite: agents,
// versions, runs with tools, the journal, live SSE (its terminal event leaving with the end of the response),
// idempotency, cancel, pagination.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as RawHttp from "./support/RawHttp.ts"
import { TOOL_TURN_JOURNAL } from "./support/Scripted.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

const calcAgent = {
  name: "calc",
  description: "does arithmetic",
  spec: {
    systemPrompt: "You compute.",
    maxTurns: 4,
    tools: [{
      name: "calculator",
      description: "arithmetic",
      parameters: { type: "object", properties: { expression: { type: "string" } } }
    }]
  }
}

const waitTerminal = (id: string) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/runs/${id}`)
      return r.json?.status !== "running" ? r.json : null
    },
    30_000,
    `run ${id} to finish`
  )

beforeAll(async () => {
  nats = await startServer("lantern-e2e")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
}, 240_000)

afterAll(async () => {
  try {
    const code = await stack?.stop()
    expect(stack.child.signalCode).toBeNull() // exited by itself after SIGTERM, not killed
    expect(code).not.toBeNull()
  } finally {
    await nats?.cleanup()
  }
})

describe("agents", () => {
  it("creates, reads, versions and lists an agent", async () => {
    const created = await call("POST", "/v1/agents", calcAgent)
    expect(created.status).toBe(201)
    expect(created.json).toMatchObject({ name: "calc", latestVersion: 1, spec: { model: "auto", maxTurns: 4 } })
    expect(created.json.digest).toMatch(/^sha256:[0-9a-f]{64}$/)

    expect((await call("POST", "/v1/agents", calcAgent)).status).toBe(409)
    expect((await call("GET", "/v1/agents/calc")).json.latestVersion).toBe(1)

    const same = await call("PUT", "/v1/agents/calc", { spec: calcAgent.spec })
    expect(same.status).toBe(200)
    expect(same.json.latestVersion).toBe(1) // unchanged spec: no new version

    const changed = await call("PUT", "/v1/agents/calc", { spec: { ...calcAgent.spec, maxTurns: 5 } })
    expect(changed.json.latestVersion).toBe(2)
    expect(changed.json.digest).not.toBe(created.json.digest)

    const versions = await call("GET", "/v1/agents/calc/versions")
    expect(versions.json.items.map((v: { version: number }) => v.version)).toEqual([1, 2])
    expect(versions.json.items[0].spec.maxTurns).toBe(4)

    const list = await eventually(
      async () => {
        const r = await call("GET", "/v1/agents")
        return r.json.items.find((a: { name: string; latestVersion: number }) =>
            a.name === "calc" && a.latestVersion === 2
          )
          ? r.json
          : null
      },
      10_000,
      "agent projection"
    )
    expect(list.items).toHaveLength(1)
  })
})

describe("runs", () => {
  it("runs an agent with a tool to success, with output, tokens, steps and its journal", async () => {
    await call("PUT", "/v1/agents/calc", { spec: calcAgent.spec })
    const started = await call("POST", "/v1/runs", { agentName: "calc", input: "use the calculator on 2+3*4" })
    expect(started.status).toBe(201)
    expect(started.json.id).toMatch(/^run_[0-9a-z]{26}$/)
    expect(started.json.agentVersion).toBe(3)
    const run = await waitTerminal(started.json.id)
    expect(run).toMatchObject({ status: "succeeded", steps: 3, error: null })
    expect(run.output).toContain("14")
    expect(run.tokensIn).toBeGreaterThan(0)
    expect(run.tokensOut).toBeGreaterThan(0)
    expect(run.finishedAt).not.toBeNull()

    const events = await call("GET", `/v1/runs/${started.json.id}/events`)
    // the calculator is a built-in tool: performed first, journaled once, its completion carrying its request, with
    // the answer of the model step that asked for it (one StepsCompleted, ADR 0075)
    expect(events.json.items.map((e: { type: string }) => e.type)).toEqual(TOOL_TURN_JOURNAL)
    const [answer, tool] = events.json.items[2].payload.steps
    expect(tool.result).toEqual({ _tag: "tool", callId: "call_0", output: "14" })
    expect(tool.request).toMatchObject({ _tag: "tool", call: { name: "calculator" } })
    expect(answer.result.answer.provider).toBe("offline")
    expect(answer.request).toBeUndefined()
    expect(events.json.items.every((e: { correlationId: string }) => e.correlationId === started.json.id)).toBe(true)
  })

  it("streams a run's events live over SSE and ends after the terminal event", async () => {
    const started = await call("POST", "/v1/runs", { agentName: "calc", input: "calculator: (1+2)*3" })
    const response = await fetch(`${stack.url}/v1/runs/${started.json.id}/stream`, {
      headers: { authorization: `Bearer ${stack.token}` }
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const text = await response.text() // resolves only because the stream ends after RunSucceeded
    const types = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])
    expect(types[0]).toBe("RunStarted")
    expect(types[types.length - 1]).toBe("RunSucceeded")
    // ids are the events' positions in the run's journal, 1…N, whatever else the stream holds
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    expect(ids).toEqual(types.map((_, i) => i + 1))
    const listed = await call("GET", `/v1/runs/${started.json.id}/events`)
    expect(listed.json.items.map((e: { position: number }) => e.position)).toEqual(ids)

    // resuming after the third event replays from the fourth
    const resumed = await fetch(`${stack.url}/v1/runs/${started.json.id}/stream`, {
      headers: { authorization: `Bearer ${stack.token}`, "last-event-id": "3" }
    })
    const replayed = await resumed.text()
    expect([...replayed.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual(ids.slice(3))
    expect([...replayed.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])).toEqual(types.slice(3))

    // resuming after the terminal event of a finished run ends at once, with no event (it used to ping forever)
    const after = await fetch(`${stack.url}/v1/runs/${started.json.id}/stream`, {
      headers: { authorization: `Bearer ${stack.token}`, "last-event-id": String(ids[ids.length - 1]) },
      signal: AbortSignal.timeout(20_000)
    })
    expect(await after.text()).not.toMatch(/^event:/m)
  })

  it("starts a run and follows it in one response: the run, then its events to the terminal one (ADR 0082)", async () => {
    const start = (body: unknown, headers: Record<string, string> = {}, token = stack.token) =>
      fetch(`${stack.url}/v1/runs/stream`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000)
      })
    const response = await start({ agentName: "calc", input: "calculator: (1+2)*3" }, { "idempotency-key": "stream-7" })
    expect(response.status).toBe(201)
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const text = await response.text() // resolves only because the stream ends after RunSucceeded
    const first = /^event: run\ndata: (.*)$/m.exec(text)
    expect(first).not.toBeNull()
    const run = JSON.parse(first![1]!)
    expect(run).toMatchObject({ agentName: "calc", status: "running" })
    expect(response.headers.get("location")).toBe(`/v1/runs/${run.id}`)
    // then the journal, as the run's own stream sends it: ids 1…N, RunStarted first, the terminal event last
    const types = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])
    expect(types[0]).toBe("run")
    expect(types[1]).toBe("RunStarted")
    expect(types[types.length - 1]).toBe("RunSucceeded")
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    expect(ids).toEqual(types.slice(1).map((_, i) => i + 1))
    const listed = await call("GET", `/v1/runs/${run.id}/events`)
    expect(listed.json.items.map((e: { type: string }) => e.type)).toEqual(types.slice(1))

    // the same key again follows the same run from its first event: 200, nothing started
    const again = await start({ agentName: "calc", input: "calculator: (1+2)*3" }, { "idempotency-key": "stream-7" })
    expect(again.status).toBe(200)
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    const replayed = await again.text()
    expect(JSON.parse(/^event: run\ndata: (.*)$/m.exec(replayed)![1]!).id).toBe(run.id)
    expect([...replayed.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])).toEqual(types)

    // refused before anything starts, as POST /v1/runs is: a field it does not know, an agent it does not have
    const bad = await start({ agentName: "calc", input: "x", stream: true })
    expect(bad.status).toBe(400)
    expect(await bad.text()).toContain("stream")
    expect((await start({ agentName: "no-such-agent", input: "x" })).status).toBe(404)
    // a key that may start runs but not read them is refused (its answer would be the run's events)
    const writer = (await call("POST", "/v1/api-keys", { name: "stream-writer", scopes: ["runs:write"] })).json.key
    // the list is a projection (eventually consistent): each count is taken once it shows a run started last, so
    // every run journaled before that one is in it
    const listedWith = (id: string) =>
      eventually(
        async () => {
          const items: ReadonlyArray<{ id: string }> = (await call("GET", "/v1/runs?limit=200")).json.items
          return items.some((r) => r.id === id) ? items.length : null
        },
        30_000,
        `run ${id} in the list`
      )
    const before = await listedWith(run.id)
    const refused = await start({ agentName: "calc", input: "x" }, {}, writer)
    expect(refused.status).toBe(403)
    expect(await refused.text()).toContain("runs:read")
    // a run started after the refusal: once it is listed, a run the refusal had started would be too
    const marker = (await call("POST", "/v1/runs", { agentName: "calc", input: "hello" })).json.id
    expect(await listedWith(marker)).toBe(before + 1)
  })

  it("sends a run's terminal event with the end of its response, so a client that stops there keeps its connection (ADR 0087)", async () => {
    const raw = await RawHttp.open(stack.url)
    try {
      const body = JSON.stringify({ agentName: "calc", input: "calculator: (2+3)*4" })
      raw.send(
        "POST /v1/runs/stream HTTP/1.1",
        { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
        body
      )
      // the read that brings the terminal event ends the response too (the chunked encoding's last chunk), so the
      // connection is free at once: it answers the next request
      const { read, next } = await RawHttp.lastAndNext(raw, /event: RunSucceeded\n/)
      expect(read).toMatch(RawHttp.ENDS_RESPONSE)
      expect(next).toContain("ok")
    } finally {
      raw.socket.destroy()
    }
  })

  it("honours Idempotency-Key: same body returns the same run, a different body is refused", async () => {
    const headers = { "idempotency-key": "order-42" }
    const first = await call("POST", "/v1/runs", { agentName: "calc", input: "hello" }, headers)
    const again = await call("POST", "/v1/runs", { agentName: "calc", input: "hello" }, headers)
    expect(first.status).toBe(201)
    expect(again.status).toBe(200)
    expect(again.json.id).toBe(first.json.id)
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    const other = await call("POST", "/v1/runs", { agentName: "calc", input: "something else" }, headers)
    expect(other.status).toBe(409)
    expect(other.json.error.code).toBe("idempotency_key_reused")
    const events = await call("GET", `/v1/runs/${first.json.id}/events`)
    expect(events.json.items.filter((e: { type: string }) => e.type === "RunStarted")).toHaveLength(1)
  })

  it("pins the version a run started with and can start a given version", async () => {
    const pinned = await call("POST", "/v1/runs", { agentName: "calc", input: "hi", agentVersion: 1 })
    expect(pinned.json.agentVersion).toBe(1)
    const missing = await call("POST", "/v1/runs", { agentName: "calc", input: "hi", agentVersion: 99 })
    expect(missing.status).toBe(404)
    expect(missing.json.error.code).toBe("agent_version_not_found")
  })

  it("lists runs newest first with filters and cursor pagination", async () => {
    await call("POST", "/v1/agents", { name: "lister", spec: { systemPrompt: "list me" } })
    const ids: Array<string> = []
    for (let i = 0; i < 5; i++)
      ids.push((await call("POST", "/v1/runs", { agentName: "lister", input: `n${i}` })).json.id)
    await Promise.all(ids.map(waitTerminal))
    const pages: Array<string> = []
    let cursor: string | null = null
    await eventually(
      async () => {
        const r = await call("GET", "/v1/runs?agentName=lister&status=succeeded&limit=100")
        return r.json.items.length === 5
      },
      10_000,
      "run projection"
    )
    do {
      const r: Awaited<ReturnType<typeof call>> = await call(
        "GET",
        `/v1/runs?agentName=lister&limit=2${cursor === null ? "" : `&cursor=${cursor}`}`
      )
      expect(r.status).toBe(200)
      pages.push(...r.json.items.map((x: { id: string }) => x.id))
      cursor = r.json.nextCursor
    } while (cursor !== null)
    expect(pages).toEqual([...ids].reverse())
    const failed = await call("GET", "/v1/runs?agentName=lister&status=failed")
    expect(failed.json.items).toEqual([])
  })

  it("refuses to cancel a finished run and 404s an unknown one", async () => {
    const started = await call("POST", "/v1/runs", { agentName: "calc", input: "x" })
    await waitTerminal(started.json.id)
    const cancel = await call("POST", `/v1/runs/${started.json.id}/cancel`, { reason: "too late" })
    expect(cancel.status).toBe(409)
    expect(cancel.json.error.code).toBe("run_already_finished")
    expect((await call("POST", "/v1/runs/run_0000000000000000000000000z/cancel")).status).toBe(404)
    expect((await call("GET", "/v1/runs/run_0000000000000000000000000z")).status).toBe(404)
    expect((await call("GET", "/v1/runs/run_0000000000000000000000000z/stream")).status).toBe(404)
  })
})

describe("operations", () => {
  it("answers health, readiness and the OpenAPI document", async () => {
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200)
    const ready = await fetch(`${stack.url}/readyz`)
    // the stack runs against a test nats-server of its own (NATS_URL): its version shows, its sync is its config's
    expect(await ready.json()).toEqual({
      bus: "ok",
      database: "ok",
      deadLetters: 0,
      nats: { version: expect.stringMatching(/^2\.(1[2-9]|[2-9]\d)\.\d+/), sync: "server-configured" }
    })
    const doc = await call("GET", "/v1/openapi.json")
    expect(doc.status).toBe(200)
    expect(doc.json.openapi).toBe("3.1.0")
    expect(Object.keys(doc.json.paths)).toContain("/v1/runs/{id}/stream")
    expect(doc.json.paths["/v1/agents"].post.requestBody.content["application/json"].schema.properties).toHaveProperty(
      "spec"
    )
  })

  it("keeps the token out of everything it prints", async () => {
    expect(stack.output()).not.toContain(stack.token)
  })
})

describe("read your writes", () => {
  it("a GET right after the stream's terminal event shows the finished run", async () => {
    for (let i = 0; i < 3; i++) {
      const started = await call("POST", "/v1/runs", { agentName: "calc", input: `calculator: ${i}+1` })
      const stream = await fetch(`${stack.url}/v1/runs/${started.json.id}/stream`, {
        headers: { authorization: `Bearer ${stack.token}` }
      })
      expect(await stream.text()).toContain("event: RunSucceeded")
      const run = await call("GET", `/v1/runs/${started.json.id}`)
      expect(run.json.status).toBe("succeeded")
      expect(run.json.steps).toBe(3)
    }
  })
})
