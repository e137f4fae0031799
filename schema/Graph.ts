// A graph workflow (ADR 0042): nodes and edges as the cockpit draws them, `PUT /v1/agents/{name}/workflow`. The
// schema checks each node's data by its type; `problems` checks the drawing as a whole (one trigger, an end reachable,
// no dangling edge, branch labels, expressions that parse), each problem naming the node or edge and its field.
import { Schema } from "effect"
import * as Expression from "./Expression.ts"
import * as Issues from "./Issues.ts"

/** A node's id: letters, digits, '_' or '-', 1-64 characters (its steps are `node:<id>:<visit>`). */
export const NodeId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/u, {
    message: "Expected a node id: letters, digits, '_' or '-', 1-64 characters"
  })
)

const Text = (max: number) => Schema.String.check(Schema.isBetweenLength(1, max))
const Model = Schema.String.check(
  Schema.isPattern(/^[a-zA-Z0-9][a-zA-Z0-9._:/-]{0,127}$/u, {
    message: "Expected a model capability alias such as \"auto\", \"fast\" or \"cheap\""
  })
)
const AgentRef = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}$/u, { message: "Expected an agent name" })
)
/** A wait's length: a whole number and a unit, as `30s`, `5m`, `2h`, `1d` or `500ms`. */
export const Duration = Schema.String.check(
  Schema.isPattern(/^\d{1,9}(ms|s|m|h|d)$/u, { message: "Expected a duration such as 30s, 5m, 2h or 1d" })
)

/** Milliseconds in a `Duration`. */
export const durationMs = (d: string): number => {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d)!
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"]
  return Number(m[1]) * unit
}

export const MAX_ITERATIONS = 1_000
/** Minutes an approval node may wait: 30 days. */
export const MAX_APPROVAL_MINUTES = 30 * 24 * 60

const Empty = Schema.Struct({})

/** What each type of node needs in its `data`. */
export const NodeData = {
  trigger: Empty,
  "ai-step": Schema.Struct({
    /** The user message; `{{input.x}}` and `{{steps.<id>.field}}` are filled in. */
    prompt: Text(32_000),
    /** A model alias (auto, fast, cheap, …) or a model; auto when absent. */
    capability: Schema.optionalKey(Model),
    system: Schema.optionalKey(Text(32_000)),
    temperature: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
    maxTokens: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 200_000 })))
  }),
  tool: Schema.Struct({
    /** A built-in tool by name. */
    tool: Schema.String.check(Schema.isBetweenLength(1, 64)),
    /** Its arguments; strings in them are templates. */
    arguments: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
  }),
  condition: Schema.Struct({ expression: Text(2_000) }),
  loop: Schema.Struct({
    /** An expression whose value is the array the body runs over. */
    arrayExpression: Text(2_000),
    maxIterations: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_ITERATIONS }))
  }),
  approval: Schema.Struct({
    reason: Schema.optionalKey(Text(2_000)),
    timeoutMinutes: Schema.optionalKey(
      Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_APPROVAL_MINUTES }))
    )
  }),
  subagent: Schema.Struct({
    agent: AgentRef,
    /** The child run's input; strings in it are templates. */
    input: Schema.optionalKey(Schema.Unknown)
  }),
  wait: Schema.Struct({ duration: Duration }),
  parallel: Empty,
  end: Schema.Struct({ outputExpression: Schema.optionalKey(Text(2_000)) })
} as const

export type NodeType = keyof typeof NodeData
export const NODE_TYPES = Object.keys(NodeData) as ReadonlyArray<NodeType>

const nodeOf = <T extends NodeType>(type: T) =>
  Schema.Struct({ id: NodeId, type: Schema.Literal(type), data: NodeData[type] })

export const Node = Schema.Union(
  NODE_TYPES.map(nodeOf) as unknown as ReadonlyArray<ReturnType<typeof nodeOf<NodeType>>>
)
export type Node = {
  [T in NodeType]: { readonly id: string; readonly type: T; readonly data: typeof NodeData[T]["Type"] }
}[
  NodeType
]

export const Edge = Schema.Struct({
  id: Schema.String.check(Schema.isBetweenLength(1, 64)),
  source: Schema.String.check(Schema.isBetweenLength(1, 64)),
  target: Schema.String.check(Schema.isBetweenLength(1, 64)),
  /** `true`/`false` out of a condition, `body` (and optionally `done`) out of a loop. */
  label: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(64)))
})
export type Edge = typeof Edge.Type

