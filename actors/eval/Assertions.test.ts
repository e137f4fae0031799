// Scoring a case from its run's facts, and the eval decider's upserts, baselines and once-only records.
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { Stored } from "../../schema/Envelope.ts"
import type { Case } from "../../schema/Eval.ts"
import { fold } from "../kernel/Decider.ts"
import * as Assertions from "./Assertions.ts"
import * as Decider from "./Decider.ts"

const facts = (over: Partial<Assertions.RunFacts> = {}): Assertions.RunFacts => ({
  runId: "run_1",
  status: "succeeded",
  output: "hello world",
  error: null,
  costUsd: 0.01,
  latencyMs: 120,
  steps: 2,
  toolCalls: [],
  ...over
})
const kase = (assert: Case["assert"], weight?: number): Case => ({
  name: "c",
  input: "x",
  assert,
  ...(weight === undefined ? {} : { weight })
})

describe("score", () => {
  it("checks each kind of assertion against the run", () => {
    const passing: Case["assert"] = [
      { equals: " hello world " },
      { contains: "hello" },
      { notContains: "bye" },
      { regex: "^hel+o" },
      { costUnder: { usd: 0.02 } },
      { latencyUnder: { ms: 200 } },
      { stepsUnder: { n: 3 } },
      { grounded: true }
    ]
    expect(Assertions.score(kase(passing), facts(), [])).toMatchObject({ passed: true, score: 1, failures: [] })
    const failing: Case["assert"] = [
      { equals: "hi" },
      { contains: "bye" },
      { notContains: "hello" },
      { regex: "^x" },
      { costUnder: { usd: 0.01 } },
      { latencyUnder: { ms: 100 } },
      { stepsUnder: { n: 2 } }
    ]
    const r = Assertions.score(kase(failing), facts(), [])
    expect(r).toMatchObject({ passed: false, score: 0 })
    expect(r.failures).toHaveLength(7)
  })

  it("reads JSON output against a schema and tool calls from the journal", () => {
    const schema = { type: "object", required: ["n"], properties: { n: { type: "integer" } } }
    expect(Assertions.score(kase([{ jsonSchema: schema }]), facts({ output: `{"n": 3}` }), []).passed).toBe(true)
    expect(Assertions.score(kase([{ jsonSchema: schema }]), facts({ output: { n: "3" } }), []).passed).toBe(false)
    expect(Assertions.score(kase([{ jsonSchema: schema }]), facts({ output: "not json" }), []).failures).toEqual([
      "jsonSchema: the output is not JSON"
    ])
    const stored = [
      {
        event: {
          _tag: "StepStarted",
          stepId: "t1",
          request: { _tag: "tool", call: { name: "send_email", arguments: { to: "bob" } } }
        }
      },
      { event: { _tag: "StepCompleted", stepId: "t1" } },
      {
        event: { _tag: "StepStarted", stepId: "t2", request: { _tag: "tool", call: { name: "lookup", arguments: {} } } }
      }
    ] as unknown as ReadonlyArray<Stored>
    const calls = Assertions.toolCallsOf(stored)
    expect(calls).toEqual([{ name: "send_email", arguments: { to: "bob" } }])
    const called = (a: Case["assert"][number]) => Assertions.score(kase([a]), facts({ toolCalls: calls }), []).passed
    expect(called({ toolCalled: { name: "send_email" } })).toBe(true)
    expect(called({ toolCalled: { name: "send_email", argsContains: "bob" } })).toBe(true)
    expect(called({ toolCalled: { name: "send_email", argsContains: "alice" } })).toBe(false)
    // started but never completed: not performed
    expect(called({ toolCalled: { name: "lookup" } })).toBe(false)
  })

  it("reads the tool calls of local steps journaled together (one StepsCompleted, ADR 0067)", () => {
    const local = (stepId: string, name: string) => ({
      stepId,
      attempt: 1,
      result: { _tag: "tool", callId: stepId, output: "1" },
      request: { _tag: "tool", call: { id: stepId, name, arguments: { x: stepId } } }
    })
    const stored = [
      { event: { _tag: "StepsCompleted", steps: [local("t1", "calculator"), local("t2", "word_count")] } }
    ] as unknown as ReadonlyArray<Stored>
    expect(Assertions.toolCallsOf(stored)).toEqual([
      { name: "calculator", arguments: { x: "t1" } },
      { name: "word_count", arguments: { x: "t2" } }
    ])
  })

  it("grounded fails a claimed action no fitting tool step performed", () => {
    expect(Assertions.ungroundedClaims("I sent the email to Bob.", [])).toEqual(["sent"])
    expect(Assertions.ungroundedClaims("Your table has been booked.", [])).toEqual(["booked"])
    expect(Assertions.ungroundedClaims("I sent the email.", [{ name: "send_email", arguments: {} }])).toEqual([])
    expect(Assertions.ungroundedClaims("I sent the email.", [{ name: "calculator", arguments: {} }])).toEqual(["sent"])
    expect(Assertions.ungroundedClaims("The email is ready for you to send.", [])).toEqual([])
  })

  it("a judge's score is its verdict's; no verdict makes the case errored, not passed", () => {
    const judged = kase([{ contains: "hello" }, { judge: { rubric: "r", model: "auto", passScore: 0.5 } }])
    const good = Assertions.score(judged, facts(), [{ _tag: "Verdict", score: 0.8, reasoning: "ok", costUsd: 0.002 }])
    expect(good).toMatchObject({ passed: true, errored: false, score: 0.9 })
    expect(good.costUsd).toBeCloseTo(0.012, 9)
    const low = Assertions.score(judged, facts(), [{ _tag: "Verdict", score: 0.3, reasoning: "meh", costUsd: 0 }])
    expect(low).toMatchObject({ passed: false, errored: false })
    const none = Assertions.score(judged, facts(), [{ _tag: "NoVerdict", reason: "provider failed", costUsd: 0 }])
    expect(none).toMatchObject({ passed: false, errored: true, score: 0 })
  })

  it("a run that did not succeed scores 0; one that never started is errored", () => {
    expect(Assertions.score(kase([]), facts({ status: "failed", error: "boom" }), [])).toMatchObject({
      passed: false,
      errored: false,
      score: 0,
      failures: ["run failed: boom"]
    })
    expect(Assertions.score(kase([]), facts({ status: "not started" }), []).errored).toBe(true)
    expect(Assertions.score(kase([]), facts(), [])).toMatchObject({ passed: true, score: 1 })
  })

  it("parses verdicts, weights scores and applies the tolerance", () => {
    expect(Assertions.parseVerdict(`Sure: {"score": 0.7, "reasoning": "fine"}`)).toEqual({
      score: 0.7,
      reasoning: "fine"
    })
    expect(Assertions.parseVerdict(`{"score": 7}`)).toBeNull()
    expect(Assertions.parseVerdict("no")).toBeNull()
    expect(Assertions.suiteScore([{ score: 1, weight: 3 }, { score: 0, weight: 1 }])).toBe(0.75)
    expect(Assertions.regressed(0.8, 0.81, 0.01)).toBe(false)
    expect(Assertions.regressed(0.79, 0.81, 0.01)).toBe(true)
    expect(Assertions.regressed(0.1, null, 0.01)).toBe(false)
  })
})

