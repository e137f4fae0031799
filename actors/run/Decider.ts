// The run actor's pure logic: a run starts pinned to one agent version, journals every step as
// StepStarted → StepCompleted | StepFailed (a local step as its completion alone, local steps performed together as
// one StepsCompleted), and ends exactly once (succeeded, failed or canceled).
// A step restarted after its host died keeps its attempt number (and so its idempotency key); only a retry
// after a journaled failure is a new attempt.
import type { ResolvedSpec } from "../../schema/AgentSpec.ts"
import type { RunCommand } from "../../schema/Commands.ts"
import {
  IdempotencyKeyReused,
  InvalidCommand,
  NotAwaitingApproval,
  RunAlreadyFinished,
  RunNotFound,
  StepNotFound
} from "../../schema/Errors.ts"
import {
  completionsOf,
  type ErrorInfo,
  type RunEvent,
  type StepRequest,
  type StepResult,
  type RunSucceeded,
  type StepsCompleted,
  type WorkflowRef
} from "../../schema/Events.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"

export type Status = "new" | "running" | "succeeded" | "failed" | "canceled"

export interface Step {
  readonly stepId: string
  readonly request: StepRequest
  readonly attempt: number
  /** How many times the current attempt was started: more than one means its host died mid-step. */
  readonly starts: number
  readonly status: "started" | "completed" | "failed"
  readonly result: StepResult | null
  readonly error: ErrorInfo | null
  readonly retryable: boolean
  /** Epoch ms when a waiting step (timer, approval) is due. */
  readonly wakeAt: number | null
  /** Epoch ms before which a retry must not start. */
  readonly retryAt: number | null
}

export interface Parent {
  readonly tenant: string
  readonly runId: string
  readonly stepId: string
  readonly depth: number
}

export interface State {
  readonly status: Status
  readonly runId: string
  readonly agentName: string
  readonly agentVersion: number
  readonly spec: ResolvedSpec | null
  readonly input: unknown
  readonly requestDigest: string
  readonly parent: Parent | null
  /** A code-first workflow's run: which workflow, at which version of its code; null for an agent's run. */
  readonly workflow: WorkflowRef | null
  /** Steps in the order they were first started. */
  readonly steps: ReadonlyArray<Step>
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
  readonly output: unknown
  readonly error: ErrorInfo | null
  /** A loop agent's run whose iteration is done (LoopCompleted, ADR 0055): what it succeeds with, on any re-drive. */
  readonly loopCompleted: { readonly output: unknown } | null
}

export const initialState: State = {
  status: "new",
  runId: "",
  agentName: "",
  agentVersion: 0,
  spec: null,
  input: null,
  requestDigest: "",
  parent: null,
  workflow: null,
  steps: [],
  tokensIn: 0,
  tokensOut: 0,
  costUsd: 0,
  output: null,
  error: null,
  loopCompleted: null
}

export type Error =
  | IdempotencyKeyReused
  | InvalidCommand
  | NotAwaitingApproval
  | RunAlreadyFinished
  | RunNotFound
  | StepNotFound

export const isTerminal = (s: State) => s.status === "succeeded" || s.status === "failed" || s.status === "canceled"

export const stepOf = (s: State, stepId: string) => s.steps.find((x) => x.stepId === stepId)

const refuse = (command: RunCommand, reason: string) => reject(new InvalidCommand({ command: command._tag, reason }))

/** Whether `step` is started and not ended at `attempt`: what a completion without a request may complete (ADR 0075). */
const inFlight = (step: Step | undefined, attempt: number): boolean =>
  step?.status === "started" && step.attempt === attempt

