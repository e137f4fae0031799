// The client SDK (@lantern/sdk, sdk/) against the real `lantern serve` on a real nats-server: agents, a run started
// and streamed to its end, a stream resumed after a drop (by the caller, and by the SDK when the connection breaks),
// receipts verified offline and a tampered journal refused, typed errors, an approval and a cancel, keys, secrets and
// budgets; and around it: the generated types match the document, every operation of the served document has an SDK
// method that reaches it, and the package builds.
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { document } from "../edge/OpenApi.ts"
import { render, TARGET } from "../scripts/sdk-types.ts"
import {
  Lantern,
  LanternError,
  ROUTES,
  type Run,
  type RunActivity,
  type RunEvent,
  type RunFollowed
} from "../sdk/src/index.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { eventually, ROOT, startStack, type StackProcess, stopStack } from "./support/Stack.ts"

const NODE = join(ROOT, "node_modules/.bin/node")
const TERMINAL = ["RunSucceeded", "RunFailed", "RunCanceled"]

const calc = {
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

let nats: TestServer
let stack: StackProcess
let lantern: Lantern

const collect = async <A = RunEvent>(events: AsyncIterable<A>) => {
  const out: Array<A> = []
  for await (const e of events) out.push(e)
  return out
}

/** The run a `runs.follow` answered first. */
const runOf = (first: RunFollowed | undefined) => {
  if (first?.type !== "run" || !("run" in first))
    throw new Error(`the first item is not the run: ${JSON.stringify(first)}`)
  return first.run
}

const finished = (id: string) =>
  eventually(
    async () => {
      const run = await lantern.runs.get(id)
      return run.status === "running" ? null : run
    },
    30_000,
    `run ${id} to finish`
  )

const caught = async (p: Promise<unknown>): Promise<LanternError> => {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(LanternError)
    return e as LanternError
  }
  throw new Error("expected a LanternError")
}

