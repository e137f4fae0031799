// The ollama and agent-cli task adapters against real parts (ADR 0057): a real nats-server; the router reaching a
// local server that speaks Ollama's OpenAI-compatible API through OPENAI_BASE_URL; the spawner starting the
// stand-in codex and claude CLIs (tests/fixtures/agent-cli) in sandbox workloads whose working directory is the
// task's artifact root; the evidence check over what they claim; the artifacts they made stored in the JetStream
// Object Store; attempt bundles; the fallback chain's probes.
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigProvider, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Audit } from "../actors/audit/Audit.ts"
import { Identities } from "../actors/identity/Identity.ts"
import { Ids } from "../actors/kernel/Ids.ts"
import * as Catalog from "../actors/model/Catalog.ts"
import { ModelProvider } from "../actors/model/ModelProvider.ts"
import * as Providers from "../actors/model/Providers.ts"
import { Budgets } from "../actors/budget/Budgets.ts"
import { Receipts } from "../actors/receipts/Receipts.ts"
import { Secrets } from "../actors/secrets/Secrets.ts"
import { Spawner } from "../actors/spawner/Spawner.ts"
import type { Adapter, AttemptContext, AttemptFailure, AttemptResult } from "../actors/task/Adapter.ts"
import * as AgentCliAdapter from "../actors/task/AgentCliAdapter.ts"
import { Artifacts } from "../actors/task/Artifacts.ts"
import * as Bundle from "../actors/task/Bundle.ts"
import * as Chain from "../actors/task/Chain.ts"
import * as Evidence from "../actors/task/Evidence.ts"
import * as Normalize from "../actors/task/Normalize.ts"
import * as OllamaAdapter from "../actors/task/OllamaAdapter.ts"
import * as ScriptAdapter from "../actors/task/ScriptAdapter.ts"
import { freePort } from "../bus/NatsServer.ts"
import { Hosts } from "../bus/Hosts.ts"
import { Leases } from "../bus/Leases.ts"
import * as Topology from "../bus/Topology.ts"
import type { AdapterSpec } from "../schema/Task.ts"
import { busLayer, startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

const TENANT = "acme"
const MODEL = "llama3.2"
const FIXTURES = join(import.meta.dirname, "fixtures", "agent-cli")
const CODEX = join(FIXTURES, "codex")
const CLAUDE = join(FIXTURES, "claude")
const hasBwrap = (() => {
  try {
    execFileSync("bwrap", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

// ---- a local server speaking Ollama's OpenAI-compatible API (GET /v1/models, POST /v1/chat/completions) ----

interface Scripted {
  readonly status?: number
  readonly content?: string
  readonly headers?: Record<string, string>
}
const answers: Array<Scripted> = []
const requests: Array<{ readonly headers: IncomingMessage["headers"]; readonly body: any }> = []
let ollama: Server
let ollamaUrl: string

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let data = ""
    req.on("data", (c: Buffer) => (data += c.toString("utf8")))
    req.on("end", () => resolve(data))
  })

const startOllama = async () => {
  const port = await freePort()
  ollama = createServer(async (req, res) => {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body))
    if (req.method === "GET" && req.url === "/v1/models") {
      return json(200, {
        object: "list",
        data: [{ id: `${MODEL}:latest`, object: "model", created: 1733000000, owned_by: "library" }]
      })
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") return json(404, { error: "not found" })
    const body = JSON.parse(await readBody(req))
    requests.push({ headers: req.headers, body })
    const next = answers.shift() ?? { content: "no answer scripted" }
    if ((next.status ?? 200) !== 200) {
      return json(next.status!, { error: { message: "rate limited", type: "rate_limit_exceeded" } }, next.headers)
    }
    return json(200, {
      id: `chatcmpl-${requests.length}`,
      object: "chat.completion",
      created: 1733000000,
      model: body.model,
      system_fingerprint: "fp_ollama",
      choices: [{ index: 0, message: { role: "assistant", content: next.content }, finish_reason: "stop" }],
      usage: { prompt_tokens: 400, completion_tokens: 100, total_tokens: 500 }
    })
  })
  await new Promise<void>((r) => ollama.listen(port, "127.0.0.1", () => r()))
  ollamaUrl = `http://127.0.0.1:${port}/v1`
}

// ---- the parts: spawner, router, artifacts on one real nats-server ----

let nats: TestServer
let dir: string
let runtime: ManagedRuntime.ManagedRuntime<Spawner | ModelProvider | Artifacts, unknown>
let ollamaAdapter: Adapter
let cliAdapter: Adapter
let taskN = 0
/** A whole Lantern (HTTP edge, task workers) on the same bus, for the route and the end-to-end test. */
let stack: StackProcess

beforeAll(async () => {
  nats = await startServer("lantern-task-adapters")
  dir = mkdtempSync(join(tmpdir(), "lantern-task-adapters-"))
  // started first, before this process's own load on the bus
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: { LANTERN_SPAWNER_BACKENDS: "process", LANTERN_TASK_WORKERS: "1" }
  })
  await startOllama()
  const prices = join(dir, "prices.json")
  writeFileSync(
    prices,
    JSON.stringify({
      version: "test",
      models: { [MODEL]: { inputPerMTok: 1, cachedInputPerMTok: 0.5, outputPerMTok: 2 } }
    })
  )
  const config = ConfigProvider.layer(ConfigProvider.fromUnknown({
    LANTERN_KEK: Buffer.alloc(32, 9).toString("base64"),
    LANTERN_SPAWNER_BACKENDS: "process,bwrap",
    LANTERN_WORKLOAD_DIR: join(dir, "workloads"),
    LANTERN_HARNESS_POOL: "1",
    OPENAI_API_KEY: "ollama",
    OPENAI_BASE_URL: ollamaUrl,
    LANTERN_OPENAI_MODEL: MODEL,
    LANTERN_MODEL_CACHE: "off",
    LANTERN_PRICES_FILE: prices
  }))
  // the spawner's model calls reserve against budgets and go to the model provider (ADR 0062)
  const layer = Layer.mergeAll(
    Spawner.layer.pipe(Layer.provide(Secrets.layer), Layer.provide(Receipts.layer), Layer.provide(Budgets.layer)),
    Artifacts.layer
  )
    .pipe(
      Layer.provideMerge(Providers.layerConfig),
      Layer.provideMerge(Layer.mergeAll(Audit.layer, Identities.layer)),
      Layer.provideMerge(Layer.mergeAll(Ids.layer, Leases.layer.pipe(Layer.provideMerge(Hosts.layer)))),
      Layer.provideMerge(Layer.effectDiscard(Topology.apply)),
      Layer.provideMerge(busLayer(nats.handle.url)),
      Layer.provide(config)
    )
  runtime = ManagedRuntime.make(layer as Layer.Layer<Spawner | ModelProvider | Artifacts, unknown>)
  ollamaAdapter = await runtime.runPromise(OllamaAdapter.fromHost.pipe(Effect.provide(config)))
  cliAdapter = await runtime.runPromise(AgentCliAdapter.fromHost)
}, 240_000)

