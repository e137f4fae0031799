// What the driver does next for a run at a given time, as data: `decide` turns Plan's next action into a decision
// (start a step, start a child, sleep, park, expire an approval, complete a timer, refuse, end the run) that the
// driver carries out (actors/run/Interpret.ts); the results of its effects come back through `afterStart`,
// `afterChild` and `afterCall` as the commands to journal. Every limit, expiry and retry is decided here.
import { policyOf } from "../../schema/AgentSpec.ts"
import type { RunCommand } from "../../schema/Commands.ts"
import type { ProviderError, ProviderErrorKind } from "../../schema/Errors.ts"
import type { StepRequest } from "../../schema/Events.ts"
import type * as StepOutcome from "../../schema/StepOutcome.ts"
import type { BudgetRefusal, ErrorInfo, Route, ToolCall } from "../../schema/StepOutcome.ts"
import * as Tools from "../model/Tools.ts"
import { decide as decideRun, evolve, type Parent, type State, type Step, stepOf } from "./Decider.ts"
import { backoffMs, MAX_RUN_DEPTH, next, shouldRetry } from "./Plan.ts"

/** Waits shorter than this are slept through holding the lease; longer ones park the run. */
export const PARK_AFTER_MS = 2_000
/** A run waiting for a child re-checks it this often, in case the child's wake-up was lost. */
export const CHILD_POLL_MS = 60_000
/** Decisions one drive takes at most before it is taken for a bug (a run that never ends or waits). */
export const MAX_DECISIONS = 10_000
/** The code a step or run fails with when one of its events is too large for the bus. */
export const PAYLOAD_TOO_LARGE = "payload_too_large"

type AgentRequest = Extract<StepRequest, { readonly _tag: "agent" }>
type StartStep = Extract<RunCommand, { readonly _tag: "StartStep" }>
export type CompleteStep = Extract<RunCommand, { readonly _tag: "CompleteStep" }>
type FailStep = Extract<RunCommand, { readonly _tag: "FailStep" }>

/** What a model or tool call produced, to be journaled with its step's completion. */
export type Performed = StepOutcome.Performed

/** Why a model or tool call gave no result. */
export interface Failure extends Pick<StepOutcome.StepFailure, "error" | "route"> {
  /** The least wait before another attempt, as the provider asked (`Retry-After`) or its breaker needs. */
  readonly retryAfterMs?: number
}

export type Decision =
  /** The run ended (or never started): nothing is left to do. */
  | { readonly _tag: "Finish" }
  /** Journal the run's output. */
  | { readonly _tag: "Succeed"; readonly command: RunCommand }
  /** Journal that a loop agent's run did its iteration (ADR 0055); it succeeds next. */
  | { readonly _tag: "CompleteLoop"; readonly command: RunCommand }
  /** Journal the run's failure: a step failed for good, the turns ran out, a step kills its host. */
  | { readonly _tag: "Fail"; readonly command: RunCommand }
  /** A wait short enough to sleep through holding the lease (a timer, a retry backoff). */
  | { readonly _tag: "Sleep"; readonly until: number }
  /** A longer wait: hand the lease back until `until`. */
  | { readonly _tag: "Park"; readonly until: number }
  /** A durable timer fired: complete its sleep step. */
  | { readonly _tag: "CompleteSleep"; readonly command: RunCommand }
  /** Nobody decided an approval before it expired: fail its step (and so the run). */
  | { readonly _tag: "ExpireApproval"; readonly command: RunCommand }
  /** A child run would nest too deep: answer its call with an error and start nothing. */
  | { readonly _tag: "RefuseChild"; readonly command: RunCommand }
  /** Start the child run answering an agent step, or find it started (its id is derived, so this is idempotent). */
  | {
    readonly _tag: "StartChild"
    readonly step: Step
    readonly runId: string
    readonly agentName: string
    readonly input: unknown
    readonly parent: Omit<Parent, "tenant">
  }
  /**
   * Journal a step's start. `toolCallsMade` is set for a tool call not started before: the budget must admit one
   * more tool call past that many before it starts.
   */
  | { readonly _tag: "Start"; readonly command: StartStep; readonly toolCallsMade: number | null }

