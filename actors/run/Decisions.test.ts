import { Result } from "effect"
// Every decision the run core takes, as given(journal).at(now).then(decision): no bus, no clock, no driver.
// The driver (actors/run/Interpret.ts) only carries these out.
import { describe, expect, it } from "vitest"
import { DEFAULT_POLICY, type ResolvedSpec } from "../../schema/AgentSpec.ts"
import { ProviderError } from "../../schema/Errors.ts"
import type { BudgetRefusal, ModelAnswer, RunEvent, StepRequest, StepResult, ToolCall } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import * as Run from "./Decider.ts"
import * as Decisions from "./Decisions.ts"
import * as Plan from "./Plan.ts"

const T = Date.UTC(2026, 11, 2, 12)
const declared = (name: string, more: Record<string, unknown> = {}) => ({
  name,
  description: name,
  parameters: {},
  ...more
})
const spec = (tools: ResolvedSpec["tools"] = [], extra: Partial<ResolvedSpec> = {}): ResolvedSpec => ({
  systemPrompt: "terse",
  model: "auto",
  maxTurns: 3,
  tools,
  ...extra
})
const runStarted = (s: ResolvedSpec = spec(), parent?: Run.Parent): RunEvent => ({
  _tag: "RunStarted",
  runId: "run_01",
  agentName: "helper",
  agentVersion: 1,
  agentDigest: "sha256:agent",
  spec: s,
  input: "go",
  requestDigest: "sha256:request",
  ...(parent === undefined ? {} : { parent })
})
const call = (name: string, args: unknown = {}, id = "c0"): ToolCall => ({ id, name, arguments: args })
const answer = (toolCalls: ReadonlyArray<ToolCall>, content: string | null = null): ModelAnswer => ({
  content,
  toolCalls,
  finishReason: toolCalls.length > 0 ? "tool_calls" : "stop",
  provider: "offline",
  model: "offline-echo-1"
})
const started = (stepId: string, request: StepRequest, more: { attempt?: number; wakeAt?: number } = {}): RunEvent => ({
  _tag: "StepStarted",
  stepId,
  attempt: more.attempt ?? 1,
  request,
  ...(more.wakeAt === undefined ? {} : { wakeAt: more.wakeAt })
})
const completed = (stepId: string, result: StepResult, costUsd = 0): RunEvent => ({
  _tag: "StepCompleted",
  stepId,
  attempt: 1,
  result,
  tokensIn: 10,
  tokensOut: 5,
  costUsd,
  durationMs: 1
})
const modelTurn = (turn: number, a: ModelAnswer): ReadonlyArray<RunEvent> => [
  started(Plan.modelStepId(turn), { _tag: "model", model: "auto", turn }),
  completed(Plan.modelStepId(turn), { _tag: "model", answer: a }, 0.01)
]
const stateOf = (events: ReadonlyArray<RunEvent>) => fold(Run.decider, events)
const stepIn = (events: ReadonlyArray<RunEvent>, stepId: string) => Run.stepOf(stateOf(events), stepId)!

/** given(journal).at(now).then(decision): what the run core decides for that journal at that time. */
const given = (...events: ReadonlyArray<RunEvent>) => ({
  at: (now: number) => ({
    then: (expected: Decisions.Decision) => expect(Decisions.decide(stateOf(events), now)).toEqual(expected)
  })
})

const refusal: BudgetRefusal = {
  scope: "tenant",
  cap: "maxToolCallsPerRun",
  limit: 1,
  spent: 1,
  reserved: 0,
  requested: 1,
  reason: "no more"
}

