import { describe, expect, it } from "vitest"
import type { Stored } from "../schema/Envelope.ts"
import type * as Events from "../schema/Events.ts"
import { stepTimes } from "./Workers.ts"

const completion = (stepId: string): Omit<Events.StepCompleted, "_tag"> => ({
  stepId,
  attempt: 1,
  result: { _tag: "model", answer: { content: "ok", toolCalls: [], finishReason: "stop", provider: "p", model: "m" } },
  tokensIn: 1,
  tokensOut: 1,
  costUsd: 0,
  durationMs: 0
})

/** A run journal's events at the given milliseconds after 2026-12-05T00:00:00Z. */
const journal = (events: ReadonlyArray<readonly [number, Events.Event]>): ReadonlyArray<Stored> =>
  events.map(([ms, event], i) => ({
    seq: i + 1,
    subject: "lantern.run.t.run_1",
    event,
    envelope: { at: new Date(Date.UTC(2026, 11, 5) + ms).toISOString() } as Stored["envelope"]
  }))

const started = (stepId: string): Events.StepStarted => ({
  _tag: "StepStarted",
  stepId,
  attempt: 1,
  request: { _tag: "model", model: "auto", turn: 1 }
})

describe("stepTimes", () => {
  it("times a started step to the event carrying its completion, whichever it is, and counts local steps", () => {
    const times = stepTimes(journal([
      [0, { _tag: "RunStarted" } as unknown as Events.Event],
      [10, started("turn-1")],
      // the model step's completion leads the local step's (ADR 0075)
      [25, { _tag: "StepsCompleted", steps: [completion("turn-1"), completion("turn-1.tool-0")] }],
      [30, started("turn-2")],
      // the answering step's completion rides on the run's end (ADR 0077)
      [42, { _tag: "RunSucceeded", output: "done", steps: [completion("turn-2")] }]
    ]))
    expect(times).toEqual({ completed: 3, durations: [15, 12] })
  })

  it("times a step journaled as a StepCompleted of its own", () => {
    const times = stepTimes(journal([[5, started("s")], [9, { _tag: "StepCompleted", ...completion("s") }]]))
    expect(times).toEqual({ completed: 1, durations: [4] })
  })
})
