// Replay of recorded journals (tests/fixtures/journals/*.jsonl): decode the stored lines exactly as
// Journal.read does, fold them through the actor's decider and summarise the result as behaviour.
// Shared by scripts/record-journals.ts (which writes the summaries) and tests/replay.test.ts (which checks them).
import { Cause, Effect, Exit } from "effect"
import * as AgentDecider from "../../actors/agent/Decider.ts"
import * as BudgetDecider from "../../actors/budget/Decider.ts"
import { fold } from "../../actors/kernel/Decider.ts"
import * as RunDecider from "../../actors/run/Decider.ts"
import * as Plan from "../../actors/run/Plan.ts"
import * as Envelope from "../../schema/Envelope.ts"
import type { BudgetLimits } from "../../schema/Budget.ts"
import {
  type AgentEvent,
  type BudgetEvent,
  type BudgetRefusal,
  expand,
  type Route,
  type RunEvent
} from "../../schema/Events.ts"

/** One line of a journal fixture: a stored message with its stream sequence, subject and envelope JSON. */
export interface Line {
  readonly seq: number
  readonly subject: string
  readonly data: unknown
}

export interface StepSummary {
  readonly stepId: string
  readonly attempt: number
  readonly status: string
  readonly result: string | null
  readonly error: string | null
  /** The request's kind, only for steps that wait (`sleep`, `approval`, `agent`): model and tool steps omit it. */
  readonly kind?: string
  /** Only for a decided approval: whether the call was approved. */
  readonly approved?: boolean
  /** Only when the current attempt was started more than once (its host died mid-step). */
  readonly starts?: number
  /** Only on a step whose current attempt ended with a route journaled (a model step through the router). */
  readonly route?: RouteSummary
  /** Only when a budget's hard cap failed the step: which scope and cap refused it. */
  readonly budget?: { readonly scope: string; readonly cap: string }
}

/** The router's choice without its timings and messages: the alias, the model that answered, what failed first. */
export interface RouteSummary {
  readonly alias: string
  readonly strategy: string
  readonly chosen: string | null
  readonly cached: boolean
  readonly attempts: ReadonlyArray<{ readonly provider: string; readonly model: string; readonly code: string }>
}

/** A budget refusal's figures, without its prose. */
export interface RefusalSummary {
  readonly scope: string
  readonly cap: string
  readonly limit: number
  readonly spent: number
  readonly reserved: number
  readonly requested: number
}

export interface RunSummary {
  readonly status: string
  readonly agentName: string
  readonly agentVersion: number
  readonly steps: ReadonlyArray<StepSummary>
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
  readonly output: unknown
  readonly error: { readonly code: string; readonly message: string; readonly budget?: RefusalSummary } | null
  /** Only when a provider reported them on some step: of the tokens in, those read from its prompt cache. */
  readonly cachedTokensIn?: number
  /** Only when a provider reported them on some step: of the tokens out, hidden reasoning tokens. */
  readonly reasoningTokens?: number
  /** Only on a child run: the parent step that started it. */
  readonly parent?: { readonly runId: string; readonly stepId: string; readonly depth: number }
  /** The next action's tag, with its step for Execute and Wait. */
  readonly next: { readonly _tag: string; readonly stepId?: string }
}

export interface AgentVersionSummary {
  readonly version: number
  readonly digest: string
  readonly description: string
  readonly systemPrompt: string
  readonly model: string
  readonly maxTurns: number
  readonly tools: ReadonlyArray<string>
}

export interface AgentSummary {
  readonly name: string | null
  readonly latestVersion: number | null
  readonly versions: ReadonlyArray<AgentVersionSummary>
}

export interface BudgetDaySummary {
  readonly day: string
  /** Rounded to the nano-dollar, as the budget routes show it. */
  readonly spentUsd: number
  readonly tokens: number
  readonly runs: number
  /** Soft caps alerted that day, in the order they were passed. */
  readonly alerted: ReadonlyArray<string>
}

