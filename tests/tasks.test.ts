// The operator queue against a real stack (issue 16, ADR 0054): the seed runtime's scenarios adapted to this API
// (delayed intake, priorities, retries with backoff to blocked and out again, a rate-limit hint, pause, cancel of
// pending, blocked and running tasks) and regression tests of its bugs. One worker, so claims are in order.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, spawnLantern, stopStack, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
const dir = mkdtempSync(join(tmpdir(), "lantern-tasks-"))

beforeAll(async () => {
  nats = await startServer("lantern-tasks")
  stack = await startStack({ natsUrl: nats.handle.url, env: { LANTERN_TASK_WORKERS: "1" } })
  call = api(stack)
}, 240_000)

afterAll(async () => {
  await stopStack(stack, nats)
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

/** A script adapter running `node -e code`. */
const script = (code: string, extra: Record<string, unknown> = {}) => ({
  type: "script",
  command: [process.execPath, "-e", code],
  ...extra
})

/** A script that prints a completed outcome saying `summary`. */
const succeeds = (summary: string) => script(`console.log("working"); console.log(${JSON.stringify(outcome(summary))})`)

const task = (fields: Record<string, unknown>) => ({ kind: "test", source: "vitest", payload: { n: 1 }, ...fields })

const submit = async (fields: Record<string, unknown>) => {
  const r = await call("POST", "/v1/tasks", task(fields))
  expect(r.status, r.text).toBe(201)
  return r.json as { id: string; status: string; availableAt: string }
}

const get = async (id: string) => {
  const r = await call("GET", `/v1/tasks/${id}`)
  expect(r.status, r.text).toBe(200)
  return r.json
}

const until = (id: string, status: string, ms = 60_000) =>
  eventually(
    async () => {
      const t = await get(id)
      return t.status === status ? t : null
    },
    ms,
    `task ${id} to be ${status}`
  )

const pause = async (paused: boolean) => {
  const r = await call("PUT", "/v1/dispatch", { paused, ...(paused ? { reason: "test" } : {}) })
  expect(r.status, r.text).toBe(200)
  expect(r.json.paused).toBe(paused)
}

describe("submitting", () => {
  it("refuses bad input naming the field, and writes nothing", async () => {
    const before = (await call("GET", "/v1/tasks")).json.items.length
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ source: "x", payload: 1, agentName: "a" }, "kind"],
      [{ kind: "x", payload: 1, agentName: "a" }, "source"],
      [{ kind: "x", source: "x", agentName: "a" }, "payload"],
      [task({ agentName: "a", availableAt: "tomorrow" }), "availableAt"],
      [task({ agentName: "a", availableAt: "2026-12-03T10:05:00" }), "availableAt"],
      [task({ agentName: "a", delayMinutes: -1 }), "delayMinutes"],
      [task({ agentName: "a", delayMinutes: 1, availableAt: "2026-12-03T10:05:00Z" }), "delayMinutes"],
      [task({ agentName: "a", priority: 10 }), "priority"],
      [task({ agentName: "a", adapter: succeeds("x") }), "agentName"],
      [task({}), "adapter"],
      [task({ agentName: "a", colour: "red" }), "colour"]
    ]
    for (const [body, field] of cases) {
      const r = await call("POST", "/v1/tasks", body)
      expect(r.status, `${JSON.stringify(body)}: ${r.text}`).toBe(400)
      expect(r.json.error.issues.map((i: { field: string }) => i.field)).toContain(field)
    }
    expect((await call("GET", "/v1/tasks")).json.items.length).toBe(before)
  }, 180_000)

  it("answers the task that holds a dedupe key with 200 and duplicateOf", async () => {
    await pause(true)
    try {
      const first = await call("POST", "/v1/tasks", task({ dedupeKey: "once", adapter: succeeds("deduped") }))
      expect(first.status).toBe(201)
      expect(first.json.duplicateOf).toBeNull()
      const again = await call(
        "POST",
        "/v1/tasks",
        task({ dedupeKey: "once", adapter: succeeds("other"), priority: 1 })
      )
      expect(again.status).toBe(200)
      expect(again.json.duplicateOf).toBe(first.json.id)
      expect(again.json.id).toBe(first.json.id)
      expect(again.json.priority).toBe(5)
    } finally {
      await pause(false)
    }
  }, 180_000)
})

