// A workload's page against a fake edge: its output followed over the logs stream from the start, the stream's `end`
// frame taken as the workload's final state (exit code shown, Terminate gone), and the output kept bounded.
import { cleanup, render, screen } from "@solidjs/testing-library"
import { afterEach, describe, expect, it, vi } from "vitest"
import * as Sse from "../../../schema/Sse.ts"
import { makeClient, type WorkloadView } from "../api.ts"
import { appendChunk, type Chunk, WorkloadDetail } from "./Workloads.tsx"

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

const workload = (extra: Partial<WorkloadView> = {}): WorkloadView => ({
  id: "wl_1",
  name: "probe",
  state: "running",
  isolation: "trusted",
  backend: "process",
  host: null,
  exitCode: null,
  reason: null,
  usage: null,
  enforced: [],
  secretsVended: [],
  egress: [],
  heartbeats: 1,
  attempt: 1,
  createdAt: "2026-12-03T06:00:00.000Z",
  createdBy: "key:root",
  ...extra
})

describe("the output kept", () => {
  it("drops the oldest chunks past the bound", () => {
    let all: ReadonlyArray<Chunk> = []
    for (let i = 0; i < 7; i++) all = appendChunk(all, { stream: "stdout", text: String(i) }, 5)
    expect(all.map((c) => c.text)).toEqual(["2", "3", "4", "5", "6"])
  })
})

describe("WorkloadDetail", () => {
  it("follows the output live until the end frame, which gives the final state", async () => {
    let push: ((frame: string) => void) | undefined
    let close: (() => void) | undefined
    const logHeaders: Array<string | null> = []
    const encoder = new TextEncoder()
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit = {}) => {
        const path = new URL(url, "http://cockpit.test").pathname
        if (path === "/v1/workloads/wl_1/logs") {
          logHeaders.push((init.headers as Record<string, string>)["last-event-id"] ?? null)
          return new Response(
            new ReadableStream<Uint8Array>({
              start(controller) {
                push = (f) => controller.enqueue(encoder.encode(f))
                close = () => controller.close()
              }
            }),
            { headers: { "content-type": "text/event-stream" } }
          )
        }
        if (path === "/v1/workloads/wl_1") return Response.json(workload())
        return Response.json({ error: { code: "not_found", message: path } }, { status: 404 })
      })
    )
    const { container } = render(() => <WorkloadDetail client={makeClient("lt_k")} id="wl_1" />)
    await screen.findByRole("button", { name: "Terminate" })
    await vi.waitFor(() => expect(push).toBeDefined())
    push!(Sse.encode({ id: "1", event: "output", data: JSON.stringify({ stream: "stdout", text: "hello\n" }) }))
    push!(Sse.encode({ id: "2", event: "output", data: JSON.stringify({ stream: "stderr", text: "warn\n" }) }))
    await vi.waitFor(() => expect(container.querySelector("[data-output]")!.textContent).toBe("hello\nwarn\n"))
    expect(container.querySelector("[data-logs]")!.getAttribute("data-logs")).toBe("open")
    push!(Sse.encode({ event: "end", data: JSON.stringify(workload({ state: "exited", exitCode: 3 })) }))
    close!()
    await vi.waitFor(() => expect(container.querySelector("[data-logs]")!.getAttribute("data-logs")).toBe("ended"))
    expect(container.querySelector("[data-exit-code]")!.textContent).toBe("3")
    expect(screen.queryByRole("button", { name: "Terminate" })).toBeNull()
    // one connection: the end is the last frame, nothing reconnects
    expect(logHeaders).toEqual([null])
  })
})
