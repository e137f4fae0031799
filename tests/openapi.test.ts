// The OpenAPI document against the real `lantern serve`: it carries every rule the server enforces (name
// patterns, header and query formats, numeric ranges), never advertises "NaN"/"Infinity", documents 413 and
// 500; a value breaking a documented rule is refused with 400 naming the field, a value at a documented bound
// is not; query and header numbers are plain decimal; the 409 of a reused Idempotency-Key names the key; a
// cancel and a budget record the scoped key that made them.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Secrets from "../actors/secrets/Secrets.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let doc: any

const UNKNOWN_RUN = "run_0000000000000000000000000z"
const METHODS = ["get", "put", "post", "delete", "patch"]
const spec = { systemPrompt: "You answer." }

interface Operation {
  readonly path: string
  readonly method: string
  readonly op: any
}
const operations = (): ReadonlyArray<Operation> =>
  Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.entries(item).filter(([m]) => METHODS.includes(m)).map(([method, op]) => ({ path, method, op }))
  )

/** Follows `$ref`s into the `$defs` of the body schema they sit in. */
const deref = (s: any, root: any): any => {
  if (s?.$ref === undefined) return s
  const name = decodeURIComponent(String(s.$ref).replace(/^#\/\$defs\//, ""))
  return deref(root.$defs?.[name], root)
}
/** The schema of a property path under an operation's JSON request body. */
const bodyProp = (path: string, method: string, ...keys: ReadonlyArray<string>) => {
  const root = doc.paths[path][method].requestBody.content["application/json"].schema
  return keys.reduce((s, k) => deref(deref(s, root)?.properties?.[k], root), root)
}
const param = (path: string, method: string, name: string, where: string) => {
  const p = (doc.paths[path][method].parameters ?? []).find((x: any) => x.name === name && x.in === where)
  expect(p, `${method.toUpperCase()} ${path} documents the ${where} parameter ${name}`).toBeDefined()
  return p.schema
}

/** Every string the document holds, anywhere. */
const strings = (v: unknown, out: Array<string> = []): Array<string> => {
  if (typeof v === "string") out.push(v)
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out))
  else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v))
      (out.push(k), strings(x, out))
  }
  return out
}
/** Every `pattern` keyword in the document. */
const patterns = (v: unknown, out: Array<string> = []): Array<string> => {
  if (Array.isArray(v)) v.forEach((x) => patterns(x, out))
  else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === "pattern" && typeof x === "string") out.push(x)
      else patterns(x, out)
    }
  }
  return out
}

const AGENT_NAME = "^[a-z0-9][a-z0-9_-]{0,62}$"
const IDEMPOTENCY_KEY = "^[\\x21-\\x7e]{1,255}$"
/** A page's nextCursor, (created_at in µs).(run id), or a bare run id as before issue 10. */
const RUN_CURSOR = "^(?:[0-9]{1,17}\\.)?run_[0-9a-z]{26}$"

beforeAll(async () => {
  nats = await startServer("lantern-openapi")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  const d = await call("GET", "/v1/openapi.json")
  expect(d.status).toBe(200)
  doc = d.json
  const r = await call("POST", "/v1/agents", { name: "alpha", spec })
  expect(r.status, r.text).toBe(201)
}, 180_000)

afterAll(() => stopStack(stack, nats))