afterAll(async () => {
  await stack?.stop()
  await runtime?.dispose()
  await new Promise<void>((r) => ollama?.close(() => r()))
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const context = (over: Partial<AttemptContext> = {}): AttemptContext => {
  const taskId = `tsk_${String(++taskN).padStart(26, "0")}`
  return {
    tenant: TENANT,
    taskId,
    attempt: 1,
    kind: "report",
    subject: "Q3 revenue",
    description: "Sum the Q3 revenue figures and write the totals to a report.",
    payload: { quarter: "2026-Q3", currency: "EUR" },
    artifactRoot: join(dir, "artifacts", taskId),
    signal: new AbortController().signal,
    ...over
  }
}

const run = (adapter: Adapter, spec: AdapterSpec, ctx: AttemptContext) =>
  runtime.runPromise(Effect.exit(adapter.execute(spec, ctx)))
const ok = (exit: Exit.Exit<AttemptResult, AttemptFailure>): AttemptResult => {
  if (Exit.isSuccess(exit)) return exit.value
  throw new Error(`expected a result, got ${JSON.stringify(exit.cause)}`)
}
const failed = (exit: Exit.Exit<AttemptResult, AttemptFailure>): AttemptFailure => {
  if (Exit.isFailure(exit)) {
    const f = exit.cause.reasons.find((r) => r._tag === "Fail") as { error: AttemptFailure } | undefined
    if (f !== undefined) return f.error
  }
  throw new Error(`expected an attempt failure, got ${JSON.stringify(exit)}`)
}

const codex = (scenario: string, over: Partial<Extract<AdapterSpec, { type: "agent-cli" }>> = {}): AdapterSpec => ({
  type: "agent-cli",
  driver: "codex",
  command: CODEX,
  isolation: "trusted",
  env: { STANDIN_SCENARIO: scenario },
  ...over
})
const claude = (scenario: string): AdapterSpec => ({
  type: "agent-cli",
  driver: "claude-code",
  command: CLAUDE,
  isolation: "trusted",
  env: { STANDIN_SCENARIO: scenario }
})

describe("ollama", () => {
  const spec: AdapterSpec = { type: "ollama", model: MODEL }

  it("probes the server's model list through the catalogue's base URL", async () => {
    expect(await runtime.runPromise(ollamaAdapter.probe(TENANT, spec))).toEqual({ ok: true })
    const missing = await runtime.runPromise(ollamaAdapter.probe(TENANT, { type: "ollama", model: "mistral" }))
    expect(missing).toMatchObject({ ok: false })
    expect(!missing.ok && missing.reason).toContain("does not serve mistral")
    // the same adapter over a catalogue whose server is down
    const provider = await runtime.runPromise(ModelProvider.use(Effect.succeed))
    const down = OllamaAdapter.make({
      provider,
      catalog: {
        ...(await runtime.runPromise(Catalog.fromConfig.pipe(
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
            OPENAI_API_KEY: "x",
            OPENAI_BASE_URL: `http://127.0.0.1:${await freePort()}/v1`
          })))
        )))
      }
    })
    const unreachable = await runtime.runPromise(down.probe(TENANT, spec))
    expect(!unreachable.ok && unreachable.reason).toContain("unreachable")
  })

  it("asks for an Outcome JSON and reads the answer, with the router's tokens and cost", async () => {
    answers.push({
      content:
        "Here is the result.\n```json\n{\"status\":\"completed\",\"operatorSummary\":\"Q3 revenue totals 1,234 EUR across 3 regions.\",\"machineStatus\":\"ok\",\"followUpTasks\":[{\"kind\":\"review\",\"source\":\"ollama\",\"payload\":{}}]}\n```"
    })
    const ctx = context()
    const result = ok(await run(ollamaAdapter, spec, ctx))
    expect(result.outcome).toMatchObject({
      status: "completed",
      machineStatus: "ok",
      followUpTasks: [{ kind: "review", source: "ollama", payload: {} }]
    })
    expect(result.usage.tokens).toBe(500)
    expect(result.usage.costUsd).toBeCloseTo((400 * 1 + 100 * 2) / 1e6, 12)
    const sent = requests.at(-1)!
    expect(sent.body.model).toBe(MODEL)
    expect(sent.headers["idempotency-key"]).toBe(`${ctx.taskId}:ollama:1`)
    expect(sent.body.messages[0].content).toContain("\"status\"")
    expect(sent.body.messages[1].content).toContain(ctx.description)
    expect(sent.body.messages[1].content).toContain("{\"currency\":\"EUR\",\"quarter\":\"2026-Q3\"}")
    expect(Evidence.verify(result.outcome, { artifactRoot: ctx.artifactRoot, description: ctx.description }))
      .toEqual({ ok: true })
    // what it saw is the same for the same task: the bundle's hash is stable, and moves with the description
    const hash = (c: AttemptContext, seen: unknown) => Bundle.compile({ task: c, adapter: spec, seen }).hash
    answers.push({ content: "{\"status\":\"completed\",\"operatorSummary\":\"again\"}" })
    const again = ok(await run(ollamaAdapter, spec, context()))
    expect(hash(context(), again.seen)).toBe(hash(ctx, result.seen))
    answers.push({ content: "{\"status\":\"completed\",\"operatorSummary\":\"other\"}" })
    const changed = context({ description: "Sum the Q4 revenue figures." })
    expect(hash(changed, ok(await run(ollamaAdapter, spec, changed)).seen)).not.toBe(hash(ctx, result.seen))
  })

  it("takes a plain-text answer as an unstructured completion, which the evidence check still judges", async () => {
    answers.push({ content: "I'm blocked: I cannot proceed without the regional figures." })
    const ctx = context()
    const result = ok(await run(ollamaAdapter, spec, ctx))
    expect(result.outcome).toMatchObject({ status: "completed", machineStatus: Normalize.UNSTRUCTURED })
    const verdict = Evidence.verify(result.outcome, { artifactRoot: ctx.artifactRoot, description: ctx.description })
    expect(verdict).toMatchObject({ ok: false, reason: "outcome_verification_failed" })
  })

  it("turns a 429 with Retry-After into a rate-limit hint", async () => {
    answers.push({ status: 429, headers: { "retry-after": "20" } })
    const f = failed(await run(ollamaAdapter, spec, context()))
    expect(f).toMatchObject({ retryable: true, retryAfterSeconds: 20 })
    expect(f.message).toContain("429")
  })
})

