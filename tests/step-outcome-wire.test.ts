// The bytes of a step's outcome on the wire: every StepCompleted, StepsCompleted and StepFailed of the recorded
// journals, rebuilt from its recorded fields through today's Decisions and run decider, serialises exactly as it was
// recorded.
// tests/replay.test.ts proves old journals still fold the same; this proves new ones are still written the same.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import * as RunDecider from "../actors/run/Decider.ts"
import * as Decisions from "../actors/run/Decisions.ts"
import type { RunCommand } from "../schema/Commands.ts"
import * as Envelope from "../schema/Envelope.ts"
import type { RunEvent } from "../schema/Events.ts"
import * as Replay from "./support/Replay.ts"

const DIR = join(import.meta.dirname, "fixtures/journals")
const runJournals = readdirSync(DIR).filter((f) => f.startsWith("run-") && f.endsWith(".jsonl")).sort()

type Raw = Record<string, any>

/** A local step journaled once (ADR 0032): completed on the step its start would have made. */
const localOf = (payload: Raw): Decisions.LocalCompletion => {
  const { attempt: _a, durationMs, stepId, request, ...performed } = payload
  const local: RunDecider.Step = {
    stepId,
    request,
    attempt: 1,
    starts: 1,
    status: "started",
    result: null,
    error: null,
    retryable: false,
    wakeAt: null,
    retryAt: null
  }
  return Decisions.completeLocal(local, performed as Decisions.Performed, durationMs)
}

/** The command today's driver journals for a recorded step outcome, built from its recorded fields. */
const commandOf = (state: RunDecider.State, payload: Raw, type: string): RunCommand => {
  const step = RunDecider.stepOf(state, payload.stepId)!
  if (type === "StepFailed") {
    // a too-large outcome (Decisions.whenTooLarge), or a retryable failure journaled before `retryAt` existed
    if (payload.error.code === Decisions.PAYLOAD_TOO_LARGE || (payload.retryable && payload.retryAt === undefined)) {
      const { error, retryable } = payload
      return { _tag: "FailStep", stepId: payload.stepId, attempt: payload.attempt, error, retryable }
    }
    return Decisions.failStep(step, payload.error, payload.retryAt ?? null, payload.route)
  }
  if (payload.result._tag === "approval") {
    const { approved, by, reason } = payload.result
    return { _tag: "DecideApproval", stepId: payload.stepId, approved, by, reason, durationMs: payload.durationMs }
  }
  if (payload.request !== undefined) return localOf(payload)
  const { attempt: _a, durationMs, stepId: _s, ...performed } = payload
  return Decisions.completeStep(step, performed as Decisions.Performed, durationMs)
}

describe("step outcomes on the wire", () => {
  it("has run journals to check", () => expect(runJournals.length).toBeGreaterThan(0))

  describe.each(runJournals)("%s", (journal) => {
    it("rebuilds every StepCompleted, StepsCompleted and StepFailed byte for byte", () => {
      const lines = Replay.parseJsonl(readFileSync(join(DIR, journal), "utf8"))
      const stored = Replay.decodeLines(lines)
      let state = RunDecider.initialState
      for (const [i, line] of lines.entries()) {
        const data = line.data as Raw
        if (data.type === "StepCompleted" || data.type === "StepFailed" || data.type === "StepsCompleted") {
          // local steps journaled together (ADR 0067): each rebuilt as a local step, journaled as one command
          const command = data.type === "StepsCompleted"
            ? Decisions.completeLocals(data.payload.steps.map(localOf))
            : commandOf(state, data.payload, data.type)
          const decided = RunDecider.decider.decide(command, state)
          expect(Result.isSuccess(decided), `seq ${line.seq} is accepted`).toBe(true)
          if (Result.isSuccess(decided)) {
            const [event] = decided.success
            expect(event?._tag).toBe(data.type)
            expect(JSON.stringify(Envelope.payloadOf(event!)), `seq ${line.seq}`).toBe(JSON.stringify(data.payload))
          }
        }
        state = RunDecider.evolve(state, stored[i]!.event as RunEvent)
      }
    })
  })
})