beforeAll(async () => {
  nats = await startServer("lantern-sdk")
  stack = await startStack({ natsUrl: nats.handle.url })
  lantern = new Lantern({ baseUrl: stack.url, apiKey: stack.token })
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("the SDK against a real stack", () => {
  let run: Run

  it("creates, reads, updates and lists an agent, with the server's field names", async () => {
    const created = await lantern.agents.create(calc)
    expect(created).toMatchObject({ name: "calc", latestVersion: 1, spec: { maxTurns: 4 } })
    expect((await lantern.agents.get("calc")).digest).toBe(created.digest)
    const updated = await lantern.agents.update("calc", { spec: { ...calc.spec, maxTurns: 5 } })
    expect(updated.latestVersion).toBe(2)
    expect((await lantern.agents.versions("calc")).items.map((v) => v.version)).toEqual([1, 2])
    // lists read the projections, which follow the journal a moment later
    await eventually(async () => (await lantern.agents.list()).items.some((a) => a.name === "calc"), 20_000, "the list")
  })

  it("starts a run (once per idempotency key) and streams it to its terminal event", async () => {
    run = await lantern.runs.create({ agentName: "calc", input: "what is 6*7?", idempotencyKey: "sdk-run-1" })
    expect(run).toMatchObject({ agentName: "calc", agentVersion: 2 })
    const again = await lantern.runs.create({ agentName: "calc", input: "what is 6*7?", idempotencyKey: "sdk-run-1" })
    expect(again.id).toBe(run.id)

    const events = await collect(lantern.runs.stream(run.id))
    expect(events.map((e) => e.position)).toEqual(events.map((_, i) => i + 1))
    expect(events[0]!.type).toBe("RunStarted")
    expect(TERMINAL).toContain(events[events.length - 1]!.type)
    const journal = await lantern.runs.events(run.id)
    expect(events.map((e) => e.eventId)).toEqual(journal.items.map((e) => e.eventId))
    await eventually(
      async () => (await lantern.runs.list({ agentName: "calc" })).items.some((r) => r.id === run.id),
      20_000,
      "the run in the list"
    )
  })

  it("starts and follows a run in one request, and resumes the rest after a dropped connection (ADR 0082)", async () => {
    const followed = await collect(lantern.runs.follow({ agentName: "calc", input: "what is 5*5?" }))
    expect(followed[0]).toMatchObject({ type: "run", run: { agentName: "calc", status: "running" } })
    const id = runOf(followed[0]).id
    const events = followed.slice(1) as Array<RunEvent>
    expect(events.map((e) => e.position)).toEqual(events.map((_, i) => i + 1))
    expect(TERMINAL).toContain(events[events.length - 1]!.type)
    expect(events.map((e) => e.eventId)).toEqual((await lantern.runs.events(id)).items.map((e) => e.eventId))

    // the start's answer cut after its second event: the rest comes from the run's own stream, after position 2
    const urls: Array<string> = []
    const cutting: typeof fetch = async (input, init) => {
      urls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`)
      const res = await fetch(input, init)
      if (init?.method !== "POST") return res
      const text = await res.text()
      const cut = text.indexOf("\n\n", text.indexOf("id: 2\n")) + 2
      return new Response(text.slice(0, cut), { status: res.status, headers: res.headers })
    }
    const sdk = new Lantern({ baseUrl: stack.url, apiKey: stack.token, fetch: cutting })
    const resumed = await collect(sdk.runs.follow({ agentName: "calc", input: "what is 9*9?" }, { retryDelayMs: 10 }))
    const resumedId = runOf(resumed[0]).id
    expect(urls).toEqual(["POST /v1/runs/stream", `GET /v1/runs/${resumedId}/stream`])
    expect(resumed.slice(1).map((e) => (e as RunEvent).eventId)).toEqual(
      (await lantern.runs.events(resumedId)).items.map((e) => e.eventId)
    )
    // a refusal comes before anything starts, as a LanternError
    expect(await caught(collect(lantern.runs.follow({ agentName: "no-such-agent", input: "x" })))).toMatchObject({
      status: 404
    })
  })

  it("resumes from a lastEventId after the caller dropped the stream", async () => {
    const all = (await lantern.runs.events(run.id)).items
    expect(all.length).toBeGreaterThan(2)
    const first: Array<RunEvent> = []
    for await (const e of lantern.runs.stream(run.id)) {
      first.push(e)
      if (first.length === 2) break
    }
    const rest = await collect(lantern.runs.stream(run.id, { lastEventId: first[1]!.position! }))
    expect([...first, ...rest].map((e) => e.eventId)).toEqual(all.map((e) => e.eventId))
    // a client that has everything gets an empty stream that ends
    expect(await collect(lantern.runs.stream(run.id, { lastEventId: all.length }))).toEqual([])
  })

  it("follows the tenant's run activity after a frame's seq, one frame per event of every run", async () => {
    // after the last event of the suite's first run: what follows is the runs started since, this one among them
    const after = (await lantern.runs.events(run.id)).items.at(-1)!.seq
    const live = await lantern.runs.create({ agentName: "calc", input: "what is 3+4?" })
    const framesOf = async (lastEventId: number, count: number) => {
      const out: Array<RunActivity> = []
      for await (const f of lantern.runs.activity({ lastEventId })) {
        if (f.runId === live.id) out.push(f)
        if (out.length === count || f.type === "RunSucceeded" && f.runId === live.id) break
      }
      return out
    }
    const frames = await framesOf(after, Infinity)
    const journal = (await lantern.runs.events(live.id)).items
    expect(frames.map((f) => [f.type, f.seq])).toEqual(journal.map((e) => [e.type, e.seq]))
    expect(frames.at(-1)!.status).toBe("succeeded")
    expect(await framesOf(frames[1]!.seq, frames.length - 2)).toEqual(frames.slice(2))
  })

  it("resumes by itself when the connection breaks mid-stream, sending Last-Event-ID", async () => {
    const live = await lantern.runs.create({ agentName: "calc", input: "what is 2+2?" })
    const streams: Array<string | null> = []
    // the first connection of the stream is cut after its first event, as a proxy or a network would
    const cutting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      if (!String(input).endsWith("/stream")) return res
      streams.push(new Headers(init?.headers).get("last-event-id"))
      if (streams.length > 1) return res
      const reader = res.body!.getReader()
      let seen = ""
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          // held back until the first event's frame is whole, then exactly up to its end, then the connection breaks
          for (;;) {
            const chunk = await reader.read()
            if (chunk.done) return controller.close()
            seen += new TextDecoder().decode(chunk.value)
            const first = /(?:^|\n)id: 1\n[\s\S]*?\n\n/.exec(seen)
            if (first === null) continue
            controller.enqueue(new TextEncoder().encode(seen.slice(0, first.index + first[0].length)))
            await reader.cancel()
            return controller.error(new TypeError("terminated: other side closed"))
          }
        }
      })
      return new Response(body, { status: res.status, headers: res.headers })
    }
    const flaky = new Lantern({ baseUrl: stack.url, apiKey: stack.token, fetch: cutting })
    const events = await collect(flaky.runs.stream(live.id, { retryDelayMs: 10 }))
    expect(streams[0]).toBeNull()
    expect(streams[1]).toBe("1")
    expect(events.map((e) => e.position)).toEqual(events.map((_, i) => i + 1))
    expect(TERMINAL).toContain(events[events.length - 1]!.type)
    expect(events.map((e) => e.eventId)).toEqual((await lantern.runs.events(live.id)).items.map((e) => e.eventId))
  })

  it("verifies a receipt offline with the published keys, and refuses a tampered journal", async () => {
    await finished(run.id)
    const receipt = await lantern.runs.receipt(run.id)
    const journal = await lantern.runs.journal(run.id)
    const keys = await lantern.receipts.keys()
    const verdict = lantern.receipts.verify(receipt, journal, keys)
    expect(verdict.checks.filter((c) => !c.ok)).toEqual([])
    expect(verdict.valid).toBe(true)
    // the raw key alone, the receipt as text and the journal as lines do as well
    const lines = journal.trim().split("\n").map((l) => JSON.parse(l))
    const key = keys.keys.find((k) => k.keyId === receipt.keyId)!.publicKey
    expect(lantern.receipts.verify(JSON.stringify(receipt), lines, key).valid).toBe(true)

    const tampered = lines.map((l, i) =>
      i === 0 ? { ...l, envelope: { ...l.envelope, payload: { ...l.envelope.payload, input: "forged" } } } : l
    )
    const refused = lantern.receipts.verify(receipt, tampered, keys)
    expect(refused.valid).toBe(false)
    expect(refused.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["journal-digest"])
    const signedByOther = lantern.receipts.verify({ ...receipt, costUsd: receipt.costUsd + 1 }, journal, keys)
    expect(signedByOther.checks.filter((c) => !c.ok).map((c) => c.name)).toContain("signature")
    expect(() => lantern.receipts.verify(receipt, "not json\n", keys)).toThrow(TypeError)
    // the server agrees
    expect((await lantern.receipts.verifyOnServer({ receipt, journal })).valid).toBe(true)
  })

  it("throws a typed LanternError with the status, code and issues of a 400", async () => {
    const e = await caught(lantern.agents.create({ name: "Bad Name", spec: { systemPrompt: "x", maxTurns: 0 } }))
    expect(e).toMatchObject({ status: 400, code: "invalid_request", name: "LanternError" })
    expect(e.issues.map((i) => i.field)).toEqual(expect.arrayContaining(["name", "spec.maxTurns"]))
    expect(e.message).toEqual(expect.any(String))
  })

  it("throws a typed LanternError on a 404, from a call and from a stream", async () => {
    const unknown = "run_0000000000000000000000000z"
    expect(await caught(lantern.runs.get(unknown))).toMatchObject({ status: 404, code: "run_not_found", issues: [] })
    expect(await caught(collect(lantern.runs.stream(unknown)))).toMatchObject({ status: 404, code: "run_not_found" })
    expect(await caught(lantern.agents.get("nobody"))).toMatchObject({ status: 404, code: "agent_not_found" })
    const anonymous = new Lantern({ baseUrl: stack.url, apiKey: "lt_wrong" })
    expect(await caught(anonymous.agents.list())).toMatchObject({ status: 401, code: "unauthorized" })
  })

  it("approves a step waiting for a human, cancels a run, forecasts one", async () => {
    await lantern.agents.create({
      name: "careful",
      spec: {
        systemPrompt: "You are careful.",
        maxTurns: 4,
        tools: [{
          name: "echo",
          description: "echo",
          parameters: { type: "object", properties: {} },
          approval: { expiresInSeconds: 600 }
        }]
      }
    })
    const waiting = async (id: string) =>
      eventually(
        async () => {
          const r = await lantern.runs.get(id)
          return r.waiting?.kind === "approval" ? r.waiting : null
        },
        20_000,
        `run ${id} to wait for approval`
      )

    const approved = await lantern.runs.create({ agentName: "careful", input: "echo hello" })
    const step = await waiting(approved.id)
    await lantern.runs.approve(approved.id, step.stepId, { approved: true, by: "ops" })
    const events = await collect(lantern.runs.stream(approved.id))
    expect(JSON.stringify(events.filter((e) => e.type === "StepCompleted"))).toContain("\"approved\":true")
    expect(events[events.length - 1]!.type).toBe("RunSucceeded")

    const canceled = await lantern.runs.create({ agentName: "careful", input: "echo hello" })
    await waiting(canceled.id)
    expect((await lantern.runs.cancel(canceled.id, { reason: "not needed" })).status).toBe("canceled")
    expect(await caught(lantern.runs.cancel(canceled.id))).toMatchObject({ status: 409, code: "run_already_finished" })

    const forecast = await lantern.runs.forecast({ agentName: "calc", input: "what is 1+1?" })
    expect(forecast.estimatedCostUsd).toEqual(expect.any(Number))
  })

  it("reaches keys, secrets and budgets", async () => {
    const key = await lantern.apiKeys.create({ name: "reader", scopes: ["runs:read"] })
    expect((await lantern.apiKeys.list()).items.map((k) => k.id)).toContain(key.id)
    expect(await lantern.apiKeys.revoke(key.id)).toBeNull()
    const secret = await lantern.secrets.create({ name: "db.pw", value: "hunter2" })
    expect(secret).toMatchObject({ name: "db.pw", version: 1 })
    expect(JSON.stringify(await lantern.secrets.list())).not.toContain("hunter2")
    expect(await lantern.secrets.delete("db.pw")).toBeNull()
    const budget = await lantern.budgets.setAgent("calc", { maxRunsPerDay: 100, hardFail: true })
    expect((await lantern.budgets.getAgent("calc")).limits).toEqual(budget.limits)
  })

  it("reaches every operation of the served document with a method of its own", async () => {
    const served = await fetch(`${stack.url}/v1/openapi.json`, { headers: { authorization: `Bearer ${stack.token}` } })
      .then((r) => r.json()) as {
        paths: Record<string, Record<string, { operationId: string }>>
      }
    const ops = Object.entries(served.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ id: op.operationId, method: method.toUpperCase(), path }))
    )
    expect(ops.length).toBeGreaterThan(30)
    expect(Object.keys(ROUTES).sort()).toEqual(ops.map((o) => o.id).sort())

    const seen: Array<{ method: string; url: string }> = []
    const recording: typeof fetch = async (input, init) => {
      seen.push({ method: init?.method ?? "GET", url: String(input) })
      return Response.json({ error: { code: "recorded", message: "recorded" } }, { status: 418 })
    }
    const sdk = new Lantern({ baseUrl: "http://sdk.test", apiKey: "k", fetch: recording })
    for (const op of ops) {
      const route = ROUTES[op.id as keyof typeof ROUTES]
      expect(route, `${op.id} has an SDK method`).toBeDefined()
      const [namespace, name] = route.split(".") as [string, string]
      const fn = (sdk as unknown as Record<string, Record<string, (...args: Array<unknown>) => unknown>>)[namespace]
        ?.[name]
      expect(typeof fn, `${route} is a method of Lantern`).toBe("function")
      // path parameters come first, in the path's order, then the body or options
      const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => `p-${m[1]}`)
      seen.length = 0
      const result = fn!(...params, {})
      const pending = Symbol.asyncIterator in (result as object)
        ? (result as AsyncGenerator).next()
        : result as Promise<unknown>
      expect((await caught(pending)).code, route).toBe("recorded")
      const expected = op.path.replace(/\{(\w+)\}/g, (_, p: string) => `p-${p}`)
      expect(seen.map((s) => `${s.method} ${new URL(s.url).pathname}`), route).toEqual([`${op.method} ${expected}`])
    }
  })
})

describe("the SDK's settings", () => {
  it("reads LANTERN_URL and LANTERN_API_TOKEN by default, and sends the token", async () => {
    vi.stubEnv("LANTERN_URL", "http://from-env.test:9/")
    vi.stubEnv("LANTERN_API_TOKEN", "lt_from_env")
    try {
      let auth: string | null = null
      const sdk = new Lantern({
        fetch: async (_input, init) => {
          auth = new Headers(init?.headers).get("authorization")
          return Response.json({ items: [] })
        }
      })
      expect(sdk.baseUrl).toBe("http://from-env.test:9")
      expect(await sdk.agents.list()).toEqual({ items: [] })
      expect(auth).toBe("Bearer lt_from_env")
    } finally {
      vi.unstubAllEnvs()
    }
  })

  it("answers a LanternError with status 0 when nothing listens", async () => {
    const sdk = new Lantern({ baseUrl: "http://127.0.0.1:9", apiKey: "k" })
    expect(await caught(sdk.agents.list())).toMatchObject({ status: 0, code: "unreachable" })
  })
})

describe("the SDK's types and package", () => {
  it("has generated types that match the server's OpenAPI document (npm run sdk:types when this fails)", () => {
    expect(readFileSync(TARGET, "utf8")).toBe(render(document()))
  })

  it("builds an ESM bundle with no runtime dependency and declarations a strict consumer type-checks", () => {
    const build = spawnSync(NODE, [join(ROOT, "sdk/build.mjs")], { cwd: ROOT, encoding: "utf8" })
    expect(build.status, build.stderr).toBe(0)
    const bundle = readFileSync(join(ROOT, "sdk/dist/index.js"), "utf8")
    const imports = [...bundle.matchAll(/^import .* from "([^"]+)"/gm)].map((m) => m[1])
    expect(imports.every((s) => s!.startsWith("node:")), imports.join(", ")).toBe(true)
    expect(existsSync(join(ROOT, "sdk/dist/index.d.ts"))).toBe(true)

    mkdirSync(join(ROOT, ".scratch"), { recursive: true })
    const dir = mkdtempSync(join(ROOT, ".scratch/sdk-consumer-"))
    try {
      writeFileSync(
        join(dir, "main.ts"),
        [
          "import { Lantern, LanternError, type Run } from \"@lantern/sdk\"",
          "const lantern = new Lantern({ baseUrl: \"http://127.0.0.1:8080\" })",
          "export const start = async (): Promise<Run> => {",
          "  const agent = await lantern.agents.create({ name: \"a\", spec: { systemPrompt: \"x\" } })",
          "  const run = await lantern.runs.create({ agentName: agent.name, input: \"hi\", idempotencyKey: \"k\" })",
          "  for await (const e of lantern.runs.stream(run.id)) console.log(e.position, e.type)",
          "  try { await lantern.runs.get(run.id) } catch (e) { if (e instanceof LanternError) console.log(e.code) }",
          "  return run",
          "}",
          ""
        ].join("\n")
      )
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            types: [],
            lib: ["ES2022", "DOM", "DOM.AsyncIterable"]
          },
          files: ["main.ts"]
        })
      )
      const tsc = spawnSync(NODE, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", dir], { encoding: "utf8" })
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("runs from its bundle", async () => {
    const sdk = await import(pathToFileURL(join(ROOT, "sdk/dist/index.js")).href)
    expect(typeof sdk.Lantern).toBe("function")
    expect(new sdk.Lantern({ baseUrl: "http://x.test" }).baseUrl).toBe("http://x.test")
  })
})