describe("Decisions.decide", () => {
  it("given no run, then it finishes", () => given().at(T).then({ _tag: "Finish" }))

  it("given a run that ended, then it finishes", () =>
    given(runStarted(), ...modelTurn(1, answer([], "done")), { _tag: "RunSucceeded", output: "done" }).at(T).then({
      _tag: "Finish"
    }))

  it("given a new run, then it starts the first model turn, not counted as a tool call", () =>
    given(runStarted()).at(T).then({
      _tag: "Start",
      command: { _tag: "StartStep", stepId: "turn-1", request: { _tag: "model", model: "auto", turn: 1 } },
      toolCallsMade: null
    }))

  it("given a final answer, then it succeeds with its content", () =>
    given(runStarted(), ...modelTurn(1, answer([], "4"))).at(T).then({
      _tag: "Succeed",
      command: { _tag: "SucceedRun", output: "4" }
    }))

  it("given a step failed for good, then the run fails with its error", () =>
    given(runStarted(), started("turn-1", { _tag: "model", model: "auto", turn: 1 }), {
      _tag: "StepFailed",
      stepId: "turn-1",
      attempt: 1,
      error: { code: "provider_error", message: "no" },
      retryable: false
    }).at(T).then({ _tag: "Fail", command: { _tag: "FailRun", error: { code: "provider_error", message: "no" } } }))

  describe("tool calls", () => {
    const events = [
      runStarted(spec([declared("echo")])),
      ...modelTurn(1, answer([call("echo", { text: "a" }), call("echo", { text: "b" }, "c1")]))
    ]

    it("given a model answer calling a tool, then the call starts once the budget admits one more past the calls made", () =>
      given(...events).at(T).then({
        _tag: "Start",
        command: {
          _tag: "StartStep",
          stepId: "turn-1.tool-0",
          request: { _tag: "tool", call: call("echo", { text: "a" }) }
        },
        toolCallsMade: 0
      }))

    it("given one tool call made, then the second counts it", () =>
      given(
        ...events,
        started("turn-1.tool-0", { _tag: "tool", call: call("echo", { text: "a" }) }),
        completed("turn-1.tool-0", { _tag: "tool", callId: "c0", output: "a" })
      )
        .at(T).then(expect.objectContaining({ _tag: "Start", toolCallsMade: 1 }) as never))

    it("given a tool call whose host died, then it restarts without asking the budget again", () =>
      given(...events, started("turn-1.tool-0", { _tag: "tool", call: call("echo", { text: "a" }) })).at(T).then({
        _tag: "Start",
        command: {
          _tag: "StartStep",
          stepId: "turn-1.tool-0",
          request: { _tag: "tool", call: call("echo", { text: "a" }) }
        },
        toolCallsMade: null
      }))

    it("when the budget refuses the call, then the run fails budget_exceeded naming the refusal", () =>
      expect(Decisions.refuseToolCall(refusal)).toEqual({
        _tag: "FailRun",
        error: { code: "budget_exceeded", message: "no more", budget: refusal }
      }))
  })

  describe("durable timers", () => {
    const sleep: StepRequest = { _tag: "sleep", call: call("sleep", { seconds: 90 }), seconds: 90 }
    const asked = [runStarted(spec([declared("sleep")])), ...modelTurn(1, answer([call("sleep", { seconds: 90 })]))]

    it("given a call to sleep, then its step starts with its wake-up time, counted as a tool call", () =>
      given(...asked).at(T).then({
        _tag: "Start",
        command: { _tag: "StartStep", stepId: "turn-1.tool-0", request: sleep, wakeAt: T + 90_000 },
        toolCallsMade: 0
      }))

    it("given a sleep due in more than PARK_AFTER_MS, then the run parks until then", () =>
      given(...asked, started("turn-1.tool-0", sleep, { wakeAt: T + 90_000 })).at(T).then({
        _tag: "Park",
        until: T + 90_000
      }))

    it("given a sleep due within PARK_AFTER_MS, then the driver sleeps through it holding the lease", () =>
      given(...asked, started("turn-1.tool-0", sleep, { wakeAt: T + 90_000 })).at(T + 90_000 - Decisions.PARK_AFTER_MS)
        .then({
          _tag: "Sleep",
          until: T + 90_000
        }))

    it("given a sleep that is due, then it completes, free, with how long it slept", () => {
      const events = [...asked, started("turn-1.tool-0", sleep, { wakeAt: T + 90_000 })]
      given(...events).at(T + 90_000).then({
        _tag: "CompleteSleep",
        command: {
          _tag: "CompleteStep",
          stepId: "turn-1.tool-0",
          attempt: 1,
          result: { _tag: "tool", callId: "c0", output: "slept 90 seconds" },
          tokensIn: 0,
          tokensOut: 0,
          costUsd: 0,
          durationMs: 90_000
        }
      })
    })
  })

  describe("approvals", () => {
    const approval: StepRequest = { _tag: "approval", call: call("echo", { text: "x" }) }
    const asked = [
      runStarted(spec([declared("echo", { approval: { expiresInSeconds: 600 } })])),
      ...modelTurn(1, answer([call("echo", { text: "x" })]))
    ]

    it("given a tool that needs approval, then the approval step starts with its expiry, not counted as a tool call", () =>
      given(...asked).at(T).then({
        _tag: "Start",
        command: { _tag: "StartStep", stepId: "turn-1.tool-0.approval", request: approval, wakeAt: T + 600_000 },
        toolCallsMade: null
      }))

    it("given an approval not yet expired, then the run parks until its expiry", () =>
      given(...asked, started("turn-1.tool-0.approval", approval, { wakeAt: T + 600_000 })).at(T + 1).then({
        _tag: "Park",
        until: T + 600_000
      }))

    it("given an approval past its expiry, then its step fails approval_expired, not retryable", () =>
      given(...asked, started("turn-1.tool-0.approval", approval, { wakeAt: T + 600_000 })).at(T + 600_000).then({
        _tag: "ExpireApproval",
        command: {
          _tag: "FailStep",
          stepId: "turn-1.tool-0.approval",
          attempt: 1,
          error: { code: "approval_expired", message: "nobody approved step turn-1.tool-0.approval before it expired" },
          retryable: false
        }
      }))
  })

  describe("child runs", () => {
    const tools = [declared("research", { agent: "researcher" })]
    const childId = Plan.childRunId("run_01", "turn-1.tool-0")
    const agent: StepRequest = {
      _tag: "agent",
      call: call("research", { q: 1 }),
      agentName: "researcher",
      childRunId: childId
    }
    const waiting = (depth: number) => [
      runStarted(
        spec(tools),
        depth === 0 ? undefined : { tenant: "acme", runId: "run_parent", stepId: "turn-1.tool-0", depth }
      ),
      ...modelTurn(1, answer([call("research", { q: 1 })])),
      started("turn-1.tool-0", agent)
    ]

    it("given an agent step, then the child run starts one level deeper, its input the call's arguments", () =>
      given(...waiting(0)).at(T).then({
        _tag: "StartChild",
        step: stepIn(waiting(0), "turn-1.tool-0"),
        runId: childId,
        agentName: "researcher",
        input: { q: 1 },
        parent: { runId: "run_01", stepId: "turn-1.tool-0", depth: 1 }
      }))

    it(`given a run already ${Plan.MAX_RUN_DEPTH} deep, then its child is refused and the call answered with why`, () =>
      given(...waiting(Plan.MAX_RUN_DEPTH)).at(T).then({
        _tag: "RefuseChild",
        command: {
          _tag: "CompleteStep",
          stepId: "turn-1.tool-0",
          attempt: 1,
          result: {
            _tag: "tool",
            callId: "c0",
            output: `error: child runs nest at most ${Plan.MAX_RUN_DEPTH} deep; researcher was not started`
          },
          tokensIn: 0,
          tokensOut: 0,
          costUsd: 0,
          durationMs: 0
        }
      }))

    const step = stepIn(waiting(0), "turn-1.tool-0")
    const child = (events: ReadonlyArray<RunEvent>) => ({ _tag: "Started" as const, child: stateOf(events) })
    const childStart = { ...(runStarted() as Extract<RunEvent, { _tag: "RunStarted" }>), runId: childId }

    it("when the child is still running, then the parent parks and polls it every CHILD_POLL_MS", () =>
      expect(Decisions.afterChild(step, child([childStart]), T)).toEqual({
        _tag: "Park",
        until: T + Decisions.CHILD_POLL_MS
      }))

    it("when the child succeeded, then the step completes with its output and what it cost", () =>
      expect(
        Decisions.afterChild(
          step,
          child([childStart, ...modelTurn(1, answer([], "found")), { _tag: "RunSucceeded", output: { a: 1 } }]),
          T
        )
      )
        .toEqual({
          _tag: "CompleteStep",
          stepId: "turn-1.tool-0",
          attempt: 1,
          result: { _tag: "tool", callId: "c0", output: "{\"a\":1}" },
          tokensIn: 10,
          tokensOut: 5,
          costUsd: 0.01,
          durationMs: 0
        }))

    it("when the child failed, then the step completes with an error output the model reads", () =>
      expect(
        Decisions.afterChild(
          step,
          child([childStart, { _tag: "RunFailed", error: { code: "x", message: "broke" } }]),
          T
        )
      ).toMatchObject({
        _tag: "CompleteStep",
        result: { _tag: "tool", output: `error: child run ${childId} failed: broke` }
      }))

    it("when the child's agent does not exist, then the step completes with why", () =>
      expect(Decisions.afterChild(step, { _tag: "NotFound", message: "agent researcher not found" }, T)).toMatchObject({
        _tag: "CompleteStep",
        result: { _tag: "tool", output: "error: agent researcher not found" }
      }))

    it("when the child's input cannot be journaled, then the step fails payload_too_large, not retryable", () =>
      expect(Decisions.afterChild(step, { _tag: "TooLarge", message: "2 MB over 1 MB" }, T)).toEqual({
        _tag: "FailStep",
        stepId: "turn-1.tool-0",
        attempt: 1,
        error: {
          code: "payload_too_large",
          message: `the input of child run ${childId} is too large to journal: 2 MB over 1 MB`
        },
        retryable: false
      }))
  })

  describe("retries", () => {
    const failedAt = (retryAt: number): ReadonlyArray<RunEvent> => [
      runStarted(),
      started("turn-1", { _tag: "model", model: "auto", turn: 1 }),
      {
        _tag: "StepFailed",
        stepId: "turn-1",
        attempt: 1,
        error: { code: "timeout", message: "slow" },
        retryable: true,
        retryAt
      }
    ]

    it("given a retry due later than PARK_AFTER_MS, then the run parks until it", () =>
      given(...failedAt(T + 10_000)).at(T).then({ _tag: "Park", until: T + 10_000 }))

    it("given a retry due soon, then the driver sleeps until it", () =>
      given(...failedAt(T + 500)).at(T).then({ _tag: "Sleep", until: T + 500 }))

    it("given a retry that is due, then the step starts again", () =>
      given(...failedAt(T)).at(T).then({
        _tag: "Start",
        command: { _tag: "StartStep", stepId: "turn-1", request: { _tag: "model", model: "auto", turn: 1 } },
        toolCallsMade: null
      }))
  })
})

