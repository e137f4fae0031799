import * as fc from "fast-check"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { ResolvedSpec } from "../../schema/AgentSpec.ts"
import type { RunCommand } from "../../schema/Commands.ts"
import type { ModelAnswer, RunEvent, StepRequest, StepResult, ToolCall } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import * as Run from "./Decider.ts"
import * as Plan from "./Plan.ts"
import { DEFAULT_POLICY } from "../../schema/AgentSpec.ts"

// ---- journal builders ----

const spec = (maxTurns = 3): ResolvedSpec => ({ systemPrompt: "You are terse.", model: "auto", maxTurns, tools: [] })

const runStarted = (maxTurns = 3, input: unknown = "what is 2+2?"): RunEvent => ({
  _tag: "RunStarted",
  runId: "run_01",
  agentName: "helper",
  agentVersion: 1,
  agentDigest: "sha256:agent",
  spec: spec(maxTurns),
  input,
  requestDigest: "sha256:request"
})

const call = (turn: number, i: number): ToolCall => ({
  id: `call_${turn}_${i}`,
  name: "echo",
  arguments: { text: `t${turn}.${i}` }
})

const answer = (content: string | null, toolCalls: ReadonlyArray<ToolCall> = []): ModelAnswer => ({
  content,
  toolCalls,
  finishReason: toolCalls.length > 0 ? "tool_calls" : "stop",
  provider: "offline",
  model: "offline-echo-1"
})

const modelRequest = (turn: number): StepRequest => ({ _tag: "model", model: "auto", turn })
const toolRequest = (c: ToolCall): StepRequest => ({ _tag: "tool", call: c })

const started = (stepId: string, request: StepRequest, attempt = 1): RunEvent => ({
  _tag: "StepStarted",
  stepId,
  attempt,
  request
})
const completed = (stepId: string, result: StepResult, attempt = 1): RunEvent => ({
  _tag: "StepCompleted",
  stepId,
  attempt,
  result,
  tokensIn: 1,
  tokensOut: 1,
  costUsd: 0,
  durationMs: 1
})
const failed = (stepId: string, attempt: number, retryable: boolean): RunEvent => ({
  _tag: "StepFailed",
  stepId,
  attempt,
  error: { code: "provider_error", message: `attempt ${attempt} failed` },
  retryable
})

/** A model turn started and completed with `a`. */
const modelTurn = (turn: number, a: ModelAnswer): ReadonlyArray<RunEvent> => [
  started(Plan.modelStepId(turn), modelRequest(turn)),
  completed(Plan.modelStepId(turn), { _tag: "model", answer: a })
]
/** A tool step of `turn` started and completed with `output`. */
const toolTurn = (turn: number, i: number, output: string): ReadonlyArray<RunEvent> => [
  started(Plan.toolStepId(turn, i), toolRequest(call(turn, i))),
  completed(Plan.toolStepId(turn, i), { _tag: "tool", callId: call(turn, i).id, output })
]

const stateOf = (...events: ReadonlyArray<RunEvent>) => fold(Run.decider, events)

const twoCalls = answer(null, [call(1, 0), call(1, 1)])

