// The operator queue across hosts (ADR 0054): two serve hosts on one bus claim each task exactly once; a host killed
// with SIGKILL while its worker runs a task leaves nothing stranded: the task is reclaimed by the other host (its
// attempt closed `reclaimed`) and completed there, and a task waiting for its retry is claimed there when due
// (regression tests of the seed runtime's stranded tasks).
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
const stacks: Array<StackProcess> = []
const dir = mkdtempSync(join(tmpdir(), "lantern-tasks-crash-"))

beforeAll(async () => {
  nats = await startServer("lantern-tasks-crash")
}, 240_000)

afterAll(async () => {
  for (const s of stacks) await s.stop().catch(() => undefined)
  await nats?.cleanup()
})

const outcome = (summary: string) =>
  JSON.stringify({
    status: "completed",
    operatorSummary: summary,
    machineStatus: "ok",
    fileChanges: [],
    artifactPaths: [],
    followUpTasks: [],
    externalMessages: []
  })

const script = (code: string) => ({ type: "script", command: [process.execPath, "-e", code] })

const host = async () => {
  const s = await startStack({ natsUrl: nats.handle.url, env: { LANTERN_TASK_WORKERS: "2" } })
  stacks.push(s)
  return s
}

describe("tasks across hosts", () => {
  it("a killed host's running task is reclaimed and completed elsewhere; a retrying one is not stranded", async () => {
    const a = await host()
    const call = api(a)
    const started = join(dir, "started")
    const go = join(dir, "go")
    // attempt 1 says it started, then waits for `go` (which comes after its host is dead); attempt 2 finds it
    const waiter = script(
      `const fs = require("fs"); fs.writeFileSync(${
        JSON.stringify(started)
      }, "1"); const t = setInterval(() => { if (fs.existsSync(${
        JSON.stringify(go)
      })) { clearInterval(t); console.log(${JSON.stringify(outcome("survived"))}) } }, 100)`
    )
    const running = await call("POST", "/v1/tasks", { kind: "crash", source: "test", payload: {}, adapter: waiter })
    expect(running.status).toBe(201)
    const fixed = join(dir, "fixed")
    const flaky = script(
      `if (!require("fs").existsSync(${
        JSON.stringify(fixed)
      })) { console.error("not yet"); process.exit(1) } console.log(${JSON.stringify(outcome("retried"))})`
    )
    const retrying = await call("POST", "/v1/tasks", {
      kind: "crash",
      source: "test",
      payload: {},
      adapter: flaky,
      // attempts every 8 s, and enough of them that the task is still retrying when A dies however slowly B starts
      // on a busy machine (the default 3 attempts with a doubling backoff were spent in 24 s, which failed it for good)
      maxAttempts: 50,
      retry: { baseSeconds: 8, maxSeconds: 8, jitter: 0 }
    })
    expect(retrying.status).toBe(201)
    await eventually(async () => existsSync(started), 60_000, "the first attempt to start")
    await eventually(
      async () => {
        const r = await call("GET", `/v1/tasks/${retrying.json.id}`)
        return r.json.status === "retryable_failure"
      },
      60_000,
      "the flaky task to wait for its retry"
    )
    const before = (await call("GET", `/v1/tasks/${running.json.id}`)).json
    expect(before.status).toBe("running")
    const holderA: string = before.attempts[0].holder

    const b = await host()
    const other = api(b)
    await a.kill()
    expect(a.child.signalCode).toBe("SIGKILL")
    writeFileSync(go, "1")
    writeFileSync(fixed, "1")

    const done = await eventually(
      async () => {
        const r = await other("GET", `/v1/tasks/${running.json.id}`)
        return r.json?.status === "completed" ? r.json : null
      },
      90_000,
      "the running task to be reclaimed and completed"
    )
    expect(done.attempts.map((x: { closing: string }) => x.closing)).toEqual(["reclaimed", "completed"])
    expect(done.attempts[0].reason).toContain("is gone")
    expect(done.attempts[1].holder).not.toBe(holderA)
    expect(done.outcome.operatorSummary).toBe("survived")

    const retried = await eventually(
      async () => {
        const r = await other("GET", `/v1/tasks/${retrying.json.id}`)
        return r.json?.status === "completed" ? r.json : null
      },
      90_000,
      "the retrying task to complete on the other host"
    )
    // it failed on A (as often as its backoff let it before A died), then completed on B
    const closings = retried.attempts.map((x: { closing: string }) => x.closing)
    expect(closings.at(-1)).toBe("completed")
    expect(closings.slice(0, -1).every((c: string) => c === "failed" || c === "reclaimed")).toBe(true)
    expect(retried.attempts.at(-1).holder).not.toBe(holderA)

    // nothing of the tenant is left running
    expect((await other("GET", "/v1/tasks?status=running")).json.items).toEqual([])
  }, 300_000)

  it("two live hosts claim every task exactly once", async () => {
    const a = await host()
    const b = stacks.find((s) => s !== a && s.child.exitCode === null && s.child.signalCode === null)!
    const call = api(a)
    await call("PUT", "/v1/dispatch", { paused: true, reason: "loading" })
    const ids: Array<string> = []
    for (let i = 0; i < 24; i++) {
      const r = await call("POST", "/v1/tasks", {
        kind: "spread",
        source: "test",
        payload: { i },
        priority: i % 10,
        adapter: script(`console.log(${JSON.stringify(outcome(`task ${i}`))})`)
      })
      ids.push(r.json.id)
    }
    await call("PUT", "/v1/dispatch", { paused: false })
    const done = await eventually(
      async () => {
        const items = (await api(b)("GET", "/v1/tasks?kind=spread")).json.items as Array<{ id: string; status: string }>
        return items.length === ids.length && items.every((t) => t.status === "completed") ? items : null
      },
      120_000,
      "every task to complete"
    )
    const holders = new Set<string>()
    for (const t of done) {
      const detail = (await call("GET", `/v1/tasks/${t.id}`)).json
      expect(detail.attempts).toHaveLength(1)
      expect(detail.events.filter((e: { type: string }) => e.type === "TaskClaimed")).toHaveLength(1)
      holders.add(detail.attempts[0].holder)
    }
    expect(holders.size).toBe(2)
    const workers = (await call("GET", "/v1/dispatch")).json.workers as Array<{ host: string }>
    expect(new Set(workers.map((w) => w.host)).size).toBe(2)
  }, 300_000)
})
