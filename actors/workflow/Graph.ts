// A graph workflow compiled onto the durable engine of code-first workflows (ADR 0042): an interpreter that walks
// the graph over the workflow ctx, so every node visit is a journaled step `node:<id>:<visit>` (its output, or a
// condition's branch label) and a replay returns what the journal has instead of running a node again.
import * as Expression from "../../schema/Expression.ts"
import * as Graph from "../../schema/Graph.ts"
import * as Tools from "../model/Tools.ts"
import type { Context } from "./Context.ts"
import type { Definition } from "./Registry.ts"

/** Node visits a run may make in all: a graph that cycles (a condition sending it back) fails past it. */
export const MAX_VISITS = 1_000

/** A graph agent's workflow name, as the run's `workflow.name` carries it. */
export const PREFIX = "graph:"
export const nameOf = (agentName: string) => `${PREFIX}${agentName}`
export const isGraph = (workflowName: string) => workflowName.startsWith(PREFIX)

/** The error a graph run fails with when the graph itself goes wrong at run time (not a step's own failure). */
export class GraphError extends Error {
  override readonly name = "GraphError"
}

type Node = Graph.Node
type LoopFrame = { readonly item: unknown; readonly index: number }

/** What the effect of a node visit gave, before its step is journaled. */
type Effected = { readonly node: Node; readonly visit: number; readonly effect: unknown }

/**
 * The order in which the nodes of one round of parallel branches start their effects: operations that journal their
 * step as they start (model calls, child runs) before those that journal it after reading the clock (approvals,
 * waits), so the journal's order is the same on every replay.
 */
const START_ORDER: Record<Graph.NodeType, number> = {
  "ai-step": 0,
  subagent: 0,
  approval: 1,
  wait: 2,
  trigger: 3,
  tool: 3,
  condition: 3,
  loop: 3,
  parallel: 3,
  end: 3
}

const ONE_ATTEMPT = { retry: { maxAttempts: 1 } } as const

/** The definition of a graph agent's workflow: `run(ctx, input)` answers `{result, stepsRan}`. */
export const compile = (graph: Graph.Graph, agentName: string): Definition => ({
  name: nameOf(agentName),
  run: (ctx, input) => interpret(graph, agentName, ctx, input)
})