describe("Decisions.afterStart", () => {
  const model = [
    runStarted(spec([], { stepTimeoutMs: 4_000 })),
    started("turn-1", { _tag: "model", model: "auto", turn: 1 })
  ]

  it("given a model step in flight, then it calls the model under the step's timeout and reserves past it and the lease's ttl", () =>
    expect(Decisions.afterStart(stateOf(model), "turn-1", T, 15_000)).toEqual({
      _tag: "CallModel",
      step: stepIn(model, "turn-1"),
      request: { _tag: "model", model: "auto", turn: 1 },
      key: "run_01:turn-1:1",
      timeoutMs: 4_000,
      reserveUntil: T + 4_000 + 15_000,
      usage: { costUsd: 0, tokens: 0, toolCalls: 0 }
    }))

  it("given a tool step in flight, then it calls the tool", () => {
    const events = [
      runStarted(spec([declared("echo")])),
      ...modelTurn(1, answer([call("echo")])),
      started("turn-1.tool-0", { _tag: "tool", call: call("echo") })
    ]
    expect(Decisions.afterStart(stateOf(events), "turn-1.tool-0", T, 15_000)).toEqual({
      _tag: "CallTool",
      step: stepIn(events, "turn-1.tool-0"),
      call: call("echo"),
      key: "run_01:turn-1.tool-0:1"
    })
  })

  it("given a waiting step, then there is nothing to call", () => {
    const sleep: StepRequest = { _tag: "sleep", call: call("sleep"), seconds: 1 }
    const events = [
      runStarted(spec([declared("sleep")])),
      ...modelTurn(1, answer([call("sleep")])),
      started("turn-1.tool-0", sleep)
    ]
    expect(Decisions.afterStart(stateOf(events), "turn-1.tool-0", T, 15_000)).toMatchObject({ _tag: "Wait" })
  })

  it("given the start was not journaled (the run ended under us), then nothing", () =>
    expect(Decisions.afterStart(stateOf([runStarted()]), "turn-1", T, 15_000)).toBeNull())

  it("when the budget refuses the model call, then its step fails budget_exceeded for good", () =>
    expect(Decisions.refuseCall(stepIn(model, "turn-1"), refusal)).toEqual({
      _tag: "FailStep",
      stepId: "turn-1",
      attempt: 1,
      error: { code: "budget_exceeded", message: "no more", budget: refusal },
      retryable: false
    }))
})

