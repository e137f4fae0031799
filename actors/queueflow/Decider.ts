// A queue workflow's pure logic (ADR 0056): created once per (template, instanceKey); each phase is due, then its
// task submitted, then finished on the task's completion, which makes the next phase due (a new task per iteration)
// or ends the workflow; a blocked, canceled or permanently failed phase task stalls it, and the same task running
// again (an operator's retry) resumes it. Changes of tasks that are not the current phase's are ignored.
import type { QueueFlowEvent } from "../../schema/QueueFlow.ts"
import type { TaskStatus } from "../../schema/Task.ts"
import { accept, type Decider, ignore } from "../kernel/Decider.ts"
import * as Templates from "./Templates.ts"

type Created = Extract<QueueFlowEvent, { _tag: "QueueFlowCreated" }>

export interface Phase {
  readonly phase: string
  readonly iteration: number
  readonly artifactPath: string
  readonly taskId: string | null
  readonly status: "due" | "running" | "stalled" | "finished"
  readonly machineStatus: string | null
  readonly artifacts: ReadonlyArray<string>
}

export interface Flow {
  readonly created: Created | null
  readonly status: "running" | "stalled" | "complete" | "failed"
  /** Every phase so far, in order; the last is the current one while the workflow runs. */
  readonly phases: ReadonlyArray<Phase>
  readonly result: string | null
  readonly reason: string | null
}

export type Command =
  | { readonly _tag: "Create"; readonly event: Omit<Created, "_tag"> }
  | { readonly _tag: "RecordSubmitted"; readonly phase: string; readonly iteration: number; readonly taskId: string }
  /** The queue refused the due phase's task (an unknown agent, a bad adapter): nothing can run it. */
  | { readonly _tag: "RefuseSubmission"; readonly phase: string; readonly iteration: number; readonly reason: string }
  | {
    readonly _tag: "TaskChanged"
    readonly taskId: string
    readonly status: TaskStatus
    readonly machineStatus: string | null
    readonly reason: string | null
    readonly artifacts: ReadonlyArray<string>
  }

export const initialState: Flow = { created: null, status: "running", phases: [], result: null, reason: null }

/** The phase the workflow is at (the last one), while it has not ended. */
export const current = (flow: Flow): Phase | null =>
  flow.created === null || flow.status === "complete" || flow.status === "failed"
    ? null
    : flow.phases[flow.phases.length - 1] ?? null

const STALLING: ReadonlySet<TaskStatus> = new Set(["blocked", "canceled", "permanent_failure"])
const LIVE: ReadonlySet<TaskStatus> = new Set(["pending", "running", "retryable_failure"])

