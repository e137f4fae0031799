// What a run does next, decided from its state alone: the durable-execution core. Replaying a journal
// through this function always yields the same next action, so a recovering host continues exactly where
// the dead one stopped, reusing every completed step's recorded result. What the driver does about that action
// at a given time is decided in actors/run/Decisions.ts.
import { createHash } from "node:crypto"
import { DEFAULT_MAX_TOKENS, type Policy, policyOf, type ToolSpec } from "../../schema/AgentSpec.ts"
import type { Request as ModelRequest } from "../model/ModelProvider.ts"
import type { ErrorInfo, ModelAnswer, StepRequest, ToolCall } from "../../schema/Events.ts"
import { ALPHABET } from "../kernel/Ids.ts"
import type { State, Step } from "./Decider.ts"
import type { Message } from "../../schema/Message.ts"

export type Action =
  /** Start (or restart) a step, not before `notBefore` (epoch ms) when a retry backoff applies. */
  | {
    readonly _tag: "Execute"
    readonly stepId: string
    readonly request: StepRequest
    readonly notBefore: number | null
  }
  /** A started step that waits for time (`until`), a human or a child run; nothing to execute. */
  | { readonly _tag: "Wait"; readonly step: Step; readonly until: number | null }
  | { readonly _tag: "Succeed"; readonly output: unknown }
  /** A loop agent's run reached its answer: journal LoopCompleted first (ADR 0055), then it succeeds. */
  | { readonly _tag: "CompleteLoop"; readonly output: unknown }
  | { readonly _tag: "Fail"; readonly error: ErrorInfo }
  | { readonly _tag: "Done" }

/**
 * Starts of one step attempt that never finished (its host died each time) before the run fails instead of
 * being redelivered forever: routine restarts should not fail runs, a step that kills its host every time must.
 */
export const MAX_UNFINISHED_STARTS = 10
/** How deep child runs may nest: a run started by a tool of a run started by a tool ... */
export const MAX_RUN_DEPTH = 5
/** The longest durable sleep a `sleep` tool call may ask for. */
export const MAX_SLEEP_SECONDS = 30 * 24 * 3600

export const modelStepId = (turn: number) => `turn-${turn}`
export const toolStepId = (turn: number, index: number) => `turn-${turn}.tool-${index}`
export const approvalStepId = (turn: number, index: number) => `${toolStepId(turn, index)}.approval`

/** The child run answering a tool call: derived from the parent's run and step, so starting it is idempotent. */
export const childRunId = (runId: string, stepId: string) => {
  const digest = createHash("sha256").update(`${runId}:${stepId}`).digest()
  let out = ""
  for (let i = 0; i < 26; i++) out += ALPHABET[digest[i]! & 31]
  return `run_${out}`
}

export type { Message } from "../../schema/Message.ts"

export const inputText = (input: unknown): string => (typeof input === "string" ? input : JSON.stringify(input))

/** Steps that wait rather than compute: they are never re-executed, only waited on again. */
export const isWaiting = (request: StepRequest) =>
  request._tag === "sleep" || request._tag === "approval" || request._tag === "agent"

const modelSteps = (s: State) => s.steps.filter((x) => x.request._tag === "model")

const answerOf = (step: Step): ModelAnswer | null => (step.result?._tag === "model" ? step.result.answer : null)

export const rejection = (by: string, reason: string) =>
  `error: call rejected by ${by}${reason === "" ? "" : `: ${reason}`}`

/** The provider request of a model step: the conversation and the spec's model, sampling, routing and output cap. */
export const modelRequest = (
  s: State,
  request: { readonly model: string },
  idempotencyKey: string,
  tenant?: string
): ModelRequest => {
  const spec = s.spec
  return {
    model: request.model,
    messages: conversation(s),
    tools: spec?.tools ?? [],
    idempotencyKey,
    maxTokens: spec?.maxTokens ?? DEFAULT_MAX_TOKENS,
    ...(tenant === undefined ? {} : { tenant }),
    ...(spec?.temperature === undefined ? {} : { temperature: spec.temperature }),
    ...(spec?.routing?.strategy === undefined ? {} : { strategy: spec.routing.strategy }),
    ...(spec?.routing?.cache === undefined ? {} : { cache: spec.routing.cache })
  }
}

/** The conversation a model sees at its next turn, rebuilt from completed steps. */
export const conversation = (s: State): ReadonlyArray<Message> => {
  const messages: Array<Message> = [
    { role: "system", content: s.spec?.systemPrompt ?? "" },
    { role: "user", content: inputText(s.input) }
  ]
  for (const step of s.steps) {
    if (step.status !== "completed" || step.result === null) continue
    const result = step.result
    if (result._tag === "model") {
      messages.push({ role: "assistant", content: result.answer.content, toolCalls: result.answer.toolCalls })
    } else if (result._tag === "tool") {
      messages.push({ role: "tool", content: result.output, toolCallId: result.callId })
    } else if (result._tag === "approval" && !result.approved && step.request._tag === "approval") {
      messages.push({ role: "tool", content: rejection(result.by, result.reason), toolCallId: step.request.call.id })
    }
  }
  return messages
}

