// The task actor's pure logic (ADR 0054): a task is submitted once, claimed by exactly one worker per attempt (the
// claim is decided against the task's last sequence), closed by its worker, by a cancel or by a reclaim, and left by
// operators through retry and requeue. The dispatch instance (id `dispatch`) holds the tenant's pause.
import type {
  AdapterSpec,
  AttemptView,
  Closing,
  Outcome,
  ResolvedRetry,
  TaskEvent,
  TaskOrigin,
  TaskStatus
} from "../../schema/Task.ts"
import { TaskConflict } from "../../schema/Task.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"

type Submitted = Extract<TaskEvent, { _tag: "TaskSubmitted" }>
type Closed = Extract<TaskEvent, { _tag: "TaskAttemptClosed" }>

export interface Attempt {
  readonly attempt: number
  readonly worker: string
  readonly holder: string
  readonly claimedAt: number
  readonly adapter: string | null
  readonly probes: AttemptView["probes"]
  readonly closed: Closed | null
}

export interface State {
  readonly submitted: Submitted | null
  readonly status: TaskStatus
  readonly priority: number
  readonly availableAt: number
  readonly maxAttempts: number
  /** Attempts spent against maxAttempts. */
  readonly spent: number
  /** Rate-limit reschedules that did not spend an attempt (bounded by the hint cap). */
  readonly hinted: number
  readonly attempts: ReadonlyArray<Attempt>
  /** The attempt running now. */
  readonly running: Attempt | null
  readonly outcome: Outcome | null
  readonly reason: string | null
  readonly costUsd: number
  readonly artifacts: ReadonlyArray<string>
  readonly startedAt: number | null
  readonly finishedAt: number | null
  readonly updatedAt: number
}

export const initialState: State = {
  submitted: null,
  status: "pending",
  priority: 0,
  availableAt: 0,
  maxAttempts: 0,
  spent: 0,
  hinted: 0,
  attempts: [],
  running: null,
  outcome: null,
  reason: null,
  costUsd: 0,
  artifacts: [],
  startedAt: null,
  finishedAt: null,
  updatedAt: 0
}

/** Statuses a worker may claim (at or after `availableAt`). */
export const isClaimable = (s: State) =>
  s.submitted !== null && (s.status === "pending" || s.status === "retryable_failure")

const FINISHED: ReadonlySet<TaskStatus> = new Set(["completed", "blocked", "permanent_failure", "canceled"])
export const isFinished = (status: TaskStatus) => FINISHED.has(status)

/** The delay before attempt `spent + 1`: `base · 2^(spent-1)` capped at `max`, spread by ±jitter (`random` in [0,1)). */
export const backoffMs = (policy: ResolvedRetry, spent: number, random: number): number => {
  const raw = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** Math.max(0, spent - 1))
  const spread = 1 + policy.jitter * (2 * random - 1)
  return Math.max(0, Math.round(raw * spread * 1000))
}

/** What an attempt produced, as the worker reports it. */
export type Result =
  | {
    readonly _tag: "Reported"
    readonly outcome: Outcome
    /** Evidence issues with a `completed` outcome (actors/task/Evidence.ts); empty when it verified. */
    readonly issues: ReadonlyArray<string>
  }
  | {
    readonly _tag: "Failed"
    readonly message: string
    readonly retryable: boolean
    readonly retryAfterSeconds: number | null
  }
  | { readonly _tag: "NoAdapter"; readonly reason: string }

export interface Usage {
  readonly bundleHash: string | null
  readonly costUsd: number
  readonly tokens: number
  readonly runId: string | null
  readonly workloadId: string | null
  readonly artifacts: ReadonlyArray<string>
}

export const NO_USAGE: Usage = {
  bundleHash: null,
  costUsd: 0,
  tokens: 0,
  runId: null,
  workloadId: null,
  artifacts: []
}

