// The operator queue against a fake edge: filters (status, kind, source) as the list and the page apply them, a
// frame's status shown at once and the row kept in place (reconcile), a new task at the top, dispatch paused from the
// page, and a refused cancel shown in the task's page.
import { cleanup, fireEvent, render, screen } from "@solidjs/testing-library"
import { afterEach, describe, expect, it, vi } from "vitest"
import * as Sse from "../../../schema/Sse.ts"
import type { DispatchView, TaskView } from "../../../schema/Task.ts"
import { makeClient } from "../api.ts"
import { applyFrame, matches, rowsOf } from "../tasks.ts"
import { Queue } from "./Queue.tsx"
import { TaskDetail } from "./TaskDetail.tsx"

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

const task = (id: string, createdAt: string, extra: Partial<TaskView> = {}): TaskView => ({
  id,
  kind: "triage",
  source: "github",
  subject: null,
  description: null,
  payload: {},
  status: "pending",
  priority: 5,
  adapters: [{ type: "agent", agentName: "calc" }],
  attemptsUsed: 0,
  maxAttempts: 3,
  hintedReschedules: 0,
  availableAt: createdAt,
  dedupeKey: null,
  origin: {},
  reason: null,
  outcome: null,
  artifactRoot: `tasks/${id}`,
  artifacts: [],
  costUsd: 0,
  createdAt,
  updatedAt: createdAt,
  startedAt: null,
  finishedAt: null,
  attempts: [],
  ...extra
})

const dispatchView = (paused: boolean, reason: string | null = null): DispatchView => ({
  paused,
  reason,
  changedAt: null,
  changedBy: paused ? "key:root" : null,
  depth: { "5": 2, "9": 1 },
  delayed: 0,
  running: 0,
  blocked: 0,
  workers: []
})

/** A fake edge: tasks by id, the list (with its query), dispatch, and the queue stream fed by `send`. */
const edge = () => {
  const tasks = new Map<string, TaskView>()
  const lists: Array<string> = []
  const puts: Array<unknown> = []
  let dispatch = dispatchView(false)
  const pushes: Array<(frame: string) => void> = []
  const encoder = new TextEncoder()
  const fetch = vi.fn(async (url: string, init: RequestInit = {}) => {
    const u = new URL(url, "http://cockpit.test")
    if (u.pathname === "/v1/tasks/stream") {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          const push = (frame: string) => controller.enqueue(encoder.encode(frame))
          pushes.push(push)
          push(Sse.encode({ id: "10", event: "ready", data: JSON.stringify({ after: 10 }) }))
        }
      })
      return new Response(body, { headers: { "content-type": "text/event-stream" } })
    }
    if (u.pathname === "/v1/tasks") {
      lists.push(u.searchParams.toString())
      const q = Object.fromEntries(u.searchParams) as Record<string, string>
      return Response.json({ items: rowsOf(tasks.values(), q) })
    }
    if (u.pathname === "/v1/dispatch") {
      if (init.method === "PUT") {
        const body = JSON.parse(String(init.body)) as { paused: boolean; reason?: string }
        puts.push(body)
        dispatch = dispatchView(body.paused, body.reason ?? null)
      }
      return Response.json(dispatch)
    }
    const cancel = /^\/v1\/tasks\/([^/]+)\/cancel$/.exec(u.pathname)
    if (cancel !== null) {
      return Response.json({
        error: { code: "task_conflict", message: `task '${cancel[1]}' is completed: it cannot be canceled` }
      }, { status: 409 })
    }
    const one = /^\/v1\/tasks\/([^/]+)$/.exec(u.pathname)
    if (one !== null && tasks.has(one[1]!)) return Response.json({ ...tasks.get(one[1]!), events: [] })
    return Response.json({ error: { code: "not_found", message: u.pathname } }, { status: 404 })
  })
  const send = (seq: number, t: TaskView, type: string) =>
    pushes.forEach((push) =>
      push(Sse.encode({
        id: String(seq),
        event: type,
        data: JSON.stringify({ seq, taskId: t.id, type, at: t.updatedAt, status: t.status })
      }))
    )
  return { tasks, lists, puts, fetch, send }
}