describe("Plan.next", () => {
  it("is Done for a run that was never started", () => {
    expect(Plan.next(Run.initialState)).toEqual({ _tag: "Done" })
  })

  it("executes the turn-1 model step first", () => {
    expect(Plan.next(stateOf(runStarted()))).toEqual({
      _tag: "Execute",
      stepId: "turn-1",
      request: modelRequest(1),
      notBefore: null
    })
  })

  it("executes each tool call of a model answer in order, then the next model turn", () => {
    const afterModel = [runStarted(), ...modelTurn(1, twoCalls)]
    expect(Plan.next(stateOf(...afterModel))).toEqual({
      _tag: "Execute",
      stepId: "turn-1.tool-0",
      request: toolRequest(call(1, 0)),
      notBefore: null
    })

    const afterTool0 = [...afterModel, ...toolTurn(1, 0, "a")]
    expect(Plan.next(stateOf(...afterTool0))).toEqual({
      _tag: "Execute",
      stepId: "turn-1.tool-1",
      request: toolRequest(call(1, 1)),
      notBefore: null
    })

    const afterTool1 = [...afterTool0, ...toolTurn(1, 1, "b")]
    expect(Plan.next(stateOf(...afterTool1))).toEqual({
      _tag: "Execute",
      stepId: "turn-2",
      request: modelRequest(2),
      notBefore: null
    })
  })

  it("succeeds with the content of a final answer", () => {
    expect(Plan.next(stateOf(runStarted(), ...modelTurn(1, answer("4"))))).toEqual({ _tag: "Succeed", output: "4" })
  })

  it("succeeds with the final answer of a later turn", () => {
    const events = [
      runStarted(),
      ...modelTurn(1, answer(null, [call(1, 0)])),
      ...toolTurn(1, 0, "x"),
      ...modelTurn(2, answer("done"))
    ]
    expect(Plan.next(stateOf(...events))).toEqual({ _tag: "Succeed", output: "done" })
  })

  it("succeeds with an empty output for an answer with neither content nor tool calls", () => {
    expect(Plan.next(stateOf(runStarted(), ...modelTurn(1, answer(null))))).toEqual({ _tag: "Succeed", output: "" })
  })

  it("fails with max_turns_exceeded when the last allowed turn still calls tools", () => {
    const events = [runStarted(2), ...modelTurn(1, answer(null, [call(1, 0)])), ...toolTurn(1, 0, "x")]
    const lastTurn = [...events, ...modelTurn(2, answer(null, [call(2, 0)])), ...toolTurn(2, 0, "y")]
    const action = Plan.next(stateOf(...lastTurn))
    expect(action._tag).toBe("Fail")
    expect(action._tag === "Fail" && action.error.code).toBe("max_turns_exceeded")
  })

  it("fails with max_turns_exceeded at maxTurns 1", () => {
    const events = [runStarted(1), ...modelTurn(1, twoCalls), ...toolTurn(1, 0, "a"), ...toolTurn(1, 1, "b")]
    expect(Plan.next(stateOf(...events))).toMatchObject({ _tag: "Fail", error: { code: "max_turns_exceeded" } })
  })

  describe("crash recovery", () => {
    it("re-executes a model step started but never finished, with its recorded request", () => {
      expect(Plan.next(stateOf(runStarted(), started("turn-1", modelRequest(1))))).toEqual({
        _tag: "Execute",
        stepId: "turn-1",
        request: modelRequest(1),
        notBefore: null
      })
    })

    it("re-executes the tool step in flight, never the completed model step before it", () => {
      const events = [
        runStarted(),
        ...modelTurn(1, twoCalls),
        ...toolTurn(1, 0, "a"),
        started("turn-1.tool-1", toolRequest(call(1, 1)))
      ]
      expect(Plan.next(stateOf(...events))).toEqual({
        _tag: "Execute",
        stepId: "turn-1.tool-1",
        request: toolRequest(call(1, 1)),
        notBefore: null
      })
    })

    it("re-executes a step on a later attempt that crashed again", () => {
      const events = [runStarted(), started("turn-1", modelRequest(1)), started("turn-1", modelRequest(1), 2)]
      expect(Plan.next(stateOf(...events))).toMatchObject({ _tag: "Execute", stepId: "turn-1" })
    })

    // A poison step (its host dies every time: OOM, a segfaulting tool, a call hanging past the lease) must
    // fail the run after MAX_UNFINISHED_STARTS starts instead of being redelivered forever.
    it("fails a step started MAX_UNFINISHED_STARTS times without finishing instead of executing it forever", () => {
      const starts = (
        n: number
      ) => [runStarted(), ...Array.from({ length: n }, () => started("turn-1", modelRequest(1), 1))]
      expect(Plan.next(stateOf(...starts(Plan.MAX_UNFINISHED_STARTS - 1)))._tag).toBe("Execute")
      const failed = Plan.next(stateOf(...starts(Plan.MAX_UNFINISHED_STARTS)))
      expect(failed).toMatchObject({ _tag: "Fail", error: { code: "step_abandoned" } })
    })

    it("counts unfinished starts of journals recorded when a restart bumped the attempt", () => {
      const starts = [
        runStarted(),
        ...Array.from({ length: Plan.MAX_UNFINISHED_STARTS }, (_, i) => started("turn-1", modelRequest(1), i + 1))
      ]
      expect(Plan.next(stateOf(...starts))).toMatchObject({ _tag: "Fail", error: { code: "step_abandoned" } })
    })

    it("restarts a crashed step under the same attempt, so its idempotency key is unchanged", () => {
      const state = stateOf(runStarted(), started("turn-1", modelRequest(1)))
      const decided = Run.decider.decide({ _tag: "StartStep", stepId: "turn-1", request: modelRequest(1) }, state)
      expect(Result.isSuccess(decided) && decided.success).toEqual([{
        _tag: "StepStarted",
        stepId: "turn-1",
        attempt: 1,
        request: modelRequest(1)
      }])
    })
  })

  describe("failed steps", () => {
    it("re-executes a retryably failed step under MAX_ATTEMPTS", () => {
      const events = [runStarted(), started("turn-1", modelRequest(1)), failed("turn-1", 1, true)]
      expect(Plan.next(stateOf(...events))).toEqual({
        _tag: "Execute",
        stepId: "turn-1",
        request: modelRequest(1),
        notBefore: null
      })
    })

    it("fails the run when a retryable step has used the policy's maxAttempts (3 by default)", () => {
      const events = [runStarted()]
      for (let n = 1; n <= DEFAULT_POLICY.maxAttempts; n++)
        events.push(started("turn-1", modelRequest(1), n), failed("turn-1", n, true))
      expect(Plan.next(stateOf(...events))).toEqual({
        _tag: "Fail",
        error: { code: "provider_error", message: `attempt ${DEFAULT_POLICY.maxAttempts} failed` }
      })
    })

    it("fails the run at once on a non-retryable failure", () => {
      const events = [runStarted(), started("turn-1", modelRequest(1)), failed("turn-1", 1, false)]
      expect(Plan.next(stateOf(...events))).toEqual({
        _tag: "Fail",
        error: { code: "provider_error", message: "attempt 1 failed" }
      })
    })
  })

  it.each(
    [
      ["succeeded", { _tag: "RunSucceeded", output: "4" }],
      ["failed", { _tag: "RunFailed", error: { code: "x", message: "y" } }],
      ["canceled", { _tag: "RunCanceled", reason: "r", by: "u" }]
    ] as const
  )("is Done for a %s run", (_, end) => {
    expect(Plan.next(stateOf(runStarted(), started("turn-1", modelRequest(1)), end))).toEqual({ _tag: "Done" })
  })
})