describe("claims", () => {
  it("delayed intake: not claimed before availableAt, then claimed and completed", async () => {
    const t = await submit({ adapter: succeeds("delayed done"), delayMinutes: 0.05 })
    expect(t.status).toBe("pending")
    const availableAt = Date.parse(t.availableAt)
    const done = await until(t.id, "completed")
    expect(Date.parse(done.startedAt)).toBeGreaterThanOrEqual(availableAt)
    expect(done.outcome.operatorSummary).toBe("delayed done")
    expect(done.attempts).toHaveLength(1)
    expect(done.attempts[0].closing).toBe("completed")
    expect(done.attempts[0].adapter).toBe("script")
    expect(done.attempts[0].workloadId).toMatch(/^wl_/)
    // an availableAt in the past is fine: claimable at once
    const past = await submit({ adapter: succeeds("past"), availableAt: "2020-01-01T00:00:00Z" })
    await until(past.id, "completed")
  }, 180_000)

  it(
    "priorities 2, 9, 9 and a far-future 9 are claimed 9, 9, 2 (the future one never): higher first, FIFO within",
    async () => {
      await pause(true)
      const low = await submit({ adapter: succeeds("p2"), priority: 2 })
      const high1 = await submit({ adapter: succeeds("p9 first"), priority: 9 })
      const high2 = await submit({ adapter: succeeds("p9 second"), priority: 9 })
      const future = await submit({ adapter: succeeds("future"), priority: 9, availableAt: "2099-01-01T00:00:00Z" })
      const dispatch = (await call("GET", "/v1/dispatch")).json
      expect(dispatch.depth["9"]).toBeGreaterThanOrEqual(2)
      expect(dispatch.depth["2"]).toBeGreaterThanOrEqual(1)
      expect(dispatch.delayed).toBeGreaterThanOrEqual(1)
      await pause(false)
      const done = await Promise.all([low, high1, high2].map((t) => until(t.id, "completed")))
      const claimedAt = done.map((t) => Date.parse(t.attempts[0].claimedAt))
      expect(claimedAt[1]).toBeLessThan(claimedAt[2]!)
      expect(claimedAt[2]).toBeLessThan(claimedAt[0]!)
      const f = await get(future.id)
      expect(f.status).toBe("pending")
      expect(f.attempts).toHaveLength(0)
      expect((await call("POST", `/v1/tasks/${future.id}/cancel`, {})).status).toBe(200)
    },
    180_000
  )
})

