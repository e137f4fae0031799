// Loop agents' runs (ADR 0055), from their journals alone: a loop run journals LoopCompleted before it succeeds, and a
// re-drive of a run whose journal holds LoopCompleted (its host died before the run's end was journaled) succeeds
// with the recorded output, deciding no model or tool step, whatever else the journal holds.
import { describe, expect, it } from "vitest"
import type { ResolvedSpec } from "../../schema/AgentSpec.ts"
import type { RunEvent } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import { given } from "../kernel/given.ts"
import * as Run from "../run/Decider.ts"
import * as Decisions from "../run/Decisions.ts"

const spec = (loop: boolean): ResolvedSpec => ({
  systemPrompt: "Check the feeds.",
  model: "auto",
  maxTurns: 3,
  tools: [{ name: "echo", description: "echo", parameters: { type: "object" } }],
  ...(loop ? { loop: { tier: "micro" as const } } : {})
})

const started = (loop: boolean): RunEvent => ({
  _tag: "RunStarted",
  runId: "run_01",
  agentName: "watcher",
  agentVersion: 1,
  agentDigest: "sha256:agent",
  spec: spec(loop),
  input: "tick",
  requestDigest: "sha256:request"
})

const answer = (content: string, toolCalls: ReadonlyArray<{ id: string; name: string; arguments: unknown }> = []) => ({
  _tag: "model" as const,
  answer: { content, toolCalls, finishReason: "stop", provider: "offline", model: "offline-echo-1" }
})

const turn = (n: number, content: string, calls: Parameters<typeof answer>[1] = []): Array<RunEvent> => [
  { _tag: "StepStarted", stepId: `turn-${n}`, attempt: 1, request: { _tag: "model", model: "auto", turn: n } },
  {
    _tag: "StepCompleted",
    stepId: `turn-${n}`,
    attempt: 1,
    result: answer(content, calls),
    tokensIn: 1,
    tokensOut: 1,
    costUsd: 0,
    durationMs: 1
  }
]

const NOW = 1_800_000_000_000

describe("a loop agent's run", () => {
  it("journals LoopCompleted with its answer, then succeeds with it", () => {
    const journal = [started(true), ...turn(1, "all quiet")]
    const decision = Decisions.decide(fold(Run.decider, journal), NOW)
    expect(decision).toEqual({ _tag: "CompleteLoop", command: { _tag: "CompleteLoop", output: "all quiet" } })
    given(Run.decider, journal).when({ _tag: "CompleteLoop", output: "all quiet" }).then([
      { _tag: "LoopCompleted", output: "all quiet" }
    ])
    const after = [...journal, { _tag: "LoopCompleted", output: "all quiet" } as RunEvent]
    expect(Decisions.decide(fold(Run.decider, after), NOW)).toEqual({
      _tag: "Succeed",
      command: { _tag: "SucceedRun", output: "all quiet" }
    })
    // a second CompleteLoop (a re-sent append) journals nothing
    given(Run.decider, after).when({ _tag: "CompleteLoop", output: "all quiet" }).then([])
  })

  it("a run of an agent without a loop succeeds as before, with no LoopCompleted", () => {
    const journal = [started(false), ...turn(1, "done")]
    expect(Decisions.decide(fold(Run.decider, journal), NOW)._tag).toBe("Succeed")
  })

  it("re-driven after LoopCompleted, it succeeds with the recorded output and starts no step", () => {
    // the iteration called a tool, answered, and LoopCompleted was journaled; then its host died
    const journal: Array<RunEvent> = [
      started(true),
      ...turn(1, "calling", [{ id: "c1", name: "echo", arguments: { text: "x" } }]),
      {
        _tag: "StepCompleted",
        stepId: "turn-1.tool-0",
        attempt: 1,
        request: { _tag: "tool", call: { id: "c1", name: "echo", arguments: { text: "x" } } },
        result: { _tag: "tool", callId: "c1", output: "x" },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        durationMs: 1
      },
      ...turn(2, "posted the digest"),
      { _tag: "LoopCompleted", output: "posted the digest" }
    ]
    const state = fold(Run.decider, journal)
    const steps = state.steps.length
    const decision = Decisions.decide(state, NOW)
    expect(decision).toEqual({ _tag: "Succeed", command: { _tag: "SucceedRun", output: "posted the digest" } })
    const ended = fold(Run.decider, [...journal, { _tag: "RunSucceeded", output: "posted the digest" } as RunEvent])
    expect(ended.steps.length).toBe(steps)
    expect(Decisions.decide(ended, NOW)).toEqual({ _tag: "Finish" })
  })

  it("LoopCompleted decides the end even where the steps alone would run another turn", () => {
    // without the marker this journal's next action is the model's second turn (the tool answered, no final answer)
    const journal: Array<RunEvent> = [
      started(true),
      ...turn(1, "calling", [{ id: "c1", name: "echo", arguments: {} }]),
      {
        _tag: "StepCompleted",
        stepId: "turn-1.tool-0",
        attempt: 1,
        request: { _tag: "tool", call: { id: "c1", name: "echo", arguments: {} } },
        result: { _tag: "tool", callId: "c1", output: "" },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        durationMs: 1
      }
    ]
    const before = Decisions.decide(fold(Run.decider, journal), NOW)
    expect(before._tag).toBe("Start")
    const marked = Decisions.decide(
      fold(Run.decider, [...journal, { _tag: "LoopCompleted", output: "enough" } as RunEvent]),
      NOW
    )
    expect(marked).toEqual({ _tag: "Succeed", command: { _tag: "SucceedRun", output: "enough" } })
  })
})