export type Command =
  | { readonly _tag: "Submit"; readonly event: Omit<Submitted, "_tag"> }
  | {
    readonly _tag: "Claim"
    readonly attempt: number
    readonly worker: string
    readonly holder: string
    readonly at: number
  }
  | {
    readonly _tag: "ChooseAdapter"
    readonly attempt: number
    readonly probes: AttemptView["probes"]
    readonly chosen: string | null
    readonly at: number
  }
  | {
    readonly _tag: "Finish"
    readonly attempt: number
    readonly result: Result
    readonly usage: Usage
    /** Rate-limit reschedules allowed before a hinted failure spends an attempt. */
    readonly hintCap: number
    /** In [0, 1): the jitter's draw, made by the shell. */
    readonly random: number
    readonly at: number
  }
  | { readonly _tag: "Reclaim"; readonly attempt: number; readonly holder: string; readonly at: number }
  | {
    readonly _tag: "Cancel"
    readonly id: string
    readonly by: string
    readonly reason: string | null
    readonly at: number
  }
  | {
    readonly _tag: "Retry"
    readonly id: string
    readonly by: string
    readonly requeue: boolean
    readonly extraAttempts: number | null
    readonly at: number
  }

/** The claim lost: the task is not claimable (any more), or not yet. */
export class NotClaimable {
  readonly _tag = "NotClaimable"
  constructor(readonly status: TaskStatus) {}
  get message() {
    return `the task is ${this.status}: not claimable`
  }
}

export type Error = TaskConflict | NotClaimable

const closeWith = (
  attempt: number,
  fields: Pick<Closed, "closing" | "status" | "availableAt" | "counted" | "outcome" | "reason" | "retryAfterSeconds">,
  usage: Usage,
  at: number
): TaskEvent => ({
  _tag: "TaskAttemptClosed",
  attempt,
  ...fields,
  bundleHash: usage.bundleHash,
  costUsd: usage.costUsd,
  tokens: usage.tokens,
  runId: usage.runId,
  workloadId: usage.workloadId,
  artifacts: usage.artifacts,
  at
})

/** Closes an attempt for good (no retry of its own): counted, with nothing to wait for. */
const settle = (
  c: { readonly attempt: number; readonly usage: Usage; readonly at: number },
  closing: Closing,
  status: TaskStatus,
  outcome: Outcome | null,
  reason: string | null,
  retryAfterSeconds: number | null = null
) =>
  closeWith(
    c.attempt,
    { closing, status, availableAt: null, counted: true, outcome, reason, retryAfterSeconds },
    c.usage,
    c.at
  )

/**
 * An attempt that spends one of the task's attempts and leaves it `then` (retrying or pending) at `availableAt`, or
 * blocked once the attempts are spent.
 */
const spendOr = (
  state: State,
  c: { readonly attempt: number; readonly usage: Usage; readonly at: number },
  closing: Closing,
  reason: string,
  outcome: Outcome | null,
  then: { readonly status: TaskStatus; readonly availableAt: (spent: number) => number }
) => {
  const spent = state.spent + 1
  if (spent >= state.maxAttempts) {
    return settle(c, closing, "blocked", outcome, `attempts exhausted (${spent} of ${state.maxAttempts}): ${reason}`)
  }
  return closeWith(
    c.attempt,
    {
      closing,
      status: then.status,
      availableAt: then.availableAt(spent),
      counted: true,
      outcome,
      reason,
      retryAfterSeconds: null
    },
    c.usage,
    c.at
  )
}

/** A failure that spends an attempt: retried after the backoff, or blocked once the attempts are spent. */
const spend = (
  state: State,
  c: Extract<Command, { _tag: "Finish" }>,
  closing: Closing,
  reason: string,
  outcome: Outcome | null
) =>
  spendOr(state, c, closing, reason, outcome, {
    status: "retryable_failure",
    availableAt: (spent) => c.at + backoffMs(state.submitted!.retry, spent, c.random)
  })

/** What the outcome says, for its reason: the operator's summary, or the machine status when that is empty. */
const summaryOf = (o: Outcome) => o.operatorSummary === "" ? o.machineStatus : o.operatorSummary

