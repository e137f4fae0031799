// Bad input at every boundary of the /v1 API, against the real `lantern serve` process and a real
// nats-server: each refusal is a 400 naming the field and the reason (or 401 / 404 / 413), carries no
// stack trace or internal detail, and changes nothing in the journals, the projections or the KV bucket.
import { rmSync } from "node:fs"
import { jetstreamManager } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AGENTS, IDEMPOTENCY_BUCKET, RUNS } from "../bus/Topology.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { eventually, readReply, ROOT, startStack, type StackProcess } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let nc: NatsConnection
let goodRun: string

const UNKNOWN_RUN = "run_0000000000000000000000000z"
const MiB = 1024 * 1024
const spec = {
  systemPrompt: "You compute.",
  tools: [{ name: "calculator", description: "arithmetic", parameters: { type: "object" } }]
}
const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth)

interface Reply {
  readonly status: number
  readonly json: any
  readonly text: string
}
const replies: Array<Reply> = []

/** One request; `body` strings are sent raw, `auth` null sends no Authorization header. */
const send = async (
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  auth: string | null = `Bearer ${stack.token}`
): Promise<Reply> => {
  const r = await fetch(`${stack.url}${path}`, {
    method,
    headers: {
      ...(auth === null ? {} : { authorization: auth }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
  })
  const reply = await readReply(r)
  if (r.status >= 400) replies.push(reply)
  return reply
}

/** A body sent with Transfer-Encoding: chunked (no Content-Length), as streaming clients do. */
const sendChunked = async (method: string, path: string, text: string): Promise<Reply> => {
  const r = await fetch(`${stack.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
    body: new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(text)), c.close()) }),
    duplex: "half"
  } as RequestInit)
  const reply = await readReply(r)
  if (r.status >= 400) replies.push(reply)
  return reply
}

const expectNoLeak = (r: Reply) => {
  expect(r.text).not.toMatch(/\n\s*at\s|\bat .*:\d+:\d+/)
  expect(r.text).not.toContain("node_modules")
  expect(r.text).not.toContain(".ts:")
  expect(r.text).not.toContain(ROOT)
}

/** 400 invalid_request with an issue naming `field` and saying why. */
const expectBad = (r: Reply, field: string) => {
  expect(r.status, r.text).toBe(400)
  expect(r.json?.error?.code).toBe("invalid_request")
  expect(typeof r.json.error.message).toBe("string")
  const issue = (r.json.error.issues ?? []).find((i: { field: string }) => i.field === field)
  expect(issue, `no issue for '${field}' in ${r.text}`).toBeDefined()
  expect(issue.message.length).toBeGreaterThan(3)
  expectNoLeak(r)
}

const expectError = (r: Reply, status: number, code: string) => {
  expect(r.status, r.text).toBe(status)
  expect(r.json?.error?.code).toBe(code)
  expect(r.json.error.message.length).toBeGreaterThan(3)
  expectNoLeak(r)
}

beforeAll(async () => {
  nats = await startServer("lantern-bad-input")
  stack = await startStack({ natsUrl: nats.handle.url })
  nc = await connect({ servers: nats.handle.url })
  expect((await send("POST", "/v1/agents", { name: "alpha", description: "the only agent", spec })).status).toBe(201)
  const run = await send("POST", "/v1/runs", { agentName: "alpha", input: "hello" }, { "idempotency-key": "good-key" })
  expect(run.status).toBe(201)
  goodRun = run.json.id
  await eventually(
    async () => (await send("GET", `/v1/runs/${goodRun}`)).json?.status === "succeeded",
    30_000,
    "the purposeful run"
  )
}, 240_000)

afterAll(async () => {
  try {
    await nc?.close()
    const code = await stack?.stop()
    expect(stack.child.signalCode).toBeNull() // exited by itself after SIGTERM, not killed
    expect(code).not.toBeNull()
  } finally {
    await nats?.cleanup()
    if (stack !== undefined) rmSync(stack.home, { recursive: true, force: true })
  }
})

const agent = (name: string, s: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  spec: { ...spec, ...s },
  ...extra
})

// Valid names whose creation is refused for another reason: none of them may exist afterwards.
const refusedNames = [
  "no-spec",
  "empty-prompt",
  "turns-0",
  "turns-101",
  "turns-frac",
  "turns-str",
  "model-space",
  "tools-str",
  "tool-badname",
  "tool-unknown",
  "long-desc",
  "too-big",
  "deep-agent",
  "retry-0",
  "retry-21",
  "retry-on-bogus",
  "jitter-2",
  "multiplier-0",
  "backoff-neg",
  "timeout-5",
  "approval-0",
  "approval-long",
  "agent-bad"
]

// [label, method, path, body, field, headers]
type BadCase = readonly [string, string, string, unknown, string, Record<string, string>?]

const agentCases: ReadonlyArray<BadCase> = [
  ["missing body", "POST", "/v1/agents", undefined, "(body)"],
  ["invalid JSON", "POST", "/v1/agents", "{bad", "(body)"],
  ["body is an array", "POST", "/v1/agents", "[]", "(body)"],
  ["body is a string", "POST", "/v1/agents", "\"alpha\"", "(body)"],
  ["body is null", "POST", "/v1/agents", "null", "(body)"],
  ["missing name", "POST", "/v1/agents", { spec }, "name"],
  ["uppercase name", "POST", "/v1/agents", agent("Alpha2", {}), "name"],
  ["name with a space", "POST", "/v1/agents", agent("has space", {}), "name"],
  ["name with a dot (NATS token separator)", "POST", "/v1/agents", agent("a.b", {}), "name"],
  ["name with '>' (NATS wildcard)", "POST", "/v1/agents", agent("a>", {}), "name"],
  ["name with '*' (NATS wildcard)", "POST", "/v1/agents", agent("a*b", {}), "name"],
  ["name of 64 characters", "POST", "/v1/agents", agent("a".repeat(64), {}), "name"],
  ["empty name", "POST", "/v1/agents", agent("", {}), "name"],
  ["missing spec", "POST", "/v1/agents", { name: "no-spec" }, "spec"],
  ["empty systemPrompt", "POST", "/v1/agents", agent("empty-prompt", { systemPrompt: "" }), "spec.systemPrompt"],
  ["maxTurns 0", "POST", "/v1/agents", agent("turns-0", { maxTurns: 0 }), "spec.maxTurns"],
  ["maxTurns 101", "POST", "/v1/agents", agent("turns-101", { maxTurns: 101 }), "spec.maxTurns"],
  ["maxTurns 1.5", "POST", "/v1/agents", agent("turns-frac", { maxTurns: 1.5 }), "spec.maxTurns"],
  ["maxTurns \"3\"", "POST", "/v1/agents", agent("turns-str", { maxTurns: "3" }), "spec.maxTurns"],
  ["model with a space", "POST", "/v1/agents", agent("model-space", { model: "gpt 4" }), "spec.model"],
  ["tools not an array", "POST", "/v1/agents", agent("tools-str", { tools: "calculator" }), "spec.tools"],
  [
    "tool with a bad name",
    "POST",
    "/v1/agents",
    agent("tool-badname", { tools: [{ name: "bad name", description: "", parameters: {} }] }),
    "spec.tools[0].name"
  ],
  [
    "unknown tool",
    "POST",
    "/v1/agents",
    agent("tool-unknown", { tools: [{ name: "rm_rf", description: "", parameters: {} }] }),
    "spec.tools[0].name"
  ],
  [
    "description over 2000 chars",
    "POST",
    "/v1/agents",
    agent("long-desc", {}, { description: "d".repeat(2001) }),
    "description"
  ],
  [
    "retry.maxAttempts 0",
    "POST",
    "/v1/agents",
    agent("retry-0", { retry: { maxAttempts: 0 } }),
    "spec.retry.maxAttempts"
  ],
  [
    "retry.maxAttempts 21",
    "POST",
    "/v1/agents",
    agent("retry-21", { retry: { maxAttempts: 21 } }),
    "spec.retry.maxAttempts"
  ],
  [
    "retry.retryOn with an unknown code",
    "POST",
    "/v1/agents",
    agent("retry-on-bogus", { retry: { retryOn: ["boom"] } }),
    "spec.retry.retryOn[0]"
  ],
  ["retry.jitter 2", "POST", "/v1/agents", agent("jitter-2", { retry: { jitter: 2 } }), "spec.retry.jitter"],
  [
    "retry.multiplier 0",
    "POST",
    "/v1/agents",
    agent("multiplier-0", { retry: { multiplier: 0 } }),
    "spec.retry.multiplier"
  ],
  [
    "retry.initialBackoffMs -1",
    "POST",
    "/v1/agents",
    agent("backoff-neg", { retry: { initialBackoffMs: -1 } }),
    "spec.retry.initialBackoffMs"
  ],
  ["stepTimeoutMs 5", "POST", "/v1/agents", agent("timeout-5", { stepTimeoutMs: 5 }), "spec.stepTimeoutMs"],
  [
    "approval expiring after 0 s",
    "POST",
    "/v1/agents",
    agent("approval-0", {
      tools: [{ name: "echo", description: "", parameters: {}, approval: { expiresInSeconds: 0 } }]
    }),
    "spec.tools[0].approval.expiresInSeconds"
  ],
  [
    "approval expiring after 31 days",
    "POST",
    "/v1/agents",
    agent("approval-long", {
      tools: [{ name: "echo", description: "", parameters: {}, approval: { expiresInSeconds: 31 * 86400 } }]
    }),
    "spec.tools[0].approval.expiresInSeconds"
  ],
  [
    "tool answered by a bad agent name",
    "POST",
    "/v1/agents",
    agent("agent-bad", { tools: [{ name: "ask", description: "", parameters: {}, agent: "Not An Agent" }] }),
    "spec.tools[0].agent"
  ],
  ["GET bad name", "GET", "/v1/agents/Alpha", undefined, "name"],
  ["GET name with a dot", "GET", "/v1/agents/a.b", undefined, "name"],
  ["GET name with '>'", "GET", "/v1/agents/a%3E", undefined, "name"],
  ["GET name with '*'", "GET", "/v1/agents/a%2A", undefined, "name"],
  ["GET name of 64 characters", "GET", `/v1/agents/${"a".repeat(64)}`, undefined, "name"],
  ["GET versions of a bad name", "GET", "/v1/agents/a%20b/versions", undefined, "name"],
  ["PUT bad name", "PUT", "/v1/agents/Alpha", { spec }, "name"],
  ["PUT missing body", "PUT", "/v1/agents/alpha", undefined, "(body)"],
  ["PUT missing spec", "PUT", "/v1/agents/alpha", { description: "x" }, "spec"],
  ["PUT empty systemPrompt", "PUT", "/v1/agents/alpha", { spec: { ...spec, systemPrompt: "" } }, "spec.systemPrompt"],
  ["PUT maxTurns \"3\"", "PUT", "/v1/agents/alpha", { spec: { ...spec, maxTurns: "3" } }, "spec.maxTurns"],
  ["PUT unknown tool", "PUT", "/v1/agents/alpha", {
    spec: { ...spec, tools: [{ name: "nope", description: "", parameters: {} }] }
  }, "spec.tools[0].name"],
  ["PUT description over 2000 chars", "PUT", "/v1/agents/alpha", { spec, description: "d".repeat(2001) }, "description"]
]

const runCases: ReadonlyArray<BadCase> = [
  ["missing body", "POST", "/v1/runs", undefined, "(body)"],
  ["invalid JSON", "POST", "/v1/runs", "{\"agentName\":", "(body)"],
  ["body is an array", "POST", "/v1/runs", "[{\"agentName\":\"alpha\"}]", "(body)"],
  ["missing agentName", "POST", "/v1/runs", { input: "x" }, "agentName"],
  ["bad agentName", "POST", "/v1/runs", { agentName: "a.*", input: "x" }, "agentName"],
  ["missing input", "POST", "/v1/runs", { agentName: "alpha" }, "input"],
  ["agentVersion 0", "POST", "/v1/runs", { agentName: "alpha", input: "x", agentVersion: 0 }, "agentVersion"],
  ["agentVersion \"x\"", "POST", "/v1/runs", { agentName: "alpha", input: "x", agentVersion: "x" }, "agentVersion"],
  ["Idempotency-Key of 300 chars", "POST", "/v1/runs", { agentName: "alpha", input: "x" }, "Idempotency-Key", {
    "idempotency-key": "k".repeat(300)
  }],
  ["Idempotency-Key with a space", "POST", "/v1/runs", { agentName: "alpha", input: "x" }, "Idempotency-Key", {
    "idempotency-key": "a b"
  }],
  ["limit 0", "GET", "/v1/runs?limit=0", undefined, "limit"],
  ["limit 201", "GET", "/v1/runs?limit=201", undefined, "limit"],
  ["limit abc", "GET", "/v1/runs?limit=abc", undefined, "limit"],
  ["status bogus", "GET", "/v1/runs?status=bogus", undefined, "status"],
  ["cursor not a run id", "GET", "/v1/runs?cursor=abc", undefined, "cursor"],
  ["agentName filter invalid", "GET", "/v1/runs?agentName=A", undefined, "agentName"],
  ...["", "/events", "/stream"].flatMap((suffix): ReadonlyArray<BadCase> => [
    [`GET malformed id${suffix}`, "GET", `/v1/runs/bad${suffix}`, undefined, "id"],
    [`GET uppercase id${suffix}`, "GET", `/v1/runs/${UNKNOWN_RUN.toUpperCase()}${suffix}`, undefined, "id"]
  ]),
  ["cancel malformed id", "POST", "/v1/runs/run_x/cancel", undefined, "id"],
  ["cancel reason is a number (unknown run)", "POST", `/v1/runs/${UNKNOWN_RUN}/cancel`, { reason: 5 }, "reason"],
  ["cancel invalid JSON", "POST", `/v1/runs/${UNKNOWN_RUN}/cancel`, "{", "(body)"],
  ["stream Last-Event-ID abc", "GET", `/v1/runs/${UNKNOWN_RUN}/stream`, undefined, "Last-Event-ID", {
    "last-event-id": "abc"
  }],
  [
    "approval malformed id",
    "POST",
    "/v1/runs/run_x/approvals/turn-1.tool-0.approval",
    { approved: true, by: "ops" },
    "id"
  ],
  [
    "approval malformed step id",
    "POST",
    `/v1/runs/${UNKNOWN_RUN}/approvals/Turn%201`,
    { approved: true, by: "ops" },
    "stepId"
  ],
  ["approval missing body", "POST", `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`, undefined, "(body)"],
  [
    "approval without approved",
    "POST",
    `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`,
    { by: "ops" },
    "approved"
  ],
  ["approval approved \"yes\"", "POST", `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`, {
    approved: "yes",
    by: "ops"
  }, "approved"],
  ["approval with an empty by", "POST", `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`, {
    approved: true,
    by: ""
  }, "by"],
  ["approval by of 201 chars", "POST", `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`, {
    approved: true,
    by: "b".repeat(201)
  }, "by"],
  ["approval reason over 2000 chars", "POST", `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`, {
    approved: true,
    by: "ops",
    reason: "r".repeat(2001)
  }, "reason"]
]

describe("400: each refusal names the field and the reason", () => {
  it.for(agentCases)("agents: %s", async ([, method, path, body, field, headers]) => {
    expectBad(await send(method, path, body, headers), field)
  })
  it.for(runCases)("runs: %s", async ([, method, path, body, field, headers]) => {
    expectBad(await send(method, path, body, headers), field)
  })
  it("checks a cancel body before the run's state (a finished run still gets 400, not 409)", async () => {
    expectBad(await send("POST", `/v1/runs/${goodRun}/cancel`, { reason: 5 }), "reason")
  })

  // a chunked body (no Content-Length) is read and checked like any other
  it("checks a chunked cancel body too", async () => {
    expectBad(await sendChunked("POST", `/v1/runs/${goodRun}/cancel`, JSON.stringify({ reason: 5 })), "reason")
  })

  // JSON nested deeper than 64 levels is refused at the edge, before anything recursive walks it
  it("refuses a deeply nested run input with 400 naming `input`", async () => {
    expectBad(await send("POST", "/v1/runs", `{"agentName":"alpha","input":${nested(10_000)}}`), "input")
  })
  it("refuses deeply nested tool parameters with 400 naming `spec.tools[0].parameters.a`", async () => {
    const body =
      `{"name":"deep-agent","spec":{"systemPrompt":"x","tools":[{"name":"echo","description":"","parameters":{"a":${
        nested(10_000)
      }}}]}}`
    expectBad(await send("POST", "/v1/agents", body), "spec.tools[0].parameters.a")
  })

  // a path with malformed percent-encoding never reaches a route: it is answered before routing
  it("refuses a malformed percent-encoded agent name with 400 naming the path", async () => {
    expectBad(await send("GET", "/v1/agents/%", undefined), "(path)")
  })
  it("refuses a malformed percent-encoded run id with 400 naming the path", async () => {
    expectBad(await send("GET", "/v1/runs/run_%E0%A4%A", undefined), "(path)")
  })
})

describe("413: bodies over 1 MiB", () => {
  const big = "x".repeat(MiB + 10)
  it.each(
    [
      ["POST", "/v1/agents", { name: "too-big", spec: { systemPrompt: big } }],
      ["PUT", "/v1/agents/alpha", { spec: { systemPrompt: big } }],
      ["POST", "/v1/runs", { agentName: "alpha", input: big }],
      ["POST", `/v1/runs/${UNKNOWN_RUN}/cancel`, { reason: big }]
    ] as const
  )("%s %s", async (method, path, body) => {
    expectError(await send(method, path, body), 413, "payload_too_large")
  })
  it("also without a Content-Length (chunked)", async () => {
    expectError(
      await sendChunked("POST", "/v1/runs", JSON.stringify({ agentName: "alpha", input: big })),
      413,
      "payload_too_large"
    )
  })
})

describe("404: well-formed but unknown", () => {
  it.each(
    [
      ["GET", "/v1/agents/nosuch", undefined, "agent_not_found", {}],
      ["PUT", "/v1/agents/nosuch", { spec }, "agent_not_found", {}],
      ["GET", "/v1/agents/nosuch/versions", undefined, "agent_not_found", {}],
      ["POST", "/v1/runs", { agentName: "ghost", input: "x" }, "agent_not_found", { "idempotency-key": "ghost-key" }],
      ["POST", "/v1/runs", { agentName: "alpha", input: "x", agentVersion: 99 }, "agent_version_not_found", {}],
      ["GET", `/v1/runs/${UNKNOWN_RUN}`, undefined, "run_not_found", {}],
      ["GET", `/v1/runs/${UNKNOWN_RUN}/events`, undefined, "run_not_found", {}],
      ["GET", `/v1/runs/${UNKNOWN_RUN}/stream`, undefined, "run_not_found", {}],
      ["POST", `/v1/runs/${UNKNOWN_RUN}/cancel`, undefined, "run_not_found", {}],
      ["POST", `/v1/runs/${UNKNOWN_RUN}/cancel`, { reason: "why not" }, "run_not_found", {}],
      [
        "POST",
        `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`,
        { approved: true, by: "ops" },
        "run_not_found",
        {}
      ]
    ] as const
  )("%s %s %j", async (method, path, body, code, headers) => {
    expectError(await send(method, path, body, headers), 404, code)
  })
})

describe("401: every /v1 route needs a valid bearer token", () => {
  const routes = [
    ["POST", "/v1/agents"],
    ["GET", "/v1/agents"],
    ["GET", "/v1/agents/alpha"],
    ["PUT", "/v1/agents/alpha"],
    ["GET", "/v1/agents/alpha/versions"],
    ["POST", "/v1/runs"],
    ["GET", "/v1/runs"],
    ["GET", `/v1/runs/${UNKNOWN_RUN}`],
    ["GET", `/v1/runs/${UNKNOWN_RUN}/events`],
    ["GET", `/v1/runs/${UNKNOWN_RUN}/stream`],
    ["POST", `/v1/runs/${UNKNOWN_RUN}/cancel`],
    ["POST", `/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`],
    ["GET", "/v1/openapi.json"]
  ] as const
  const bodies = {
    "/v1/agents": { name: "sneaky", spec },
    "/v1/agents/alpha": { spec: { ...spec, maxTurns: 3 } },
    "/v1/runs": { agentName: "alpha", input: "x" },
    [`/v1/runs/${UNKNOWN_RUN}/cancel`]: { reason: "x" },
    [`/v1/runs/${UNKNOWN_RUN}/approvals/turn-1.tool-0.approval`]: { approved: true, by: "ops" }
  }
  const auths = [["no header", null], ["Basic", "Basic x"], ["wrong token", "Bearer wrong-token"], [
    "empty bearer",
    "Bearer "
  ]] as const
  it.each(routes.flatMap(([m, p]) => auths.map(([label, a]) => [m, p, label, a] as const)))(
    "%s %s with %s",
    async (method, path, _label, auth) => {
      // a body that would otherwise be accepted (and change things) must still be refused
      const body = method === "GET" ? undefined : bodies[path as keyof typeof bodies]
      const r = await send(method, path, body, {}, auth)
      expectError(r, 401, "unauthorized")
      expect(r.text).not.toContain(stack.token)
    }
  )
})

describe("nothing changed", () => {
  it("keeps only the purposeful agents, runs, journals and idempotency keys", async () => {
    const agents = await eventually(
      async () => {
        const r = await send("GET", "/v1/agents")
        return r.status === 200 && r.json.items.some((a: { name: string }) => a.name === "alpha") ? r.json.items : null
      },
      10_000,
      "agent projection"
    )
    expect(agents.map((a: { name: string }) => a.name)).toEqual(["alpha"])
    expect(agents[0].latestVersion).toBe(1) // no refused PUT published a version
    for (const name of [...refusedNames, "nosuch", "sneaky"])
      expectError(await send("GET", `/v1/agents/${name}`), 404, "agent_not_found")

    const runs = await eventually(
      async () => {
        const r = await send("GET", "/v1/runs?limit=200")
        return r.status === 200 &&
            r.json.items.some((x: { id: string; status: string }) => x.id === goodRun && x.status === "succeeded")
          ? r.json.items
          : null
      },
      10_000,
      "run projection"
    )
    expect(runs.map((x: { id: string }) => x.id)).toEqual([goodRun])

    const jsm = await jetstreamManager(nc)
    const subjects = async (stream: string) =>
      Object.keys((await jsm.streams.info(stream, { subjects_filter: ">" })).state.subjects ?? {}).sort()
    expect(await subjects(AGENTS)).toEqual(["lantern.agent.dev.alpha"])
    expect(await subjects(RUNS)).toEqual([`lantern.run.dev.${goodRun}`])
    const kv = await new Kvm(nc).open(IDEMPOTENCY_BUCKET)
    const keys: Array<string> = []
    for await (const k of await kv.keys()) keys.push(k)
    expect(keys).toHaveLength(1) // "good-key" only: refused requests claim no key

    const events = await send("GET", `/v1/runs/${goodRun}/events`)
    expect(events.json.items.map((e: { type: string }) => e.type)).not.toContain("RunCanceled")
  })

  it("never leaks a stack trace, a source path or the token in any error body", () => {
    expect(replies.length).toBeGreaterThan(100)
    for (const r of replies.filter((r) => r.text !== "")) {
      expect(r.json?.error?.code, r.text).toEqual(expect.any(String))
      expectNoLeak(r)
      expect(r.text).not.toContain(stack.token)
    }
    expect(stack.output()).not.toContain(stack.token)
  })
})