describe("agent-cli", () => {
  it("probes the binary and the tier, refusing rather than downgrading", async () => {
    expect(await runtime.runPromise(cliAdapter.probe(TENANT, codex("clean")))).toEqual({ ok: true })
    const absent = await runtime.runPromise(
      cliAdapter.probe(TENANT, { type: "agent-cli", driver: "codex", isolation: "trusted" })
    )
    expect(absent).toEqual({ ok: false, reason: "codex: codex is not on PATH" })
    const byDefault = await runtime.runPromise(
      cliAdapter.probe(TENANT, { type: "agent-cli", driver: "claude-code", command: CLAUDE })
    )
    if (hasBwrap) expect(byDefault).toEqual({ ok: true })
    else {
      expect(byDefault.ok).toBe(false)
      expect(!byDefault.ok && byDefault.reason).toContain("isolation tier 'standard' is unavailable")
    }
    const hostile = await runtime.runPromise(cliAdapter.probe(TENANT, codex("clean", { isolation: "hostile" })))
    expect(!hostile.ok && hostile.reason).toContain("'hostile'")
  })

  it(
    "runs codex in a workload whose working directory is the artifact root; its files are verified and stored",
    async () => {
      const ctx = context()
      const result = ok(await run(cliAdapter, codex("clean"), ctx))
      expect(result.ref.workloadId).toMatch(/^wl_/u)
      expect(result.outcome).toMatchObject({
        status: "completed",
        machineStatus: "ok",
        fileChanges: [{ path: "reports/totals.md", change: "created" }],
        artifactPaths: ["reports/totals.md"]
      })
      expect(result.usage).toEqual({ costUsd: 0, tokens: 1500 })
      // the CLI got the task as its prompt, and wrote where the task's files go
      expect(readFileSync(join(ctx.artifactRoot, "prompt.txt"), "utf8")).toContain(ctx.description)
      expect(readFileSync(join(ctx.artifactRoot, "reports", "totals.md"), "utf8")).toContain("1,234")
      const verdict = Evidence.verify(result.outcome, {
        artifactRoot: ctx.artifactRoot,
        prompt: (result.seen as { prompt: string }).prompt,
        description: ctx.description
      })
      expect(verdict).toEqual({ ok: true })
      const stored = await runtime.runPromise(
        Artifacts.use((a) => a.collect(TENANT, ctx.taskId, ctx.artifactRoot, result.outcome.artifactPaths))
      )
      expect(stored.map((s) => s.path)).toEqual(["reports/totals.md"])
      const bytes = await runtime.runPromise(
        Artifacts.use((a) => a.get(TENANT, ctx.taskId, "reports/totals.md"))
      )
      expect(new TextDecoder().decode(bytes!)).toContain("1,234")
      // the bundle names the command as the spec does and the prompt, never this host's workload
      const bundle = Bundle.compile({ task: ctx, adapter: codex("clean"), seen: result.seen })
      expect(bundle.canonical).toContain("exec")
      expect(bundle.canonical).not.toContain(result.ref.workloadId!)
    },
    60_000
  )

  it(
    "hands the evidence check the two dishonest outcomes: a file that is not there, and blocked narrated as done",
    async () => {
      const lie = context()
      const lied = ok(await run(cliAdapter, codex("lie"), lie))
      expect(Evidence.verify(lied.outcome, { artifactRoot: lie.artifactRoot, description: lie.description }))
        .toMatchObject({ ok: false, issues: [{ code: "file_missing" }, { code: "file_missing" }] })
      const blocked = context()
      const narrated = ok(await run(cliAdapter, codex("blocked"), blocked))
      expect(narrated.outcome.status).toBe("completed")
      expect(
        Evidence.verify(narrated.outcome, { artifactRoot: blocked.artifactRoot, description: blocked.description })
      )
        .toMatchObject({ ok: false, issues: [{ code: "blocked_language" }] })
      // free text with a file the stream showed it writing: unstructured, and that file is claimed and there
      const text = context()
      const plain = ok(await run(cliAdapter, codex("text"), text))
      expect(plain.outcome).toMatchObject({
        status: "completed",
        machineStatus: Normalize.UNSTRUCTURED,
        fileChanges: [{ path: "notes/draft.txt", change: "created" }]
      })
      expect(Evidence.verify(plain.outcome, { artifactRoot: text.artifactRoot, description: text.description }))
        .toEqual({ ok: true })
    },
    90_000
  )

  it("reads a rate limit from codex's failed turn and claude's error result as hints", async () => {
    const codexLimited = failed(await run(cliAdapter, codex("ratelimit"), context()))
    expect(codexLimited).toMatchObject({ retryable: true, retryAfterSeconds: 20 })
    const claudeLimited = failed(await run(cliAdapter, claude("ratelimit"), context()))
    expect(claudeLimited).toMatchObject({ retryable: true, retryAfterSeconds: 45 })
  }, 60_000)

  it("fails an attempt whose CLI crashed without a final message, quoting its stderr", async () => {
    const f = failed(await run(cliAdapter, codex("crash"), context()))
    expect(f.retryable).toBe(true)
    expect(f.retryAfterSeconds).toBeUndefined()
    expect(f.message).toContain("exited with 3")
    expect(f.message).toContain("stand-in crash")
  }, 60_000)

  it("runs claude-code: its result, cost, usage, follow-up tasks and the file its Write made", async () => {
    const ctx = context()
    const result = ok(await run(cliAdapter, claude("clean"), ctx))
    expect(result.usage).toEqual({ costUsd: 0.0421, tokens: 3550 })
    expect(result.outcome).toMatchObject({
      status: "completed",
      machineStatus: "done",
      fileChanges: [{ path: "plans/migration-plan.md", change: "created" }],
      artifactPaths: ["plans/migration-plan.md"],
      followUpTasks: [{ kind: "migrate", source: "planner", payload: { step: 1 } }]
    })
    expect(Evidence.verify(result.outcome, { artifactRoot: ctx.artifactRoot, description: ctx.description }))
      .toEqual({ ok: true })
  }, 60_000)

  it("stops the CLI when the task is canceled", async () => {
    const controller = new AbortController()
    const ctx = context({ signal: controller.signal })
    const pending = run(cliAdapter, codex("slow"), ctx)
    await eventually(async () => existsSync(join(ctx.artifactRoot, "started.txt")), 60_000, "the CLI to start")
    controller.abort()
    const f = failed(await pending)
    expect(f).toMatchObject({ message: "canceled", retryable: false })
    const id = (f.seen as { workloadId: string }).workloadId
    await eventually(
      async () => {
        const view = await runtime.runPromise(Spawner.use((s) => s.get(TENANT, id)))
        return view.state === "terminated" || view.state === "exited"
      },
      30_000,
      "the workload to end"
    )
  }, 90_000)

  it.skipIf(!hasBwrap)("runs codex under bwrap (standard), writing only into the artifact root", async () => {
    const ctx = context()
    const result = ok(await run(cliAdapter, codex("clean", { isolation: "standard" }), ctx))
    expect(result.outcome.status).toBe("completed")
    expect(existsSync(join(ctx.artifactRoot, "reports", "totals.md"))).toBe(true)
  }, 60_000)
})