/** The steps that answer a model's tool calls, counted against `maxToolCallsPerRun`. */
export const isToolCall = (request: StepRequest) =>
  request._tag === "tool" || request._tag === "sleep" || request._tag === "agent"
export const toolCallsOf = (state: State) => state.steps.filter((s) => isToolCall(s.request)).length

/** The error of a step or run a budget's hard cap refused. */
export const budgetError = (refusal: BudgetRefusal): ErrorInfo => ({
  code: "budget_exceeded",
  message: refusal.reason,
  budget: refusal
})

/** Waiting until `until` from `now`: slept through when short, parked when long. */
const waitUntil = (until: number, now: number): Decision =>
  until - now > PARK_AFTER_MS ? { _tag: "Park", until } : { _tag: "Sleep", until }

/** When a waiting step is due: a timer's fire time, an approval's expiry. */
export const wakeAtFor = (state: State, request: StepRequest, now: number): number | undefined => {
  if (request._tag === "sleep") return now + Math.round(request.seconds * 1000)
  if (request._tag === "approval") {
    const tool = state.spec?.tools.find((t) => t.name === request.call.name)
    return tool?.approval === undefined ? undefined : now + tool.approval.expiresInSeconds * 1000
  }
  return undefined
}

export const completeStep = (step: Step, p: Performed, durationMs: number): CompleteStep => ({
  _tag: "CompleteStep",
  stepId: step.stepId,
  attempt: step.attempt,
  result: p.result,
  tokensIn: p.tokensIn,
  tokensOut: p.tokensOut,
  costUsd: p.costUsd,
  durationMs,
  ...(p.cachedTokensIn === undefined ? {} : { cachedTokensIn: p.cachedTokensIn }),
  ...(p.reasoningTokens === undefined ? {} : { reasoningTokens: p.reasoningTokens }),
  ...(p.route === undefined ? {} : { route: p.route })
})

export const failStep = (step: Step, error: ErrorInfo, retryAt: number | null, route?: Route): FailStep => ({
  _tag: "FailStep",
  stepId: step.stepId,
  attempt: step.attempt,
  error,
  retryable: retryAt !== null,
  ...(retryAt === null ? {} : { retryAt }),
  ...(route === undefined ? {} : { route })
})

/** A tool call's output, free and instant: what a timer, a refused child or a built-in tool answers. */
export const toolOutput = (call: ToolCall, output: string): Performed => ({
  result: { _tag: "tool", callId: call.id, output },
  tokensIn: 0,
  tokensOut: 0,
  costUsd: 0
})

/** A waiting step that is still waiting, or due now. */
const decideWait = (state: State, step: Step, now: number): Decision => {
  const request = step.request
  if (request._tag === "agent") {
    const depth = (state.parent?.depth ?? 0) + 1
    if (depth > MAX_RUN_DEPTH) {
      const output = `error: child runs nest at most ${MAX_RUN_DEPTH} deep; ${request.agentName} was not started`
      return { _tag: "RefuseChild", command: completeStep(step, toolOutput(request.call, output), 0) }
    }
    return {
      _tag: "StartChild",
      step,
      runId: request.childRunId,
      agentName: request.agentName,
      input: request.call.arguments,
      parent: { runId: state.runId, stepId: step.stepId, depth }
    }
  }
  const until = step.wakeAt ?? now + CHILD_POLL_MS
  if (until > now) return waitUntil(until, now)
  if (request._tag === "approval") {
    return {
      _tag: "ExpireApproval",
      command: failStep(step, {
        code: "approval_expired",
        message: `nobody approved step ${step.stepId} before it expired`
      }, null)
    }
  }
  if (request._tag === "sleep") {
    return {
      _tag: "CompleteSleep",
      command: completeStep(
        step,
        toolOutput(request.call, `slept ${request.seconds} seconds`),
        Math.round(request.seconds * 1000)
      )
    }
  }
  return { _tag: "Park", until: now + CHILD_POLL_MS }
}

