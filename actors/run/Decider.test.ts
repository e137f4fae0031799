import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { ResolvedSpec } from "../../schema/AgentSpec.ts"
import type { RunCommand, StartRun } from "../../schema/Commands.ts"
import * as Events from "../../schema/Events.ts"
import type { RunEvent, StepRequest, StepResult } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import { given } from "../kernel/given.ts"
import * as Run from "./Decider.ts"

const spec: ResolvedSpec = { systemPrompt: "You are terse.", model: "auto", maxTurns: 3, tools: [] }

const startRun: StartRun = {
  _tag: "StartRun",
  runId: "run_01",
  agentName: "helper",
  agentVersion: 1,
  agentDigest: "sha256:agent",
  spec,
  input: "hello",
  requestDigest: "sha256:request"
}
const { _tag: _start, ...startFields } = startRun
const runStarted: RunEvent = { _tag: "RunStarted", ...startFields }

const modelRequest: StepRequest = { _tag: "model", model: "auto", turn: 1 }
const modelResult: StepResult = {
  _tag: "model",
  answer: { content: "hi", toolCalls: [], finishReason: "stop", provider: "offline", model: "offline-echo-1" }
}

const startStep: RunCommand = { _tag: "StartStep", stepId: "turn-1", request: modelRequest }
const stepStarted = (attempt: number, request: StepRequest = modelRequest): RunEvent => ({
  _tag: "StepStarted",
  stepId: "turn-1",
  attempt,
  request
})

const completeStep = (attempt: number): RunCommand => ({
  _tag: "CompleteStep",
  stepId: "turn-1",
  attempt,
  result: modelResult,
  tokensIn: 10,
  tokensOut: 2,
  costUsd: 0.001,
  durationMs: 5
})
const stepCompleted = (attempt: number): RunEvent => {
  const { _tag, ...fields } = completeStep(attempt) as Extract<RunCommand, { _tag: "CompleteStep" }>
  return { _tag: "StepCompleted", ...fields }
}

const error = { code: "provider_error", message: "503" }
const failStep = (attempt: number, retryable: boolean): RunCommand => ({
  _tag: "FailStep",
  stepId: "turn-1",
  attempt,
  error,
  retryable
})
const stepFailed = (attempt: number, retryable: boolean): RunEvent => ({
  _tag: "StepFailed",
  stepId: "turn-1",
  attempt,
  error,
  retryable
})

const succeedRun: RunCommand = { _tag: "SucceedRun", output: "hi" }
const failRun: RunCommand = { _tag: "FailRun", error }
const cancelRun: RunCommand = { _tag: "CancelRun", reason: "user asked", by: "user:1" }
const runSucceeded: RunEvent = { _tag: "RunSucceeded", output: "hi" }
const runFailed: RunEvent = { _tag: "RunFailed", error }
const runCanceled: RunEvent = { _tag: "RunCanceled", reason: "user asked", by: "user:1" }

const running = [runStarted]
const inFlight = [runStarted, stepStarted(1)]
const completed = [...inFlight, stepCompleted(1)]