describe("script in a shared working directory", () => {
  it.skipIf(!hasBwrap)(
    "writes its artifact under bwrap into the task's artifact root, where the evidence check finds it",
    async () => {
      const script = await runtime.runPromise(ScriptAdapter.make)
      const outcome = {
        status: "completed",
        operatorSummary: "Wrote out/r.txt with the greeting.",
        machineStatus: "ok",
        fileChanges: [{ path: "out/r.txt", change: "created" }],
        artifactPaths: ["out/r.txt"],
        followUpTasks: [],
        externalMessages: []
      }
      const code =
        `const fs = require("fs"); fs.mkdirSync("out", { recursive: true }); fs.writeFileSync("out/r.txt", "hi");
      console.log(${JSON.stringify(JSON.stringify(outcome))})`
      const ctx = context()
      const result = ok(
        await run(script, { type: "script", command: [process.execPath, "-e", code], isolation: "standard" }, ctx)
      )
      expect(readFileSync(join(ctx.artifactRoot, "out", "r.txt"), "utf8")).toBe("hi")
      expect(Evidence.verify(result.outcome, { artifactRoot: ctx.artifactRoot, description: ctx.description }))
        .toEqual({ ok: true })
    },
    60_000
  )
})

describe("the fallback chain", () => {
  it("passes over an adapter whose probe fails and reports every probe", async () => {
    const adapters = [ollamaAdapter, cliAdapter]
    const specs: ReadonlyArray<AdapterSpec> = [
      { type: "agent-cli", driver: "claude-code", command: "/nonexistent/claude", isolation: "trusted" },
      { type: "agent", agentName: "helper" },
      { type: "ollama", model: MODEL },
      codex("clean")
    ]
    const chain = await runtime.runPromise(Chain.probeChain(adapters, TENANT, specs))
    expect(chain.chosen?.index).toBe(2)
    expect(chain.chosen?.adapter).toBe(ollamaAdapter)
    expect(chain.probes).toEqual([
      { index: 0, type: "agent-cli", ok: false, reason: "claude-code: /nonexistent/claude is not an executable file" },
      { index: 1, type: "agent", ok: false, reason: "no agent adapter on this host" },
      { index: 2, type: "ollama", ok: true, reason: null }
    ])
    const none = await runtime.runPromise(Chain.probeChain(adapters, TENANT, specs.slice(0, 2)))
    expect(none.chosen).toBeNull()
    expect(Chain.refusal(none.probes)).toContain("no adapter could run")
  })
})