describe("Plan.conversation", () => {
  it("starts with the system prompt and the user's input", () => {
    expect(Plan.conversation(stateOf(runStarted()))).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "what is 2+2?" }
    ])
  })

  it("renders non-string input as JSON", () => {
    expect(Plan.conversation(stateOf(runStarted(3, { q: [1, 2] })))[1]).toEqual({
      role: "user",
      content: "{\"q\":[1,2]}"
    })
  })

  it("rebuilds assistant turns (with their tool calls) and tool results in order, skipping unfinished steps", () => {
    const events = [
      runStarted(),
      ...modelTurn(1, twoCalls),
      ...toolTurn(1, 0, "a"),
      ...toolTurn(1, 1, "b"),
      ...modelTurn(2, answer("partial", [call(2, 0)])),
      started("turn-2.tool-0", toolRequest(call(2, 0))),
      failed("turn-2.tool-0", 1, true)
    ]
    expect(Plan.conversation(stateOf(...events))).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "what is 2+2?" },
      { role: "assistant", content: null, toolCalls: [call(1, 0), call(1, 1)] },
      { role: "tool", content: "a", toolCallId: "call_1_0" },
      { role: "tool", content: "b", toolCallId: "call_1_1" },
      { role: "assistant", content: "partial", toolCalls: [call(2, 0)] }
    ])
  })
})

// ---- replay property: simulate the driver loop over the pure core with generated outcomes ----

