// Queue workflows against a real stack (ADR 0056): a goal loop whose phases are script tasks (small `node -e`
// scripts that write their artifact and print an Outcome line) runs plan → execute 1 → verify 1 (continue) →
// execute 2 → verify 2 (done) and ends complete, with a new execute task in iteration two and each phase's artifact;
// the report since a snapshot shows the delta. A blocked phase stalls its workflow with the reason, and an operator
// retry of that task resumes it to the end. A second create of the same instance answers the first. A pr-lifecycle
// merges, or closes on a rejecting review. A host killed while a phase runs: a new host reclaims the phase's task and
// takes the workflow to its end (it follows the task's changes, or its sweep finds them).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

/**
 * A phase: writes the artifact the workflow asks for under the task's artifact root and reports it. Verify says
 * `continue` until iteration `context.iterations`, then `done`; review n says `context.reviews[n-1]`, or `context.review`. Execute reports `blocked` while the file
 * `context.blockUntil` (when given) does not exist, and waits (a minute at most) for `context.waitFor` to exist.
 */
const PHASE = `
const fs = require("fs"), path = require("path");
const input = JSON.parse(process.env.LANTERN_INPUT);
const p = input.payload, ctx = p.context;
if (p.phase === "execute" && ctx.blockUntil && !fs.existsSync(ctx.blockUntil)) {
  console.log(JSON.stringify({ status: "blocked", operatorSummary: "waiting for the fixture", machineStatus: "needs_fixture",
    fileChanges: [], artifactPaths: [], followUpTasks: [], externalMessages: [] }));
  process.exit(0);
}
if (p.phase === "execute" && ctx.waitFor) {
  const tick = new Int32Array(new SharedArrayBuffer(4)), end = Date.now() + 60000;
  while (!fs.existsSync(ctx.waitFor) && Date.now() < end) Atomics.wait(tick, 0, 0, 100);
  if (!fs.existsSync(ctx.waitFor)) process.exit(1);
}
const file = path.join(process.env.TASK_ARTIFACT_ROOT, p.artifactPath);
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, "# " + p.phase + " " + p.iteration + " of " + p.instanceKey + "\\n");
const machineStatus = p.phase === "verify" ? (p.iteration < ctx.iterations ? "continue" : "done")
  : p.phase === "review" ? (ctx.reviews ? ctx.reviews[p.iteration - 1] : ctx.review) : "ok";
console.log(JSON.stringify({ status: "completed", operatorSummary: "wrote " + p.artifactPath, machineStatus,
  fileChanges: [{ path: p.artifactPath, change: "created" }], artifactPaths: [p.artifactPath],
  followUpTasks: [], externalMessages: [] }));
`
const SCRIPT = { type: "script", command: [process.execPath, "-e", PHASE] }

beforeAll(async () => {
  nats = await startServer("lantern-queueflows")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
}, 180_000)

afterAll(async () => {
  await stack?.kill()
  await nats?.cleanup()
})

const flow = async (id: string) => (await call("GET", `/v1/queue-workflows/${id}`)).json

