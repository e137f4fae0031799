// What a run waits on, as the API shows it: a failed step's retry backoff shows as `retry` until the next attempt
// starts, next to timers, approvals and child runs.
import { describe, expect, it } from "vitest"
import type { RunEvent } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import * as Run from "./Decider.ts"
import * as View from "./View.ts"

const T = Date.UTC(2026, 11, 2, 12)
const events: ReadonlyArray<RunEvent> = [
  {
    _tag: "RunStarted",
    runId: "run_01",
    agentName: "helper",
    agentVersion: 1,
    agentDigest: "sha256:a",
    spec: { systemPrompt: "", model: "auto", maxTurns: 2, tools: [] },
    input: "go",
    requestDigest: "sha256:r"
  },
  { _tag: "StepStarted", stepId: "turn-1", attempt: 1, request: { _tag: "model", model: "auto", turn: 1 } }
]
const stateOf = (more: ReadonlyArray<RunEvent>) => fold(Run.decider, [...events, ...more])

describe("View.waitingOf", () => {
  it("a step failed with a retry scheduled: waiting on its retry until the next attempt is due", () =>
    expect(View.waitingOf(stateOf([
      {
        _tag: "StepFailed",
        stepId: "turn-1",
        attempt: 1,
        error: { code: "rate_limited", message: "slow down" },
        retryable: true,
        retryAt: T + 2_000
      }
    ]))).toEqual({ stepId: "turn-1", kind: "retry", until: new Date(T + 2_000).toISOString() }))

  it("a step in flight, or one that failed for good, is waited on by nobody", () => {
    expect(View.waitingOf(stateOf([]))).toBeNull()
    expect(View.waitingOf(stateOf([
      {
        _tag: "StepFailed",
        stepId: "turn-1",
        attempt: 1,
        error: { code: "provider_error", message: "no" },
        retryable: false
      }
    ]))).toBeNull()
  })

  it("the next attempt started: no longer waiting", () =>
    expect(View.waitingOf(stateOf([
      {
        _tag: "StepFailed",
        stepId: "turn-1",
        attempt: 1,
        error: { code: "rate_limited", message: "slow down" },
        retryable: true,
        retryAt: T + 2_000
      },
      { _tag: "StepStarted", stepId: "turn-1", attempt: 2, request: { _tag: "model", model: "auto", turn: 1 } }
    ]))).toBeNull())
})
