// The API's view of a run folded straight from its journal: used right after a write and whenever the
// projection has not caught up yet, so a caller always reads its own writes.
import type { RunStatus, RunView, Waiting } from "../../schema/Run.ts"
import type { Stored } from "../../schema/Envelope.ts"
import type { RunEvent } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import { decider, type State } from "./Decider.ts"
import { isWaiting, next } from "./Plan.ts"

/** The step a running run waits on, if any: a timer, an approval, a child run, or a failed step's retry backoff. */
export const waitingOf = (state: State): Waiting | null => {
  if (state.status !== "running") return null
  if (state.workflow !== null) {
    // a workflow's code decides; what it waits on is a timer, a wait for a signal or an approval it started
    const waiting = state.steps.find((s) =>
      s.status === "started" && (s.request._tag === "timer" || s.request._tag === "approval")
    )
    return waiting === undefined ? null : {
      stepId: waiting.stepId,
      kind: waiting.request._tag === "approval" ? "approval" : "sleep",
      until: waiting.wakeAt === null ? null : new Date(waiting.wakeAt).toISOString()
    }
  }
  const action = next(state)
  if (action._tag === "Execute" && action.notBefore !== null) {
    return { stepId: action.stepId, kind: "retry", until: new Date(action.notBefore).toISOString() }
  }
  const step = state.steps.find((s) => s.status === "started" && isWaiting(s.request))
  if (
    step === undefined ||
    (step.request._tag !== "sleep" && step.request._tag !== "approval" && step.request._tag !== "agent")
  ) return null
  return {
    stepId: step.stepId,
    kind: step.request._tag,
    until: step.wakeAt === null ? null : new Date(step.wakeAt).toISOString()
  }
}

export const fromStored = (stored: ReadonlyArray<Stored>): RunView | null => {
  const first = stored[0]
  const last = stored[stored.length - 1]
  if (first === undefined || last === undefined) return null
  const state: State = fold(decider, stored.map((s) => s.event as RunEvent))
  const started = first.event._tag === "RunStarted" ? first.event : undefined
  const terminal = state.status !== "running" && state.status !== "new"
  return {
    id: first.envelope.actor.id,
    status: (state.status === "new" ? "running" : state.status) as RunStatus,
    agentName: state.agentName,
    agentVersion: state.agentVersion,
    input: state.input,
    output: state.output,
    error: state.error,
    steps: state.steps.filter((s) => s.status === "completed").length,
    tokensIn: state.tokensIn,
    tokensOut: state.tokensOut,
    costUsd: state.costUsd,
    createdAt: first.envelope.at,
    updatedAt: last.envelope.at,
    finishedAt: terminal ? last.envelope.at : null,
    waiting: waitingOf(state),
    experiment: started?.experiment ?? null,
    evalRunId: started?.evalRunId ?? null
  }
}