describe("the document", () => {
  it("never advertises NaN or Infinity", () => {
    const found = strings(doc).filter((s) => /^-?Infinity$|^NaN$/.test(s))
    expect(found).toEqual([])
  })

  it("documents 500 for every operation, and 413 for every operation with a body", () => {
    const ops = operations()
    expect(ops.length).toBeGreaterThan(25)
    for (const { path, method, op } of ops) {
      const name = `${method.toUpperCase()} ${path}`
      expect(op.responses, name).toHaveProperty("500")
      if (op.requestBody !== undefined) expect(op.responses, name).toHaveProperty("413")
    }
  })

  it("holds only patterns a client can use (ECMAScript with the u flag)", () => {
    const all = patterns(doc)
    expect(all.length).toBeGreaterThan(10)
    for (const p of all) expect(() => new RegExp(p, "u"), p).not.toThrow()
  })

  it("carries the agent name pattern on bodies, paths and queries", () => {
    expect(bodyProp("/v1/agents", "post", "name").pattern).toBe(AGENT_NAME)
    expect(bodyProp("/v1/runs", "post", "agentName").pattern).toBe(AGENT_NAME)
    expect(bodyProp("/v1/runs/forecast", "post", "agentName").pattern).toBe(AGENT_NAME)
    for (
      const [path, method] of [["/v1/agents/{name}", "get"], ["/v1/agents/{name}", "put"], [
        "/v1/agents/{name}/usage",
        "get"
      ]] as const
    ) {
      expect(param(path, method, "name", "path").pattern).toBe(AGENT_NAME)
    }
    expect(param("/v1/runs", "get", "agentName", "query").pattern).toBe(AGENT_NAME)
  })

  it("gives every path parameter its pattern", () => {
    for (const { path, method, op } of operations()) {
      for (const p of (op.parameters ?? []).filter((x: any) => x.in === "path")) {
        expect(p.schema.pattern, `${method.toUpperCase()} ${path} {${p.name}}`).toEqual(expect.any(String))
      }
    }
  })

  it("carries the Idempotency-Key and Last-Event-ID formats", () => {
    expect(param("/v1/runs", "post", "Idempotency-Key", "header").pattern).toBe(IDEMPOTENCY_KEY)
    expect(param("/v1/runs/{id}/stream", "get", "Last-Event-ID", "header")).toMatchObject({
      type: "integer",
      minimum: 0
    })
  })

  it("carries the spec's ranges: temperature 0-2, retry multiplier 1-10 and jitter 0-1", () => {
    for (const [path, method] of [["/v1/agents", "post"], ["/v1/agents/{name}", "put"]] as const) {
      expect(bodyProp(path, method, "spec", "temperature")).toMatchObject({ type: "number", minimum: 0, maximum: 2 })
      expect(bodyProp(path, method, "spec", "retry", "multiplier")).toMatchObject({
        type: "number",
        minimum: 1,
        maximum: 10
      })
      expect(bodyProp(path, method, "spec", "retry", "jitter")).toMatchObject({
        type: "number",
        minimum: 0,
        maximum: 1
      })
    }
  })

  it("carries the secret name rule whole: the server's pattern, no '..', no trailing '.'", () => {
    const documented = new RegExp(param("/v1/secrets/{name}", "get", "name", "path").pattern, "u")
    expect(bodyProp("/v1/secrets", "post", "name").pattern).toBe(documented.source)
    for (
      const name of [
        "db",
        "db.pw",
        "a_b-c.d",
        "db..pw",
        "db.",
        ".db",
        "Db",
        "a".repeat(63),
        "a".repeat(64),
        "x..",
        "a.b.c"
      ]
    ) {
      expect(documented.test(name), name).toBe(Secrets.isName(name))
    }
  })

  it("carries the query rules: days 1-366, limit 1-200, the run cursor's format", () => {
    expect(param("/v1/agents/{name}/usage", "get", "days", "query")).toMatchObject({
      type: "integer",
      minimum: 1,
      maximum: 366
    })
    expect(param("/v1/runs", "get", "limit", "query")).toMatchObject({ type: "integer", minimum: 1, maximum: 200 })
    expect(param("/v1/runs", "get", "cursor", "query").pattern).toBe(RUN_CURSOR)
    expect(param("/v1/audit", "get", "limit", "query")).toMatchObject({ type: "integer", minimum: 1, maximum: 200 })
  })
})

// One request carrying `value` where the rule applies, and the field a refusal must name.
type Probe = (value: any) => readonly [method: string, path: string, body?: unknown, headers?: Record<string, string>]
let unique = 0
const newAgent = (set: (v: any) => Record<string, unknown>): Probe => (v) => ["POST", "/v1/agents", {
  name: `probe-${unique++}`,
  spec: { ...spec, ...set(v) }
}]

/** A documented range, where it is read, the request that sends a value for it, and the field named. */
const ranges: ReadonlyArray<readonly [string, () => any, Probe, string]> = [
  [
    "spec.temperature",
    () => bodyProp("/v1/agents", "post", "spec", "temperature"),
    newAgent((v) => ({ temperature: v })),
    "spec.temperature"
  ],
  [
    "spec.retry.multiplier",
    () => bodyProp("/v1/agents", "post", "spec", "retry", "multiplier"),
    newAgent((v) => ({ retry: { multiplier: v } })),
    "spec.retry.multiplier"
  ],
  [
    "spec.retry.jitter",
    () => bodyProp("/v1/agents", "post", "spec", "retry", "jitter"),
    newAgent((v) => ({ retry: { jitter: v } })),
    "spec.retry.jitter"
  ],
  [
    "spec.maxTurns",
    () => bodyProp("/v1/agents", "post", "spec", "maxTurns"),
    newAgent((v) => ({ maxTurns: v })),
    "spec.maxTurns"
  ],
  [
    "usage days",
    () => param("/v1/agents/{name}/usage", "get", "days", "query"),
    (v) => ["GET", `/v1/agents/alpha/usage?days=${v}`],
    "days"
  ],
  ["runs limit", () => param("/v1/runs", "get", "limit", "query"), (v) => ["GET", `/v1/runs?limit=${v}`], "limit"],
  ["audit limit", () => param("/v1/audit", "get", "limit", "query"), (v) => ["GET", `/v1/audit?limit=${v}`], "limit"]
]