describe("retries", () => {
  it("backs off between attempts, blocks when they are spent, and an operator retry completes it", async () => {
    const marker = join(dir, "retry-marker")
    const code = `const fs = require("fs"); if (!fs.existsSync(${
      JSON.stringify(marker)
    })) { console.error("not yet"); process.exit(3) } console.log(${JSON.stringify(outcome("fixed"))})`
    const t = await submit({ adapter: script(code), maxAttempts: 2, retry: { baseSeconds: 1, jitter: 0 } })
    const blocked = await until(t.id, "blocked")
    expect(blocked.attemptsUsed).toBe(2)
    expect(blocked.attempts.map((a: { closing: string }) => a.closing)).toEqual(["failed", "failed"])
    expect(blocked.reason).toMatch(/attempts exhausted \(2 of 2\): exit code 3/)
    // the backoff: attempt 2 was not claimed before attempt 1 closed + 1 s
    const gap = Date.parse(blocked.attempts[1].claimedAt) - Date.parse(blocked.attempts[0].closedAt)
    expect(gap).toBeGreaterThanOrEqual(1000)
    const closed = blocked.events.find((e: { type: string }) => e.type === "TaskAttemptClosed")
    expect(closed.payload.status).toBe("retryable_failure")
    expect(closed.payload.availableAt - closed.payload.at).toBe(1000)

    // regression (seed bug): blocked can be left; a retry without attempts left is refused no more
    writeFileSync(marker, "ok")
    const retried = await call("POST", `/v1/tasks/${t.id}/retry`, { extraAttempts: 1 })
    expect(retried.status, retried.text).toBe(200)
    expect(retried.json.status).toBe("pending")
    expect(retried.json.maxAttempts).toBe(3)
    const done = await until(t.id, "completed")
    expect(done.outcome.operatorSummary).toBe("fixed")
    expect(done.attemptsUsed).toBe(3)
    // a retry of a completed task is a conflict
    expect((await call("POST", `/v1/tasks/${t.id}/retry`, {})).status).toBe(409)
  }, 180_000)

  it("requeue starts a blocked task afresh", async () => {
    const t = await submit({ adapter: script("process.exit(1)"), maxAttempts: 1 })
    const blocked = await until(t.id, "blocked")
    expect(blocked.attemptsUsed).toBe(1)
    await pause(true)
    try {
      const r = await call("POST", `/v1/tasks/${t.id}/requeue`)
      expect(r.status, r.text).toBe(200)
      expect(r.json.status).toBe("pending")
      expect(r.json.attemptsUsed).toBe(0)
      expect((await call("POST", `/v1/tasks/${t.id}/requeue`)).status).toBe(409)
      expect((await call("POST", `/v1/tasks/${t.id}/cancel`, { reason: "enough" })).json.status).toBe("canceled")
    } finally {
      await pause(false)
    }
  }, 180_000)

  it("a rate-limit hint reschedules at +20 s without spending an attempt", async () => {
    const t = await submit({
      adapter: script(`console.log("429 from upstream: Rate limited, try again in 20 seconds"); process.exit(1)`),
      maxAttempts: 1
    })
    const waiting = await eventually(
      async () => {
        const v = await get(t.id)
        return v.attempts[0]?.closing === "rate_limited" ? v : null
      },
      60_000,
      "the rate-limited attempt"
    )
    expect(waiting.status).toBe("retryable_failure")
    expect(waiting.attemptsUsed).toBe(0)
    expect(waiting.hintedReschedules).toBe(1)
    expect(waiting.attempts[0].counted).toBe(false)
    expect(waiting.attempts[0].retryAfterSeconds).toBe(20)
    const closed = waiting.events.find((e: { type: string }) => e.type === "TaskAttemptClosed").payload
    expect(closed.availableAt - closed.at).toBe(20_000)
    expect(Date.parse(waiting.availableAt)).toBe(closed.availableAt)
    // a retrying task can be canceled
    const canceled = await call("POST", `/v1/tasks/${t.id}/cancel`, {})
    expect(canceled.json.status).toBe("canceled")
  }, 180_000)
})

describe("pause and cancel", () => {
  it("pause stops claims (journaled and audited); resume claims again", async () => {
    await pause(true)
    const d = (await call("GET", "/v1/dispatch")).json
    expect(d.paused).toBe(true)
    expect(d.reason).toBe("test")
    expect(d.workers.length).toBeGreaterThanOrEqual(1)
    const t = await submit({ adapter: succeeds("after pause") })
    // for a while (many times longer than a claim takes), it stays pending
    const deadline = Date.now() + 2_000
    while (Date.now() < deadline) {
      expect((await get(t.id)).status).toBe("pending")
      await new Promise((r) => setTimeout(r, 200))
    }
    await pause(false)
    await until(t.id, "completed")
    const audit = (await call("GET", "/v1/audit?action=dispatch.paused")).json
    expect(audit.items.length).toBeGreaterThanOrEqual(1)
  }, 180_000)

  it("cancels pending, blocked and running tasks (the running script is stopped); a second cancel is 409", async () => {
    const pending = await submit({ adapter: succeeds("never"), delayMinutes: 60 })
    const c1 = await call("POST", `/v1/tasks/${pending.id}/cancel`, { reason: "not needed" })
    expect(c1.status).toBe(200)
    expect(c1.json.status).toBe("canceled")
    expect(c1.json.reason).toBe("not needed")
    const c2 = await call("POST", `/v1/tasks/${pending.id}/cancel`, {})
    expect(c2.status).toBe(409)
    expect(c2.json.error.code).toBe("task_conflict")

    const blocked = await submit({ adapter: script("process.exit(2)"), maxAttempts: 1 })
    await until(blocked.id, "blocked")
    expect((await call("POST", `/v1/tasks/${blocked.id}/cancel`, {})).json.status).toBe("canceled")

    const marker = join(dir, "running-marker")
    const long = await submit({
      adapter: script(`require("fs").writeFileSync(${JSON.stringify(marker)}, "up"); setInterval(() => {}, 1000)`)
    })
    await until(long.id, "running")
    await eventually(async () => existsSync(marker), 60_000, "the script to start")
    const c3 = await call("POST", `/v1/tasks/${long.id}/cancel`, {})
    expect(c3.status).toBe(200)
    expect(c3.json.status).toBe("canceled")
    const after = await get(long.id)
    expect(after.attempts[0].closing).toBe("canceled")
    // the workload the attempt started is terminated
    const name = `task-${long.id.slice(4)}-1`
    await eventually(
      async () => {
        const items = (await call("GET", "/v1/workloads")).json.items as Array<{ name: string; state: string }>
        return items.find((w) => w.name === name && w.state === "terminated")
      },
      30_000,
      "the script's workload to be terminated"
    )
    expect((await call("POST", `/v1/tasks/${long.id}/cancel`, {})).status).toBe(409)
    // the worker is free again
    const next = await submit({ adapter: succeeds("after cancel") })
    await until(next.id, "completed")
  }, 180_000)
})

