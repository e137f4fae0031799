import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as Graph from "./Graph.ts"

const TOOLS = ["calculator", "word_count", "echo"]

/** The seed scenario: trigger → ai-step → condition(true/false) → end. */
export const seed = (): Graph.Input => ({
  nodes: [
    { id: "start", type: "trigger", data: {} },
    { id: "classify", type: "ai-step", data: { prompt: "Classify: {{input.text}}", capability: "fast" } },
    { id: "urgent", type: "condition", data: { expression: "steps.classify.text contains 'URGENT'" } },
    { id: "escalate", type: "end", data: { outputExpression: "'escalated'" } },
    { id: "file", type: "end", data: { outputExpression: "steps.classify.text" } }
  ],
  edges: [
    { id: "e1", source: "start", target: "classify" },
    { id: "e2", source: "classify", target: "urgent" },
    { id: "e3", source: "urgent", target: "escalate", label: "true" },
    { id: "e4", source: "urgent", target: "file", label: "false" }
  ]
})

const decodeInput = Schema.decodeUnknownSync(Graph.Input, { onExcessProperty: "error" })
const problemsOf = (input: unknown) => {
  const checked = Graph.check(decodeInput(input), TOOLS)
  return checked._tag === "Valid" ? [] : checked.problems
}
const edit = (f: (g: { nodes: Array<any>; edges: Array<any> }) => void) => {
  const g = structuredClone(seed()) as { nodes: Array<any>; edges: Array<any> }
  f(g)
  return problemsOf(g)
}