const finish = (state: State, c: Extract<Command, { _tag: "Finish" }>): TaskEvent => {
  const r = c.result
  switch (r._tag) {
    case "NoAdapter":
      return spend(state, c, "no_adapter", `no adapter could run it: ${r.reason}`, null)
    case "Failed": {
      if (r.retryAfterSeconds !== null && r.retryable && state.hinted < c.hintCap) {
        return closeWith(
          c.attempt,
          {
            closing: "rate_limited",
            status: "retryable_failure",
            availableAt: c.at + Math.round(r.retryAfterSeconds * 1000),
            counted: false,
            outcome: null,
            reason: r.message,
            retryAfterSeconds: r.retryAfterSeconds
          },
          c.usage,
          c.at
        )
      }
      if (!r.retryable) return settle(c, "failed", "permanent_failure", null, r.message, r.retryAfterSeconds)
      return spend(state, c, "failed", r.message, null)
    }
    case "Reported": {
      const o = r.outcome
      switch (o.status) {
        case "completed":
          return r.issues.length > 0
            ? settle(c, "unverified", "blocked", o, `outcome_verification_failed: ${r.issues.join("; ")}`)
            : settle(c, "completed", "completed", o, null)
        case "blocked":
          return settle(c, "blocked", "blocked", o, summaryOf(o))
        case "failed":
          return settle(c, "failed", "permanent_failure", o, summaryOf(o))
        case "needs_retry":
          return spend(state, c, "failed", summaryOf(o), o)
      }
    }
  }
}

const CANCELABLE: ReadonlySet<TaskStatus> = new Set(["pending", "running", "retryable_failure", "blocked"])
const RETRYABLE: ReadonlySet<TaskStatus> = new Set(["retryable_failure", "blocked", "permanent_failure", "canceled"])

export const decide = (command: Command, state: State) => {
  switch (command._tag) {
    case "Submit":
      return state.submitted !== null ? ignore : accept<TaskEvent>({ _tag: "TaskSubmitted", ...command.event })
    case "Claim":
      if (!isClaimable(state) || state.availableAt > command.at) return reject(new NotClaimable(state.status))
      return accept<TaskEvent>({
        _tag: "TaskClaimed",
        attempt: command.attempt,
        worker: command.worker,
        holder: command.holder,
        at: command.at
      })
    case "ChooseAdapter":
      if (state.running?.attempt !== command.attempt || state.running.adapter !== null) return ignore
      return accept<TaskEvent>({
        _tag: "TaskAdapterChosen",
        attempt: command.attempt,
        probes: command.probes,
        chosen: command.chosen,
        at: command.at
      })
    case "Finish":
      // a cancel or a reclaim closed the attempt first: what its worker reports now changes nothing
      if (state.running?.attempt !== command.attempt) return ignore
      return accept(finish(state, command))
    case "Reclaim": {
      const running = state.running
      if (running === null || running.attempt !== command.attempt || running.holder !== command.holder) return ignore
      return accept<TaskEvent>(reclaimed(state, command))
    }
    case "Cancel":
      if (state.submitted === null || !CANCELABLE.has(state.status)) {
        return reject(new TaskConflict({ id: command.id, status: state.status, operation: "canceled" }))
      }
      return accept<TaskEvent>({
        _tag: "TaskCanceled",
        by: command.by,
        reason: command.reason,
        previous: state.status,
        attempt: state.running?.attempt ?? null,
        at: command.at
      })
    case "Retry": {
      if (state.submitted === null || !RETRYABLE.has(state.status)) {
        return reject(
          new TaskConflict({
            id: command.id,
            status: state.status,
            operation: command.requeue ? "requeued" : "retried"
          })
        )
      }
      const maxAttempts = command.requeue
        ? state.submitted.maxAttempts
        : Math.max(state.maxAttempts, state.spent + (command.extraAttempts ?? 1))
      return accept<TaskEvent>({
        _tag: "TaskRetried",
        by: command.by,
        requeue: command.requeue,
        maxAttempts,
        previous: state.status,
        at: command.at
      })
    }
  }
}

/** A reclaimed attempt is spent (a task that kills its workers must not loop), and claimable again at once. */
const reclaimed = (state: State, c: Extract<Command, { _tag: "Reclaim" }>): TaskEvent =>
  spendOr(
    state,
    { attempt: c.attempt, usage: NO_USAGE, at: c.at },
    "reclaimed",
    `its worker ${state.running!.worker} on host ${c.holder} is gone`,
    null,
    { status: "pending", availableAt: () => c.at }
  )