describe("Decisions.local (a built-in tool step: performed first, journaled once)", () => {
  const base = [runStarted(spec([declared("echo"), declared("sleep")])), ...modelTurn(1, answer([call("echo")]))]
  const start = (request: StepRequest) => ({ _tag: "StartStep" as const, stepId: "turn-1.tool-0", request })

  it("given a built-in tool call not yet started, then its call, on the step the start would make", () => {
    const echo = start({ _tag: "tool", call: call("echo") })
    const speculative = [...base, started("turn-1.tool-0", echo.request)]
    expect(Decisions.local(stateOf(base), echo, T, 15_000)).toEqual({
      _tag: "CallTool",
      step: stepIn(speculative, "turn-1.tool-0"),
      call: call("echo"),
      key: "run_01:turn-1.tool-0:1"
    })
  })

  it("given a step of another kind (a timer, a model call), then null: it starts as usual", () => {
    expect(Decisions.local(stateOf(base), start({ _tag: "sleep", call: call("sleep"), seconds: 1 }), T, 15_000))
      .toBeNull()
    expect(Decisions.local(stateOf(base), start({ _tag: "model", model: "auto", turn: 2 }), T, 15_000)).toBeNull()
  })

  it("given a tool no built-in answers, then null", () =>
    expect(Decisions.local(stateOf(base), start({ _tag: "tool", call: call("no_such_tool") }), T, 15_000))
      .toBeNull())

  it("given the step was started before (journaled by an older host), then null: it goes on as it began", () => {
    const echo = start({ _tag: "tool", call: call("echo") })
    expect(Decisions.local(stateOf([...base, started("turn-1.tool-0", echo.request)]), echo, T, 15_000)).toBeNull()
  })

  it("then its one event is its completion carrying its request", () => {
    const echo = start({ _tag: "tool", call: call("echo") })
    const step = Decisions.local(stateOf(base), echo, T, 15_000)!.step
    expect(Decisions.completeLocal(step, Decisions.toolOutput(call("echo"), "hi"), 0)).toMatchObject({
      _tag: "CompleteStep",
      stepId: "turn-1.tool-0",
      attempt: 1,
      request: echo.request
    })
  })
})

