import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as GraphSchema from "../../schema/Graph.ts"
import { type Context, StepFailedError } from "./Context.ts"
import * as Graph from "./Graph.ts"

/** A journal in memory and a ctx over it: what is journaled is answered, what is not is performed and journaled. */
const journal = () => {
  const entries = new Map<string, unknown>()
  const order: Array<string> = []
  const performed: Array<string> = []
  const keep = (id: string, value: unknown) => {
    entries.set(id, JSON.parse(JSON.stringify(value ?? null)))
    order.push(id)
    return entries.get(id)
  }
  const ctx = (answer: (prompt: string) => string = (p) => `echo: ${p}`): Context => {
    const counters = new Map<string, number>()
    const next = (kind: string) => {
      const n = (counters.get(kind) ?? 0) + 1
      counters.set(kind, n)
      return `${kind}-${n}`
    }
    const once = async <A>(id: string, make: () => A | Promise<A>): Promise<A> => {
      if (entries.has(id)) return entries.get(id) as A
      performed.push(id)
      return keep(id, await make()) as A
    }
    return {
      runId: "run_test",
      tenant: "t",
      workflow: "graph:test",
      step: (id, fn, options) =>
        once(id, async () => {
          try {
            return await fn({ stepId: id, attempt: 1, key: `run_test:${id}:1` })
          } catch (e) {
            if (options?.retry?.maxAttempts === 1) throw new StepFailedError(id, 1, (e as Error).message)
            throw e
          }
        }),
      llm: (request) =>
        once(next("llm"), () => ({
          content: answer(request.messages.at(-1)!.content),
          toolCalls: [],
          finishReason: "stop",
          provider: "fake",
          model: request.model ?? "auto"
        })),
      approval: () => {
        const id = next("approval")
        return entries.has(id) ? Promise.resolve(entries.get(id) as any) : new Promise(() => undefined)
      },
      waitForEvent: () => Promise.resolve({ received: false, value: null }),
      run: (target, input) =>
        once(
          next("run"),
          () => ({ runId: "child", status: "succeeded" as const, output: { target, input }, error: null })
        ),
      sleep: (ms) => once(next("sleep"), () => ms).then(() => undefined),
      sleepUntil: () => Promise.resolve(),
      now: () => Promise.resolve(0),
      random: () => Promise.resolve(0),
      uuid: () => Promise.resolve("u"),
      log: () => undefined
    }
  }
  return { entries, order, performed, ctx, keep }
}

const compile = (input: unknown) => {
  const checked = GraphSchema.check(Schema.decodeUnknownSync(GraphSchema.Input)(input), ["echo", "word_count"])
  if (checked._tag === "Invalid") throw new Error(JSON.stringify(checked.problems))
  return Graph.compile(checked.graph, "test")
}

const seed = compile({
  nodes: [
    { id: "start", type: "trigger" },
    { id: "classify", type: "ai-step", data: { prompt: "Classify: {{input.text}}" } },
    { id: "urgent", type: "condition", data: { expression: "steps.classify.text contains 'URGENT'" } },
    { id: "escalate", type: "tool", data: { tool: "echo", arguments: { text: "escalated {{input.text}}" } } },
    { id: "done", type: "end", data: { outputExpression: "steps.escalate.output" } },
    { id: "file", type: "end", data: { outputExpression: "steps.classify.text" } }
  ],
  edges: [
    { id: "e1", source: "start", target: "classify" },
    { id: "e2", source: "classify", target: "urgent" },
    { id: "e3", source: "urgent", target: "escalate", label: "true" },
    { id: "e4", source: "urgent", target: "file", label: "false" },
    { id: "e5", source: "escalate", target: "done" }
  ]
})

const loop = (max: number) =>
  compile({
    nodes: [
      { id: "t", type: "trigger" },
      { id: "each", type: "loop", data: { arrayExpression: "input.items", maxIterations: max } },
      { id: "count", type: "tool", data: { tool: "word_count", arguments: { text: "{{loop.index}}: {{loop.item}}" } } },
      { id: "done", type: "end", data: { outputExpression: "steps.each" } }
    ],
    edges: [
      { id: "1", source: "t", target: "each" },
      { id: "2", source: "each", target: "count", label: "body" },
      { id: "3", source: "count", target: "each" },
      { id: "4", source: "each", target: "done" }
    ]
  })