describe("artifacts", () => {
  it("are kept per tenant and task, listed, and refused outside the root", async () => {
    const use = <A, E>(f: (a: Artifacts["Service"]) => Effect.Effect<A, E>) => runtime.runPromise(Artifacts.use(f))
    const id = "tsk_0000000000000000000000zzzz"
    await use((a) => a.put(TENANT, id, "b/two.txt", new TextEncoder().encode("two")))
    await use((a) => a.put(TENANT, id, "a.txt", new TextEncoder().encode("one")))
    expect((await use((a) => a.list(TENANT, id))).map((e) => [e.path, e.size])).toEqual([["a.txt", 3], [
      "b/two.txt",
      3
    ]])
    expect(await use((a) => a.get("other", id, "a.txt"))).toBeNull()
    expect(await use((a) => a.get(TENANT, id, "missing.txt"))).toBeNull()
    for (const bad of ["../x", "/etc/passwd", "a//b", "./a", ""]) {
      const exit = await runtime.runPromise(
        Effect.exit(Artifacts.use((a) => a.put(TENANT, id, bad, new Uint8Array(1))))
      )
      expect(Exit.isFailure(exit), bad).toBe(true)
    }
    const root = join(dir, "collect-root")
    mkdirSync(root, { recursive: true })
    writeFileSync(join(dir, "outside.txt"), "no")
    const escaped = await runtime.runPromise(
      Effect.exit(Artifacts.use((a) => a.collect(TENANT, id, root, ["../outside.txt"])))
    )
    expect(Exit.isFailure(escaped)).toBe(true)
    const missing = await runtime.runPromise(
      Effect.exit(Artifacts.use((a) => a.collect(TENANT, id, root, ["nope.txt"])))
    )
    expect(JSON.stringify(missing)).toContain("no such file in the artifact root")
  })
})