export const evolve = (state: State, e: TaskEvent): State => {
  switch (e._tag) {
    case "TaskSubmitted":
      return {
        ...state,
        submitted: e,
        status: "pending",
        priority: e.priority,
        availableAt: e.availableAt,
        maxAttempts: e.maxAttempts,
        updatedAt: e.at
      }
    case "TaskClaimed": {
      const attempt: Attempt = {
        attempt: e.attempt,
        worker: e.worker,
        holder: e.holder,
        claimedAt: e.at,
        adapter: null,
        probes: [],
        closed: null
      }
      return {
        ...state,
        status: "running",
        running: attempt,
        attempts: [...state.attempts, attempt],
        startedAt: state.startedAt ?? e.at,
        updatedAt: e.at
      }
    }
    case "TaskAdapterChosen": {
      if (state.running?.attempt !== e.attempt) return state
      const running = { ...state.running, adapter: e.chosen ?? "none", probes: e.probes }
      return {
        ...state,
        running,
        attempts: state.attempts.map((a) => (a.attempt === e.attempt ? running : a)),
        updatedAt: e.at
      }
    }
    case "TaskAttemptClosed":
      return {
        ...state,
        status: e.status,
        running: null,
        attempts: state.attempts.map((a) => (a.attempt === e.attempt ? { ...a, closed: e } : a)),
        availableAt: e.availableAt ?? state.availableAt,
        spent: state.spent + (e.counted ? 1 : 0),
        hinted: state.hinted + (e.closing === "rate_limited" ? 1 : 0),
        outcome: e.outcome ?? state.outcome,
        reason: e.reason,
        costUsd: state.costUsd + e.costUsd,
        artifacts: [...state.artifacts, ...e.artifacts.filter((p) => !state.artifacts.includes(p))],
        finishedAt: isFinished(e.status) ? e.at : null,
        updatedAt: e.at
      }
    case "TaskRetried":
      return {
        ...state,
        status: "pending",
        availableAt: e.at,
        maxAttempts: e.maxAttempts,
        spent: e.requeue ? 0 : state.spent,
        hinted: e.requeue ? 0 : state.hinted,
        reason: null,
        finishedAt: null,
        updatedAt: e.at
      }
    case "TaskCanceled": {
      const attempts = e.attempt === null ?
        state.attempts :
        state.attempts.map((a) =>
          a.attempt === e.attempt && a.closed === null
            ? {
              ...a,
              closed: {
                _tag: "TaskAttemptClosed" as const,
                attempt: a.attempt,
                closing: "canceled" as const,
                status: "canceled" as const,
                availableAt: null,
                counted: false,
                outcome: null,
                reason: e.reason ?? `canceled by ${e.by}`,
                bundleHash: null,
                retryAfterSeconds: null,
                costUsd: 0,
                tokens: 0,
                runId: null,
                workloadId: null,
                artifacts: [],
                at: e.at
              }
            }
            : a
        )
      return {
        ...state,
        status: "canceled",
        running: null,
        attempts,
        reason: e.reason ?? `canceled by ${e.by}`,
        finishedAt: e.at,
        updatedAt: e.at
      }
    }
    default:
      return state
  }
}

export const decider: Decider<State, Command, TaskEvent, Error> = {
  initialState,
  decide,
  evolve
}

// ---- dispatch: the tenant's pause ----

export interface DispatchState {
  readonly paused: boolean
  readonly reason: string | null
  readonly changedAt: number | null
  readonly changedBy: string | null
}

export type DispatchCommand = {
  readonly _tag: "SetDispatch"
  readonly paused: boolean
  readonly reason: string | null
  readonly by: string
  readonly at: number
}

export const dispatch: Decider<DispatchState, DispatchCommand, TaskEvent, never> = {
  initialState: { paused: false, reason: null, changedAt: null, changedBy: null },
  decide: (c, s) =>
    s.paused === c.paused && s.reason === c.reason
      ? ignore
      : accept<TaskEvent>({ _tag: "DispatchSet", paused: c.paused, reason: c.reason, by: c.by, at: c.at }),
  evolve: (s, e) =>
    e._tag === "DispatchSet" ? { paused: e.paused, reason: e.reason, changedAt: e.at, changedBy: e.by } : s
}

/** The instance id of the tenant's dispatch on the task stream. */
export const DISPATCH_ID = "dispatch"

export type { AdapterSpec, TaskOrigin }