describe("Run decider", () => {
  describe("StartRun", () => {
    it("starts a new run", () => given(Run.decider, []).when(startRun).then([runStarted]))

    it("is a no-op when repeated with the same request digest", () =>
      given(Run.decider, running).when(startRun).then([]))

    it("is a no-op when repeated with the same request digest after the run finished", () =>
      given(Run.decider, [...completed, runSucceeded]).when(startRun).then([]))

    it("refuses the same run id with a different request digest", () => {
      const e = given(Run.decider, running).when({ ...startRun, requestDigest: "sha256:other" }).thenFails(
        "IdempotencyKeyReused"
      )
      expect(e.key).toBe("run_01")
    })
  })

  describe("on a run that was never started", () => {
    const others: ReadonlyArray<RunCommand> = [
      startStep,
      completeStep(1),
      failStep(1, true),
      succeedRun,
      failRun,
      cancelRun
    ]
    it.each(others.map((c) => [c._tag, c] as const))(
      "refuses %s with RunNotFound",
      (_, command) => void given(Run.decider, []).when(command).thenFails("RunNotFound")
    )
  })

  describe("StartStep", () => {
    it("starts a fresh step as attempt 1", () => given(Run.decider, running).when(startStep).then([stepStarted(1)]))

    it("restarts a step started but never finished under the same attempt (same idempotency key), keeping the original request", () => {
      const other: StepRequest = { _tag: "model", model: "smart", turn: 9 }
      given(Run.decider, inFlight).when({ ...startStep, request: other }).then([stepStarted(1, modelRequest)])
    })

    it("restarts a retryably failed step as the next attempt", () =>
      given(Run.decider, [...inFlight, stepFailed(1, true)]).when(startStep).then([stepStarted(2)]))

    it("is a no-op for a completed step: a completed step is never executed again", () =>
      given(Run.decider, completed).when(startStep).then([]))

    it("is a no-op for a step completed on a later attempt", () =>
      given(Run.decider, [...inFlight, stepStarted(2), stepCompleted(2)]).when(startStep).then([]))
  })

  describe("CompleteStep", () => {
    it("completes the attempt in flight", () =>
      given(Run.decider, inFlight).when(completeStep(1)).then([stepCompleted(1)]))

    it("refuses a wrong attempt", () => {
      const e = given(Run.decider, inFlight).when(completeStep(2)).thenFails("InvalidCommand")
      expect(e.command).toBe("CompleteStep")
    })

    it("refuses a stale attempt once the step was restarted (a zombie host is fenced off)", () =>
      void given(Run.decider, [...inFlight, stepStarted(2)]).when(completeStep(1)).thenFails("InvalidCommand"))

    it("refuses a step that was never started", () =>
      void given(Run.decider, running).when(completeStep(1)).thenFails("InvalidCommand"))

    it("refuses completing a failed attempt", () =>
      void given(Run.decider, [...inFlight, stepFailed(1, true)]).when(completeStep(1)).thenFails("InvalidCommand"))

    it("is a no-op when the same attempt is completed twice", () =>
      given(Run.decider, completed).when(completeStep(1)).then([]))

    describe("a local step, journaled once with its request", () => {
      const local = { ...completeStep(1), request: modelRequest } as RunCommand
      const { _tag, ...localFields } = local as Extract<RunCommand, { _tag: "CompleteStep" }>
      const localCompleted: RunEvent = { _tag: "StepCompleted", ...localFields }

      it("completes a step never started", () => given(Run.decider, running).when(local).then([localCompleted]))

      it("only as its first attempt", () =>
        void given(Run.decider, running).when({ ...local, attempt: 2 } as RunCommand).thenFails("InvalidCommand"))

      it("is a no-op once journaled (a crash after the write performs it again)", () =>
        given(Run.decider, [runStarted, localCompleted]).when(local).then([]))

      it("folds to the state a start and a completion fold to", () =>
        expect(fold(Run.decider, [runStarted, localCompleted])).toEqual(
          fold(Run.decider, [runStarted, stepStarted(1), stepCompleted(1)])
        ))
    })

    it("refuses completing an older attempt of a completed step", () =>
      void given(Run.decider, [...inFlight, stepStarted(2), stepCompleted(2)]).when(completeStep(1)).thenFails(
        "InvalidCommand"
      ))
  })

  describe("CompleteSteps: local steps performed together, journaled as one event (ADR 0067)", () => {
    const toolStep = (i: number) => {
      const call = { id: `call_${i}`, name: "calculator", arguments: { expression: `${i}+1` } }
      return {
        stepId: `turn-1.tool-${i}`,
        attempt: 1,
        result: { _tag: "tool" as const, callId: call.id, output: String(i + 1) },
        tokensIn: i,
        tokensOut: 2 * i,
        costUsd: 0.0001 * i,
        durationMs: 1,
        request: { _tag: "tool" as const, call }
      }
    }
    const steps = [toolStep(0), toolStep(1), toolStep(2)]
    const completeSteps: RunCommand = { _tag: "CompleteSteps", steps }
    const stepsCompleted: RunEvent = { _tag: "StepsCompleted", steps }
    const one = (i: number): RunEvent => ({ _tag: "StepCompleted", ...steps[i]! })
    const started = (i: number): RunEvent => ({
      _tag: "StepStarted",
      stepId: steps[i]!.stepId,
      attempt: 1,
      request: steps[i]!.request
    })
    /** A step's completion after its own StepStarted: the pair every step wrote before ADR 0032. */
    const completedAfterStart = (i: number): RunEvent => {
      const { request: _request, ...fields } = steps[i]!
      return { _tag: "StepCompleted", ...fields }
    }

    it("journals steps never started as one StepsCompleted", () =>
      given(Run.decider, running).when(completeSteps).then([stepsCompleted]))

    it("journals a single step as a plain StepCompleted carrying its request (ADR 0032)", () =>
      given(Run.decider, running).when({ _tag: "CompleteSteps", steps: [steps[0]!] }).then([one(0)]))

    it("is a no-op once journaled (a retried append, or a crash after the write that performs them again)", () =>
      given(Run.decider, [runStarted, stepsCompleted]).when(completeSteps).then([]))

    it("leaves out the steps already journaled, one by one before it", () =>
      given(Run.decider, [runStarted, one(0)]).when(completeSteps).then([{
        _tag: "StepsCompleted",
        steps: steps.slice(1)
      }]))

    it("refuses a step that was started separately, a later attempt, or a step twice", () => {
      void given(Run.decider, [runStarted, started(1)]).when(completeSteps).thenFails("InvalidCommand")
      void given(Run.decider, running).when({ _tag: "CompleteSteps", steps: [steps[0]!, { ...steps[1]!, attempt: 2 }] })
        .thenFails("InvalidCommand")
      void given(Run.decider, running).when({ _tag: "CompleteSteps", steps: [steps[0]!, steps[0]!] }).thenFails(
        "InvalidCommand"
      )
    })

    it("is refused on a finished run", () =>
      void given(Run.decider, [runStarted, runSucceeded]).when(completeSteps).thenFails("RunAlreadyFinished"))

    it("folds exactly as the sequence of its steps' completions, each journaled once", () =>
      expect(fold(Run.decider, [runStarted, stepsCompleted])).toEqual(
        fold(Run.decider, [runStarted, one(0), one(1), one(2)])
      ))

    it("folds to the state each step started and completed separately folds to", () =>
      expect(fold(Run.decider, [runStarted, stepsCompleted])).toEqual(
        fold(Run.decider, [
          runStarted,
          ...[0, 1, 2].flatMap((
            i
          ) => [started(i), completedAfterStart(i)])
        ])
      ))

    it("expands, for every reader, to its steps' StepCompleted events in order", () => {
      expect(Events.expand(stepsCompleted)).toEqual([one(0), one(1), one(2)])
      expect(Events.expand(one(0))).toEqual([one(0)])
    })

    describe("led by the answer of the model step that asked for them (ADR 0075)", () => {
      const { _tag: _c, ...answer } = completeStep(1) as Extract<RunCommand, { _tag: "CompleteStep" }>
      const turn: RunCommand = { _tag: "CompleteSteps", steps: [answer, ...steps] }
      const turnCompleted: RunEvent = { _tag: "StepsCompleted", steps: [answer, ...steps] }
      const asked = [runStarted, stepStarted(1)]

      it("journals the started step's completion and the local steps as one StepsCompleted", () =>
        given(Run.decider, asked).when(turn).then([turnCompleted]))

      it("folds exactly as the model step's StepCompleted, then each local step's", () =>
        expect(fold(Run.decider, [...asked, turnCompleted])).toEqual(
          fold(Run.decider, [...asked, stepCompleted(1), one(0), one(1), one(2)])
        ))

      it("is a no-op once journaled, and leaves out an answer journaled before it", () => {
        void given(Run.decider, [...asked, turnCompleted]).when(turn).then([])
        void given(Run.decider, [...asked, stepCompleted(1)]).when(turn).then([stepsCompleted])
      })

      it("refuses an answer to a step not in flight, of another attempt, or anywhere but first", () => {
        void given(Run.decider, running).when(turn).thenFails("InvalidCommand")
        void given(Run.decider, asked).when({ _tag: "CompleteSteps", steps: [{ ...answer, attempt: 2 }, ...steps] })
          .thenFails("InvalidCommand")
        void given(Run.decider, asked).when({ _tag: "CompleteSteps", steps: [steps[0]!, answer] })
          .thenFails("InvalidCommand")
      })
    })
  })

  describe("FailStep", () => {
    it("fails the attempt in flight (retryable)", () =>
      given(Run.decider, inFlight).when(failStep(1, true)).then([stepFailed(1, true)]))

    it("fails the attempt in flight (not retryable)", () =>
      given(Run.decider, inFlight).when(failStep(1, false)).then([stepFailed(1, false)]))

    it("refuses a wrong attempt", () =>
      void given(Run.decider, inFlight).when(failStep(2, true)).thenFails("InvalidCommand"))

    it("refuses failing a completed step", () =>
      void given(Run.decider, completed).when(failStep(1, true)).thenFails("InvalidCommand"))

    it("refuses a step that was never started", () =>
      void given(Run.decider, running).when(failStep(1, true)).thenFails("InvalidCommand"))
  })

  describe("ending a run", () => {
    it("SucceedRun succeeds a running run", () => given(Run.decider, completed).when(succeedRun).then([runSucceeded]))

    it("FailRun fails a running run", () => given(Run.decider, completed).when(failRun).then([runFailed]))

    it("CancelRun cancels a running run, even with a step in flight", () =>
      given(Run.decider, inFlight).when(cancelRun).then([runCanceled]))

    it("SucceedRun on a succeeded run is a no-op (a duplicate driver)", () =>
      given(Run.decider, [...completed, runSucceeded]).when(succeedRun).then([]))

    it("FailRun on a failed run is a no-op (a duplicate driver)", () =>
      given(Run.decider, [...completed, runFailed]).when(failRun).then([]))

    describe("with the answer of the step in flight that ended it (ADR 0077)", () => {
      const { _tag: _c, ...answer } = completeStep(1) as Extract<RunCommand, { _tag: "CompleteStep" }>
      const ending: RunCommand = { _tag: "SucceedRun", output: "hi", steps: [answer] }
      const ended: RunEvent = { _tag: "RunSucceeded", output: "hi", steps: [answer] }

      it("journals the completion and the end as one RunSucceeded", () =>
        given(Run.decider, inFlight).when(ending).then([ended]))

      it("folds exactly as the step's StepCompleted, then the RunSucceeded", () =>
        expect(fold(Run.decider, [...inFlight, ended])).toEqual(
          fold(Run.decider, [...inFlight, stepCompleted(1), runSucceeded])
        ))

      it("leaves out a completion journaled before it, and is a no-op once journaled", () => {
        void given(Run.decider, [...inFlight, stepCompleted(1)]).when(ending).then([runSucceeded])
        void given(Run.decider, [...inFlight, ended]).when(ending).then([])
      })

      it("refuses a completion of a step not in flight or of another attempt", () => {
        void given(Run.decider, running).when(ending).thenFails("InvalidCommand")
        void given(Run.decider, inFlight).when({ ...ending, steps: [{ ...answer, attempt: 2 }] })
          .thenFails("InvalidCommand")
      })

      it("expands, for every reader, to the StepCompleted and then the RunSucceeded without it", () =>
        expect(Events.expand(ended)).toEqual([stepCompleted(1), runSucceeded]))
    })
  })

  describe("after a run finished", () => {
    const terminals = [
      ["succeeded", runSucceeded],
      ["failed", runFailed],
      ["canceled", runCanceled]
    ] as const
    const commands: ReadonlyArray<RunCommand> = [
      startStep,
      completeStep(1),
      failStep(1, true),
      succeedRun,
      failRun,
      cancelRun
    ]
    const noOp = (status: string, command: RunCommand) =>
      (status === "succeeded" && command._tag === "SucceedRun") || (status === "failed" && command._tag === "FailRun")
    const cases = terminals.flatMap(([status, end]) =>
      commands.filter((c) => !noOp(status, c)).map((c) => [c._tag, status, end, c] as const)
    )

    it.each(cases)("refuses %s on a %s run with RunAlreadyFinished", (_, status, end, command) => {
      const e = given(Run.decider, [...inFlight, end]).when(command).thenFails("RunAlreadyFinished")
      expect(e).toMatchObject({ id: "run_01", status })
    })
  })

  describe("evolve", () => {
    it("accumulates tokens and cost over completed steps", () => {
      const second: RunEvent = {
        _tag: "StepStarted",
        stepId: "turn-2",
        attempt: 1,
        request: { _tag: "model", model: "auto", turn: 2 }
      }
      const done: RunEvent = {
        ...(stepCompleted(1) as Extract<RunEvent, { _tag: "StepCompleted" }>),
        stepId: "turn-2",
        tokensIn: 5,
        tokensOut: 1,
        costUsd: 0.002
      }
      const state = fold(Run.decider, [...completed, second, done])
      expect(state).toMatchObject({ tokensIn: 15, tokensOut: 3 })
      expect(state.costUsd).toBeCloseTo(0.003)
      expect(state.steps.map((s) => [s.stepId, s.status])).toEqual([["turn-1", "completed"], ["turn-2", "completed"]])
    })

    it("keeps a restarted step in its original position with its first request", () => {
      const tool: RunEvent = {
        _tag: "StepStarted",
        stepId: "turn-1.tool-0",
        attempt: 1,
        request: { _tag: "tool", call: { id: "c", name: "echo", arguments: {} } }
      }
      const state = fold(Run.decider, [
        ...inFlight,
        tool,
        stepFailed(1, true),
        stepStarted(2, { _tag: "model", model: "other", turn: 7 })
      ])
      expect(state.steps.map((s) => s.stepId)).toEqual(["turn-1", "turn-1.tool-0"])
      expect(Run.stepOf(state, "turn-1")).toMatchObject({
        attempt: 2,
        status: "started",
        request: modelRequest,
        error: null
      })
    })

    it("records a cancellation as the run's error", () => {
      const state = fold(Run.decider, [...inFlight, runCanceled])
      expect(state.status).toBe("canceled")
      expect(state.error).toEqual({ code: "canceled", message: "user asked" })
      expect(Run.isTerminal(state)).toBe(true)
    })
  })
})