export const decide = (command: RunCommand, state: State) => {
  if (command._tag === "StartRun") {
    if (state.status === "new") {
      const { _tag, ...fields } = command
      return accept<RunEvent>({ _tag: "RunStarted", ...fields })
    }
    return command.requestDigest === state.requestDigest
      ? ignore
      : reject(new IdempotencyKeyReused({ key: command.runId }))
  }
  if (state.status === "new") return reject(new RunNotFound({ id: "" }))
  if (command._tag === "CancelRun") {
    if (isTerminal(state)) return reject(new RunAlreadyFinished({ id: state.runId, status: state.status }))
    return accept<RunEvent>({ _tag: "RunCanceled", reason: command.reason, by: command.by })
  }
  if (isTerminal(state)) {
    // a driver that lost a race with a cancel (or a duplicate driver) must stop, not write
    const same = (command._tag === "SucceedRun" && state.status === "succeeded") ||
      (command._tag === "FailRun" && state.status === "failed")
    return same ? ignore : reject(new RunAlreadyFinished({ id: state.runId, status: state.status }))
  }
  switch (command._tag) {
    case "StartStep": {
      const step = stepOf(state, command.stepId)
      if (step?.status === "completed") return ignore
      // a step whose host died restarts the same attempt (same idempotency key); a failed one starts the next
      const attempt = step === undefined ? 1 : step.status === "failed" ? step.attempt + 1 : step.attempt
      const wakeAt = step?.status === "started" ? step.wakeAt : command.wakeAt ?? null
      return accept<RunEvent>({
        _tag: "StepStarted",
        stepId: command.stepId,
        attempt,
        request: step?.request ?? command.request,
        ...(wakeAt === null ? {} : { wakeAt })
      })
    }
    case "DecideApproval": {
      const step = stepOf(state, command.stepId)
      if (step === undefined || step.request._tag !== "approval") {
        return reject(new StepNotFound({ runId: state.runId, stepId: command.stepId }))
      }
      if (step.status !== "started") {
        return reject(
          new NotAwaitingApproval({ runId: state.runId, stepId: command.stepId, reason: `it is ${step.status}` })
        )
      }
      return accept<RunEvent>({
        _tag: "StepCompleted",
        stepId: command.stepId,
        attempt: step.attempt,
        result: { _tag: "approval", approved: command.approved, by: command.by, reason: command.reason },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        durationMs: command.durationMs
      })
    }
    case "CompleteStep": {
      const step = stepOf(state, command.stepId)
      if (step === undefined) {
        // a local step, performed before it was journaled: its one event carries its request
        if (command.request !== undefined && command.attempt === 1) {
          const { _tag, ...fields } = command
          return accept<RunEvent>({ _tag: "StepCompleted", ...fields })
        }
        return refuse(command, `step ${command.stepId} was never started`)
      }
      if (step.status === "completed" && step.attempt === command.attempt) return ignore
      if (step.status !== "started" || step.attempt !== command.attempt) {
        return refuse(command, `step ${command.stepId} attempt ${command.attempt} is not in flight`)
      }
      const { _tag, ...fields } = command
      return accept<RunEvent>({ _tag: "StepCompleted", ...fields })
    }
    case "CompleteSteps": {
      // local steps performed together (ADR 0067): each new, as a CompleteStep with its request would need, and
      // first, without a request, possibly the completion of the step in flight that asked for them (ADR 0075);
      // one already completed by this very attempt was written before (a retried append) and is left out
      const fresh: Array<StepsCompleted["steps"][number]> = []
      for (const [i, step] of command.steps.entries()) {
        const known = stepOf(state, step.stepId)
        if (known?.status === "completed" && known.attempt === step.attempt) continue
        if (step.request === undefined) {
          if (i !== 0 || !inFlight(known, step.attempt)) {
            return refuse(command, `step ${step.stepId} attempt ${step.attempt} is not in flight`)
          }
        } else if (known !== undefined || step.attempt !== 1 || fresh.some((f) => f.stepId === step.stepId)) {
          return refuse(command, `step ${step.stepId} is not a local step never started`)
        }
        fresh.push(step)
      }
      if (fresh.length === 0) return ignore
      return accept<RunEvent>(
        fresh.length === 1 ? { _tag: "StepCompleted", ...fresh[0]! } : { _tag: "StepsCompleted", steps: fresh }
      )
    }
    case "FailStep": {
      const step = stepOf(state, command.stepId)
      if (step === undefined || step.status !== "started" || step.attempt !== command.attempt) {
        return refuse(command, `step ${command.stepId} attempt ${command.attempt} is not in flight`)
      }
      const { _tag, ...fields } = command
      return accept<RunEvent>({ _tag: "StepFailed", ...fields })
    }
    case "CompleteLoop":
      return state.loopCompleted !== null ? ignore : accept<RunEvent>({ _tag: "LoopCompleted", output: command.output })
    case "SucceedRun": {
      // with the completion of the step in flight whose answer ended the run (ADR 0077): one already journaled by
      // this attempt (a retried append) is left out, anything else is refused
      const fresh: Array<NonNullable<RunSucceeded["steps"]>[number]> = []
      for (const step of command.steps ?? []) {
        const known = stepOf(state, step.stepId)
        if (known?.status === "completed" && known.attempt === step.attempt) continue
        if (!inFlight(known, step.attempt) || fresh.length > 0) {
          return refuse(command, `step ${step.stepId} attempt ${step.attempt} is not in flight`)
        }
        fresh.push(step)
      }
      return accept<RunEvent>(
        fresh.length === 0
          ? { _tag: "RunSucceeded", output: command.output }
          : { _tag: "RunSucceeded", output: command.output, steps: fresh }
      )
    }
    case "FailRun":
      return accept<RunEvent>({ _tag: "RunFailed", error: command.error })
  }
}

