// Lantern's built-in deterministic tools: what a spec's JSON-schema functions are answered by until
// sandboxed tool execution lands. Pure functions of their arguments, served to the run driver by the `Tools`
// service so that sandboxed or remote tools can take their place without touching the driver.
import { Context, Effect, Layer } from "effect"
import type { ToolCall } from "../../schema/Events.ts"

export interface BuiltinTool {
  readonly name: string
  readonly description: string
  readonly parameters: Record<string, unknown>
  readonly run: (args: unknown) => string
}

const field = (args: unknown, name: string): string => {
  const v = args !== null && typeof args === "object" ? (args as Record<string, unknown>)[name] : undefined
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : ""
}

/** Evaluates + - * / and parentheses over decimal numbers with a recursive-descent parser (no eval). */
export const calculate = (expression: string): number => {
  const src = expression
  let i = 0
  const skip = () => {
    while (src[i] === " " || src[i] === "\t" || src[i] === "\n") i++
  }
  const fail = (why: string): never => {
    throw new Error(`${why} at position ${i} in '${expression}'`)
  }
  const number = (): number => {
    skip()
    const m = /^\d+(\.\d+)?/.exec(src.slice(i))
    if (m === null) return fail("expected a number")
    i += m[0].length
    skip()
    return Number(m[0])
  }
  const factor = (): number => {
    skip()
    if (src[i] === "-") {
      i++
      return -factor()
    }
    if (src[i] === "(") {
      i++
      const v = sum()
      if (src[i] !== ")") fail("expected ')'")
      i++
      skip()
      return v
    }
    return number()
  }
  const product = (): number => {
    let v = factor()
    while (src[i] === "*" || src[i] === "/") {
      const op = src[i++]
      const r = factor()
      if (op === "/" && r === 0) fail("division by zero")
      v = op === "*" ? v * r : v / r
    }
    return v
  }
  const sum = (): number => {
    let v = product()
    while (src[i] === "+" || src[i] === "-") {
      const op = src[i++]
      const r = product()
      v = op === "+" ? v + r : v - r
    }
    return v
  }
  if (src.trim().length === 0) fail("empty expression")
  const value = sum()
  if (i !== src.length) fail("unexpected character")
  return value
}

export const builtins: ReadonlyArray<BuiltinTool> = [
  {
    name: "calculator",
    description: "Evaluates an arithmetic expression with + - * / and parentheses.",
    parameters: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] },
    run: (args) => {
      try {
        return String(calculate(field(args, "expression")))
      } catch (e) {
        return `error: ${e instanceof Error ? e.message : String(e)}`
      }
    }
  },
  {
    name: "word_count",
    description: "Counts the words in a text.",
    parameters: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
    run: (args) => String(field(args, "text").split(/\s+/).filter((w) => w !== "").length)
  },
  {
    name: "echo",
    description: "Returns its text unchanged.",
    parameters: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
    run: (args) => field(args, "text")
  }
]

export const find = (name: string): BuiltinTool | undefined => builtins.find((t) => t.name === name)

/** The durable timer: a call to `sleep` is not run by a function but waited on by the run (actors/run/Plan.ts). */
export const SLEEP = {
  name: "sleep",
  description: "Waits the given number of seconds; the wait survives restarts and costs nothing.",
  parameters: { type: "object", properties: { seconds: { type: "number", minimum: 0 } }, required: ["seconds"] }
} as const

export const names = [...builtins.map((t) => t.name), SLEEP.name]

/**
 * Whether a call of this tool is local and deterministic (a built-in function of its arguments): such a step is
 * performed first and journaled once (actors/run/Decisions.ts `local`), since running it again gives the same.
 */
export const isLocal = (name: string) => find(name) !== undefined

/** Whether a spec may declare a tool of this name without an `agent` to answer it. */
export const isKnown = (name: string) => names.includes(name)

/** The tool output for a call no tool answers: the model reads it and may recover. */
export const unknownTool = (name: string) => `error: unknown tool '${name}'`

/** Answers a model's call of a tool that is neither a durable timer nor a child agent. */
export class Tools extends Context.Service<Tools, {
  /** The call's output as the model will read it; a tool's own failure is an `error: ...` output, not an error. */
  readonly run: (call: ToolCall) => Effect.Effect<string>
}>()("lantern/actors/Tools") {
  /** The built-in deterministic tools. */
  static readonly layer = Layer.succeed(
    Tools,
    Tools.of({
      run: (call) =>
        Effect.sync(() => {
          const tool = find(call.name)
          return tool === undefined ? unknownTool(call.name) : tool.run(call.arguments)
        })
    })
  )
}