describe("GET /v1/tasks/{id}/artifacts/{path}", () => {
  it(
    "serves a stored artifact from any host, 404 for one that is not there, 400 for a path that climbs out",
    async () => {
      {
        const call = api(stack)
        const id = "tsk_0000000000000000000000http"
        // stored by this process (another host); the owner token's tenant is `dev`
        await runtime.runPromise(
          Artifacts.use((a) => a.put("dev", id, "reports/q3.md", new TextEncoder().encode("# Q3\n")))
        )
        const got = await call("GET", `/v1/tasks/${id}/artifacts/${encodeURIComponent("reports/q3.md")}`)
        expect(got.status).toBe(200)
        expect(got.text).toBe("# Q3\n")
        expect(got.headers.get("content-type")).toContain("text/markdown")
        const absent = await call("GET", `/v1/tasks/${id}/artifacts/${encodeURIComponent("reports/q4.md")}`)
        expect(absent.status).toBe(404)
        expect(absent.json.error.code).toBe("artifact_not_found")
        // another tenant's artifact is not this tenant's
        await runtime.runPromise(Artifacts.use((a) => a.put("other", id, "x.txt", new TextEncoder().encode("x"))))
        expect((await call("GET", `/v1/tasks/${id}/artifacts/x.txt`)).status).toBe(404)
        const climbing = await call("GET", `/v1/tasks/${id}/artifacts/${encodeURIComponent("../x.txt")}`)
        expect(climbing.status).toBe(400)
        expect(JSON.stringify(climbing.json)).toContain("path")
        expect((await call("GET", `/v1/tasks/not-a-task/artifacts/a.md`)).status).toBe(400)
      }
    },
    120_000
  )
})