/** What the driver does next for a run in `state` at `now` (epoch ms). */
export const decide = (state: State, now: number): Decision => {
  const action = next(state)
  switch (action._tag) {
    case "Done":
      return { _tag: "Finish" }
    case "Succeed":
      return { _tag: "Succeed", command: { _tag: "SucceedRun", output: action.output } }
    case "CompleteLoop":
      return { _tag: "CompleteLoop", command: { _tag: "CompleteLoop", output: action.output } }
    case "Fail":
      return { _tag: "Fail", command: { _tag: "FailRun", error: action.error } }
    case "Wait":
      return decideWait(state, action.step, now)
    case "Execute": {
      if (action.notBefore !== null && action.notBefore > now) return waitUntil(action.notBefore, now)
      const wakeAt = wakeAtFor(state, action.request, now)
      return {
        _tag: "Start",
        command: {
          _tag: "StartStep",
          stepId: action.stepId,
          request: action.request,
          ...(wakeAt === undefined ? {} : { wakeAt })
        },
        toolCallsMade: isToolCall(action.request) && stepOf(state, action.stepId) === undefined
          ? toolCallsOf(state)
          : null
      }
    }
  }
}

/** What a step just started by this host needs: a model call, a tool call, or nothing (it waits). */
export type Call =
  | { readonly _tag: "Wait"; readonly step: Step }
  | {
    readonly _tag: "CallModel"
    readonly step: Step
    readonly request: { readonly model: string }
    /** `runId:stepId:attempt`: the call's idempotency key and its budget reservation's id. */
    readonly key: string
    readonly timeoutMs: number
    /** When the call's reservation stops counting: past the step's timeout and the lease's time to live, its host is dead. */
    readonly reserveUntil: number
    /** What the run used before this call, for its per-run caps. */
    readonly usage: { readonly costUsd: number; readonly tokens: number; readonly toolCalls: number }
  }
  | { readonly _tag: "CallTool"; readonly step: Step; readonly call: ToolCall; readonly key: string }

/** The call a step needs after its start was journaled; null when it is not in flight (it ended, or the run did). */
export const afterStart = (state: State, stepId: string, now: number, leaseTtlMs: number): Call | null => {
  const step = stepOf(state, stepId)
  if (step === undefined || step.status !== "started" || state.spec === null) return null
  const key = `${state.runId}:${stepId}:${step.attempt}`
  const request = step.request
  switch (request._tag) {
    case "model": {
      const timeoutMs = policyOf(state.spec).stepTimeoutMs
      return {
        _tag: "CallModel",
        step,
        request,
        key,
        timeoutMs,
        reserveUntil: now + timeoutMs + leaseTtlMs,
        usage: { costUsd: state.costUsd, tokens: state.tokensIn + state.tokensOut, toolCalls: toolCallsOf(state) }
      }
    }
    case "tool":
      return { _tag: "CallTool", step, call: request.call, key }
    default:
      return { _tag: "Wait", step }
  }
}

/**
 * The call of a step that is local and deterministic (a built-in tool), when `start` starts it anew: it is
 * performed before anything is journaled and written once, as `completeLocal` (one write instead of two; a crash
 * before the write performs it again, to the same result). Null for any other step, which starts as usual.
 */
export const local = (
  state: State,
  start: Extract<RunCommand, { _tag: "StartStep" }>,
  now: number,
  leaseTtlMs: number
): Extract<Call, { _tag: "CallTool" }> | null => {
  if (start.request._tag !== "tool" || !Tools.isLocal(start.request.call.name)) return null
  if (stepOf(state, start.stepId) !== undefined) return null
  const started = startedBy(state, start)
  const call = started === null ? null : afterStart(started, start.stepId, now, leaseTtlMs)
  return call?._tag === "CallTool" ? call : null
}

/**
 * The state `start`'s StepStarted will make, folded without waiting for the append (the run decider is pure): what
 * a step's call is decided on while that StepStarted is being appended (ADR 0083). Null when the command journals
 * no start.
 */