describe("a compiled graph", () => {
  it("runs the seed scenario down the branch its condition takes, a step per node visit", async () => {
    const j = journal()
    const out = await seed.run(j.ctx((p) => `${p} URGENT`), { text: "server down" })
    expect(out).toEqual({
      result: "escalated server down",
      stepsRan: ["start", "classify", "urgent", "escalate", "done"]
    })
    expect(j.order).toEqual([
      "node:start:1",
      "llm-1",
      "node:classify:1",
      "node:urgent:1",
      "node:escalate:1",
      "node:done:1"
    ])
    expect(j.entries.get("node:urgent:1")).toBe("true")
    const other = journal()
    const filed = await seed.run(other.ctx(() => "routine"), { text: "hello" })
    expect(filed).toEqual({ result: "routine", stepsRan: ["start", "classify", "urgent", "file"] })
    expect(other.entries.get("node:urgent:1")).toBe("false")
  })

  it("replays from the journal without performing a completed node again", async () => {
    const j = journal()
    const first = await seed.run(j.ctx((p) => `${p} URGENT`), { text: "x" })
    const performed = j.performed.length
    // a replay whose model would now answer otherwise still takes the journaled branch
    expect(await seed.run(j.ctx(() => "calm"), { text: "x" })).toEqual(first)
    expect(j.performed.length).toBe(performed)
  })

  it("iterates a loop's body once per item with loop.item and loop.index", async () => {
    const j = journal()
    const out = await loop(3).run(j.ctx(), { items: ["a b", "c", "d e f"] })
    expect(out).toEqual({ result: { count: 3 }, stepsRan: ["t", "each", "count", "count", "count", "done"] })
    expect(["node:count:1", "node:count:2", "node:count:3"].map((id) => j.entries.get(id))).toEqual([
      { output: "3" },
      { output: "2" },
      { output: "4" }
    ])
  })

  it("fails the loop's step past maxIterations, and a non-array, naming the loop", async () => {
    await expect(loop(2).run(journal().ctx(), { items: [1, 2, 3] })).rejects.toThrow(
      "step node:each:1 failed after 1 attempt(s): loop 'each': 3 items exceed its maxIterations of 2"
    )
    await expect(loop(2).run(journal().ctx(), { items: "abc" })).rejects.toThrow("is not an array (got string)")
  })

  it("stops a graph that cycles past the visit limit", async () => {
    const cycle = compile({
      nodes: [
        { id: "t", type: "trigger" },
        { id: "again", type: "condition", data: { expression: "true" } },
        { id: "say", type: "tool", data: { tool: "echo", arguments: { text: "hi" } } },
        { id: "done", type: "end" }
      ],
      edges: [
        { id: "1", source: "t", target: "again" },
        { id: "2", source: "again", target: "say", label: "true" },
        { id: "3", source: "again", target: "done", label: "false" },
        { id: "4", source: "say", target: "again" }
      ]
    })
    await expect(cycle.run(journal().ctx(), null)).rejects.toThrow(
      `visited more than ${Graph.MAX_VISITS} nodes in one run`
    )
  })

  it("runs parallel branches and joins them; waits on an approval; passes templated input to a subagent", async () => {
    const graph = compile({
      nodes: [
        { id: "t", type: "trigger" },
        { id: "fan", type: "parallel" },
        { id: "a", type: "ai-step", data: { prompt: "A {{input.x}}" } },
        { id: "b", type: "wait", data: { duration: "5s" } },
        { id: "b2", type: "tool", data: { tool: "echo", arguments: { text: "B" } } },
        { id: "ask", type: "approval", data: { timeoutMinutes: 10 } },
        { id: "child", type: "subagent", data: { agent: "helper", input: { from: "{{steps.a.text}}" } } },
        { id: "done", type: "end", data: { outputExpression: "steps.child.output.input.from" } }
      ],
      edges: [
        { id: "1", source: "t", target: "fan" },
        { id: "2", source: "fan", target: "a" },
        { id: "3", source: "fan", target: "b" },
        { id: "4", source: "b", target: "b2" },
        { id: "5", source: "a", target: "ask" },
        { id: "6", source: "b2", target: "ask" },
        { id: "7", source: "ask", target: "child" },
        { id: "8", source: "child", target: "done" }
      ]
    })
    const j = journal()
    // the approval blocks the run
    const blocked = await Promise.race([
      graph.run(j.ctx(), { x: 1 }),
      new Promise((r) => setTimeout(() => r("blocked"), 50))
    ])
    expect(blocked).toBe("blocked")
    expect(j.order).toEqual([
      "node:t:1",
      "node:fan:1",
      "llm-1",
      "sleep-1",
      "node:a:1",
      "node:b:1",
      "node:b2:1"
    ])
    j.keep("approval-1", { approved: true, by: "ana", reason: "", expired: false })
    const out = await graph.run(j.ctx(), { x: 1 })
    expect(out).toEqual({ result: "echo: A 1", stepsRan: ["t", "fan", "a", "b", "b2", "ask", "child", "done"] })
    expect(j.entries.get("node:ask:1")).toMatchObject({ approved: true, by: "ana" })
  })
})
