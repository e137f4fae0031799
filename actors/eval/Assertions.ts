// Scoring an eval case (ADR 0047): the facts of the real run a case became (its output, cost, latency, steps and the
// tool calls its journal holds), checked against the case's assertions. Pure; the judge's verdicts come in as data.
import { isDeepStrictEqual } from "node:util"
import type { Stored } from "../../schema/Envelope.ts"
import type { Assertion, Case, CaseResult } from "../../schema/Eval.ts"
import { expand, type StepRequest } from "../../schema/Events.ts"
import * as JsonSchema from "../tools/JsonSchema.ts"

/** A tool call a run's journal says was performed (its step completed). */
export interface ToolCallFact {
  readonly name: string
  readonly arguments: unknown
}

/** What a case's run did, read from its journal. */
export interface RunFacts {
  readonly runId: string | null
  readonly status: "succeeded" | "failed" | "canceled" | "not started"
  readonly output: unknown
  readonly error: string | null
  readonly costUsd: number
  readonly latencyMs: number
  readonly steps: number
  readonly toolCalls: ReadonlyArray<ToolCallFact>
}

/** A judge's verdict on a case, or why there is none (its provider failed, its budget refused it). */
export type Verdict =
  | { readonly _tag: "Verdict"; readonly score: number; readonly reasoning: string; readonly costUsd: number }
  | { readonly _tag: "NoVerdict"; readonly reason: string; readonly costUsd: number }

const toolOf = (request: StepRequest | undefined): ToolCallFact | null => {
  if (request === undefined) return null
  switch (request._tag) {
    case "tool":
    case "sleep":
    case "approval":
      return { name: request.call.name, arguments: request.call.arguments }
    case "agent":
      return { name: request.call.name, arguments: request.call.arguments }
    default:
      return null
  }
}

/** The tool calls of a run's journal whose steps completed, in order. */
export const toolCallsOf = (stored: ReadonlyArray<Stored>): ReadonlyArray<ToolCallFact> => {
  const started = new Map<string, StepRequest>()
  const out: Array<ToolCallFact> = []
  for (const e of stored.flatMap((s) => expand(s.event))) {
    if (e._tag === "StepStarted") started.set(e.stepId, e.request)
    if (e._tag === "StepCompleted") {
      const call = toolOf(e.request ?? started.get(e.stepId))
      if (call !== null) out.push(call)
    }
  }
  return out
}

/** An output as the text the text assertions read: a string as it is, anything else as JSON. */
export const textOf = (output: unknown): string =>
  typeof output === "string" ? output : output === undefined ? "" : JSON.stringify(output)

// claims of an action done, and the stems of the tool names that would have done it
const ACTIONS: ReadonlyArray<readonly [RegExp, ReadonlyArray<string>]> = [
  [/\b(sent|emailed|e-mailed|texted|messaged|forwarded)\b/iu, ["send", "mail", "message", "sms", "text", "notify"]],
  [/\b(booked|reserved|scheduled)\b/iu, ["book", "reserv", "schedul", "calendar"]],
  [/\b(deleted|removed|erased)\b/iu, ["delet", "remov", "erase"]],
  [/\b(cancell?ed)\b/iu, ["cancel"]],
  [/\b(ordered|purchased|bought|paid|charged)\b/iu, ["order", "purchas", "buy", "pay", "charge"]],
  [/\b(transferred|refunded)\b/iu, ["transfer", "refund"]],
  [/\b(posted|published|submitted|filed)\b/iu, ["post", "publish", "submit", "file", "create"]]
]
// the claim is the speaker's: "I sent", "I've booked", "has been deleted", "was sent"
const CLAIM =
  /\b(?:i|we)(?:'ve|'ll| have| just| already| successfully)*\s+(\w+)|\b(?:has|have) been\s+(\w+)|\bwas\s+(\w+)/giu

