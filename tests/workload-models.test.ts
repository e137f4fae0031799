// Model calls through the harness (ADR 0062), on the real stack in real bubblewrap with the offline provider: a
// workload calls OpenAI's chat completions on its harness's socket (and, behind the relay, with fetch on
// OPENAI_BASE_URL) and gets the router's answer; the call is journaled with its usage and cost, never its
// messages, and the workload's receipt adds it up; a hard budget cap answers 402 and journals nothing; a wrong
// token is refused with one uniform answer.
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Receipt from "../schema/Receipt.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

const hasBwrap = (() => {
  try {
    execFileSync("bwrap", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let dir: string

const SECRET_PROMPT = "the launch code is 7f3a9c"

const spec = (name: string, script: string, over: Record<string, unknown> = {}) => ({
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name },
  spec: {
    command: [process.execPath, "-e", script],
    isolation: "standard",
    limits: { vcpu: 1, memoryMb: 512, timeoutSeconds: 120 },
    network: "none",
    ...over
  }
})

/** A workload script: POSTs each body to the model socket with the token given, printing `status body` per call. */
const socketScript = (calls: ReadonlyArray<{ token: string; body: unknown }>) => `
const http = require("node:http");
const real = process.env.LANTERN_IDENTITY_TOKEN;
const tokens = { real, none: "", garbage: "not-a-token", tampered: real.slice(0, -4) + (real.endsWith("AAAA") ? "BBBB" : "AAAA") };
const post = (token, body) => new Promise((done) => {
  const data = JSON.stringify(body);
  const r = http.request({ socketPath: process.env.LANTERN_MODELS_SOCKET, path: "/v1/chat/completions", method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + tokens[token] } }, (m) => {
    let b = ""; m.on("data", (d) => b += d); m.on("end", () => done(m.statusCode + " " + b));
  });
  r.on("error", (e) => done("error " + e.message)); r.end(data);
});
(async () => {
  for (const c of ${JSON.stringify(calls)}) console.log("CALL " + await post(c.token, c.body));
})();
`

const ask = { model: "auto", messages: [{ role: "user", content: `Say hello. ${SECRET_PROMPT}` }], max_tokens: 64 }

const ended = (c: ReturnType<typeof api>, id: string) =>
  eventually(
    async () => {
      const r = await c("GET", `/v1/workloads/${id}`)
      return r.json?.state !== undefined && !["scheduled", "placed", "running"].includes(r.json.state) ? r.json : null
    },
    90_000,
    `workload ${id} to end`
  )

const calls = async (c: ReturnType<typeof api>, id: string) => {
  const items = (await c("GET", `/v1/workloads/${id}/events`)).json.items as Array<any>
  const out = items.filter((e) => e.type === "WorkloadOutput").map((e) => e.payload.text).join("")
  const answers = out.split("\n").filter((l) => l.startsWith("CALL ")).map((l) => {
    const [status, ...rest] = l.slice(5).split(" ")
    return { status: Number(status), body: JSON.parse(rest.join(" ")) }
  })
  return { items, answers }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lantern-wl-models-"))
  nats = await startServer("lantern-wl-models")
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: { LANTERN_SPAWNER_BACKENDS: "process,bwrap", LANTERN_WORKLOAD_DIR: join(dir, "wl") }
  })
  call = api(stack)
}, 240_000)

afterAll(async () => {
  await stopStack(stack, nats)
  rmSync(dir, { recursive: true, force: true })
})