describe("the agent adapter and follow-ups", () => {
  it("runs an agent; its answer is the summary; an unknown agent's task has no adapter and blocks", async () => {
    expect((await call("POST", "/v1/agents", { name: "taskhand", spec: { systemPrompt: "You answer." } })).status).toBe(
      201
    )
    const t = await submit({ agentName: "taskhand", description: "say hello" })
    const done = await until(t.id, "completed")
    expect(done.attempts[0].adapter).toBe("agent")
    expect(done.attempts[0].runId).toMatch(/^run_/)
    expect(done.outcome.operatorSummary.length).toBeGreaterThan(0)
    const run = (await call("GET", `/v1/runs/${done.attempts[0].runId}`)).json
    expect(run.status).toBe("succeeded")

    const missing = await submit({ agentName: "nobody-here", maxAttempts: 1 })
    const blocked = await until(missing.id, "blocked")
    expect(blocked.attempts[0].closing).toBe("no_adapter")
    expect(blocked.attempts[0].probes[0]).toMatchObject({ type: "agent", ok: false })
  }, 180_000)

  it("probes a chain in order and runs the first adapter that passes", async () => {
    const t = await submit({ adapter: [{ type: "agent", agentName: "nobody-here" }, succeeds("fell back")] })
    const done = await until(t.id, "completed")
    expect(done.attempts[0].probes.map((p: { type: string; ok: boolean }) => [p.type, p.ok])).toEqual([
      ["agent", false],
      ["script", true]
    ])
    expect(done.attempts[0].adapter).toBe("script")
  }, 180_000)

  it("submits an outcome's follow-up tasks with the parent as origin", async () => {
    const follow = { kind: "followup", source: "parent", payload: {}, adapter: succeeds("child done") }
    const withFollowUp = JSON.stringify({ ...JSON.parse(outcome("parent done")), followUpTasks: [follow] })
    const t = await submit({ adapter: script(`console.log(${JSON.stringify(withFollowUp)})`) })
    await until(t.id, "completed")
    const child = await eventually(
      async () => {
        const items = (await call("GET", "/v1/tasks?kind=followup")).json.items as Array<
          { origin: { parentTaskId?: string } }
        >
        return items.find((c) => c.origin.parentTaskId === t.id)
      },
      30_000,
      "the follow-up task"
    )
    await until((child as unknown as { id: string }).id, "completed")
  }, 180_000)
})

