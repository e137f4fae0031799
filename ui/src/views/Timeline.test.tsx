// The timeline view: each step with what it did, its attempts (a failure with its retry, the router's failed
// candidates), a wait, a child run linked, and the run's end.
import { render, screen } from "@solidjs/testing-library"
import { describe, expect, it } from "vitest"
import type { Entry } from "../timeline.ts"
import { Timeline } from "./Timeline.tsx"

const attempt = {
  startedAt: "2026-12-03T06:00:00.000Z",
  endedAt: "2026-12-03T06:00:01.000Z",
  result: null,
  error: null,
  retryAt: null,
  tokensIn: 0,
  tokensOut: 0,
  costUsd: 0,
  route: null
}

const entries: ReadonlyArray<Entry> = [
  { _tag: "start", at: "2026-12-03T06:00:00.000Z", agent: "lead", version: 3, input: "research cats" },
  {
    _tag: "step",
    step: {
      stepId: "turn-1",
      kind: "model",
      request: { _tag: "model", model: "auto", turn: 1 },
      wakeAt: null,
      attempts: [
        {
          ...attempt,
          attempt: 1,
          outcome: "failed",
          error: { code: "rate_limited", message: "slow down" },
          retryAt: Date.parse("2026-12-03T06:00:05.000Z")
        },
        {
          ...attempt,
          attempt: 2,
          outcome: "completed",
          result: { _tag: "model", answer: { content: "asking", toolCalls: [], provider: "openai", model: "m2" } },
          tokensIn: 12,
          tokensOut: 3,
          costUsd: 0.0021,
          route: {
            alias: "auto",
            chosen: "openai/m2",
            reason: "m1 failed over",
            attempts: [{ provider: "openai", model: "m1", code: "provider_unavailable", message: "503" }]
          }
        }
      ]
    }
  },
  {
    _tag: "step",
    step: {
      stepId: "turn-1.tool-0",
      kind: "agent",
      request: { _tag: "agent", agentName: "researcher", childRunId: "run_child", call: { name: "research" } },
      wakeAt: null,
      attempts: [{ ...attempt, attempt: 1, outcome: "running", endedAt: null }]
    }
  },
  { _tag: "end", at: "2026-12-03T06:01:00.000Z", type: "RunFailed", detail: { code: "x", message: "y" } }
]

describe("Timeline", () => {
  it("shows every step, attempt, failure, retry, route, wait and child run, then the end", () => {
    const { container } = render(() => <Timeline entries={entries} />)
    const model = container.querySelector("[data-step-id=\"turn-1\"]")!
    expect(model.textContent).toContain("model auto (turn 1)")
    expect(model.textContent).toContain("attempt 1: failed")
    expect(model.textContent).toContain("rate_limited: slow down; retried at 2026-12-03T06:00:05.000Z")
    expect(model.textContent).toContain("attempt 2: completed")
    expect(model.textContent).toContain("routed auto → openai/m2: m1 failed over")
    expect(model.textContent).toContain("tried openai/m1: provider_unavailable 503")
    expect(model.textContent).toContain("openai/m2, 12 / 3 tokens, $0.0021")
    const child = container.querySelector("[data-step-id=\"turn-1.tool-0\"]")!
    expect(child.textContent).toContain("child run of researcher")
    expect(child.textContent).toContain("attempt 1: waiting")
    expect(screen.getByRole("link", { name: "run_child" }).getAttribute("href")).toBe("#/runs/run_child")
    expect(container.querySelector("[data-end=\"RunFailed\"]")).not.toBeNull()
    expect(container.querySelectorAll("li.step")).toHaveLength(4)
  })
})