export const decide = (command: Command, flow: Flow) => {
  switch (command._tag) {
    case "Create": {
      if (flow.created !== null) return ignore
      const template = Templates.find(command.event.template)
      if (template === undefined) return ignore
      return accept<QueueFlowEvent>(
        { _tag: "QueueFlowCreated", ...command.event },
        {
          _tag: "QueueFlowPhaseDue",
          phase: template.first,
          iteration: 1,
          artifactPath: template.artifactPath(command.event.base, template.first, 1)
        }
      )
    }
    case "RecordSubmitted": {
      const at = current(flow)
      if (at === null || at.taskId !== null || at.phase !== command.phase || at.iteration !== command.iteration) {
        return ignore
      }
      return accept<QueueFlowEvent>({
        _tag: "QueueFlowPhaseSubmitted",
        phase: command.phase,
        iteration: command.iteration,
        taskId: command.taskId
      })
    }
    case "RefuseSubmission": {
      const at = current(flow)
      if (at === null || at.taskId !== null || at.phase !== command.phase || at.iteration !== command.iteration) {
        return ignore
      }
      return accept<QueueFlowEvent>({
        _tag: "QueueFlowEnded",
        status: "failed",
        result: "task_refused",
        reason: `the queue refused the ${at.phase} ${at.iteration} task: ${command.reason}`
      })
    }
    case "TaskChanged": {
      const at = current(flow)
      if (at === null || at.taskId !== command.taskId || flow.created === null) return ignore
      const where = { phase: at.phase, iteration: at.iteration, taskId: at.taskId }
      if (STALLING.has(command.status)) {
        if (flow.status === "stalled") return ignore
        return accept<QueueFlowEvent>({
          _tag: "QueueFlowStalled",
          ...where,
          taskStatus: command.status,
          reason: `${at.phase} ${at.iteration} task ${at.taskId} is ${command.status}${
            command.reason === null ? "" : `: ${command.reason}`
          }`
        })
      }
      if (LIVE.has(command.status)) {
        return flow.status === "stalled"
          ? accept<QueueFlowEvent>({ _tag: "QueueFlowResumed", ...where, taskStatus: command.status })
          : ignore
      }
      // completed: a task retried and finished before its running was seen resumes and finishes at once
      const template = Templates.find(flow.created.template)!
      const machineStatus = command.machineStatus ?? "ok"
      const events: Array<QueueFlowEvent> = []
      if (flow.status === "stalled") events.push({ _tag: "QueueFlowResumed", ...where, taskStatus: command.status })
      events.push({ _tag: "QueueFlowPhaseFinished", ...where, machineStatus, artifacts: [...command.artifacts] })
      const step = template.next(at.phase, at.iteration, machineStatus, flow.created.maxIterations)
      events.push(
        step._tag === "Phase"
          ? {
            _tag: "QueueFlowPhaseDue",
            phase: step.phase,
            iteration: step.iteration,
            artifactPath: template.artifactPath(flow.created.base, step.phase, step.iteration)
          }
          : { _tag: "QueueFlowEnded", status: step.status, result: step.result, reason: step.reason }
      )
      return accept(...events)
    }
  }
}

const updateLast = (flow: Flow, f: (p: Phase) => Phase): Flow => {
  const last = flow.phases[flow.phases.length - 1]
  return last === undefined ? flow : { ...flow, phases: [...flow.phases.slice(0, -1), f(last)] }
}

export const evolve = (flow: Flow, e: QueueFlowEvent): Flow => {
  switch (e._tag) {
    case "QueueFlowCreated":
      return { ...flow, created: e }
    case "QueueFlowPhaseDue":
      return {
        ...flow,
        phases: [...flow.phases, {
          phase: e.phase,
          iteration: e.iteration,
          artifactPath: e.artifactPath,
          taskId: null,
          status: "due",
          machineStatus: null,
          artifacts: []
        }]
      }
    case "QueueFlowPhaseSubmitted":
      return updateLast(flow, (p) => ({ ...p, taskId: e.taskId, status: "running" }))
    case "QueueFlowPhaseFinished":
      return updateLast({ ...flow, status: "running" }, (p) => ({
        ...p,
        status: "finished",
        machineStatus: e.machineStatus,
        artifacts: e.artifacts
      }))
    case "QueueFlowStalled":
      return updateLast({ ...flow, status: "stalled", reason: e.reason }, (p) => ({ ...p, status: "stalled" }))
    case "QueueFlowResumed":
      return updateLast({ ...flow, status: "running", reason: null }, (p) => ({ ...p, status: "running" }))
    case "QueueFlowEnded":
      return { ...flow, status: e.status, result: e.result, reason: e.reason }
    default:
      return flow
  }
}

export const decider: Decider<Flow, Command, QueueFlowEvent, never> = {
  initialState,
  decide,
  evolve,
  snapshot: { version: 1 }
}

// ---- a queue snapshot: lantern.queueflow.<tenant>.<snp id>, taken once ----

type Taken = Extract<QueueFlowEvent, { _tag: "QueueSnapshotTaken" }>

export const snapshot: Decider<
  Taken | null,
  { readonly _tag: "Take"; readonly event: Omit<Taken, "_tag"> },
  QueueFlowEvent,
  never
> = {
  initialState: null,
  decide: (command, state) =>
    state !== null ? ignore : accept<QueueFlowEvent>({ _tag: "QueueSnapshotTaken", ...command.event }),
  evolve: (state, e) => (e._tag === "QueueSnapshotTaken" ? e : state)
}