const numberArg = (args: unknown, name: string): number => {
  const v = args !== null && typeof args === "object" ? (args as Record<string, unknown>)[name] : undefined
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : NaN
  return Number.isFinite(n) ? n : 0
}

/** The step that answers a tool call, by what the spec declares the tool to be. */
export const toolRequest = (s: State, stepId: string, call: ToolCall, tool: ToolSpec | undefined): StepRequest => {
  if (tool?.agent !== undefined)
    return { _tag: "agent", call, agentName: tool.agent, childRunId: childRunId(s.runId, stepId) }
  if (tool !== undefined && call.name === "sleep") {
    return {
      _tag: "sleep",
      call,
      seconds: Math.min(MAX_SLEEP_SECONDS, Math.max(0, numberArg(call.arguments, "seconds")))
    }
  }
  return { _tag: "tool", call }
}

/** Delay before attempt `attempt + 1` after attempt `attempt` failed; `random` in [0, 1) spreads retries. */
export const backoffMs = (policy: Policy, attempt: number, random: number) => {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (attempt - 1))
  return Math.max(0, Math.round(base * (1 + policy.jitter * (2 * random - 1))))
}

/** Whether a failure with `code` on attempt `attempt` gets another attempt under the spec's policy. */
export const shouldRetry = (s: State, code: string, attempt: number) => {
  if (s.spec === null) return false
  const policy = policyOf(s.spec)
  return policy.retryOn.includes(code) && attempt < policy.maxAttempts
}

export const next = (s: State): Action => {
  if (s.status !== "running" || s.spec === null) return { _tag: "Done" }
  // a loop run whose iteration is journaled as done ends with its output, whatever else its journal holds
  if (s.loopCompleted !== null) return { _tag: "Succeed", output: s.loopCompleted.output }
  const policy = policyOf(s.spec)
  // a step in flight when its host died, one that waits, or one that failed: continue it
  const unfinished = s.steps.find((x) => x.status !== "completed")
  if (unfinished !== undefined) {
    if (unfinished.status === "started" && isWaiting(unfinished.request)) {
      return { _tag: "Wait", step: unfinished, until: unfinished.wakeAt }
    }
    if (unfinished.status === "started" && unfinished.starts >= MAX_UNFINISHED_STARTS) {
      return {
        _tag: "Fail",
        error: {
          code: "step_abandoned",
          message: `step ${unfinished.stepId} was started ${unfinished.starts} times and never finished`
        }
      }
    }
    if (unfinished.status === "failed" && (!unfinished.retryable || unfinished.attempt >= policy.maxAttempts)) {
      return {
        _tag: "Fail",
        error: unfinished.error ?? { code: "step_failed", message: `step ${unfinished.stepId} failed` }
      }
    }
    return {
      _tag: "Execute",
      stepId: unfinished.stepId,
      request: unfinished.request,
      notBefore: unfinished.status === "failed" ? unfinished.retryAt : null
    }
  }
  const models = modelSteps(s)
  const last = models[models.length - 1]
  if (last === undefined) {
    return {
      _tag: "Execute",
      stepId: modelStepId(1),
      request: { _tag: "model", model: s.spec.model, turn: 1 },
      notBefore: null
    }
  }
  const turn = last.request._tag === "model" ? last.request.turn : models.length
  const answer = answerOf(last)
  if (answer === null)
    return { _tag: "Fail", error: { code: "invalid_journal", message: `step ${last.stepId} has no model answer` } }
  for (const [i, call] of answer.toolCalls.entries()) {
    const tool = s.spec.tools.find((t) => t.name === call.name)
    if (tool?.approval !== undefined) {
      const approvalId = approvalStepId(turn, i)
      const approval = s.steps.find((x) => x.stepId === approvalId)
      if (approval === undefined)
        return { _tag: "Execute", stepId: approvalId, request: { _tag: "approval", call }, notBefore: null }
      if (approval.result?._tag === "approval" && !approval.result.approved) continue
    }
    const stepId = toolStepId(turn, i)
    if (!s.steps.some((x) => x.stepId === stepId)) {
      return { _tag: "Execute", stepId, request: toolRequest(s, stepId, call, tool), notBefore: null }
    }
  }
  if (answer.toolCalls.length === 0) {
    return { _tag: s.spec.loop === undefined ? "Succeed" : "CompleteLoop", output: answer.content ?? "" }
  }
  if (turn >= s.spec.maxTurns) {
    return {
      _tag: "Fail",
      error: {
        code: "max_turns_exceeded",
        message: `the agent used all ${s.spec.maxTurns} turns without a final answer`
      }
    }
  }
  return {
    _tag: "Execute",
    stepId: modelStepId(turn + 1),
    request: { _tag: "model", model: s.spec.model, turn: turn + 1 },
    notBefore: null
  }
}
