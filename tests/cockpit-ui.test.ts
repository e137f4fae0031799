// The cockpit's logic without a browser: the journal folded into a timeline (attempts, retries, waits, a local step
// journaled once, local steps journaled together, the end), and the SSE connection helper against a local server (resume with Last-Event-ID after a
// drop, the server's retry field, a refusal that stops it, a last message that ends it).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import type { EventResponse } from "../schema/Api.ts"
import * as Sse from "../schema/Sse.ts"
import * as Task from "../schema/Task.ts"
import { makeEventStream } from "../ui/src/sse.ts"
import { STATUSES } from "../ui/src/taskStatuses.ts"
import { build, type Entry } from "../ui/src/timeline.ts"
import { windowOf } from "../ui/src/window.ts"

let n = 0
const event = (type: string, payload: Record<string, unknown>): EventResponse => {
  n++
  return {
    position: n,
    seq: 100 + n,
    eventId: `evt_${n}`,
    type,
    version: 1,
    at: `2026-12-03T06:00:${String(n).padStart(2, "0")}.000Z`,
    causationId: null,
    correlationId: "run_1",
    payload
  }
}

describe("the timeline", () => {
  it("folds each step's attempts, a retry, a wait and a local step between the run's start and end", () => {
    n = 0
    const model = { _tag: "model", model: "auto", turn: 1 }
    const call = { id: "c1", name: "echo", arguments: { text: "hi" } }
    const entries = build([
      event("RunStarted", { agentName: "careful", agentVersion: 2, input: "echo hi" }),
      event("StepStarted", { stepId: "turn-1", attempt: 1, request: model }),
      event("StepFailed", {
        stepId: "turn-1",
        attempt: 1,
        error: { code: "rate_limited", message: "slow down" },
        retryable: true,
        retryAt: 1_796_000_000_000
      }),
      event("StepStarted", { stepId: "turn-1", attempt: 2, request: model }),
      event("StepCompleted", {
        stepId: "turn-1",
        attempt: 2,
        result: { _tag: "model", answer: { content: null, toolCalls: [call], provider: "offline", model: "m" } },
        tokensIn: 7,
        tokensOut: 9,
        costUsd: 0.001,
        durationMs: 3,
        route: { alias: "auto", chosen: "offline/m", reason: "first healthy" }
      }),
      event("StepStarted", {
        stepId: "turn-1.tool-0.approval",
        attempt: 1,
        request: { _tag: "approval", call },
        wakeAt: 5
      }),
      event("StepCompleted", {
        stepId: "turn-1.tool-0",
        attempt: 1,
        result: { _tag: "tool", callId: "c1", output: "hi" },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        durationMs: 0,
        request: { _tag: "tool", call }
      }),
      event("RunSucceeded", { output: "done" })
    ])
    expect(entries.map((e: Entry) => e._tag)).toEqual(["start", "step", "step", "step", "end"])
    expect(entries[0]).toMatchObject({ agent: "careful", version: 2, input: "echo hi" })
    const [turn, approval, tool] = entries.slice(1, 4).map((e) => (e._tag === "step" ? e.step : null))
    expect(turn).toMatchObject({ stepId: "turn-1", kind: "model" })
    expect(turn!.attempts.map((a) => [a.attempt, a.outcome, a.retryAt])).toEqual([
      [1, "failed", 1_796_000_000_000],
      [2, "completed", null]
    ])
    expect(turn!.attempts[0]!.error).toEqual({ code: "rate_limited", message: "slow down" })
    expect(turn!.attempts[1]).toMatchObject({
      tokensIn: 7,
      tokensOut: 9,
      costUsd: 0.001,
      route: { chosen: "offline/m" }
    })
    // waiting: started, not completed, with the time it is due
    expect(approval).toMatchObject({ kind: "approval", wakeAt: 5, attempts: [{ outcome: "running" }] })
    // a local step is one StepCompleted carrying its request
    expect(tool).toMatchObject({ kind: "tool", attempts: [{ outcome: "completed", result: { output: "hi" } }] })
    expect(entries[4]).toMatchObject({ _tag: "end", type: "RunSucceeded", detail: "done" })
  })

  it("shows local steps journaled together (one StepsCompleted, ADR 0067) as the steps they are", () => {
    n = 0
    const local = (i: number) => {
      const call = { id: `c${i}`, name: "calculator", arguments: { expression: `${i}+1` } }
      return {
        stepId: `turn-1.tool-${i}`,
        attempt: 1,
        result: { _tag: "tool", callId: call.id, output: String(i + 1) },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        durationMs: 0,
        request: { _tag: "tool", call }
      }
    }
    const entries = build([
      event("RunStarted", { agentName: "calc", agentVersion: 1, input: "sums" }),
      event("StepsCompleted", { steps: [local(0), local(1)] }),
      event("RunSucceeded", { output: "done" })
    ])
    expect(entries.map((e: Entry) => e._tag)).toEqual(["start", "step", "step", "end"])
    expect(entries.slice(1, 3).map((e) => (e._tag === "step" ? e.step : null))).toMatchObject([
      { stepId: "turn-1.tool-0", kind: "tool", attempts: [{ outcome: "completed", result: { output: "1" } }] },
      { stepId: "turn-1.tool-1", kind: "tool", attempts: [{ outcome: "completed", result: { output: "2" } }] }
    ])
  })
})