/** The actions an answer claims to have done (`sent`, `booked`…) that no completed tool step of a fitting name did. */
export const ungroundedClaims = (text: string, tools: ReadonlyArray<ToolCallFact>): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const m of text.matchAll(CLAIM)) {
    const verb = (m[1] ?? m[2] ?? m[3] ?? "").toLowerCase()
    const action = ACTIONS.find(([re]) => re.test(verb))
    if (action === undefined) continue
    const done = tools.some((t) => action[1].some((stem) => t.name.toLowerCase().includes(stem)))
    if (!done && !out.includes(verb)) out.push(verb)
  }
  return out
}

/** Parses a judge's answer: JSON `{score: 0..1, reasoning}`, possibly inside other text. */
export const parseVerdict = (content: string): { score: number; reasoning: string } | null => {
  const start = content.indexOf("{")
  const end = content.lastIndexOf("}")
  if (start < 0 || end <= start) return null
  try {
    const v = JSON.parse(content.slice(start, end + 1)) as { score?: unknown; reasoning?: unknown }
    if (typeof v.score !== "number" || !Number.isFinite(v.score) || v.score < 0 || v.score > 1) return null
    return { score: v.score, reasoning: typeof v.reasoning === "string" ? v.reasoning : "" }
  } catch {
    return null
  }
}

/** One assertion's outcome: its score in 0..1 and, when it failed, why. */
interface Checked {
  readonly score: number
  readonly failure: string | null
  readonly errored?: boolean
}

const pass: Checked = { score: 1, failure: null }
const fail = (why: string): Checked => ({ score: 0, failure: why })

const check = (a: Assertion, facts: RunFacts, verdict: Verdict | undefined): Checked => {
  const text = textOf(facts.output)
  if ("equals" in a) {
    const expected = a.equals
    const ok = typeof expected === "string" && typeof facts.output === "string"
      ? expected.trim() === facts.output.trim()
      : isDeepStrictEqual(expected, facts.output)
    return ok ? pass : fail(`equals: expected ${JSON.stringify(expected)}, got ${JSON.stringify(facts.output)}`)
  }
  if ("contains" in a) return text.includes(a.contains) ? pass : fail(`contains: no ${JSON.stringify(a.contains)}`)
  if ("notContains" in a) {
    return text.includes(a.notContains) ? fail(`notContains: found ${JSON.stringify(a.notContains)}`) : pass
  }
  if ("regex" in a) return new RegExp(a.regex, "u").test(text) ? pass : fail(`regex: /${a.regex}/ does not match`)
  if ("jsonSchema" in a) {
    let value: unknown = facts.output
    if (typeof value === "string") {
      try {
        value = JSON.parse(value)
      } catch {
        return fail("jsonSchema: the output is not JSON")
      }
    }
    const problems = JsonSchema.validate(a.jsonSchema, value)
    return problems.length === 0 ? pass : fail(`jsonSchema: ${problems.join("; ")}`)
  }
  if ("toolCalled" in a) {
    const { name, argsContains } = a.toolCalled
    const calls = facts.toolCalls.filter((t) => t.name === name)
    if (calls.length === 0) return fail(`toolCalled: ${name} was not called`)
    if (argsContains !== undefined && !calls.some((c) => textOf(c.arguments).includes(argsContains))) {
      return fail(`toolCalled: no call of ${name} with arguments containing ${JSON.stringify(argsContains)}`)
    }
    return pass
  }
  if ("costUnder" in a) {
    return facts.costUsd < a.costUnder.usd ? pass : fail(`costUnder: cost $${facts.costUsd} ≥ $${a.costUnder.usd}`)
  }
  if ("latencyUnder" in a) {
    return facts.latencyMs < a.latencyUnder.ms
      ? pass
      : fail(`latencyUnder: took ${Math.round(facts.latencyMs)} ms ≥ ${a.latencyUnder.ms} ms`)
  }
  if ("stepsUnder" in a) {
    return facts.steps < a.stepsUnder.n ? pass : fail(`stepsUnder: ${facts.steps} steps ≥ ${a.stepsUnder.n}`)
  }
  if ("grounded" in a) {
    const claims = ungroundedClaims(text, facts.toolCalls)
    return claims.length === 0
      ? pass
      : fail(`grounded: the answer claims ${claims.map((c) => `'${c}'`).join(", ")} but no tool step did it`)
  }
  // judge
  if (verdict === undefined || verdict._tag === "NoVerdict") {
    return { score: 0, failure: `judge: ${verdict?.reason ?? "no verdict"}`, errored: true }
  }
  return verdict.score >= a.judge.passScore
    ? { score: verdict.score, failure: null }
    : {
      score: verdict.score,
      failure: `judge: scored ${verdict.score} < ${a.judge.passScore}${
        verdict.reasoning === "" ? "" : `: ${verdict.reasoning}`
      }`
    }
}