type Outcome =
  | "ok" // the step completes
  | "duplicate" // the step completes and the completion is delivered twice
  | "retryable" // the step fails, retryably
  | "fatal" // the step fails for good
  | "crash" // the host dies after StartStep: a new host reloads from the journal
  | "zombie" // like crash, but the dead host's completion arrives after the step was restarted
  | "cancel" // a user cancels instead of the step finishing

const outcome: fc.Arbitrary<Outcome> = fc.oneof(
  { arbitrary: fc.constant<Outcome>("ok"), weight: 8 },
  { arbitrary: fc.constant<Outcome>("duplicate"), weight: 1 },
  { arbitrary: fc.constant<Outcome>("retryable"), weight: 3 },
  { arbitrary: fc.constant<Outcome>("fatal"), weight: 1 },
  { arbitrary: fc.constant<Outcome>("crash"), weight: 2 },
  { arbitrary: fc.constant<Outcome>("zombie"), weight: 1 },
  { arbitrary: fc.constant<Outcome>("cancel"), weight: 1 }
)

const scenario = fc.record({
  maxTurns: fc.integer({ min: 1, max: 5 }),
  /** Tool calls the model makes at turn i + 1 (0 = a final answer); turns past the end answer finally. */
  toolCalls: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 6 }),
  /** Outcomes of successive executions; once used up, every execution succeeds. */
  outcomes: fc.array(outcome, { maxLength: 30 })
})
type Scenario = typeof scenario extends fc.Arbitrary<infer A> ? A : never

const resultFor = (sc: Scenario, request: StepRequest): StepResult => {
  if (request._tag === "code" || request._tag === "timer") return { _tag: "code", value: null }
  if (request._tag !== "model") return { _tag: "tool", callId: request.call.id, output: `out:${request.call.id}` }
  const n = sc.toolCalls[request.turn - 1] ?? 0
  const calls = Array.from({ length: n }, (_, i) => call(request.turn, i))
  return { _tag: "model", answer: answer(n === 0 ? `final ${request.turn}` : null, calls) }
}

const simulate = (sc: Scenario) => {
  const events: Array<RunEvent> = []
  let state = Run.initialState
  const decide = (command: RunCommand) => Run.decider.decide(command, state)
  /** Decides a command the (only live) driver legitimately sends: it must be accepted. */
  const run = (command: RunCommand) => {
    const decided = decide(command)
    if (Result.isFailure(decided)) throw new Error(`${command._tag} refused: ${decided.failure.message}`)
    for (const e of decided.success) {
      state = Run.evolve(state, e)
      events.push(e)
    }
    return decided.success
  }

  const { _tag: _started, ...fields } = runStarted(sc.maxTurns) as Extract<RunEvent, { _tag: "RunStarted" }>
  run({ _tag: "StartRun", ...fields })
  const bound = sc.outcomes.length + 3 * sc.maxTurns + 2
  let remaining = [...sc.outcomes]
  let zombie: RunCommand | null = null
  let iterations = 0
  for (;; iterations++) {
    if (iterations > bound) throw new Error(`no termination within ${bound} actions`)
    const action = Plan.next(state)
    if (action._tag === "Done") break
    if (action._tag === "Succeed") {
      run({ _tag: "SucceedRun", output: action.output })
      continue
    }
    if (action._tag === "Fail") {
      run({ _tag: "FailRun", error: action.error })
      continue
    }
    if (action._tag === "Wait") throw new Error(`generated runs have no waiting steps, got ${action.step.stepId}`)
    if (action._tag === "CompleteLoop") throw new Error("generated runs are not loop runs")
    expect(Run.stepOf(state, action.stepId)?.status).not.toBe("completed")
    const restarted = run({ _tag: "StartStep", stepId: action.stepId, request: action.request })
    expect(restarted).toHaveLength(1)
    if (zombie !== null) {
      // the dead host's late completion carries the same attempt (same idempotency key, so the same effect):
      // it is recorded once, and the new host's own completion of that attempt becomes a no-op
      const late = zombie as Extract<RunCommand, { _tag: "CompleteStep" }>
      zombie = null
      if (late.stepId === action.stepId) {
        expect(run(late)).toHaveLength(1)
        expect(run(late)).toEqual([])
        continue
      }
      const refused = decide(late)
      expect(Result.isFailure(refused) || (Result.isSuccess(refused) && refused.success.length === 0)).toBe(true)
    }
    const step = Run.stepOf(state, action.stepId)!
    const complete: RunCommand = {
      _tag: "CompleteStep",
      stepId: step.stepId,
      attempt: step.attempt,
      result: resultFor(sc, step.request),
      tokensIn: 3,
      tokensOut: 2,
      costUsd: 0,
      durationMs: 1
    }
    const [next, ...rest] = remaining
    remaining = rest
    switch (next ?? "ok") {
      case "ok":
        run(complete)
        break
      case "duplicate":
        run(complete)
        expect(run(complete)).toEqual([])
        break
      case "retryable":
      case "fatal":
        run({
          _tag: "FailStep",
          stepId: step.stepId,
          attempt: step.attempt,
          error: { code: "boom", message: "boom" },
          retryable: next === "retryable"
        })
        break
      case "zombie":
      case "crash": {
        // the host died after starting the step; a new host takes over from the journal
        if (next === "zombie") zombie = complete
        const recovered = fold(Run.decider, events)
        expect(recovered).toEqual(state)
        state = recovered
        break
      }
      case "cancel":
        run({ _tag: "CancelRun", reason: "user", by: "user:1" })
        break
    }
  }
  if (zombie !== null) {
    const late = decide(zombie)
    expect(Result.isFailure(late)).toBe(true)
  }
  return { events, state, iterations, bound }
}

