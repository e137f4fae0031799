// The live list of runs against a fake edge: listed once the tenant stream is ready, a new run put at the top from its
// frame, a row updated in place (the same DOM node, as reconcile keeps it), and a filter that lists again.
import { render, screen } from "@solidjs/testing-library"
import { afterEach, describe, expect, it, vi } from "vitest"
import type { RunView } from "../../../schema/Run.ts"
import * as Sse from "../../../schema/Sse.ts"
import { makeClient } from "../api.ts"
import { Runs } from "./Runs.tsx"

afterEach(() => vi.unstubAllGlobals())

const run = (id: string, createdAt: string, extra: Partial<RunView> = {}): RunView => ({
  id,
  status: "running",
  agentName: "calc",
  agentVersion: 1,
  input: "",
  output: null,
  error: null,
  steps: 0,
  tokensIn: 0,
  tokensOut: 0,
  costUsd: 0,
  createdAt,
  updatedAt: createdAt,
  finishedAt: null,
  waiting: null,
  ...extra
})

/** A fake edge: runs by id, the list (asked with its query), and a tenant stream fed by `send`. */
const edge = () => {
  const runs = new Map<string, RunView>()
  const lists: Array<string> = []
  let push: ((frame: string) => void) | undefined
  const encoder = new TextEncoder()
  const fetch = vi.fn(async (url: string) => {
    const path = new URL(url, "http://cockpit.test").pathname
    if (path === "/v1/stream") {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          push = (frame) => controller.enqueue(encoder.encode(frame))
          push(Sse.encode({ id: "10", event: "ready", data: JSON.stringify({ after: 10 }) }))
        }
      })
      return new Response(body, { headers: { "content-type": "text/event-stream" } })
    }
    if (path === "/v1/runs") {
      const q = new URL(url, "http://cockpit.test").searchParams
      lists.push(q.toString())
      const status = q.get("status")
      const items = [...runs.values()].filter((r) => status === null || r.status === status)
        .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))
      return Response.json({ items, nextCursor: null })
    }
    if (path.startsWith("/v1/runs/")) return Response.json(runs.get(path.slice("/v1/runs/".length)))
    if (path === "/v1/agents") return Response.json({ items: [] })
    return Response.json({ error: { code: "not_found", message: path } }, { status: 404 })
  })
  const send = (seq: number, r: RunView, type: string) =>
    push!(Sse.encode({
      id: String(seq),
      event: type,
      data: JSON.stringify({ seq, runId: r.id, type, at: r.updatedAt, status: r.status, stepId: null })
    }))
  return { runs, lists, fetch, send }
}

describe("Runs", () => {
  it("lists once the stream is ready, adds a new run at the top and updates a row in place", async () => {
    const fake = edge()
    const old = run("run_old", "2026-12-03T06:00:00.000Z", { status: "succeeded", steps: 3 })
    fake.runs.set(old.id, old)
    vi.stubGlobal("fetch", fake.fetch)
    const { container } = render(() => <Runs client={makeClient("lt_k")} />)
    const oldRow = await vi.waitFor(() => {
      const row = container.querySelector("tr[data-run-id=\"run_old\"]")
      if (row === null) throw new Error("not listed yet")
      return row
    })
    expect(fake.lists).toEqual(["limit=200"])
    expect(oldRow.textContent).toContain("calc@1")
    expect(await screen.findByText("live")).toBeTruthy()

    // a run started after the stream opened: its frame brings it in, at the top
    const fresh = run("run_new", "2026-12-03T06:05:00.000Z", { steps: 1, tokensIn: 7, tokensOut: 9 })
    fake.runs.set(fresh.id, fresh)
    fake.send(11, fresh, "RunStarted")
    await vi.waitFor(() => expect(container.querySelector("tr[data-run-id=\"run_new\"]")).not.toBeNull())
    const ids = () => [...container.querySelectorAll("tr[data-run-id]")].map((r) => r.getAttribute("data-run-id"))
    expect(ids()).toEqual(["run_new", "run_old"])
    expect(container.querySelector("tr[data-run-id=\"run_new\"]")!.textContent).toContain("7 / 9")

    // its end: the row changes in place, the other row is the same node
    fake.runs.set(fresh.id, { ...fresh, status: "succeeded", steps: 3, updatedAt: "2026-12-03T06:05:01.000Z" })
    fake.send(12, fake.runs.get(fresh.id)!, "RunSucceeded")
    await vi.waitFor(() =>
      expect(container.querySelector("tr[data-run-id=\"run_new\"]")!.getAttribute("data-status")).toBe("succeeded")
    )
    expect(container.querySelector("tr[data-run-id=\"run_old\"]")).toBe(oldRow)
    expect(ids()).toEqual(["run_new", "run_old"])
  })
})