describe("a graph's validation", () => {
  it("accepts the seed scenario, a loop, a parallel node and every node type", () => {
    expect(problemsOf(seed())).toEqual([])
    const all = {
      nodes: [
        { id: "t", type: "trigger" },
        { id: "each", type: "loop", data: { arrayExpression: "input.items", maxIterations: 3 } },
        { id: "count", type: "tool", data: { tool: "word_count", arguments: { text: "{{loop.item}}" } } },
        { id: "fan", type: "parallel", data: {} },
        { id: "ask", type: "approval", data: { timeoutMinutes: 5, reason: "ok {{input.x}}?" } },
        { id: "pause", type: "wait", data: { duration: "2s" } },
        { id: "helper", type: "subagent", data: { agent: "helper", input: { q: "{{input.x}}" } } },
        { id: "done", type: "end", data: {} }
      ],
      edges: [
        { id: "1", source: "t", target: "each" },
        { id: "2", source: "each", target: "count", label: "body" },
        { id: "3", source: "count", target: "each" },
        { id: "4", source: "each", target: "fan", label: "done" },
        { id: "5", source: "fan", target: "ask" },
        { id: "6", source: "fan", target: "pause" },
        { id: "7", source: "ask", target: "helper" },
        { id: "8", source: "pause", target: "helper" },
        { id: "9", source: "helper", target: "done" }
      ]
    }
    expect(problemsOf(all)).toEqual([])
    const checked = Graph.check(decodeInput(all), TOOLS)
    expect(checked._tag === "Valid" && Graph.joinOf(checked.graph, "fan")).toBe("helper")
    // the checked graph decodes with the spec's schema too
    expect(checked._tag === "Valid" && Schema.is(Graph.Graph)(checked.graph)).toBe(true)
  })

  it("checks each node's data by its type, naming the node and the field; unknown fields are refused", () => {
    expect(edit((g) => delete g.nodes[1].data.prompt)).toEqual([
      { field: "nodes[1].data.prompt", message: "node 'classify' (ai-step): Missing key" }
    ])
    expect(edit((g) => (g.nodes[1].data.temprature = 0.2))).toEqual([
      {
        field: "nodes[1].data.temprature",
        message: "node 'classify' (ai-step): unknown field: not part of this node's data"
      }
    ])
    expect(edit((g) => (g.nodes[1].data.temperature = 3))[0]!.field).toBe("nodes[1].data.temperature")
    expect(edit((g) => (g.nodes[1].id = "no spaces"))[0]).toMatchObject({ field: "nodes[1].id" })
    expect(() => edit((g) => (g.nodes[1].colour = "red"))).toThrow()
    expect(edit((g) => (g.nodes[1].type = "ai_step"))).toEqual([{
      field: "nodes[1].type",
      message:
        "node 'classify': unknown type 'ai_step'; node types are trigger, ai-step, tool, condition, loop, approval, subagent, wait, parallel, end"
    }])
  })

  it("needs exactly one trigger", () => {
    expect(edit((g) => (g.nodes[0].type = "end"))).toContainEqual({
      field: "nodes",
      message: "a graph needs exactly one trigger node; it has none"
    })
    expect(edit((g) => g.nodes.push({ id: "again", type: "trigger", data: {} }))[0]).toMatchObject({
      field: "nodes[5].type",
      message: expect.stringContaining("node 'again': a graph needs exactly one trigger node; it has 2")
    })
  })

  it("refuses duplicate ids and dangling edges, naming them", () => {
    expect(edit((g) => (g.nodes[3].id = "file"))[0]).toMatchObject({
      field: "nodes[4].id",
      message: expect.stringContaining("node 'file': the id is used by another node too")
    })
    expect(edit((g) => (g.edges[1].id = "e1"))[0]).toMatchObject({ field: "edges[1].id" })
    expect(edit((g) => (g.edges[1].target = "ghost"))).toEqual([
      { field: "edges[1].target", message: "edge 'e2': no node 'ghost' (a dangling edge)" }
    ])
  })

  it("needs a condition's edges labelled true and false", () => {
    expect(edit((g) => (g.edges[3].label = "no"))).toEqual([{
      field: "nodes[2]",
      message: "node 'urgent': a condition needs two outgoing edges labelled 'true' and 'false'; it has 'true', 'no'"
    }])
    expect(edit((g) => delete g.edges[2].label)[0]!.message).toContain("an unlabelled one")
    expect(edit((g) => (g.nodes[2].data.expression = "steps.classify.text = 1"))[0]).toMatchObject({
      field: "nodes[2].data.expression",
      message: expect.stringContaining("node 'urgent': expression does not parse")
    })
  })

  it("needs a loop's body edge labelled body, leading back to the loop", () => {
    const loop = (edges: Array<any>) =>
      problemsOf({
        nodes: [
          { id: "t", type: "trigger" },
          { id: "each", type: "loop", data: { arrayExpression: "input.items", maxIterations: 3 } },
          { id: "say", type: "tool", data: { tool: "echo", arguments: { text: "{{loop.item}}" } } },
          { id: "done", type: "end" }
        ],
        edges: [{ id: "1", source: "t", target: "each" }, { id: "4", source: "each", target: "done" }, ...edges]
      })
    expect(
      loop([{ id: "2", source: "each", target: "say", label: "body" }, { id: "3", source: "say", target: "each" }])
    )
      .toEqual([])
    expect(loop([{ id: "2", source: "each", target: "say" }, { id: "3", source: "say", target: "each" }])[0])
      .toMatchObject({
        field: "nodes[1]",
        message: expect.stringContaining("node 'each': a loop needs exactly one outgoing edge labelled 'body'")
      })
    expect(
      loop([{ id: "2", source: "each", target: "say", label: "body" }, { id: "3", source: "say", target: "done" }])[0]
    )
      .toMatchObject({
        message: expect.stringContaining("node 'each': its body (from the 'body' edge) must lead back")
      })
  })

  it("needs an end reachable from the trigger, and every node reachable", () => {
    expect(edit((g) => {
      g.nodes = g.nodes.filter((n) => n.type !== "end")
      g.nodes.push({ id: "x", type: "tool", data: { tool: "echo" } })
      g.edges = [...g.edges.slice(0, 2), { id: "a", source: "urgent", target: "x", label: "true" }, {
        id: "b",
        source: "urgent",
        target: "x",
        label: "false"
      }, { id: "c", source: "x", target: "classify" }]
    })).toEqual([{ field: "nodes", message: "no end node is reachable from the trigger" }])
    expect(edit((g) => g.nodes.push({ id: "orphan", type: "end", data: {} }))).toEqual([
      { field: "nodes[5]", message: "node 'orphan': not reachable from the trigger" }
    ])
  })

  it("names an unknown tool, a template that does not parse, and a parallel node whose branches never meet", () => {
    expect(
      edit((g) => {
        g.nodes[1] = { id: "classify", type: "tool", data: { tool: "rm", arguments: { text: "{{input.x" } } }
      })[0]
    ).toMatchObject({
      field: "nodes[1].data.tool",
      message: expect.stringContaining("node 'classify': unknown tool 'rm'")
    })
    expect(edit((g) => (g.nodes[1].data.prompt = "{{ process.env }}"))[0]).toMatchObject({
      field: "nodes[1].data.prompt",
      message: expect.stringContaining("unknown name 'process'")
    })
    expect(problemsOf({
      nodes: [
        { id: "t", type: "trigger" },
        { id: "fan", type: "parallel" },
        { id: "a", type: "end" },
        { id: "b", type: "end" }
      ],
      edges: [
        { id: "1", source: "t", target: "fan" },
        { id: "2", source: "fan", target: "a" },
        { id: "3", source: "fan", target: "b" }
      ]
    })).toEqual([{ field: "nodes[1]", message: "node 'fan': its branches never meet at a common node (the join)" }])
  })
})