describe("listing and streaming", () => {
  it("lists by status, kind and source, and streams queue events resumably", async () => {
    const ready = await eventually(async () => {
      const r = await fetch(`${stack.url}/v1/tasks/stream`, { headers: { authorization: `Bearer ${stack.token}` } })
      return r.status === 200 ? r : null
    })
    const reader = ready.body!.getReader()
    const t = await submit({ kind: "streamed", source: "sse", adapter: succeeds("streamed") })
    let text = ""
    await eventually(
      async () => {
        const { value } = await reader.read()
        text += new TextDecoder().decode(value)
        return text.includes(`"taskId":"${t.id}"`) && text.includes(`"status":"completed"`)
      },
      60_000,
      "the stream to show the task completed"
    )
    await reader.cancel()
    const ids = [...text.matchAll(/^id: (\d+)$/gmu)].map((m) => Number(m[1]))
    expect(ids.length).toBeGreaterThan(2)
    // resumed after the first task frame: the rest of them again
    const resumed = await fetch(`${stack.url}/v1/tasks/stream`, {
      headers: { authorization: `Bearer ${stack.token}`, "last-event-id": String(ids[1]) }
    })
    const r2 = resumed.body!.getReader()
    let again = ""
    await eventually(
      async () => {
        const { value } = await r2.read()
        again += new TextDecoder().decode(value)
        return again.includes(`id: ${ids[ids.length - 1]}`)
      },
      30_000,
      "the resumed stream"
    )
    await r2.cancel()
    // the first frame (ready) names where it resumes; every event frame after it is later than that
    const resumedIds = [...again.matchAll(/^id: (\d+)$/gmu)].map((m) => Number(m[1]))
    expect(resumedIds[0]).toBe(ids[1])
    expect(resumedIds.slice(1).every((id) => id > ids[1]!)).toBe(true)
    expect(resumedIds.slice(1)).toEqual(ids.slice(2))

    const byKind = (await call("GET", "/v1/tasks?kind=streamed&source=sse&status=completed")).json.items
    expect(byKind.map((x: { id: string }) => x.id)).toEqual([t.id])
    expect((await call("GET", "/v1/tasks?status=nonsense")).status).toBe(400)
    expect((await call("GET", "/v1/tasks/tsk_00000000000000000000000000")).status).toBe(404)
  }, 180_000)
})

describe("the CLI", () => {
  const lantern = async (...args: ReadonlyArray<string>) => {
    const p = spawnLantern(args, { LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token, NO_COLOR: "1" })
    const code = await p.exited
    return { code, output: p.output() }
  }

  it("adds, lists, shows, cancels and retries tasks, pauses and resumes dispatch; bad usage exits 2", async () => {
    const adapter = JSON.stringify(succeeds("from the cli"))
    const added = await lantern("tasks", "add", "--kind", "cli", "--priority", "7", "--adapter", adapter)
    expect(added.code, added.output).toBe(0)
    const id = /tsk_[0-9a-z]{26}/.exec(added.output)![0]
    await until(id, "completed")
    const shown = await lantern("tasks", "get", id)
    expect(shown.code, shown.output).toBe(0)
    expect(shown.output).toContain("completed")
    expect(shown.output).toContain("from the cli")
    const listed = await lantern("tasks", "list", "--kind", "cli", "--json")
    expect(listed.code, listed.output).toBe(0)
    expect(listed.output).toContain(id)
    const again = await lantern("tasks", "cancel", id)
    expect(again.code, again.output).toBe(1)
    expect(again.output).toContain("task_conflict")

    const paused = await lantern("dispatch", "pause", "--reason", "maintenance")
    expect(paused.code, paused.output).toBe(0)
    expect(paused.output).toContain("paused (maintenance)")
    const resumed = await lantern("dispatch", "resume")
    expect(resumed.code, resumed.output).toBe(0)
    const status = await lantern("dispatch", "status")
    expect(status.code, status.output).toBe(0)
    expect(status.output).toContain("dispatch running")

    for (
      const [args, named] of [
        [["tasks", "add", "--kind", "cli", "--priority", "12", "--agent", "a"], "--priority"],
        [["tasks", "add", "--kind", "cli"], "--agent"],
        [["tasks", "add", "--kind", "cli", "--agent", "a", "--payload", "{nope"], "--payload"],
        [["tasks", "add", "--kind", "cli", "--agent", "a", "--delay-minutes", "-3"], "--delay-minutes"],
        [["tasks", "get", "not-a-task"], "ID"],
        [["tasks", "retry", id, "--extra-attempts", "0"], "--extra-attempts"],
        [["tasks", "list", "--status", "sleeping"], "status"]
      ] as const
    ) {
      const r = await lantern(...args)
      expect(r.code, `${args.join(" ")}: ${r.output}`).toBe(2)
      expect(r.output).toContain(named)
    }
  }, 180_000)
})