export interface BudgetSummary {
  /** `tenant` or `agent:<name>`. */
  readonly scope: string
  readonly limits: BudgetLimits | null
  readonly setBy: string | null
  /** Oldest first. */
  readonly days: ReadonlyArray<BudgetDaySummary>
  /** Ids (`runId:stepId:attempt`) of the reservations neither settled nor released, sorted. */
  readonly open: ReadonlyArray<string>
}

export type Summary = RunSummary | AgentSummary | BudgetSummary

/** Parses a JSONL fixture; blank lines are skipped, anything else that is not a line object throws. */
export const parseJsonl = (text: string): ReadonlyArray<Line> =>
  text.split("\n").filter((l) => l.trim() !== "").map((l, i) => {
    const v = JSON.parse(l) as Partial<Line>
    if (typeof v.seq !== "number" || typeof v.subject !== "string" || v.data === undefined) {
      throw new Error(`line ${i + 1} is not {seq, subject, data}`)
    }
    return { seq: v.seq, subject: v.subject, data: v.data }
  })

export const toJsonl = (lines: ReadonlyArray<Line>): string => lines.map((l) => JSON.stringify(l)).join("\n") + "\n"

/** Decodes every line with the journal's own decoder; the first line that does not decode throws, naming it. */
export const decodeLines = (lines: ReadonlyArray<Line>): ReadonlyArray<Envelope.Stored> =>
  lines.map((l) => {
    const exit = Effect.runSyncExit(Envelope.decode(l.subject, l.seq, JSON.stringify(l.data)))
    if (Exit.isSuccess(exit)) return exit.value
    throw new Error(`seq ${l.seq} on ${l.subject} does not decode: ${Cause.pretty(exit.cause)}`)
  })

/** The actor type a journal belongs to, from its subject `lantern.<type>.<tenant>.<id>`. */
export const actorTypeOf = (subject: string): Envelope.ActorType => {
  const type = subject.split(".")[1]
  if (type !== "run" && type !== "agent" && type !== "budget")
    throw new Error(`subject ${subject} is not an actor journal`)
  return type
}

// Fields added after the first fixtures were recorded are present only where they say something, so those
// fixtures' summaries stay exactly as they were.
const summarizeRoute = (r: Route): RouteSummary => ({
  alias: r.alias,
  strategy: r.strategy,
  chosen: r.chosen,
  cached: r.cached,
  attempts: r.attempts.map((a) => ({ provider: a.provider, model: a.model, code: a.code }))
})

const summarizeRefusal = (r: BudgetRefusal): RefusalSummary => ({
  scope: r.scope,
  cap: r.cap,
  limit: r.limit,
  spent: r.spent,
  reserved: r.reserved,
  requested: r.requested
})

const summarizeStep = (s: RunDecider.Step, route: Route | undefined): StepSummary => ({
  stepId: s.stepId,
  attempt: s.attempt,
  status: s.status,
  result: s.result?._tag ?? null,
  error: s.error?.code ?? null,
  ...(Plan.isWaiting(s.request) ? { kind: s.request._tag } : {}),
  ...(s.result?._tag === "approval" ? { approved: s.result.approved } : {}),
  ...(s.starts > 1 ? { starts: s.starts } : {}),
  ...(route === undefined ? {} : { route: summarizeRoute(route) }),
  ...(s.error?.budget === undefined ? {} : { budget: { scope: s.error.budget.scope, cap: s.error.budget.cap } })
})

/**
 * What the run decider does not fold (it has no use for them): each step's route, as journaled by the event
 * that ended its current attempt, and the provider-reported token breakdowns, summed.
 */
const journaledExtras = (events: ReadonlyArray<RunEvent>) => {
  const routes = new Map<string, Route>()
  let cachedTokensIn: number | undefined
  let reasoningTokens: number | undefined
  for (const e of events.flatMap(expand)) {
    if (e._tag === "StepStarted") routes.delete(e.stepId)
    if (e._tag !== "StepCompleted" && e._tag !== "StepFailed") continue
    if (e.route !== undefined) routes.set(e.stepId, e.route)
    if (e._tag === "StepCompleted" && e.cachedTokensIn !== undefined)
      cachedTokensIn = (cachedTokensIn ?? 0) + e.cachedTokensIn
    if (e._tag === "StepCompleted" && e.reasoningTokens !== undefined)
      reasoningTokens = (reasoningTokens ?? 0) + e.reasoningTokens
  }
  return { routes, cachedTokensIn, reasoningTokens }
}