export const startedBy = (state: State, start: Extract<RunCommand, { _tag: "StartStep" }>): State | null => {
  const decided = decideRun(start, state)
  if (decided._tag !== "Success" || decided.success.length !== 1) return null
  return evolve(state, decided.success[0]!)
}

/**
 * The call `start` leads to, and the state its StepStarted will make, which the call is decided on: made while that
 * StepStarted is appended, instead of after (ADR 0083). Null when the command journals no start, or its step makes
 * no call (a wait, an approval, a timer).
 */
export const callOnStart = (
  state: State,
  start: Extract<RunCommand, { _tag: "StartStep" }>,
  now: number,
  leaseTtlMs: number
): { readonly call: Exclude<Call, { _tag: "Wait" }>; readonly state: State } | null => {
  const started = startedBy(state, start)
  const call = started === null ? null : afterStart(started, start.stepId, now, leaseTtlMs)
  return call === null || call._tag === "Wait" ? null : { call, state: started! }
}

/** A local step's completion, carrying its request (it was never started separately). */
export type LocalCompletion = CompleteStep & { readonly request: StepRequest }

/** A local step's one event: its completion, carrying its request (it was never started separately). */
export const completeLocal = (step: Step, p: Performed, durationMs: number): LocalCompletion => ({
  ...completeStep(step, p, durationMs),
  request: step.request
})

/**
 * The state once completions not yet journaled are, as the run decider will fold them: what the next local step of
 * the same batch is decided on (ADR 0067, 0075).
 */
export const afterLocal = (state: State, done: ReadonlyArray<CompleteStep>): State =>
  done.reduce((s, { _tag, ...fields }) => evolve(s, { _tag: "StepCompleted", ...fields }), state)

/**
 * Completions performed together, as the one command that journals them: a single step's CompleteStep (one
 * StepCompleted, ADR 0032), or CompleteSteps (one StepsCompleted): local steps (ADR 0067), led by the completion of
 * the model step that asked for them when there is one (ADR 0075).
 */
export const completeLocals = (done: ReadonlyArray<CompleteStep>): RunCommand =>
  done.length === 1
    ? done[0]!
    : { _tag: "CompleteSteps", steps: done.map(({ _tag, ...fields }) => fields) }

/** The refusal of a tool call by a hard `maxToolCallsPerRun`: the run fails, the call never starts. */
export const refuseToolCall = (refusal: BudgetRefusal): RunCommand => ({ _tag: "FailRun", error: budgetError(refusal) })

/** The refusal of a model call's reservation by a hard cap: the step fails for good. */
export const refuseCall = (step: Step, refusal: BudgetRefusal): FailStep => failStep(step, budgetError(refusal), null)

/** What happened when the driver asked for a child run. */
export type ChildOutcome =
  | { readonly _tag: "Started"; readonly child: State }
  /** The agent (or its version) does not exist: the model reads why. */
  | { readonly _tag: "NotFound"; readonly message: string }
  /** The child's start would not fit on the bus. */
  | { readonly _tag: "TooLarge"; readonly message: string }

/** The child run's answer to its parent's step, or a park until the child ends (it wakes the parent then). */
export const afterChild = (step: Step, outcome: ChildOutcome, now: number): Decision | RunCommand => {
  const request = step.request as AgentRequest
  switch (outcome._tag) {
    case "TooLarge":
      return failStep(step, tooLargeError(`the input of child run ${request.childRunId}`, outcome.message), null)
    case "NotFound":
      return completeStep(step, toolOutput(request.call, `error: ${outcome.message}`), 0)
    case "Started": {
      const c = outcome.child
      if (c.status !== "succeeded" && c.status !== "failed" && c.status !== "canceled")
        return { _tag: "Park", until: now + CHILD_POLL_MS }
      const output = c.status === "succeeded"
        ? (typeof c.output === "string" ? c.output : JSON.stringify(c.output))
        : `error: child run ${c.runId} ${c.status}: ${c.error?.message ?? ""}`
      return completeStep(step, {
        ...toolOutput(request.call, output),
        tokensIn: c.tokensIn,
        tokensOut: c.tokensOut,
        costUsd: c.costUsd
      }, 0)
    }
  }
}

