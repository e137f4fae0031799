// Text and bytes no route may accept, for every text field of every route with a body (walked from the OpenAPI
// document, so a new route or field is covered by construction): lone surrogates and NUL (which Postgres or
// the receipt canonicaliser cannot store) are 400 naming the field; invalid UTF-8, a non-JSON media type, a
// body over the limit in bytes (declared, chunked, or multi-byte text) are refused before anything is done.
import { spawnSync } from "node:child_process"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { document } from "../edge/OpenApi.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { eventually, readReply, ROOT, startStack, stopStack, type StackProcess } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess

const MiB = 1024 * 1024
const RUN = "run_0000000000000000000000000z"
const spec = {
  systemPrompt: "You compute.",
  tools: [{ name: "calculator", description: "arithmetic", parameters: { type: "object" } }]
}
const POISONS = [["a lone high surrogate", "\ud800 x"], ["a lone low surrogate", "x \udc00"], [
  "NUL",
  "nul \u0000 byte"
]] as const

interface Reply {
  readonly status: number
  readonly json: any
  readonly text: string
}

const send = async (
  method: string,
  path: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = { "content-type": "application/json" }
): Promise<Reply> =>
  readReply(
    await fetch(`${stack.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${stack.token}`, ...headers },
      ...(body === undefined ? {} : { body })
    })
  )

const expectBad = (r: Reply, field: string) => {
  expect(r.status, r.text).toBe(400)
  expect(r.json?.error?.code).toBe("invalid_request")
  const issue = (r.json.error.issues ?? []).find((i: { field: string }) => i.field === field)
  expect(issue, `no issue for '${field}' in ${r.text}`).toBeDefined()
}

beforeAll(async () => {
  nats = await startServer("lantern-hostile-input")
  stack = await startStack({ natsUrl: nats.handle.url })
  expect((await send("POST", "/v1/agents", JSON.stringify({ name: "alpha", spec }))).status).toBe(201)
}, 200_000)

afterAll(() => stopStack(stack, nats))

// --- the text fields of every request body, from the document --------------------------------------------

type Json = { readonly [k: string]: any }
type Segment = string | number

/** Paths to every string field of `schema` (through $ref, unions and arrays), at most `depth` deep. */
const stringPaths = (schema: Json, defs: Json, depth = 6): ReadonlyArray<ReadonlyArray<Segment>> => {
  if (depth === 0 || schema === undefined) return []
  if (typeof schema.$ref === "string") return stringPaths(defs[schema.$ref.split("/").pop()!], defs, depth)
  const variants = [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]
  if (variants.length > 0) {
    const seen = new Map<string, ReadonlyArray<Segment>>()
    for (const v of variants) for (const p of stringPaths(v, defs, depth)) seen.set(JSON.stringify(p), p)
    return [...seen.values()]
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type]
  if (types.includes("string")) return [[]]
  if (types.includes("array") && schema.items !== undefined)
    return stringPaths(schema.items, defs, depth - 1).map((p) => [0, ...p])
  return Object.entries(schema.properties ?? {}).flatMap(([k, s]) =>
    stringPaths(s as Json, defs, depth - 1).map((p) => [k, ...p])
  )
}