/** Every command a late or duplicate driver could send to a finished run. */
const commandsFor = (state: Run.State): ReadonlyArray<RunCommand> => {
  const last = state.steps[state.steps.length - 1]
  const stepId = last?.stepId ?? "turn-1"
  const attempt = last?.attempt ?? 1
  const start = runStarted(state.spec?.maxTurns ?? 1) as Extract<RunEvent, { _tag: "RunStarted" }>
  return [
    { ...start, _tag: "StartRun" },
    { ...start, _tag: "StartRun", requestDigest: "sha256:different" },
    { _tag: "StartStep", stepId, request: modelRequest(1) },
    { _tag: "StartStep", stepId: "turn-99", request: modelRequest(99) },
    {
      _tag: "CompleteStep",
      stepId,
      attempt,
      result: { _tag: "tool", callId: "c", output: "o" },
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0,
      durationMs: 0
    },
    { _tag: "FailStep", stepId, attempt, error: { code: "x", message: "y" }, retryable: true },
    {
      _tag: "CompleteSteps",
      steps: [0, 1].map((i) => ({
        stepId: `turn-99.tool-${i}`,
        attempt: 1,
        result: { _tag: "tool", callId: `c${i}`, output: "o" },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        durationMs: 0,
        request: { _tag: "tool", call: { id: `c${i}`, name: "echo", arguments: {} } }
      }))
    },
    { _tag: "SucceedRun", output: "late" },
    { _tag: "FailRun", error: { code: "late", message: "late" } },
    { _tag: "CancelRun", reason: "late", by: "user:2" }
  ]
}