/**
 * Scores a case on its run: the mean of its assertions' scores (a judge's is its verdict's score, the others 1 or
 * 0); passed when the run succeeded and every assertion passed. A run that did not succeed scores 0. A judge
 * without a verdict makes the case errored: not passed, score 0. `verdicts` are the judges' in assertion order.
 */
export const score = (c: Case, facts: RunFacts, verdicts: ReadonlyArray<Verdict>): CaseResult => {
  const judged = verdicts.map((v) => ({
    score: v._tag === "Verdict" ? v.score : 0,
    reasoning: v._tag === "Verdict" ? v.reasoning : v.reason,
    costUsd: v.costUsd
  }))
  const judgeCost = verdicts.reduce((n, v) => n + v.costUsd, 0)
  const base = {
    name: c.name,
    weight: c.weight ?? 1,
    runId: facts.runId,
    actual: facts.output ?? null,
    costUsd: facts.costUsd + judgeCost,
    verdicts: judged
  }
  if (facts.status !== "succeeded") {
    return {
      ...base,
      passed: false,
      errored: facts.status === "not started",
      score: 0,
      failures: [`run ${facts.status}${facts.error === null ? "" : `: ${facts.error}`}`]
    }
  }
  let j = 0
  const checked = c.assert.map((a) => check(a, facts, "judge" in a ? verdicts[j++] : undefined))
  const errored = checked.some((x) => x.errored === true)
  const failures = checked.flatMap((x) => (x.failure === null ? [] : [x.failure]))
  const mean = checked.length === 0 ? 1 : checked.reduce((n, x) => n + x.score, 0) / checked.length
  return { ...base, passed: failures.length === 0, errored, score: errored ? 0 : mean, failures }
}

/** The weighted mean of the cases' scores, in 0..1 (1 for no cases). */
export const suiteScore = (cases: ReadonlyArray<Pick<CaseResult, "score" | "weight">>): number => {
  const total = cases.reduce((n, c) => n + c.weight, 0)
  return total === 0 ? 1 : cases.reduce((n, c) => n + c.score * c.weight, 0) / total
}

/** Whether a score falls below its baseline by more than the tolerance. */
export const regressed = (score: number, baseline: number | null, tolerance: number): boolean =>
  baseline !== null && score + tolerance < baseline

/**
 * Problems of a suite's cases that its schema cannot see, each naming the field: duplicate case names, regexes that
 * do not compile.
 */
export const problems = (cases: ReadonlyArray<Case>): ReadonlyArray<{ field: string; message: string }> => {
  const out: Array<{ field: string; message: string }> = []
  const seen = new Set<string>()
  cases.forEach((c, i) => {
    if (seen.has(c.name)) out.push({ field: `cases[${i}].name`, message: `case '${c.name}': the name is taken` })
    seen.add(c.name)
    c.assert.forEach((a, k) => {
      if ("regex" in a) {
        try {
          new RegExp(a.regex, "u")
        } catch (e) {
          out.push({
            field: `cases[${i}].assert[${k}].regex`,
            message: `case '${c.name}': ${e instanceof Error ? e.message : "not a regular expression"}`
          })
        }
      }
    })
  })
  return out
}