describe("end to end: POST /v1/tasks with the codex adapter", () => {
  it("completes a clean task with its artifact and bundle, and blocks a dishonest one with its issues", async () => {
    {
      const call = api(stack)
      const submit = async (scenario: string, description: string) => {
        const r = await call("POST", "/v1/tasks", {
          kind: "report",
          source: "vitest",
          payload: { quarter: "2026-Q3" },
          description,
          maxAttempts: 1,
          adapter: codex(scenario)
        })
        expect(r.status, r.text).toBe(201)
        return r.json.id as string
      }
      const settled = (id: string) =>
        eventually(
          async () => {
            const t = (await call("GET", `/v1/tasks/${id}`)).json
            return t.status === "completed" || t.status === "blocked" || t.status === "permanent_failure" ? t : null
          },
          90_000,
          `task ${id} to settle`
        )
      const clean = await settled(await submit("clean", "Sum the Q3 revenue and write the totals."))
      expect(clean.status, JSON.stringify(clean)).toBe("completed")
      expect(clean.outcome.artifactPaths).toEqual(["reports/totals.md"])
      expect(clean.artifacts).toEqual(["reports/totals.md"])
      const attempt = clean.attempts[0]
      expect(attempt.adapter).toBe("agent-cli")
      expect(attempt.workloadId).toMatch(/^wl_/u)
      expect(attempt.bundleHash).toMatch(/^sha256:[0-9a-f]{64}$/u)
      const file = await call("GET", `/v1/tasks/${clean.id}/artifacts/${encodeURIComponent("reports/totals.md")}`)
      expect(file.status).toBe(200)
      expect(file.text).toContain("1,234")
      // the same task again hashes the same; another description does not
      const twin = await settled(await submit("clean", "Sum the Q3 revenue and write the totals."))
      expect(twin.attempts[0].bundleHash).toBe(attempt.bundleHash)
      const other = await settled(await submit("clean", "Sum the Q4 revenue and write the totals."))
      expect(other.attempts[0].bundleHash).not.toBe(attempt.bundleHash)

      const lie = await settled(await submit("lie", "Write the quarterly report."))
      expect(lie.status).toBe("blocked")
      expect(lie.reason).toContain("outcome_verification_failed")
      expect(lie.reason).toContain("reports/q3.md")
      expect(lie.artifacts).toEqual([])
      const blocked = await settled(await submit("blocked", "Run the quarterly report."))
      expect(blocked.status).toBe("blocked")
      expect(blocked.reason).toContain("blocked_language")
    }
  }, 300_000)
})