/**
 * A call's end as the step's completion, or its failure with the retry the policy gives it: not before a backoff
 * from `finishedAt` spread by `random` in [0, 1), nor before the wait the provider asked for.
 */
export const afterCall = (
  state: State,
  step: Step,
  outcome: { readonly _tag: "Performed"; readonly performed: Performed } | {
    readonly _tag: "Failed"
    readonly failure: Failure
  },
  startedAt: number,
  finishedAt: number,
  random: number
): CompleteStep | FailStep => {
  if (outcome._tag === "Performed") return completeStep(step, outcome.performed, finishedAt - startedAt)
  const { error, retryAfterMs, route } = outcome.failure
  const retryAt = shouldRetry(state, error.code, step.attempt)
    ? finishedAt + Math.max(backoffMs(policyOf(state.spec!), step.attempt, random), retryAfterMs ?? 0)
    : null
  return failStep(step, error, retryAt, route)
}

/**
 * The error code a provider failure is filed under, which the retry policy's `retryOn` refers to. A provider's
 * timeout is filed as `provider_unavailable` (as journals have always had it); the step's own deadline is `timeout`.
 */
export const codeOf = (e: ProviderError): string => STEP_CODE[e.kind]

const STEP_CODE: Record<ProviderErrorKind, string> = {
  rate_limited: "rate_limited",
  timeout: "provider_unavailable",
  unavailable: "provider_unavailable",
  refused: "provider_error"
}

/** The error a step or run fails with for an event too large for the bus: the sizes only, never the payload. */
export const tooLargeError = (what: string, message: string): ErrorInfo => ({
  code: PAYLOAD_TOO_LARGE,
  message: `${what} is too large to journal: ${message}`
})

/** What of a run a command would journal, for the message of a refusal of its event. */
const whatOf = (command: RunCommand): string => {
  switch (command._tag) {
    case "CompleteStep":
      return `the result of step ${command.stepId}`
    case "CompleteSteps":
      return `the results of steps ${command.steps.map((s) => s.stepId).join(", ")}`
    case "FailStep":
      return `the error of step ${command.stepId}`
    case "StartStep":
      return `the request of step ${command.stepId}`
    case "SucceedRun":
      return "the run's output"
    case "FailRun":
      return "the run's error"
    default:
      return "an event of the run"
  }
}

/**
 * What to journal instead of a command whose event is too large for the bus (it would be as large on every retry):
 * a step's completion or failure becomes a small StepFailed (payload_too_large, not retryable), anything else
 * fails the run. Either way the run ends; the step's effect is not performed again.
 */
export const whenTooLarge = (command: RunCommand, message: string): RunCommand => {
  const error = tooLargeError(whatOf(command), message)
  return command._tag === "CompleteStep" || command._tag === "FailStep"
    ? { _tag: "FailStep", stepId: command.stepId, attempt: command.attempt, error, retryable: false }
    : { _tag: "FailRun", error }
}

/** The idempotency key a command is journaled under: a retried append of the same decision is dropped as a duplicate. */
export const keyOf = (runId: string, command: RunCommand): string | ((seq: number) => string) => {
  switch (command._tag) {
    case "StartStep":
      return (seq) => `${runId}:${command.stepId}:start@${seq}`
    case "CompleteStep":
      return `${runId}:${command.stepId}:${command.attempt}:completed`
    case "CompleteSteps":
      // the steps of a batch follow one another in the plan: its first and last name it
      return `${runId}:${command.steps[0]?.stepId}..${command.steps[command.steps.length - 1]?.stepId}:completed`
    case "FailStep":
      return `${runId}:${command.stepId}:${command.attempt}:failed`
    case "SucceedRun":
      return `${runId}:succeeded`
    case "FailRun":
      return `${runId}:failed`
    case "CompleteLoop":
      return `${runId}:loop-completed`
    default:
      return `${runId}:${command._tag}`
  }
}