describe("local steps ready together: performed and journaled as one event (ADR 0067)", () => {
  const calls = [call("echo", { text: "a" }, "c0"), call("echo", { text: "b" }, "c1"), call("sleep", {}, "c2")]
  const events = [runStarted(spec([declared("echo"), declared("sleep")])), ...modelTurn(1, answer(calls))]
  /** What the interpreter does: perform each local step the next decision starts, on the state the ones before leave. */
  const gather = (state: Run.State) => {
    const done: Array<Decisions.LocalCompletion> = []
    for (;;) {
      const ahead = Decisions.afterLocal(state, done)
      const next = Decisions.decide(ahead, T)
      if (next._tag !== "Start") return done
      const local = Decisions.local(ahead, next.command, T, 15_000)
      if (local === null) return done
      done.push(Decisions.completeLocal(local.step, Decisions.toolOutput(local.call, "out"), 0))
    }
  }

  it("gathers the built-in calls of the turn up to the first step that is not local, then journals them once", () => {
    const done = gather(stateOf(events))
    expect(done.map((c) => c.stepId)).toEqual(["turn-1.tool-0", "turn-1.tool-1"])
    const command = Decisions.completeLocals(done)
    expect(command).toMatchObject({
      _tag: "CompleteSteps",
      steps: [{ stepId: "turn-1.tool-0" }, { stepId: "turn-1.tool-1" }]
    })
    expect(Decisions.keyOf("run_01", command)).toBe("run_01:turn-1.tool-0..turn-1.tool-1:completed")
    const journaled = Run.decider.decide(command, stateOf(events))
    expect(Result.isSuccess(journaled) && journaled.success.map((e) => e._tag)).toEqual(["StepsCompleted"])
    // the state the batch folds to is the one the interpreter decided the batch on; the timer starts next
    const after = fold(Run.decider, Result.getOrThrow(journaled), stateOf(events))
    expect(after).toEqual(Decisions.afterLocal(stateOf(events), done))
    expect(Decisions.decide(after, T)).toMatchObject({ _tag: "Start", command: { stepId: "turn-1.tool-2" } })
  })

  it("a single local step stays one StepCompleted carrying its request (ADR 0032)", () => {
    const single = [runStarted(spec([declared("echo")])), ...modelTurn(1, answer([call("echo")]))]
    const done = gather(stateOf(single))
    expect(Decisions.completeLocals(done)).toEqual(done[0])
  })
})