describe.skipIf(!hasBwrap)("a workload's model calls", () => {
  it(
    "go through the harness's socket to the router: answered, journaled with usage and cost (not the prompt), in the receipt; a wrong token refused uniformly",
    async () => {
      const r = await call(
        "POST",
        "/v1/workloads",
        spec(
          "caller",
          socketScript([
            { token: "real", body: ask },
            { token: "none", body: ask },
            { token: "garbage", body: ask },
            { token: "tampered", body: ask },
            { token: "real", body: { model: "auto", messages: [], stream: true } }
          ])
        )
      )
      expect(r.status, r.text).toBe(201)
      expect(r.json.backend).toBe("bwrap")
      const id = r.json.id as string
      const done = await ended(call, id)
      expect(done.exitCode, JSON.stringify(done)).toBe(0)
      const { items, answers } = await calls(call, id)
      expect(answers).toHaveLength(5)
      const [ok, none, garbage, tampered, invalid] = answers
      expect(ok!.status, JSON.stringify(ok)).toBe(200)
      expect(ok!.body.object).toBe("chat.completion")
      expect(ok!.body.choices[0].message.content.length).toBeGreaterThan(0)
      expect(ok!.body.usage.prompt_tokens).toBeGreaterThan(0)
      // every refusal of a token is the same answer, whatever was wrong with it
      for (const refused of [none, garbage, tampered]) {
        expect(refused!.status).toBe(401)
        expect(refused!.body).toEqual({
          error: { message: "refused", type: "authentication_error", code: "refused", param: null }
        })
      }
      expect(invalid!.status).toBe(400)
      expect(invalid!.body.error.type).toBe("invalid_request_error")
      // each refusal is on the record with its reason (the caller learns none of them)
      const refusals = await eventually(
        async () => {
          const audited = (await call("GET", "/v1/audit?action=workload.model.refused&limit=100")).json
            .items as Array<any>
          const mine = audited.filter((e) => e.actor === `workload:${id}`)
          return mine.length >= 3 ? mine : null
        },
        30_000,
        "the three refused calls to be audited"
      )
      expect(refusals.map((e) => e.outcome)).toEqual(["denied", "denied", "denied"])
      expect(refusals.every((e) => typeof e.detail.reason === "string" && e.detail.reason.startsWith("token"))).toBe(
        true
      )

      const journaled = items.filter((e) => e.type === "WorkloadModelCalled")
      expect(journaled).toHaveLength(1)
      expect(journaled[0].payload).toMatchObject({
        model: "auto",
        tokensIn: ok!.body.usage.prompt_tokens,
        tokensOut: ok!.body.usage.completion_tokens,
        costUsd: ok!.body.lantern.costUsd
      })
      expect(journaled[0].payload.chosen).toMatch(/\//)
      // what the workload said to the model is not in its journal (only its own stdout, which it printed itself)
      expect(JSON.stringify(journaled)).not.toContain(SECRET_PROMPT)
      expect(done.modelCalls).toBe(1)

      const receipt = (await call("GET", `/v1/workloads/${id}/receipt`)).json as Receipt.Receipt
      expect(receipt.tokensIn).toBe(journaled[0].payload.tokensIn)
      expect(receipt.tokensOut).toBe(journaled[0].payload.tokensOut)
      const journal = (await call("GET", `/v1/workloads/${id}/journal`)).text
      const keys = await (await fetch(`${stack.url}/.well-known/lantern-receipts`)).text()
      const verdict = Receipt.verify(receipt, Receipt.parseJsonl(journal), Receipt.parseKeys(keys))
      expect(verdict.valid, Receipt.failureOf(verdict) ?? "").toBe(true)
      // a changed usage figure in the journal fails the digest and the totals
      const inflated = journal.replace(/"tokensIn":(\d+)/, (_m, n) => `"tokensIn":${Number(n) + 1000}`)
      const bad = Receipt.verify(receipt, Receipt.parseJsonl(inflated), Receipt.parseKeys(keys))
      expect(bad.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["journal-digest", "totals"])
    },
    150_000
  )

  it(
    "behind the relay, an OpenAI client's own settings work: fetch on OPENAI_BASE_URL with OPENAI_API_KEY",
    async () => {
      const script = `
(async () => {
  const r = await fetch(process.env.OPENAI_BASE_URL + "/chat/completions", { method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + process.env.OPENAI_API_KEY },
    body: JSON.stringify(${JSON.stringify(ask)}) });
  console.log("CALL " + r.status + " " + await r.text());
})();
`
      const r = await call("POST", "/v1/workloads", spec("relayed", script, { network: "allowlist", egressRules: [] }))
      expect(r.status, r.text).toBe(201)
      const id = r.json.id as string
      expect((await ended(call, id)).exitCode).toBe(0)
      const { items, answers } = await calls(call, id)
      expect(answers[0]!.status, JSON.stringify(answers)).toBe(200)
      expect(items.filter((e) => e.type === "WorkloadModelCalled")).toHaveLength(1)
    },
    150_000
  )

  it("a hard budget cap answers 402 to the workload, and nothing is called or journaled", async () => {
    const tenant = await call("POST", "/v1/tenants", { name: "capped" })
    expect(tenant.status, tenant.text).toBe(201)
    const capped = api({ url: stack.url, token: tenant.json.key.key })
    const put = await capped("PUT", "/v1/budget", { maxTokensPerRun: 5, hardFail: true })
    expect(put.status, put.text).toBe(200)
    const r = await capped("POST", "/v1/workloads", spec("capped", socketScript([{ token: "real", body: ask }])))
    expect(r.status, r.text).toBe(201)
    const id = r.json.id as string
    expect((await ended(capped, id)).exitCode).toBe(0)
    const { items, answers } = await calls(capped, id)
    expect(answers[0]!.status, JSON.stringify(answers)).toBe(402)
    expect(answers[0]!.body.error.code).toBe("budget_exceeded")
    expect(answers[0]!.body.error.type).toBe("insufficient_quota")
    expect(items.filter((e) => e.type === "WorkloadModelCalled")).toHaveLength(0)
    const budget = await capped("GET", "/v1/budget")
    expect(budget.json.today.tokens).toBe(0)
  }, 150_000)
})