describe("replaying generated runs through Plan.next and the run decider", () => {
  it("always terminates, never completes a step twice, and the journal folds back to the same state", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { events, state, iterations, bound } = simulate(sc)
        expect(iterations).toBeLessThanOrEqual(bound)
        expect(Run.isTerminal(state)).toBe(true)
        expect(Plan.next(state)).toEqual({ _tag: "Done" })

        // folding the journal from scratch yields the state built incrementally
        expect(fold(Run.decider, events)).toEqual(state)

        // no step is ever completed twice
        const completions = new Map<string, number>()
        for (const e of events)
          if (e._tag === "StepCompleted") completions.set(e.stepId, (completions.get(e.stepId) ?? 0) + 1)
        for (const n of completions.values()) expect(n).toBe(1)

        // exactly one terminal event, and it is the last one
        expect(events.filter((e) => e._tag === "RunSucceeded" || e._tag === "RunFailed" || e._tag === "RunCanceled"))
          .toHaveLength(1)
        expect(["RunSucceeded", "RunFailed", "RunCanceled"]).toContain(events[events.length - 1]!._tag)

        // never more model turns than the spec allows
        expect(state.steps.filter((s) => s.request._tag === "model").length).toBeLessThanOrEqual(sc.maxTurns)
        if (state.status === "succeeded") {
          expect(state.steps.every((s) => s.status === "completed")).toBe(true)
          const turn = state.steps.filter((s) => s.request._tag === "model").length
          expect(state.output).toBe(`final ${turn}`)
        }

        // a finished run accepts nothing: every command is refused or a no-op
        for (const command of commandsFor(state)) {
          const decided = Run.decider.decide(command, state)
          if (Result.isSuccess(decided)) expect(decided.success).toEqual([])
        }
      }),
      { numRuns: 1000 }
    )
  })

  it("evolve never throws over any prefix of a generated journal, and prefixes fold consistently", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { events } = simulate(sc)
        let state = Run.initialState
        for (const [i, e] of events.entries()) {
          state = Run.evolve(state, e)
          if (i % 5 === 0) expect(fold(Run.decider, events.slice(0, i + 1))).toEqual(state)
        }
      }),
      { numRuns: 300 }
    )
  })
})