describe("Decisions.afterCall", () => {
  const model = [runStarted(), started("turn-1", { _tag: "model", model: "auto", turn: 1 })]
  const step = stepIn(model, "turn-1")

  it("when the call answered, then the step completes with its result, usage and duration", () =>
    expect(Decisions.afterCall(
      stateOf(model),
      step,
      {
        _tag: "Performed",
        performed: {
          result: { _tag: "model", answer: answer([], "hi") },
          tokensIn: 3,
          tokensOut: 2,
          costUsd: 0.5,
          cachedTokensIn: 1
        }
      },
      T,
      T + 250,
      0.5
    )).toEqual({
      _tag: "CompleteStep",
      stepId: "turn-1",
      attempt: 1,
      result: { _tag: "model", answer: answer([], "hi") },
      tokensIn: 3,
      tokensOut: 2,
      costUsd: 0.5,
      durationMs: 250,
      cachedTokensIn: 1
    }))

  it("when it failed with a code the policy retries, then the step fails retryably after the backoff", () =>
    expect(
      Decisions.afterCall(
        stateOf(model),
        step,
        { _tag: "Failed", failure: { error: { code: "timeout", message: "slow" } } },
        T,
        T + 100,
        0.5
      )
    )
      .toEqual({
        _tag: "FailStep",
        stepId: "turn-1",
        attempt: 1,
        error: { code: "timeout", message: "slow" },
        retryable: true,
        retryAt: T + 100 + Plan.backoffMs(DEFAULT_POLICY, 1, 0.5)
      }))

  it("when the provider asked for a wait longer than the backoff (Retry-After), then the retry is not due before it", () => {
    const failure = { error: { code: "rate_limited", message: "slow down" }, retryAfterMs: 2_000 }
    expect(Decisions.afterCall(stateOf(model), step, { _tag: "Failed", failure }, T, T + 100, 0.5))
      .toMatchObject({ _tag: "FailStep", retryable: true, retryAt: T + 100 + 2_000 })
    // a wait shorter than the backoff leaves the backoff as it is
    expect(
      Decisions.afterCall(
        stateOf(model),
        step,
        { _tag: "Failed", failure: { ...failure, retryAfterMs: 1 } },
        T,
        T + 100,
        0.5
      )
    )
      .toMatchObject({ retryAt: T + 100 + Plan.backoffMs(DEFAULT_POLICY, 1, 0.5) })
  })

  it("a provider error is filed under the step code its kind names; a provider timeout stays provider_unavailable", () =>
    expect(
      (["rate_limited", "timeout", "unavailable", "refused"] as const).map((kind) =>
        Decisions.codeOf(new ProviderError({ provider: "p", kind, reason: "x", retryable: kind !== "refused" }))
      )
    ).toEqual(["rate_limited", "provider_unavailable", "provider_unavailable", "provider_error"]))

  it("when it failed with a code the policy does not retry, then the step fails for good", () =>
    expect(
      Decisions.afterCall(
        stateOf(model),
        step,
        { _tag: "Failed", failure: { error: { code: "provider_error", message: "no" } } },
        T,
        T + 100,
        0.5
      )
    )
      .toEqual({
        _tag: "FailStep",
        stepId: "turn-1",
        attempt: 1,
        error: { code: "provider_error", message: "no" },
        retryable: false
      }))
})