/** A documented pattern, a value it refuses, the request that sends it, and the field named. */
const formats: ReadonlyArray<readonly [string, () => any, string, Probe, string]> = [
  [
    "agent name",
    () => bodyProp("/v1/agents", "post", "name"),
    "Bad.Name",
    (v) => ["POST", "/v1/agents", { name: v, spec }],
    "name"
  ],
  [
    "agent name in the path",
    () => param("/v1/agents/{name}", "get", "name", "path"),
    "a*b",
    (v) => ["GET", `/v1/agents/${encodeURIComponent(v)}`],
    "name"
  ],
  [
    "run's agentName",
    () => bodyProp("/v1/runs", "post", "agentName"),
    "A>",
    (v) => ["POST", "/v1/runs", { agentName: v, input: "x" }],
    "agentName"
  ],
  [
    "Idempotency-Key",
    () => param("/v1/runs", "post", "Idempotency-Key", "header"),
    "a b",
    (v) => ["POST", "/v1/runs", { agentName: "alpha", input: "x" }, { "idempotency-key": v }],
    "Idempotency-Key"
  ],
  [
    "Idempotency-Key of 256 characters",
    () => param("/v1/runs", "post", "Idempotency-Key", "header"),
    "k".repeat(256),
    (v) => ["POST", "/v1/runs", { agentName: "alpha", input: "x" }, { "idempotency-key": v }],
    "Idempotency-Key"
  ],
  [
    "run cursor",
    () => param("/v1/runs", "get", "cursor", "query"),
    "run_ABC",
    (v) => ["GET", `/v1/runs?cursor=${v}`],
    "cursor"
  ],
  [
    "run id in the path",
    () => param("/v1/runs/{id}", "get", "id", "path"),
    "run_x",
    (v) => ["GET", `/v1/runs/${v}`],
    "id"
  ],
  [
    "step id in the path",
    () => param("/v1/runs/{id}/approvals/{stepId}", "post", "stepId", "path"),
    "Turn 1",
    (v) => ["POST", `/v1/runs/${UNKNOWN_RUN}/approvals/${encodeURIComponent(v)}`, { approved: true, by: "ops" }],
    "stepId"
  ],
  [
    "agentName filter",
    () => param("/v1/runs", "get", "agentName", "query"),
    "A",
    (v) => ["GET", `/v1/runs?agentName=${v}`],
    "agentName"
  ],
  [
    "secret name in the path",
    () => param("/v1/secrets/{name}", "get", "name", "path"),
    "db..pw",
    (v) => ["GET", `/v1/secrets/${v}`],
    "name"
  ],
  [
    "secret name in a body",
    () => bodyProp("/v1/secrets", "post", "name"),
    "db.",
    (v) => ["POST", "/v1/secrets", { name: v, value: "x" }],
    "name"
  ]
]

const send = ([method, path, body, headers]: ReturnType<Probe>) => call(method, path, body, headers ?? {})

const expectBad = (r: { status: number; json: any; text: string }, field: string) => {
  expect(r.status, r.text).toBe(400)
  expect(r.json?.error?.code).toBe("invalid_request")
  const issue = (r.json.error.issues ?? []).find((i: { field: string }) => i.field === field)
  expect(issue, `no issue for '${field}' in ${r.text}`).toBeDefined()
}

describe("the server enforces what the document says", () => {
  it.for(ranges)("%s: one step past each bound is 400, each bound is not", async ([, rule, probe, field]) => {
    const r = rule()
    expect(r, "the range is documented").toMatchObject({ minimum: expect.any(Number), maximum: expect.any(Number) })
    const step = r.type === "integer" ? 1 : 0.5
    for (const v of [r.minimum - step, r.maximum + step]) expectBad(await send(probe(v)), field)
    for (const v of [r.minimum, r.maximum]) {
      const ok = await send(probe(v))
      expect(ok.status, `${field}=${v}: ${ok.text}`).toBeLessThan(300)
    }
  })

  it.for(formats)("%s: a value the pattern refuses is 400", async ([, rule, bad, probe, field]) => {
    const pattern = rule().pattern
    expect(pattern, "the pattern is documented").toEqual(expect.any(String))
    expect(new RegExp(pattern, "u").test(bad), `${bad} breaks ${pattern}`).toBe(false)
    expectBad(await send(probe(bad)), field)
  })

  it("takes a Last-Event-ID the document allows and refuses one it does not", async () => {
    expectBad(
      await send(["GET", `/v1/runs/${UNKNOWN_RUN}/stream`, undefined, { "last-event-id": "-1" }]),
      "Last-Event-ID"
    )
    expect((await send(["GET", `/v1/runs/${UNKNOWN_RUN}/stream`, undefined, { "last-event-id": "0" }])).status).toBe(
      404
    )
  })
})