describe("the queue's logic", () => {
  it("filters by status, kind and source, newest first", () => {
    const a = task("tsk_a", "2026-12-03T06:00:00.000Z", { status: "running", kind: "build" })
    const b = task("tsk_b", "2026-12-03T06:01:00.000Z", { source: "cron" })
    const c = task("tsk_c", "2026-12-03T06:01:00.000Z")
    expect(rowsOf([a, b, c], {}).map((t) => t.id)).toEqual(["tsk_c", "tsk_b", "tsk_a"])
    expect(rowsOf([a, b, c], { status: "pending" }).map((t) => t.id)).toEqual(["tsk_c", "tsk_b"])
    expect(rowsOf([a, b, c], { kind: "build" }).map((t) => t.id)).toEqual(["tsk_a"])
    expect(rowsOf([a, b, c], { source: "github", status: "pending" }).map((t) => t.id)).toEqual(["tsk_c"])
    expect(matches(a, { kind: "" })).toBe(true)
  })

  it("takes a frame's status at once, and leaves the task as it is for a frame without one", () => {
    const t = task("tsk_a", "2026-12-03T06:00:00.000Z")
    const f = {
      seq: 3,
      taskId: "tsk_a",
      type: "TaskCanceled",
      at: "2026-12-03T06:00:05.000Z",
      status: "canceled" as const
    }
    expect(applyFrame(t, f)).toMatchObject({ status: "canceled", updatedAt: f.at })
    expect(applyFrame(t, { ...f, status: null })).toBe(t)
    expect(applyFrame(t, { seq: 4, type: "DispatchSet", at: f.at, paused: true })).toBe(t)
  })
})

describe("Queue", () => {
  it("lists once the stream is ready, updates a row in place, adds a new task on top, and filters", async () => {
    const fake = edge()
    const old = task("tsk_old", "2026-12-03T06:00:00.000Z")
    fake.tasks.set(old.id, old)
    vi.stubGlobal("fetch", fake.fetch)
    const { container } = render(() => <Queue client={makeClient("lt_k")} />)
    const row = (id: string) => container.querySelector(`tr[data-task-id="${id}"]`)
    const oldRow = await vi.waitFor(() => {
      const r = row("tsk_old")
      if (r === null) throw new Error("not listed yet")
      return r
    })
    expect(fake.lists).toEqual([""])
    expect(oldRow.textContent).toContain("0 / 3")
    await screen.findByText("dispatching")

    // canceled elsewhere: the frame's status shows, in the same row
    fake.tasks.set(old.id, { ...old, status: "canceled", updatedAt: "2026-12-03T06:00:09.000Z" })
    fake.send(11, fake.tasks.get(old.id)!, "TaskCanceled")
    await vi.waitFor(() => expect(row("tsk_old")!.getAttribute("data-status")).toBe("canceled"))
    expect(row("tsk_old")).toBe(oldRow)

    const fresh = task("tsk_new", "2026-12-03T06:05:00.000Z", { kind: "build", priority: 9 })
    fake.tasks.set(fresh.id, fresh)
    fake.send(12, fresh, "TaskSubmitted")
    await vi.waitFor(() => expect(row("tsk_new")).not.toBeNull())
    const ids = () => [...container.querySelectorAll("tr[data-task-id]")].map((r) => r.getAttribute("data-task-id"))
    expect(ids()).toEqual(["tsk_new", "tsk_old"])

    fireEvent.change(screen.getByLabelText("Kind"), { target: { value: "build" } })
    await vi.waitFor(() => expect(ids()).toEqual(["tsk_new"]))
    expect(fake.lists.at(-1)).toBe("kind=build")
    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "canceled" } })
    await screen.findByText("No tasks match these filters.")
    expect(fake.lists.at(-1)).toBe("kind=build&status=canceled")
  })

  it("pauses dispatch with a reason, then offers to resume", async () => {
    const fake = edge()
    vi.stubGlobal("fetch", fake.fetch)
    const { container } = render(() => <Queue client={makeClient("lt_k")} />)
    await screen.findByText("No tasks yet. Submit one with POST /v1/tasks, a schedule or a sensor.")
    expect(container.querySelector("[data-depth=\"9\"]")!.textContent).toBe("1")
    fireEvent.input(screen.getByLabelText("Pause reason"), { target: { value: "deploying" } })
    fireEvent.click(screen.getByRole("button", { name: "Pause dispatch" }))
    await screen.findByRole("button", { name: "Resume dispatch" })
    expect(fake.puts).toEqual([{ paused: true, reason: "deploying" }])
    expect(container.querySelector("[data-dispatch-state]")!.textContent).toContain("paused: deploying")
  })
})

describe("TaskDetail", () => {
  it("asks before canceling, and shows the edge's refusal", async () => {
    const fake = edge()
    fake.tasks.set("tsk_one", task("tsk_one", "2026-12-03T06:00:00.000Z"))
    vi.stubGlobal("fetch", fake.fetch)
    render(() => <TaskDetail client={makeClient("lt_k")} id="tsk_one" />)
    fireEvent.click(await screen.findByRole("button", { name: "Cancel task" }))
    expect(fake.fetch.mock.calls.some(([u]) => String(u).endsWith("/cancel"))).toBe(false)
    fireEvent.input(screen.getByLabelText("Cancel reason"), { target: { value: "not needed" } })
    fireEvent.click(screen.getByRole("button", { name: "Confirm cancel task" }))
    expect((await screen.findByRole("alert")).textContent).toContain("cannot be canceled")
    const call = fake.fetch.mock.calls.find(([u]) => String(u).endsWith("/cancel"))!
    expect(JSON.parse(String(call[1]!.body))).toEqual({ reason: "not needed" })
  })
})