const interpret = async (graph: Graph.Graph, agentName: string, ctx: Context, input: unknown) => {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]))
  const node = (id: string) => {
    const n = byId.get(id)
    if (n === undefined) throw new GraphError(`graph ${agentName} has no node '${id}'`)
    return n
  }
  const steps: Record<string, unknown> = {}
  const stepsRan: Array<string> = []
  const visits = new Map<string, number>()
  let total = 0
  const loops: Array<LoopFrame> = []
  const scope = (): Expression.Scope => ({
    input,
    steps,
    ...(loops.length === 0 ? {} : { loop: loops[loops.length - 1] })
  })
  const next = (id: string, label?: string): string => {
    const edge = Graph.outOf(graph, id).find((e) => label === undefined ? e.label !== "body" : e.label === label)
    if (edge === undefined) throw new GraphError(`node '${id}' has no edge${label === undefined ? "" : ` '${label}'`}`)
    return edge.target
  }
  const visitOf = (n: Node) => {
    if (++total > MAX_VISITS) {
      throw new GraphError(`graph ${agentName} visited more than ${MAX_VISITS} nodes in one run (at node '${n.id}')`)
    }
    const v = (visits.get(n.id) ?? 0) + 1
    visits.set(n.id, v)
    return v
  }
  const stepId = (n: Node, visit: number) => `node:${n.id}:${visit}`
  const text = (template: string) => {
    const v = Expression.render(template, scope())
    return typeof v === "string" ? v : v === null ? "" : JSON.stringify(v)
  }

  /** The durable operation a node waits on before its own step: a model call, an approval, a child run, a timer. */
  const effect = async (n: Node): Promise<unknown> => {
    switch (n.type) {
      case "ai-step": {
        const system = n.data.system === undefined ? [] : [{ role: "system" as const, content: text(n.data.system) }]
        const answer = await ctx.llm({
          model: n.data.capability ?? "auto",
          messages: [...system, { role: "user", content: text(n.data.prompt) }],
          ...(n.data.temperature === undefined ? {} : { temperature: n.data.temperature }),
          ...(n.data.maxTokens === undefined ? {} : { maxTokens: n.data.maxTokens })
        })
        return { text: answer.content ?? "", provider: answer.provider, model: answer.model }
      }
      case "approval":
        return ctx.approval({
          reason: n.data.reason === undefined ? `graph ${agentName}: node '${n.id}'` : text(n.data.reason),
          expiresInSeconds: (n.data.timeoutMinutes ?? 24 * 60) * 60
        })
      case "subagent":
        return ctx.run({ agent: n.data.agent }, Expression.renderDeep(n.data.input ?? null, scope()))
      case "wait": {
        const ms = Graph.durationMs(n.data.duration)
        await ctx.sleep(ms)
        return { waitedMs: ms }
      }
      default:
        return null
    }
  }

  /** Journals a node's visit (running a tool or evaluating a condition inside the step); the node after it. */
  const record = async ({ node: n, visit, effect: done }: Effected): Promise<string | null> => {
    const id = stepId(n, visit)
    stepsRan.push(n.id)
    switch (n.type) {
      case "trigger":
        await ctx.step(id, () => null)
        steps[n.id] = input
        return next(n.id)
      case "condition": {
        const expr = Expression.parse(n.data.expression)
        const s = scope()
        const label = await ctx.step(id, () => (Expression.isTruthy(Expression.evaluate(expr, s)) ? "true" : "false"))
        steps[n.id] = { branch: label }
        return next(n.id, label)
      }
      case "tool": {
        const args = Expression.renderDeep(n.data.arguments ?? {}, scope())
        const name = n.data.tool
        steps[n.id] = await ctx.step(id, () => {
          const tool = Tools.find(name)
          if (tool === undefined) throw new GraphError(`node '${n.id}': unknown tool '${name}'`)
          return { output: tool.run(args) }
        }, ONE_ATTEMPT)
        return next(n.id)
      }
      case "end": {
        const out = n.data.outputExpression
        const s = scope()
        steps[n.id] = await ctx.step(
          id,
          () => (out === undefined ? null : Expression.evaluate(Expression.parse(out), s))
        )
        return null
      }
      default:
        steps[n.id] = await ctx.step(id, () => done)
        return next(n.id)
    }
  }

  /** One node visit on the graph's main path (or a loop's body): its effect, then its step. */
  const visitOne = async (n: Node): Promise<string | null> => {
    const visit = visitOf(n)
    return record({ node: n, visit, effect: await effect(n) })
  }

  /**
   * A parallel node's branches, until each reaches the join: in rounds, each branch one node a round; the effects of a
   * round run concurrently, then its steps are journaled in branch order, so the journal reads the same on replay.
   */
  const branches = async (parallel: Node, join: string) => {
    let cursors: Array<string> = Graph.outOf(graph, parallel.id).map((e) => e.target).filter((t) => t !== join)
    while (cursors.length > 0) {
      const round = cursors.map((id) => ({ node: node(id), visit: 0 }))
      for (const r of round) r.visit = visitOf(r.node)
      const order = [...round].sort((a, b) => START_ORDER[a.node.type] - START_ORDER[b.node.type])
      const started = new Map(order.map((r) => [r, effect(r.node)]))
      const effects = await Promise.all(round.map((r) => started.get(r)!))
      const after: Array<string> = []
      for (const [i, r] of round.entries()) {
        const to = await record({ node: r.node, visit: r.visit, effect: effects[i] })
        if (to !== null && to !== join) after.push(to)
      }
      cursors = after
    }
  }

  /** Walks from `start` until `stop` (a loop's body back at its loop) or an end node; the end's output if one. */
  const walk = async (start: string, stop: string | null): Promise<{ readonly result: unknown } | null> => {
    let current: string | null = start
    while (current !== null && current !== stop) {
      const n = node(current)
      switch (n.type) {
        case "end":
          await visitOne(n)
          return { result: steps[n.id] ?? null }
        case "loop": {
          const visit = visitOf(n)
          const expr = Expression.parse(n.data.arrayExpression)
          const items = Expression.evaluate(expr, scope())
          const max = n.data.maxIterations
          stepsRan.push(n.id)
          const count = await ctx.step(stepId(n, visit), () => {
            if (!Array.isArray(items)) {
              throw new GraphError(
                `loop '${n.id}': arrayExpression ${JSON.stringify(n.data.arrayExpression)} is not an array (got ${
                  items === null ? "null" : typeof items
                })`
              )
            }
            if (items.length > max) {
              throw new GraphError(
                `loop '${n.id}': ${items.length} items exceed its maxIterations of ${max}`
              )
            }
            return { count: items.length }
          }, ONE_ATTEMPT)
          const list = items as ReadonlyArray<unknown>
          for (let index = 0; index < count.count; index++) {
            loops.push({ item: list[index] ?? null, index })
            try {
              await walk(next(n.id, "body"), n.id)
            } finally {
              loops.pop()
            }
          }
          steps[n.id] = count
          current = next(n.id)
          break
        }
        case "parallel": {
          const join = Graph.joinOf(graph, n.id)
          if (join === null) throw new GraphError(`parallel '${n.id}': its branches never meet`)
          const visit = visitOf(n)
          stepsRan.push(n.id)
          const targets = Graph.outOf(graph, n.id).map((e) => e.target)
          steps[n.id] = await ctx.step(stepId(n, visit), () => ({ branches: targets, join }))
          await branches(n, join)
          current = join
          break
        }
        default:
          current = await visitOne(n)
      }
    }
    return null
  }

  const trigger = graph.nodes.find((n) => n.type === "trigger")
  if (trigger === undefined) throw new GraphError(`graph ${agentName} has no trigger`)
  const ended = await walk(trigger.id, null)
  if (ended === null) throw new GraphError(`graph ${agentName} stopped without reaching an end node`)
  return { result: ended.result, stepsRan }
}