describe("numbers in queries and headers are plain decimal", () => {
  const notDecimal = ["0x10", "1e1", "%205", "5%20", "+5", "5.0", "0b1", "Infinity"]
  it.for(notDecimal)("limit=%s is 400 on /v1/runs and /v1/audit", async (v) => {
    expectBad(await call("GET", `/v1/runs?limit=${v}`), "limit")
    expectBad(await call("GET", `/v1/audit?limit=${v}`), "limit")
  })
  it.for(notDecimal)("days=%s is 400", async (v) => {
    expectBad(await call("GET", `/v1/agents/alpha/usage?days=${v}`), "days")
  })
  it.for(["0x10", "1e1", "+5", "5.0", "Infinity"])("Last-Event-ID %s is 400", async (v) => {
    expectBad(await call("GET", `/v1/runs/${UNKNOWN_RUN}/stream`, undefined, { "last-event-id": v }), "Last-Event-ID")
  })
  it("a plain decimal is taken", async () => {
    expect((await call("GET", "/v1/runs?limit=16")).status).toBe(200)
    expect((await call("GET", "/v1/agents/alpha/usage?days=10")).status).toBe(200)
  })
})

describe("a reused Idempotency-Key", () => {
  it("answers 409 naming the key the caller sent, not the run or a subject", async () => {
    const key = "order-7731:retry"
    const first = await call("POST", "/v1/runs", { agentName: "alpha", input: "one" }, { "idempotency-key": key })
    expect(first.status, first.text).toBe(201)
    const again = await call("POST", "/v1/runs", { agentName: "alpha", input: "two" }, { "idempotency-key": key })
    expect(again.status, again.text).toBe(409)
    expect(again.json.error.code).toBe("idempotency_key_reused")
    expect(again.json.error.message).toContain(`'${key}'`)
    expect(again.json.error.message).not.toContain(first.json.id)
    expect(again.json.error.message).not.toContain("lantern.")
  })
})

describe("mutations record the key that made them", () => {
  const newKey = async (scopes: ReadonlyArray<string>) => {
    const r = await call("POST", "/v1/api-keys", { name: `k-${unique++}`, scopes })
    expect(r.status, r.text).toBe(201)
    return r.json as { id: string; key: string }
  }

  it("a cancel journals RunCanceled by `key:<id>`", async () => {
    const careful = {
      systemPrompt: "You are careful.",
      maxTurns: 4,
      tools: [{
        name: "echo",
        description: "echo",
        parameters: { type: "object", properties: {} },
        approval: { expiresInSeconds: 600 }
      }]
    }
    expect((await call("POST", "/v1/agents", { name: "careful", spec: careful })).status).toBe(201)
    const started = await call("POST", "/v1/runs", { agentName: "careful", input: "echo hello" })
    expect(started.status, started.text).toBe(201)
    const id = started.json.id as string
    await eventually(
      async () => (await call("GET", `/v1/runs/${id}`)).json?.waiting?.kind === "approval",
      20_000,
      "the run to wait for approval"
    )
    const key = await newKey(["runs:write"])
    const canceled = await api({ url: stack.url, token: key.key })("POST", `/v1/runs/${id}/cancel`, {
      reason: "not needed"
    })
    expect(canceled.status, canceled.text).toBe(200)
    const events = (await call("GET", `/v1/runs/${id}/events`)).json.items
    const event = events.find((e: { type: string }) => e.type === "RunCanceled")
    expect(event?.payload).toMatchObject({ reason: "not needed", by: `key:${key.id}` })
  })

  it("a budget is updatedBy `key:<id>`", async () => {
    const key = await newKey(["budgets:write"])
    const set = await api({ url: stack.url, token: key.key })("PUT", "/v1/budget", {
      maxRunsPerDay: 1000,
      hardFail: false
    })
    expect(set.status, set.text).toBe(200)
    expect(set.json.updatedBy).toBe(`key:${key.id}`)
  })
})