const summarizeNext = (next: Plan.Action): RunSummary["next"] =>
  next._tag === "Execute"
    ? { _tag: next._tag, stepId: next.stepId }
    : next._tag === "Wait"
    ? { _tag: next._tag, stepId: next.step.stepId }
    : { _tag: next._tag }

export const summarizeRun = (events: ReadonlyArray<RunEvent>): RunSummary => {
  const state = fold(RunDecider.decider, events)
  const extras = journaledExtras(events)
  return {
    status: state.status,
    agentName: state.agentName,
    agentVersion: state.agentVersion,
    steps: state.steps.map((s) => summarizeStep(s, extras.routes.get(s.stepId))),
    tokensIn: state.tokensIn,
    tokensOut: state.tokensOut,
    costUsd: state.costUsd,
    output: state.output,
    error: state.error === null ? null : {
      code: state.error.code,
      message: state.error.message,
      ...(state.error.budget === undefined ? {} : { budget: summarizeRefusal(state.error.budget) })
    },
    ...(extras.cachedTokensIn === undefined ? {} : { cachedTokensIn: extras.cachedTokensIn }),
    ...(extras.reasoningTokens === undefined ? {} : { reasoningTokens: extras.reasoningTokens }),
    ...(state.parent === null
      ? {}
      : { parent: { runId: state.parent.runId, stepId: state.parent.stepId, depth: state.parent.depth } }),
    next: summarizeNext(Plan.next(state))
  }
}

export const summarizeAgent = (events: ReadonlyArray<AgentEvent>): AgentSummary => {
  const state = fold(AgentDecider.decider, events)
  return {
    name: state.name,
    latestVersion: AgentDecider.latest(state)?.version ?? null,
    versions: state.versions.map((v) => ({
      version: v.version,
      digest: v.digest,
      description: v.description,
      systemPrompt: v.spec.systemPrompt,
      model: v.spec.model,
      maxTurns: v.spec.maxTurns,
      tools: v.spec.tools.map((t) => t.name)
    }))
  }
}

const nanoUsd = (usd: number) => Math.round(usd * 1e9) / 1e9

export const summarizeBudget = (events: ReadonlyArray<BudgetEvent>): BudgetSummary => {
  const state = fold(BudgetDecider.decider, events)
  return {
    scope: state.scope,
    limits: state.limits,
    setBy: state.setBy,
    days: Object.keys(state.days).sort().map((day) => {
      const d = state.days[day]!
      return { day, spentUsd: nanoUsd(d.spentUsd), tokens: d.tokens, runs: d.runs, alerted: d.alerted }
    }),
    open: Object.keys(state.open).sort()
  }
}

/** Decodes a journal fixture and summarises the state its actor's decider folds it into. */
export const summarize = (lines: ReadonlyArray<Line>): Summary => {
  const first = lines[0]
  if (first === undefined) throw new Error("empty journal")
  const type = actorTypeOf(first.subject)
  const stored = decodeLines(lines)
  for (const s of stored) {
    if (s.envelope.actor.type !== type)
      throw new Error(`seq ${s.seq}: a ${s.envelope.actor.type} event in a ${type} journal`)
  }
  const events = stored.map((s) => s.event)
  switch (type) {
    case "run":
      return summarizeRun(events as ReadonlyArray<RunEvent>)
    case "agent":
      return summarizeAgent(events as ReadonlyArray<AgentEvent>)
    case "budget":
      return summarizeBudget(events as ReadonlyArray<BudgetEvent>)
    case "audit":
      // an audit entry decides nothing: there is no state to fold it into
      throw new Error("audit journals have no decider to replay through")
    case "workload":
      throw new Error("workload journals are not among the recorded fixtures")
    case "eval":
      throw new Error("eval journals have no replay fixtures")
    case "channel":
    case "session":
    case "task":
    case "schedule":
    case "sensor":
    case "queueflow":
      throw new Error(`${type} journals have no golden fixtures yet`)
  }
}