describe("events too large for the bus", () => {
  it("a step's completion becomes its small failure, payload_too_large and not retryable", () =>
    expect(Decisions.whenTooLarge({
      _tag: "CompleteStep",
      stepId: "turn-1",
      attempt: 2,
      result: { _tag: "tool", callId: "c", output: "x" },
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0,
      durationMs: 1
    }, "1.2 MB over 1 MB")).toEqual({
      _tag: "FailStep",
      stepId: "turn-1",
      attempt: 2,
      error: {
        code: "payload_too_large",
        message: "the result of step turn-1 is too large to journal: 1.2 MB over 1 MB"
      },
      retryable: false
    }))

  it("anything else fails the run", () =>
    expect(Decisions.whenTooLarge({ _tag: "SucceedRun", output: "x" }, "big")).toEqual({
      _tag: "FailRun",
      error: { code: "payload_too_large", message: "the run's output is too large to journal: big" }
    }))
})

describe("Decisions.keyOf", () => {
  it("keys each command so that a retried append of the same decision is dropped", () => {
    expect(Decisions.keyOf("run_01", { _tag: "SucceedRun", output: 1 })).toBe("run_01:succeeded")
    expect(Decisions.keyOf("run_01", { _tag: "FailRun", error: { code: "x", message: "y" } })).toBe("run_01:failed")
    expect(
      Decisions.keyOf("run_01", {
        _tag: "FailStep",
        stepId: "s",
        attempt: 2,
        error: { code: "x", message: "y" },
        retryable: false
      })
    ).toBe("run_01:s:2:failed")
    const start = Decisions.keyOf("run_01", {
      _tag: "StartStep",
      stepId: "s",
      request: { _tag: "model", model: "m", turn: 1 }
    })
    expect(typeof start === "function" ? start(7) : start).toBe("run_01:s:start@7")
  })
})