describe("Run decider: waiting steps", () => {
  const approvalRequest: StepRequest = { _tag: "approval", call: { id: "c0", name: "echo", arguments: {} } }
  const base = inFlight.slice(0, 1)
  const approvalStarted = {
    _tag: "StepStarted",
    stepId: "turn-1.tool-0.approval",
    attempt: 1,
    request: approvalRequest,
    wakeAt: 9_000
  } as const
  const decide = {
    _tag: "DecideApproval",
    stepId: "turn-1.tool-0.approval",
    approved: true,
    by: "ops",
    reason: "ok",
    durationMs: 5
  } as const

  it("records a decision on a waiting approval as its completion", () =>
    given(Run.decider, [...base, approvalStarted]).when(decide).then([{
      _tag: "StepCompleted",
      stepId: "turn-1.tool-0.approval",
      attempt: 1,
      result: { _tag: "approval", approved: true, by: "ops", reason: "ok" },
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0,
      durationMs: 5
    }]))

  it("refuses a second decision, and decisions on steps that are not approvals", () => {
    const decided = given(Run.decider, [...base, approvalStarted])
    const state = fold(Run.decider, [...base, approvalStarted])
    const first = Run.decider.decide(decide, state)
    const after = Result.isSuccess(first) ? first.success.reduce(Run.evolve, state) : state
    const second = Run.decider.decide({ ...decide, approved: false }, after)
    expect(Result.isFailure(second) && second.failure._tag).toBe("NotAwaitingApproval")
    decided.when({ ...decide, stepId: "turn-9" }).thenFails("StepNotFound")
  })

  it("keeps a waiting step's wake-up time when its host restarts it", () => {
    const state = fold(Run.decider, [...base, approvalStarted])
    const restarted = Run.decider.decide({
      _tag: "StartStep",
      stepId: "turn-1.tool-0.approval",
      request: approvalRequest,
      wakeAt: 99_999
    }, state)
    expect(Result.isSuccess(restarted) && restarted.success[0]).toMatchObject({ wakeAt: 9_000, attempt: 1 })
  })
})