export const MAX_NODES = 200

/** A graph as the agent's spec keeps it: every node's data checked by its type. */
export const Graph = Schema.Struct({
  nodes: Schema.Array(Node as unknown as Schema.Codec<Node, Node>).check(Schema.isBetweenLength(1, MAX_NODES)),
  edges: Schema.Array(Edge).check(Schema.isMaxLength(2 * MAX_NODES))
})
export type Graph = typeof Graph.Type

/** A graph as sent: the nodes' data is checked by `check`, which names the node of each problem. */
export const Input = Schema.Struct({
  nodes: Schema.Array(Schema.Struct({
    id: Schema.String.check(Schema.isMaxLength(64)),
    /** One of NODE_TYPES: checked by `check`, which names the node. */
    type: Schema.String.check(Schema.isMaxLength(64)),
    data: Schema.optionalKey(Schema.Unknown)
  })).check(Schema.isBetweenLength(1, MAX_NODES)),
  edges: Schema.Array(Edge).check(Schema.isMaxLength(2 * MAX_NODES))
})
export type Input = typeof Input.Type

export type Problem = Issues.FieldIssue

const decodeOptions = { errors: "all", onExcessProperty: "error" } as const

/** The nodes that follow `id` along its edges, with each edge's label. */
export const outOf = (graph: Pick<Graph, "edges">, id: string): ReadonlyArray<Edge> =>
  graph.edges.filter((e) => e.source === id)

/**
 * Checks a sent graph: each node's data by its type, then the whole (`problems`). `tools`: the built-in tools a
 * tool node may name.
 */
export const check = (
  input: Input,
  tools: ReadonlyArray<string>
): { readonly _tag: "Valid"; readonly graph: Graph } | {
  readonly _tag: "Invalid"
  readonly problems: ReadonlyArray<Problem>
} => {
  const out: Array<Problem> = []
  const nodes: Array<Node> = []
  input.nodes.forEach((n, i) => {
    const idOk = Schema.is(NodeId)(n.id)
    if (!idOk) {
      out.push({
        field: `nodes[${i}].id`,
        message: `node ${JSON.stringify(n.id)}: Expected a node id: letters, digits, '_' or '-', 1-64 characters`
      })
    }
    if (!(NODE_TYPES as ReadonlyArray<string>).includes(n.type)) {
      out.push({
        field: `nodes[${i}].type`,
        message: `node '${n.id}': unknown type '${n.type}'; node types are ${NODE_TYPES.join(", ")}`
      })
      return
    }
    const type = n.type as NodeType
    const decoded = Schema.decodeUnknownResult(NodeData[type] as unknown as Schema.Codec<unknown>)(
      n.data ?? {},
      decodeOptions
    )
    if (decoded._tag === "Failure") {
      for (const p of Issues.toFieldIssues(decoded.failure.issue, `nodes[${i}].data`)) {
        out.push({
          field: p.field,
          message: `node '${n.id}' (${n.type}): ${
            p.message === "Expected no excess property" ? "unknown field: not part of this node's data" : p.message
          }`
        })
      }
    } else if (idOk) nodes.push({ id: n.id, type, data: decoded.success } as Node)
  })
  if (out.length > 0) return { _tag: "Invalid", problems: out }
  const graph: Graph = { nodes, edges: input.edges }
  const found = problems(graph, tools)
  return found.length === 0 ? { _tag: "Valid", graph } : { _tag: "Invalid", problems: found }
}