const updateStep = (state: State, stepId: string, f: (s: Step) => Step): ReadonlyArray<Step> =>
  state.steps.map((s) => (s.stepId === stepId ? f(s) : s))

export const evolve = (state: State, event: RunEvent): State => {
  switch (event._tag) {
    case "RunStarted":
      return {
        ...state,
        status: "running",
        runId: event.runId,
        agentName: event.agentName,
        agentVersion: event.agentVersion,
        spec: event.spec,
        input: event.input,
        requestDigest: event.requestDigest,
        parent: event.parent ?? null,
        workflow: event.workflow ?? null
      }
    case "StepStarted": {
      const fresh: Step = {
        stepId: event.stepId,
        request: event.request,
        attempt: event.attempt,
        starts: 1,
        status: "started",
        result: null,
        error: null,
        retryable: false,
        wakeAt: event.wakeAt ?? null,
        retryAt: null
      }
      return stepOf(state, event.stepId) === undefined
        ? { ...state, steps: [...state.steps, fresh] }
        : {
          ...state,
          steps: updateStep(state, event.stepId, (s) => ({
            ...fresh,
            request: s.request,
            // a start after a start that never finished: its host died (journals before same-attempt restarts
            // bumped the attempt instead, so the attempt number is not compared)
            starts: s.status === "started" ? s.starts + 1 : 1
          }))
        }
    }
    case "StepCompleted":
      return {
        ...state,
        steps: stepOf(state, event.stepId) === undefined && event.request !== undefined
          // a local step journaled once: it starts and completes here
          ? [...state.steps, {
            stepId: event.stepId,
            request: event.request,
            attempt: event.attempt,
            starts: 1,
            status: "completed",
            result: event.result,
            error: null,
            retryable: false,
            wakeAt: null,
            retryAt: null
          }]
          : updateStep(state, event.stepId, (s) => ({ ...s, status: "completed", result: event.result })),
        tokensIn: state.tokensIn + event.tokensIn,
        tokensOut: state.tokensOut + event.tokensOut,
        costUsd: state.costUsd + event.costUsd
      }
    case "StepsCompleted":
      // exactly the sequence of completions it stands for
      return completionsOf(event).reduce(evolve, state)
    case "StepFailed":
      return {
        ...state,
        steps: updateStep(state, event.stepId, (s) => ({
          ...s,
          status: "failed",
          error: event.error,
          retryable: event.retryable,
          retryAt: event.retryAt ?? null
        }))
      }
    case "RunSucceeded": {
      // the completion journaled with the end first, exactly as its StepCompleted (ADR 0077)
      return { ...completionsOf(event).reduce(evolve, state), status: "succeeded", output: event.output }
    }
    case "RunFailed":
      return { ...state, status: "failed", error: event.error }
    case "RunCanceled":
      return { ...state, status: "canceled", error: { code: "canceled", message: event.reason } }
    case "LoopCompleted":
      return { ...state, loopCompleted: { output: event.output } }
  }
}

export const decider: Decider<State, RunCommand, RunEvent, Error> = {
  initialState,
  decide,
  evolve,
  // 3: State gained loopCompleted
  snapshot: { version: 3 }
}
