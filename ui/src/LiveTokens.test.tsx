// The run page's live tokens against a fake edge: the text grows frame by frame, a reset or a new step starts it over,
// the terminal event ends the stream without a reconnection, and a finished run opens no stream at all.
import { cleanup, render } from "@solidjs/testing-library"
import { afterEach, describe, expect, it, vi } from "vitest"
import * as Sse from "../../schema/Sse.ts"
import { makeClient } from "./api.ts"
import { applyFrame, empty, LiveTokens } from "./LiveTokens.tsx"

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

const token = (stepId: string, seq: number, text: string, attempt = 1) =>
  Sse.encode({ event: "token", data: JSON.stringify({ stepId, attempt, seq, text }) })
const frame = (event: string, data: object) => ({ id: null, event, data: JSON.stringify(data) })

describe("applyFrame", () => {
  it("appends a step's text, starts over on a new step or attempt, and empties on that step's reset", () => {
    let live = applyFrame(empty, frame("token", { stepId: "turn-1", attempt: 1, seq: 1, text: "Hel" }))
    live = applyFrame(live, frame("token", { stepId: "turn-1", attempt: 1, seq: 2, text: "lo" }))
    expect(live.text).toBe("Hello")
    live = applyFrame(live, frame("reset", { stepId: "turn-1", attempt: 1, seq: 3 }))
    expect(live.text).toBe("")
    live = applyFrame(live, frame("token", { stepId: "turn-1", attempt: 1, seq: 4, text: "Bye" }))
    live = applyFrame(live, frame("token", { stepId: "turn-3", attempt: 1, seq: 1, text: "New" }))
    expect(live).toEqual({ step: "turn-3:1", stepId: "turn-3", text: "New" })
    expect(applyFrame(live, frame("RunSucceeded", {}))).toBe(live)
  })
})

describe("LiveTokens", () => {
  it("shows the text growing while the run streams, and stops at the terminal event", async () => {
    let push: ((frame: string) => void) | undefined
    let close: (() => void) | undefined
    const opened: Array<string> = []
    const encoder = new TextEncoder()
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        opened.push(new URL(url, "http://cockpit.test").pathname)
        return new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              push = (f) => controller.enqueue(encoder.encode(f))
              close = () => controller.close()
            }
          }),
          { headers: { "content-type": "text/event-stream" } }
        )
      })
    )
    const { container } = render(() => <LiveTokens client={makeClient("lt_k")} runId="run_1" running={true} />)
    await vi.waitFor(() => expect(push).toBeDefined())
    expect(container.querySelector("[data-live-tokens]")).toBeNull()
    push!(token("turn-2", 1, "The answer"))
    await vi.waitFor(() => expect(container.querySelector("[data-live-tokens]")!.textContent).toBe("The answer"))
    push!(token("turn-2", 2, " grows"))
    await vi.waitFor(() => expect(container.querySelector("[data-live-tokens]")!.textContent).toBe("The answer grows"))
    expect(container.querySelector("h2")!.textContent).toBe("Live: step turn-2")
    push!(Sse.encode({ event: "RunSucceeded", data: JSON.stringify({ type: "RunSucceeded" }) }))
    close!()
    // the terminal event is the last frame: nothing reconnects
    expect(opened).toEqual(["/v1/runs/run_1/tokens"])
  })

  it("opens no stream for a run that is not running", () => {
    const fetch = vi.fn()
    vi.stubGlobal("fetch", fetch)
    const { container } = render(() => <LiveTokens client={makeClient("lt_k")} runId="run_1" running={false} />)
    expect(container.textContent).toBe("")
    expect(fetch).not.toHaveBeenCalled()
  })
})