describe("queue workflows", () => {
  it("refuses bad requests naming the field", async () => {
    const unknown = await call("POST", "/v1/queue-workflows", { template: "nope", instanceKey: "k" })
    expect(unknown.status).toBe(400)
    expect(JSON.stringify(unknown.json)).toContain("template")
    const bound = await call("POST", "/v1/queue-workflows", {
      template: "goal-loop",
      instanceKey: "k",
      maxIterations: 0
    })
    expect(bound.status).toBe(400)
    expect(JSON.stringify(bound.json)).toContain("maxIterations")
    const unrunnable = await call("POST", "/v1/queue-workflows", { template: "goal-loop", instanceKey: "k" })
    expect(unrunnable.status).toBe(400)
    expect(unrunnable.json.error.issues[0].field).toBe("task")
    const phase = await call("POST", "/v1/queue-workflows", {
      template: "pr-lifecycle",
      instanceKey: "k",
      task: { adapter: SCRIPT },
      phases: { plan: {} }
    })
    expect(phase.status).toBe(400)
    expect(JSON.stringify(phase.json)).toContain("phases.plan")
    expect((await call("GET", "/v1/queue-workflows/qfw_00000000000000000000000000")).status).toBe(404)
    expect((await call("GET", "/v1/queue-workflows")).json.items).toEqual([])
  })

  it("a goal loop of two iterations ends complete, with a new execute task and artifacts per iteration; the report shows the delta", async () => {
    onTestFailed(() => console.error(stack.output()))
    const snapshot = await call("POST", "/v1/snapshots", { label: "before the loop" })
    expect(snapshot.status).toBe(201)
    expect(snapshot.json.id).toMatch(/^snp_/)
    const created = await call("POST", "/v1/queue-workflows", {
      template: "goal-loop",
      instanceKey: "Loop Demo",
      context: { iterations: 2 },
      task: { adapter: SCRIPT }
    })
    expect(created.status).toBe(201)
    expect(created.json).toMatchObject({ status: "running", phase: "plan", base: "loop-demo", maxIterations: 3 })
    const again = await call("POST", "/v1/queue-workflows", {
      template: "goal-loop",
      instanceKey: "Loop Demo",
      task: { adapter: SCRIPT }
    })
    expect(again.status).toBe(200)
    expect(again.json.id).toBe(created.json.id)

    const done = await eventually(
      async () => {
        const f = await flow(created.json.id)
        return f.status === "complete" || f.status === "failed" || f.status === "stalled" ? f : null
      },
      120_000,
      "the goal loop to end"
    )
    expect(done).toMatchObject({ status: "complete", result: "done", iteration: 2 })
    expect(done.phases.map((p: any) => [p.phase, p.iteration, p.status, p.machineStatus])).toEqual([
      ["plan", 1, "finished", "ok"],
      ["execute", 1, "finished", "ok"],
      ["verify", 1, "finished", "continue"],
      ["execute", 2, "finished", "ok"],
      ["verify", 2, "finished", "done"]
    ])
    const taskIds = done.phases.map((p: any) => p.taskId)
    expect(new Set(taskIds).size).toBe(5)
    expect(done.artifactPaths).toEqual([
      "plans/loop-demo-plan.md",
      "reports/loop-demo-execute-1.md",
      "reports/loop-demo-verify-1.md",
      "reports/loop-demo-execute-2.md",
      "reports/loop-demo-verify-2.md"
    ])
    for (const p of done.phases) {
      expect(p.artifacts).toEqual([p.artifactPath])
      const t = (await call("GET", `/v1/tasks/${p.taskId}`)).json
      expect(t).toMatchObject({ status: "completed", origin: { workflowId: created.json.id, phase: p.phase } })
      expect(t.payload).toMatchObject({ workflowId: created.json.id, phase: p.phase, iteration: p.iteration })
      expect(t.outcome.artifactPaths).toEqual([p.artifactPath])
      expect(readFileSync(join(t.artifactRoot, p.artifactPath), "utf8")).toBe(
        `# ${p.phase} ${p.iteration} of Loop Demo\n`
      )
    }

    const report = await call("GET", "/v1/reports/latest")
    expect(report.status).toBe(200)
    expect(report.json.fromSnapshot).toBe(snapshot.json.id)
    expect(report.json.counts).toMatchObject({ created: 5, completed: 5, blocked: 0, failed: 0 })
    expect(report.json.newArtifacts.map((a: any) => a.path).sort()).toEqual([...done.artifactPaths].sort())
    expect(report.json.queue.delta).toEqual({ completed: 5 })
    expect(report.json.workflows.ended.map((f: any) => f.id)).toEqual([created.json.id])
    const md = await call("GET", "/v1/reports/latest", undefined, { accept: "text/markdown" })
    expect(md.headers.get("content-type")).toContain("text/markdown")
    expect(md.text).toContain("- completed: 5")
    expect(md.text).toContain("reports/loop-demo-execute-2.md")
    const window = await call("POST", "/v1/reports", { from: snapshot.json.id, markdown: true })
    expect(window.text).toContain(`Since snapshot \`${snapshot.json.id}\``)
    const before = await call("POST", "/v1/reports", { from: "2020-01-01T00:00:00Z", to: snapshot.json.id })
    expect(before.json.counts.completed).toBe(0)
    expect((await call("GET", `/v1/snapshots/${snapshot.json.id}`)).json.label).toBe("before the loop")
  })

  it("a blocked phase stalls the workflow with the reason; an operator retry of the task resumes it to the end", async () => {
    onTestFailed(() => console.error(stack.output()))
    const fixture = join(mkdtempSync(join(tmpdir(), "lantern-qfw-")), "ready")
    const created = await call("POST", "/v1/queue-workflows", {
      template: "goal-loop",
      instanceKey: "blocked-demo",
      context: { iterations: 1, blockUntil: fixture },
      task: { adapter: SCRIPT, maxAttempts: 1 }
    })
    expect(created.status).toBe(201)
    const stalled = await eventually(
      async () => {
        const f = await flow(created.json.id)
        return f.status === "stalled" ? f : null
      },
      120_000,
      "the workflow to stall"
    )
    expect(stalled.phase).toBe("execute")
    expect(stalled.reason).toContain(`execute 1 task ${stalled.currentTaskId} is blocked`)
    const report = (await call("GET", "/v1/reports/latest")).json
    expect(report.workflows.stalled.map((f: any) => f.id)).toContain(created.json.id)
    expect(report.blocked.map((t: any) => t.id)).toContain(stalled.currentTaskId)

    writeFileSync(fixture, "ok")
    expect(existsSync(fixture)).toBe(true)
    const retried = await call("POST", `/v1/tasks/${stalled.currentTaskId}/retry`, {})
    expect(retried.status).toBeLessThan(300)
    const done = await eventually(
      async () => {
        const f = await flow(created.json.id)
        return f.status === "complete" || f.status === "failed" ? f : null
      },
      120_000,
      "the resumed workflow to end"
    )
    expect(done).toMatchObject({ status: "complete", reason: null })
    expect(done.phases.map((p: any) => p.phase)).toEqual(["plan", "execute", "verify"])
    expect(done.phases[1].taskId).toBe(stalled.currentTaskId)
  })

  it("a pr-lifecycle goes opened → reviewed → merged, or closed on a rejecting review, or revised on requested changes", async () => {
    onTestFailed(() => console.error(stack.output()))
    const start = (instanceKey: string, review: string | ReadonlyArray<string>) =>
      call("POST", "/v1/queue-workflows", {
        template: "pr-lifecycle",
        instanceKey,
        context: typeof review === "string" ? { review } : { reviews: review },
        task: { adapter: SCRIPT }
      })
    const merged = await start("https://example.com/acme/app/pull/7", "approved")
    const closed = await start("https://example.com/acme/app/pull/8", "rejected")
    const revised = await start("https://example.com/acme/app/pull/9", ["changes_requested", "approved"])
    expect(merged.status).toBe(201)
    expect(merged.json).toMatchObject({ phase: "open", stage: "opening" })
    const end = (id: string) =>
      eventually(
        async () => {
          const f = await flow(id)
          return f.status === "complete" || f.status === "failed" || f.status === "stalled" ? f : null
        },
        120_000,
        `pr-lifecycle ${id} to end`
      )
    const m = await end(merged.json.id)
    expect(m).toMatchObject({ status: "complete", result: "merged", stage: "merged" })
    expect(m.phases.map((p: any) => [p.phase, p.machineStatus])).toEqual([
      ["open", "ok"],
      ["review", "approved"],
      ["merge", "ok"]
    ])
    expect(m.artifactPaths).toEqual([
      "reports/https-example.com-acme-app-pull-7-open.md",
      "reports/https-example.com-acme-app-pull-7-review.md",
      "reports/https-example.com-acme-app-pull-7-merge.md"
    ])
    const c = await end(closed.json.id)
    expect(c).toMatchObject({ status: "complete", result: "closed", stage: "closed" })
    expect(c.phases.map((p: any) => p.phase)).toEqual(["open", "review"])
    const r = await end(revised.json.id)
    expect(r).toMatchObject({ status: "complete", result: "merged" })
    expect(r.phases.map((p: any) => [p.phase, p.iteration, p.machineStatus])).toEqual([
      ["open", 1, "ok"],
      ["review", 1, "changes_requested"],
      ["revise", 1, "ok"],
      ["review", 2, "approved"],
      ["merge", 1, "ok"]
    ])
    // a new task for each of them
    expect(new Set(r.phases.map((p: any) => p.taskId)).size).toBe(5)
    expect(r.artifactPaths).toContain("reports/https-example.com-acme-app-pull-9-revise-1.md")
    expect(r.artifactPaths).toContain("reports/https-example.com-acme-app-pull-9-review-2.md")
    const listed = (await call("GET", "/v1/queue-workflows?template=pr-lifecycle")).json.items
    expect(listed.map((f: any) => f.id).sort()).toEqual([merged.json.id, closed.json.id, revised.json.id].sort())
  })

  it("a host killed while a phase runs: a new host reclaims the task and takes the workflow to its end", async () => {
    const fixture = join(mkdtempSync(join(tmpdir(), "lantern-qfw-")), "go")
    // a bus of its own: no other host of this file claims the phase
    const bus = await startServer("lantern-queueflows-crash")
    const env = { LANTERN_HOST_PROBE_INTERVAL: "100 millis" }
    const first = await startStack({ natsUrl: bus.handle.url, env })
    let second: StackProcess | undefined
    onTestFailed(() => console.error(`--- first ---\n${first.output()}\n--- second ---\n${second?.output()}`))
    try {
      const created = await api(first)("POST", "/v1/queue-workflows", {
        template: "goal-loop",
        instanceKey: "crash-demo",
        context: { iterations: 1, waitFor: fixture },
        task: { adapter: SCRIPT, maxAttempts: 5 }
      })
      expect(created.status).toBe(201)
      const running = await eventually(
        async () => {
          const f = (await api(first)("GET", `/v1/queue-workflows/${created.json.id}`)).json
          if (f.phase !== "execute" || f.currentTaskId === null) return null
          const t = (await api(first)("GET", `/v1/tasks/${f.currentTaskId}`)).json
          return t.status === "running" ? t : null
        },
        120_000,
        "the execute phase to run"
      )
      await first.kill()
      writeFileSync(fixture, "go")
      second = await startStack({ natsUrl: bus.handle.url, env })
      const done = await eventually(
        async () => {
          const f = (await api(second!)("GET", `/v1/queue-workflows/${created.json.id}`)).json
          return f.status === "complete" || f.status === "failed" ? f : null
        },
        180_000,
        "the workflow to end on the new host"
      )
      expect(done).toMatchObject({ status: "complete", result: "done" })
      expect(done.phases.map((p: any) => p.phase)).toEqual(["plan", "execute", "verify"])
      expect(done.phases[1].taskId).toBe(running.id)
    } finally {
      await first.kill()
      await second?.kill()
      await bus.cleanup()
    }
    // room for the deadlines above: two stacks start one after the other (a fresh PGlite home each), on a busy machine
  }, 400_000)
})