const fieldOf = (path: ReadonlyArray<Segment>) =>
  path.map((s, i) => typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`).join("")

/** A body holding `value` at `path` and nothing else (the text rule is checked before the body's schema). */
const bodyAt = (path: ReadonlyArray<Segment>, value: string): unknown =>
  path.length === 0
    ? value
    : typeof path[0] === "number"
    ? [bodyAt(path.slice(1), value)]
    : { [path[0]!]: bodyAt(path.slice(1), value) }

/** A well-formed id for the resource a path names (its path parameter is checked before the body). */
const idOf = (path: string) =>
  path.startsWith("/v1/channels/")
    ? `ch_${"0".repeat(26)}`
    : path.startsWith("/v1/sessions/")
    ? `ses_${"0".repeat(32)}`
    : path.startsWith("/v1/workloads/")
    ? `wl_${"0".repeat(26)}`
    : path.startsWith("/v1/tasks/")
    ? `tsk_${"0".repeat(26)}`
    : path.startsWith("/v1/experiments/")
    ? `exp_${"0".repeat(26)}`
    : path.startsWith("/v1/schedules/")
    ? `sch_${"0".repeat(26)}`
    : RUN

const concrete = (path: string) =>
  path.replace("{name}", "alpha").replace("{slug}", "dev.alpha").replace("{id}", idOf(path)).replace(
    "{stepId}",
    "turn-1.tool-0.approval"
  )

const fields = Object.entries(document().paths as Json).flatMap(([path, ops]) =>
  Object.entries(ops as Json).flatMap(([method, op]) => {
    const schema = op.requestBody?.content?.["application/json"]?.schema
    if (schema === undefined) return []
    return stringPaths(schema, schema.$defs ?? {}).map((p) =>
      [`${method.toUpperCase()} ${path}`, fieldOf(p), method.toUpperCase(), concrete(path), p] as const
    )
  })
)

describe("every text field of every route refuses what cannot be stored", () => {
  it("finds the text fields of every route with a body", () => {
    const routes = new Set(fields.map(([route]) => route))
    for (
      const route of [
        "POST /v1/agents",
        "PUT /v1/agents/{name}",
        "POST /v1/runs",
        "POST /v1/runs/{id}/cancel",
        "POST /v1/tenants",
        "POST /v1/api-keys",
        "POST /v1/secrets",
        "POST /.well-known/lantern-agent-identity/verify"
      ]
    ) {
      expect(routes, route).toContain(route)
    }
    expect(fields.length).toBeGreaterThan(30)
  })
  it.for(
    fields.flatMap(([route, field, method, path, p]) =>
      POISONS.map(([label, value]) => [`${route} ${field} with ${label}`, method, path, p, field, value] as const)
    )
  )(
    "%s",
    async ([, method, path, p, field, value]) => {
      expectBad(await send(method, path, JSON.stringify(bodyAt(p, value))), field === "" ? "(body)" : field)
    }
  )
  it.for(POISONS)("an object key with %s is refused, naming it", async ([, value]) => {
    const r = await send("POST", "/v1/runs", JSON.stringify({ agentName: "alpha", input: { [value]: 1 } }))
    expect(r.status, r.text).toBe(400)
    expect(r.json.error.issues[0].field).toMatch(/^input\./)
    expect(r.json.error.issues[0].message).toMatch(/key/)
  })
  it.for(POISONS)("text nested deep inside a run input (%s) is refused naming its path", async ([, value]) => {
    expectBad(
      await send("POST", "/v1/runs", JSON.stringify({ agentName: "alpha", input: { a: [{ b: ["ok", value] }] } })),
      "input.a[0].b[1]"
    )
  })
  it("a query value with NUL or a surrogate's bytes is refused naming the parameter", async () => {
    expectBad(await send("GET", "/v1/runs?agentName=a%00"), "agentName")
    expectBad(await send("GET", "/v1/runs?limit=%ED%A0%80"), "(query)")
    expectBad(await send("GET", "/v1/audit?action=%00"), "action")
  })
})

describe("unknown fields are refused, each named", () => {
  it.for(
    [
      ["POST", "/v1/runs", { agentName: "alpha", input: "x", agentVersoin: 1 }, "agentVersoin"],
      ["POST", "/v1/agents", { name: "gamma", spec: { ...spec, maxTurn: 3 } }, "spec.maxTurn"],
      ["POST", "/v1/agents", { name: "gamma", spec: { ...spec, retyr: { maxAttempts: 2 } } }, "spec.retyr"],
      ["PUT", "/v1/agents/alpha", { spec, descripton: "typo" }, "descripton"],
      ["PUT", "/v1/budget", { hardFail: true, maxCostUsdPerRun: 1, maxCostPerDay: 5 }, "maxCostPerDay"],
      ["POST", "/v1/api-keys", { name: "k", scopes: ["runs:read"], expires: "2030-01-01T00:00:00Z" }, "expires"]
    ] as const
  )("%s %s %j", async ([method, path, body, field]) => {
    expectBad(await send(method, path, JSON.stringify(body)), field)
  })
  it("an unknown query parameter is refused too", async () => {
    expectBad(await send("GET", "/v1/runs?statuss=running"), "statuss")
  })
})

describe("bytes and media types", () => {
  it("refuses a body that is not valid UTF-8 (never replaced with U+FFFD)", async () => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode("{\"agentName\":\"alpha\",\"input\":\""),
      0xff,
      0xfe,
      ...new TextEncoder().encode("\"}")
    ])
    expectBad(await send("POST", "/v1/runs", bytes), "(body)")
  })
  it.for(
    [["text/plain", { "content-type": "text/plain" }], ["no Content-Type", {}], ["a latin-1 charset", {
      "content-type": "application/json; charset=iso-8859-1"
    }]] as const
  )(
    "refuses a JSON body sent as %s with 415 naming Content-Type",
    async ([, headers]) => {
      // fetch adds text/plain to a string body unless told otherwise: send bytes for "no Content-Type"
      const r = await send(
        "POST",
        "/v1/runs",
        new TextEncoder().encode(JSON.stringify({ agentName: "alpha", input: "x" })),
        headers
      )
      expect(r.status, r.text).toBe(415)
      expect(r.json.error.code).toBe("unsupported_media_type")
      expect(r.json.error.issues[0].field).toBe("Content-Type")
    }
  )
  it("accepts application/json with charset=utf-8", async () => {
    const r = await send("POST", "/v1/runs/forecast", JSON.stringify({ agentName: "alpha", input: "x" }), {
      "content-type": "application/json; charset=UTF-8"
    })
    expect(r.status, r.text).toBe(200)
  })
  it("counts bytes, not characters: 400k '中' (1.2 MB) is 413, also chunked", async () => {
    const body = JSON.stringify({ agentName: "alpha", input: "中".repeat(400_000) })
    expect(body.length).toBeLessThan(MiB)
    expect((await send("POST", "/v1/runs", body)).status).toBe(413)
    const chunked = await fetch(`${stack.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
      body: new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(body)), c.close()) }),
      duplex: "half"
    } as RequestInit)
    expect(chunked.status).toBe(413)
  })
  it(
    "stops reading a huge chunked body at the limit, also on the unauthenticated verify route, without holding it in memory",
    async () => {
      const pid = stack.child.pid!
      const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024
      const before = rss()
      const chunk = new Uint8Array(64 * 1024).fill(0x20)
      for (const path of ["/.well-known/lantern-agent-identity/verify", "/v1/runs"]) {
        let sent = 0
        const r = await fetch(`${stack.url}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
          // 200 MB offered; the server answers once it has read past 1 MiB
          body: new ReadableStream({
            pull: (c) => {
              if (sent >= 200 * MiB) return c.close()
              sent += chunk.byteLength
              c.enqueue(chunk)
            }
          }),
          duplex: "half"
        } as RequestInit).catch((e: unknown) => e)
        if (r instanceof Response) expect(r.status).toBe(413)
        // the server may close the connection while the client is still sending: then no more than a few MiB went
        else expect(sent).toBeLessThan(200 * MiB)
      }
      expect(rss() - before).toBeLessThan(150 * MiB)
    },
    120_000
  )
})

describe("one spelling per route", () => {
  it.for(["/V1/AGENTS", "/v1//agents", "/v1/Agents", "/V1/RUNS", "/v1/runs//"])("%s is 404", async (path) => {
    const r = await send("GET", path)
    expect(r.status, r.text).toBe(404)
  })
  it("a trailing slash is not the list: it is the item route with an empty name", async () => {
    expectBad(await send("GET", "/v1/agents/"), "name")
  })
  it("the canonical spelling answers", async () => {
    expect((await send("GET", "/v1/agents")).status).toBe(200)
  })
})

describe("the CLI applies the same rule before sending", () => {
  const lantern = (...args: ReadonlyArray<string>) =>
    spawnSync(process.execPath, [join(ROOT, "scripts/lantern.mjs"), ...args], {
      cwd: ROOT,
      env: { ...process.env, LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token, NO_COLOR: "1" },
      encoding: "utf8"
    })
  it.for([["NUL", "\"nul \\u0000\""], ["a lone surrogate", "{\"a\":\"\\ud800\"}"]] as const)(
    "a run input with %s exits 2 naming --input",
    { timeout: 60_000 },
    ([, input]) => {
      const r = lantern("runs", "create", "--agent", "alpha", "--input", input)
      expect(r.status, r.stderr).toBe(2)
      expect(r.stderr).toMatch(/input/)
    }
  )
  it("a spec file with a lone surrogate exits 2", () => {
    const file = join(tmpdir(), `lantern-spec-${process.pid}.json`)
    writeFileSync(file, "{\"systemPrompt\":\"x \\ud800\"}")
    try {
      const r = lantern("agents", "create", "--name", "beta", "--spec-file", file)
      expect(r.status, r.stderr).toBe(2)
      expect(r.stderr).toMatch(/surrogate/)
    } finally {
      rmSync(file, { force: true })
    }
  }, 60_000)
})

describe("nothing was stored", () => {
  it("holds only the purposeful agent and no run", async () => {
    const agents = await eventually(
      async () => {
        const r = await send("GET", "/v1/agents")
        return r.json?.items?.length === 1 ? r.json.items : null
      },
      20_000,
      "the agent projection"
    )
    expect(agents.map((a: { name: string }) => a.name)).toEqual(["alpha"])
    expect((await send("GET", "/v1/runs")).json.items).toEqual([])
  })
})