describe("the window of a long list", () => {
  const at = (scrollTop: number, count = 10_000) =>
    windowOf({ scrollTop, viewport: 340, rowHeight: 34, count, overscan: 10 })

  it("renders the rows in view and a margin, and keeps the full height in the spacers", () => {
    expect(at(0)).toEqual({ start: 0, end: 20, top: 0, bottom: (10_000 - 20) * 34 })
    expect(at(34 * 5000)).toEqual({ start: 4990, end: 5020, top: 4990 * 34, bottom: (10_000 - 5020) * 34 })
    expect(at(34 * 9990)).toEqual({ start: 9980, end: 10_000, top: 9980 * 34, bottom: 0 })
    // a short list is all rendered; an empty one and a scroll past the end render nothing but the spacers
    expect(at(0, 7)).toEqual({ start: 0, end: 7, top: 0, bottom: 0 })
    expect(at(0, 0)).toEqual({ start: 0, end: 0, top: 0, bottom: 0 })
    expect(at(34 * 50, 20)).toEqual({ start: 20, end: 20, top: 20 * 34, bottom: 0 })
    for (let top = 0; top < 34 * 10_000; top += 777) {
      const w = at(top)
      expect(w.top + (w.end - w.start) * 34 + w.bottom).toBe(10_000 * 34)
      expect(w.end - w.start).toBeLessThanOrEqual(31)
    }
  })
})

describe("makeEventStream", () => {
  let server: Server | undefined
  afterEach(() => new Promise<void>((r) => (server === undefined ? r() : server.close(() => r()))))

  /** A server answering each connection with `handler`, given the connection's number and its request. */
  const serve = async (handler: (i: number, req: IncomingMessage, res: ServerResponse) => void) => {
    let i = 0
    server = createServer((req, res) => handler(i++, req, res))
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/stream`
  }
  const frames = (res: ServerResponse, ids: ReadonlyArray<number>, end = true) => {
    res.writeHead(200, { "content-type": "text/event-stream" })
    for (const id of ids) res.write(Sse.encode({ id: String(id), event: "E", data: JSON.stringify({ id }) }))
    if (end) res.end()
  }

  it("sends the key in a header, resumes after the last id on a drop, and ends on the last message", async () => {
    const seen: Array<{ auth: string | undefined; last: string | undefined }> = []
    const url = await serve((i, req, res) => {
      seen.push({ auth: req.headers.authorization, last: req.headers["last-event-id"] as string | undefined })
      if (i === 0) {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write(Sse.encode({ data: "hello", retry: 20 }))
        for (const id of [1, 2]) res.write(Sse.encode({ id: String(id), event: "E", data: "{}" }))
        res.end()
      } else frames(res, [3, 4, 5])
    })
    const got: Array<string | null> = []
    const states: Array<string> = []
    await new Promise<void>((done) => {
      makeEventStream(url, {
        token: "lt_k",
        lastEventId: "0",
        retryMs: 5000,
        onMessage: (m) => got.push(m.id),
        onState: (s) => {
          states.push(s)
          if (s === "closed") done()
        },
        isLast: (m) => m.id === "4"
      })
    })
    expect(got).toEqual([null, "1", "2", "3", "4"])
    expect(seen).toEqual([{ auth: "Bearer lt_k", last: "0" }, { auth: "Bearer lt_k", last: "2" }])
    expect(states).toEqual(["connecting", "open", "connecting", "open", "closed"])
  })

  it("stops at a refusal and reports it, without trying again", async () => {
    let connections = 0
    const url = await serve((_i, _req, res) => {
      connections++
      res.writeHead(401, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { code: "unauthorized", message: "the key is not valid" } }))
    })
    const error = await new Promise<Error>((resolve) =>
      makeEventStream(url, { token: "bad", onMessage: () => undefined, onError: resolve, retryMs: 10 })
    )
    expect(error.message).toBe("the key is not valid")
    await new Promise((r) => setTimeout(r, 100))
    expect(connections).toBe(1)
  })

  it("closes for good when asked, mid-stream", async () => {
    const url = await serve((_i, _req, res) => frames(res, [1], false))
    let closedWith: string | null = null
    await new Promise<void>((done) => {
      const source = makeEventStream(url, {
        token: "k",
        onMessage: () => source.close(),
        onState: (s) => {
          if (s === "closed") {
            closedWith = s
            done()
          }
        }
      })
    })
    expect(closedWith).toBe("closed")
  })
})

describe("the queue view's statuses", () => {
  it("are the ones schema/Task.ts declares (the cockpit cannot import its values)", () => {
    expect(STATUSES).toEqual(Task.STATUSES)
  })
})