describe("waiting steps, approvals, child runs and the retry policy", () => {
  const withTools = (tools: ResolvedSpec["tools"], extra: Partial<ResolvedSpec> = {}): RunEvent => ({
    ...(runStarted() as Extract<RunEvent, { _tag: "RunStarted" }>),
    spec: { ...spec(), tools, ...extra }
  })
  const declared = (name: string, more: Record<string, unknown> = {}) => ({
    name,
    description: name,
    parameters: {},
    ...more
  })
  const calling = (name: string, args: unknown): ModelAnswer => answer(null, [{ id: "c0", name, arguments: args }])

  it("turns a call to the declared sleep tool into a durable timer step, clamped to 30 days", () => {
    const s = stateOf(withTools([declared("sleep")]), ...modelTurn(1, calling("sleep", { seconds: 5 })))
    expect(Plan.next(s)).toMatchObject({
      _tag: "Execute",
      stepId: "turn-1.tool-0",
      request: { _tag: "sleep", seconds: 5 }
    })
    const huge = stateOf(withTools([declared("sleep")]), ...modelTurn(1, calling("sleep", { seconds: 1e12 })))
    expect(Plan.next(huge)).toMatchObject({ request: { _tag: "sleep", seconds: Plan.MAX_SLEEP_SECONDS } })
  })

  it("waits on a started sleep until its journaled wake-up time instead of executing it again", () => {
    const request: StepRequest = { _tag: "sleep", call: { id: "c0", name: "sleep", arguments: {} }, seconds: 5 }
    const s = stateOf(
      withTools([declared("sleep")]),
      ...modelTurn(1, calling("sleep", { seconds: 5 })),
      { ...started("turn-1.tool-0", request), wakeAt: 12_345 } as RunEvent
    )
    expect(Plan.next(s)).toMatchObject({ _tag: "Wait", step: { stepId: "turn-1.tool-0" }, until: 12_345 })
  })

  it("asks for approval before a tool that requires it, then runs the tool once approved", () => {
    const tools = [declared("echo", { approval: { expiresInSeconds: 60 } })]
    const asked = stateOf(withTools(tools), ...modelTurn(1, calling("echo", { text: "x" })))
    expect(Plan.next(asked)).toMatchObject({
      _tag: "Execute",
      stepId: "turn-1.tool-0.approval",
      request: { _tag: "approval" }
    })
    const approvalRequest: StepRequest = {
      _tag: "approval",
      call: { id: "c0", name: "echo", arguments: { text: "x" } }
    }
    const approval = (approved: boolean) => [
      started("turn-1.tool-0.approval", approvalRequest),
      completed("turn-1.tool-0.approval", { _tag: "approval", approved, by: "ops", reason: "r" })
    ]
    const approved = stateOf(withTools(tools), ...modelTurn(1, calling("echo", { text: "x" })), ...approval(true))
    expect(Plan.next(approved)).toMatchObject({ _tag: "Execute", stepId: "turn-1.tool-0", request: { _tag: "tool" } })
    // rejected: no tool step; the model's next turn sees the rejection as the call's result
    const rejected = stateOf(withTools(tools), ...modelTurn(1, calling("echo", { text: "x" })), ...approval(false))
    expect(Plan.next(rejected)).toMatchObject({ _tag: "Execute", stepId: "turn-2" })
    expect(Plan.conversation(rejected).at(-1)).toEqual({
      role: "tool",
      content: "error: call rejected by ops: r",
      toolCallId: "c0"
    })
  })

  it("answers a tool declared with an agent by a child run whose id is derived from the step", () => {
    const s = stateOf(
      withTools([declared("research", { agent: "researcher" })]),
      ...modelTurn(1, calling("research", { q: 1 }))
    )
    const action = Plan.next(s)
    expect(action).toMatchObject({
      _tag: "Execute",
      request: { _tag: "agent", agentName: "researcher", childRunId: Plan.childRunId("run_01", "turn-1.tool-0") }
    })
    expect(Plan.childRunId("run_01", "turn-1.tool-0")).toMatch(/^run_[0-9a-z]{26}$/)
    expect(Plan.childRunId("run_01", "turn-1.tool-0")).not.toBe(Plan.childRunId("run_01", "turn-1.tool-1"))
  })

  it("retries a failed step not before its journaled retryAt, and only while the policy allows", () => {
    const failedAt = (attempt: number, retryAt?: number): RunEvent => ({
      ...(failed("turn-1", attempt, retryAt !== undefined) as Extract<RunEvent, { _tag: "StepFailed" }>),
      ...(retryAt === undefined ? {} : { retryAt })
    })
    const policy = { retry: { maxAttempts: 2 } }
    const once = stateOf(withTools([], policy), started("turn-1", modelRequest(1)), failedAt(1, 5_000))
    expect(Plan.next(once)).toEqual({ _tag: "Execute", stepId: "turn-1", request: modelRequest(1), notBefore: 5_000 })
    const twice = stateOf(
      withTools([], policy),
      started("turn-1", modelRequest(1)),
      failedAt(1, 5_000),
      started("turn-1", modelRequest(1), 2),
      failedAt(2, 9_000)
    )
    expect(Plan.next(twice)._tag).toBe("Fail")
  })

  it("decides retries by error code and attempt under the spec's policy", () => {
    const s = stateOf(withTools([], { retry: { maxAttempts: 3, retryOn: ["timeout"] } }))
    expect(Plan.shouldRetry(s, "timeout", 1)).toBe(true)
    expect(Plan.shouldRetry(s, "timeout", 3)).toBe(false)
    expect(Plan.shouldRetry(s, "rate_limited", 1)).toBe(false)
    const defaults = stateOf(runStarted())
    expect(["rate_limited", "provider_unavailable", "timeout"].map((c) => Plan.shouldRetry(defaults, c, 1))).toEqual([
      true,
      true,
      true
    ])
    expect(Plan.shouldRetry(defaults, "provider_error", 1)).toBe(false)
  })

  it("backs off exponentially up to the cap, with jitter within its band", () => {
    const policy = { ...DEFAULT_POLICY, initialBackoffMs: 100, multiplier: 2, maxBackoffMs: 1_000, jitter: 0.5 }
    expect([1, 2, 3, 4, 5].map((n) => Plan.backoffMs({ ...policy, jitter: 0 }, n, 0.9))).toEqual([
      100,
      200,
      400,
      800,
      1_000
    ])
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0, max: 0.999_999, noNaN: true }), (attempt, r) => {
        const base = Math.min(1_000, 100 * 2 ** (attempt - 1))
        const d = Plan.backoffMs(policy, attempt, r)
        expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.5))
        expect(d).toBeLessThanOrEqual(Math.ceil(base * 1.5))
      })
    )
  })
})
