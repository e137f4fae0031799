// What a run does next, decided from its state alone: the durable-execution core. Replaying a journal
// through this function always yields the same next action, so a recovering host continues exactly where
// the dead one stopped, reusing every completed step's recorded result.
import type { ErrorInfo, ModelAnswer, StepRequest, ToolCall } from "../../schema/Events.ts"
import type { State, Step } from "./Decider.ts"

export type Action =
  | { readonly _tag: "Execute"; readonly stepId: string; readonly request: StepRequest }
  | { readonly _tag: "Succeed"; readonly output: unknown }
  | { readonly _tag: "Fail"; readonly error: ErrorInfo }
  | { readonly _tag: "Done" }

/** Attempts per step before the run fails (per-step policies come with the durability work). */
export const MAX_ATTEMPTS = 3
/**
 * Starts of one step that never finished (its host died each time) before the run fails instead of being
 * redelivered forever: higher than MAX_ATTEMPTS, because routine restarts should not fail runs.
 */
export const MAX_UNFINISHED_STARTS = 10

export const modelStepId = (turn: number) => `turn-${turn}`
export const toolStepId = (turn: number, index: number) => `turn-${turn}.tool-${index}`

export interface Message {
  readonly role: "system" | "user" | "assistant" | "tool"
  readonly content: string | null
  readonly toolCalls?: ReadonlyArray<ToolCall>
  readonly toolCallId?: string
}

export const inputText = (input: unknown): string => (typeof input === "string" ? input : JSON.stringify(input))

const modelSteps = (s: State) => s.steps.filter((x) => x.request._tag === "model")

const answerOf = (step: Step): ModelAnswer | null => (step.result?._tag === "model" ? step.result.answer : null)

/** The conversation a model sees at its next turn, rebuilt from completed steps. */
export const conversation = (s: State): ReadonlyArray<Message> => {
  const messages: Array<Message> = [
    { role: "system", content: s.spec?.systemPrompt ?? "" },
    { role: "user", content: inputText(s.input) }
  ]
  for (const step of s.steps) {
    if (step.status !== "completed" || step.result === null) continue
    if (step.result._tag === "model") {
      messages.push({ role: "assistant", content: step.result.answer.content, toolCalls: step.result.answer.toolCalls })
    } else {
      messages.push({ role: "tool", content: step.result.output, toolCallId: step.result.callId })
    }
  }
  return messages
}

export const next = (s: State): Action => {
  if (s.status !== "running" || s.spec === null) return { _tag: "Done" }
  // a step in flight when its host died, or one that failed retryably: run it again
  const unfinished = s.steps.find((x) => x.status !== "completed")
  if (unfinished !== undefined) {
    if (unfinished.status === "started" && unfinished.attempt >= MAX_UNFINISHED_STARTS) {
      return {
        _tag: "Fail",
        error: { code: "step_abandoned", message: `step ${unfinished.stepId} was started ${unfinished.attempt} times and never finished` }
      }
    }
    if (unfinished.status === "failed" && (!unfinished.retryable || unfinished.attempt >= MAX_ATTEMPTS)) {
      return {
        _tag: "Fail",
        error: unfinished.error ?? { code: "step_failed", message: `step ${unfinished.stepId} failed` }
      }
    }
    return { _tag: "Execute", stepId: unfinished.stepId, request: unfinished.request }
  }
  const models = modelSteps(s)
  const last = models[models.length - 1]
  if (last === undefined) return { _tag: "Execute", stepId: modelStepId(1), request: { _tag: "model", model: s.spec.model, turn: 1 } }
  const turn = last.request._tag === "model" ? last.request.turn : models.length
  const answer = answerOf(last)
  if (answer === null) return { _tag: "Fail", error: { code: "invalid_journal", message: `step ${last.stepId} has no model answer` } }
  for (const [i, call] of answer.toolCalls.entries()) {
    const stepId = toolStepId(turn, i)
    if (!s.steps.some((x) => x.stepId === stepId)) return { _tag: "Execute", stepId, request: { _tag: "tool", call } }
  }
  if (answer.toolCalls.length === 0) return { _tag: "Succeed", output: answer.content ?? "" }
  if (turn >= s.spec.maxTurns) {
    return { _tag: "Fail", error: { code: "max_turns_exceeded", message: `the agent used all ${s.spec.maxTurns} turns without a final answer` } }
  }
  return { _tag: "Execute", stepId: modelStepId(turn + 1), request: { _tag: "model", model: s.spec.model, turn: turn + 1 } }
}