describe("decider", () => {
  const save = (digest: string) => ({
    _tag: "SaveSuite" as const,
    suiteId: "evs_1",
    agentName: "a",
    name: "s",
    description: "",
    tolerance: 0.01,
    cases: [],
    digest
  })
  const run = (book: Decider.Book, c: Decider.BookCommand) => {
    const r = Decider.decideBook(c, book)
    if (Result.isFailure(r)) throw r.failure
    return fold(Decider.book, r.success, book)
  }

  it("upserts suites by version, deletes them, and falls back to main's baseline", () => {
    let book = run(Decider.book.initialState, save("d1"))
    expect(Decider.decideBook(save("d1"), book)).toEqual(Result.succeed([]))
    book = run(book, save("d2"))
    expect(book.suites["evs_1"]?.version).toBe(2)
    book = run(book, { _tag: "SetBaseline", suiteId: "evs_1", branch: "main", evalRunId: "evr_m", score: 0.9 })
    expect(Decider.baselineFor(book, "evs_1", "feature")?.evalRunId).toBe("evr_m")
    book = run(book, { _tag: "SetBaseline", suiteId: "evs_1", branch: "feature", evalRunId: "evr_f", score: 0.5 })
    expect(Decider.baselineFor(book, "evs_1", "feature")?.evalRunId).toBe("evr_f")
    book = run(book, { _tag: "DeleteSuite", suiteId: "evs_1" })
    expect(Result.isFailure(Decider.decideBook({ _tag: "DeleteSuite", suiteId: "evs_1" }, book))).toBe(true)
    // saved again after a delete: the next version, live again
    book = run(book, save("d2"))
    expect(book.suites["evs_1"]).toMatchObject({ version: 3, deleted: false })
  })

  it("records each case of an eval run once, and finishes once", () => {
    const result = {
      name: "c",
      passed: true,
      errored: false,
      score: 1,
      weight: 1,
      runId: null,
      actual: null,
      failures: [],
      costUsd: 0,
      verdicts: []
    }
    expect(Decider.decideRun({ _tag: "RecordCase", index: 0, result }, Decider.run.initialState)).toEqual(
      Result.succeed([])
    )
    const started = fold(Decider.run, [{
      _tag: "EvalRunStarted",
      evalRunId: "evr_1",
      suiteId: "evs_1",
      suiteVersion: 1,
      agentName: "a",
      agentVersion: 1,
      branch: null,
      commitSha: null,
      concurrency: 1,
      tolerance: 0.01,
      cases: [],
      baseline: null
    }])
    const once = Decider.decideRun({ _tag: "RecordCase", index: 0, result }, started)
    expect(Result.isSuccess(once) && once.success.length).toBe(1)
    const recorded = fold(Decider.run, Result.isSuccess(once) ? once.success : [], started)
    expect(Decider.decideRun({ _tag: "RecordCase", index: 0, result }, recorded)).toEqual(Result.succeed([]))
  })
})