/** What is wrong with a graph as a whole; empty when it can run. */
export const problems = (graph: Graph, tools: ReadonlyArray<string>): ReadonlyArray<Problem> => {
  const out: Array<Problem> = []
  const index = new Map<string, number>()
  const nodeField = (id: string, field: string) => `nodes[${index.get(id) ?? 0}]${field}`
  const say = (id: string, field: string, message: string) =>
    out.push({ field: nodeField(id, field), message: `node '${id}': ${message}` })

  graph.nodes.forEach((n, i) => {
    if (index.has(n.id)) {
      out.push({
        field: `nodes[${i}].id`,
        message: `node '${n.id}': the id is used by another node too (nodes[${index.get(n.id)}])`
      })
    } else index.set(n.id, i)
  })
  const edgeIds = new Set<string>()
  graph.edges.forEach((e, i) => {
    if (edgeIds.has(e.id))
      out.push({ field: `edges[${i}].id`, message: `edge '${e.id}': the id is used by another edge too` })
    edgeIds.add(e.id)
    for (const end of ["source", "target"] as const) {
      if (!index.has(e[end])) {
        out.push({ field: `edges[${i}].${end}`, message: `edge '${e.id}': no node '${e[end]}' (a dangling edge)` })
      }
    }
  })
  const triggers = graph.nodes.filter((n) => n.type === "trigger")
  if (triggers.length !== 1) {
    out.push(
      triggers.length === 0
        ? { field: "nodes", message: "a graph needs exactly one trigger node; it has none" }
        : {
          field: nodeField(triggers[1]!.id, ".type"),
          message: `node '${triggers[1]!.id}': a graph needs exactly one trigger node; it has ${triggers.length} (${
            triggers.map((t) => `'${t.id}'`).join(", ")
          })`
        }
    )
  }
  if (out.length > 0) return out

  const byId = new Map(graph.nodes.map((n) => [n.id, n]))
  const incoming = (id: string) => graph.edges.filter((e) => e.target === id)
  const parse = (id: string, field: string, source: string) => {
    try {
      Expression.parse(source)
    } catch (e) {
      say(id, `.data.${field}`, `${field} does not parse: ${(e as Error).message}`)
    }
  }
  const templates = (id: string, field: string, value: unknown) => {
    for (const s of Expression.stringsOf(value)) {
      try {
        Expression.parseTemplate(s)
      } catch (e) {
        say(id, `.data.${field}`, `a template in ${field} does not parse: ${(e as Error).message}`)
      }
    }
  }

  for (const n of graph.nodes) {
    const out_ = outOf(graph, n.id)
    const labels = out_.map((e) => e.label)
    const unlabelled = (count: "one" | "none") => {
      const expected = count === "one" ? 1 : 0
      if (out_.length !== expected) {
        say(
          n.id,
          "",
          count === "one"
            ? `a ${n.type} node needs exactly one outgoing edge; it has ${out_.length}`
            : `an end node has no outgoing edges; it has ${out_.length}`
        )
      }
      const labelled = out_.find((e) => e.label !== undefined)
      if (labelled !== undefined)
        say(
          n.id,
          "",
          `its edge '${labelled.id}' has label '${labelled.label}', which only a condition's or a loop's edges take`
        )
    }
    switch (n.type) {
      case "trigger":
        if (incoming(n.id).length > 0) say(n.id, "", "a trigger has no incoming edges")
        unlabelled("one")
        break
      case "end":
        unlabelled("none")
        if (n.data.outputExpression !== undefined) parse(n.id, "outputExpression", n.data.outputExpression)
        break
      case "condition": {
        parse(n.id, "expression", n.data.expression)
        const sorted = [...labels].sort()
        if (out_.length !== 2 || sorted[0] !== "false" || sorted[1] !== "true") {
          say(
            n.id,
            "",
            `a condition needs two outgoing edges labelled 'true' and 'false'; it has ${
              out_.length === 0
                ? "none"
                : labels.map((l) => (l === undefined ? "an unlabelled one" : `'${l}'`)).join(", ")
            }`
          )
        }
        break
      }
      case "loop": {
        parse(n.id, "arrayExpression", n.data.arrayExpression)
        const body = out_.filter((e) => e.label === "body")
        const after = out_.filter((e) => e.label !== "body")
        if (body.length !== 1)
          say(n.id, "", `a loop needs exactly one outgoing edge labelled 'body'; it has ${body.length}`)
        if (after.length !== 1 || (after[0]!.label !== undefined && after[0]!.label !== "done")) {
          say(
            n.id,
            "",
            "a loop needs exactly one other outgoing edge (unlabelled or 'done') to follow after its last item"
          )
        }
        break
      }
      case "parallel":
        if (out_.length < 2)
          say(n.id, "", `a parallel node needs at least two outgoing edges (its branches); it has ${out_.length}`)
        else if (out_.some((e) => e.label !== undefined)) say(n.id, "", "a parallel node's edges take no labels")
        break
      case "ai-step":
        templates(n.id, "prompt", n.data.prompt)
        if (n.data.system !== undefined) templates(n.id, "system", n.data.system)
        unlabelled("one")
        break
      case "tool":
        if (!tools.includes(n.data.tool)) {
          say(n.id, ".data.tool", `unknown tool '${n.data.tool}'; built-in tools are ${tools.join(", ")}`)
        }
        templates(n.id, "arguments", n.data.arguments ?? {})
        unlabelled("one")
        break
      case "approval":
        if (n.data.reason !== undefined) templates(n.id, "reason", n.data.reason)
        unlabelled("one")
        break
      case "subagent":
        templates(n.id, "input", n.data.input ?? null)
        unlabelled("one")
        break
      case "wait":
        unlabelled("one")
        break
    }
  }
  if (out.length > 0) return out

  // every node reachable from the trigger, an end among them
  const trigger = triggers[0]!
  const seen = new Set<string>([trigger.id])
  const queue = [trigger.id]
  while (queue.length > 0) {
    for (const e of outOf(graph, queue.shift()!)) {
      if (!seen.has(e.target)) {
        seen.add(e.target)
        queue.push(e.target)
      }
    }
  }
  for (const n of graph.nodes) if (!seen.has(n.id)) say(n.id, "", "not reachable from the trigger")
  if (!graph.nodes.some((n) => n.type === "end" && seen.has(n.id))) {
    out.push({ field: "nodes", message: "no end node is reachable from the trigger" })
  }
  if (out.length > 0) return out

  // a loop's body returns to it; a parallel node's branches meet at a join, holding no loop, parallel or end
  for (const n of graph.nodes) {
    if (n.type === "loop") {
      const body = bodyOf(graph, n.id)
      if (body === null) say(n.id, "", "its body (from the 'body' edge) must lead back to the loop by an edge")
      else {
        const inner = body.find((id) => byId.get(id)?.type === "end" || byId.get(id)?.type === "trigger")
        if (inner !== undefined) say(n.id, "", `its body holds node '${inner}', a ${byId.get(inner)!.type}`)
      }
    }
    if (n.type === "parallel") {
      const join = joinOf(graph, n.id)
      if (join === null) say(n.id, "", "its branches never meet at a common node (the join)")
      else {
        for (const e of outOf(graph, n.id)) {
          const branch = branchOf(graph, e.target, join)
          const bad = branch.find((id) => ["loop", "parallel", "end", "trigger"].includes(byId.get(id)!.type))
          if (bad !== undefined) {
            say(
              n.id,
              "",
              `its branch through '${e.target}' holds node '${bad}', a ${
                byId.get(bad)!.type
              } (a branch holds steps only)`
            )
          }
        }
      }
    }
  }
  return out
}

/** Nodes reachable from `from` without passing `stop`, in breadth-first order. */
const reach = (graph: Pick<Graph, "edges">, from: string, stop: string): ReadonlyArray<string> => {
  if (from === stop) return []
  const seen = new Set([from])
  const order = [from]
  for (let i = 0; i < order.length; i++) {
    for (const e of outOf(graph, order[i]!)) {
      if (e.target !== stop && !seen.has(e.target)) {
        seen.add(e.target)
        order.push(e.target)
      }
    }
  }
  return order
}

/** The nodes of a loop's body, when the body leads back to the loop; null otherwise. */
export const bodyOf = (graph: Pick<Graph, "edges">, loop: string): ReadonlyArray<string> | null => {
  const start = outOf(graph, loop).find((e) => e.label === "body")
  if (start === undefined || start.target === loop) return null
  const nodes = reach(graph, start.target, loop)
  return nodes.some((id) => outOf(graph, id).some((e) => e.target === loop)) ? nodes : null
}

/** Where a parallel node's branches meet: the first node (breadth-first from the first branch) every branch reaches. */
export const joinOf = (graph: Pick<Graph, "edges">, parallel: string): string | null => {
  const branches = outOf(graph, parallel).map((e) => new Set([e.target, ...reach(graph, e.target, parallel)]))
  const [first, ...rest] = branches
  if (first === undefined) return null
  for (const id of first) if (rest.every((b) => b.has(id))) return id
  return null
}

/** The nodes of one branch: from its first node until the join. */
export const branchOf = (graph: Pick<Graph, "edges">, from: string, join: string): ReadonlyArray<string> =>
  reach(graph, from, join)
