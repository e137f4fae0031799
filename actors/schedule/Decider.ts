// The schedule actor's pure logic (ADR 0055): a schedule is created once, replaced whole by an update, deleted for
// good; a tick at `now` fires at most ONE due slot (the latest, coalescing the missed ones) and a manual fire fires
// at once; each fire is dispatched (its run or task started, or refused) exactly once in the journal.
import type { ScheduleEvent } from "../../schema/Schedule.ts"
import { ScheduleManaged, ScheduleNotFound } from "../../schema/Schedule.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"
import * as Slots from "./Slots.ts"

type Created = Extract<ScheduleEvent, { _tag: "ScheduleCreated" }>
type Fired = Extract<ScheduleEvent, { _tag: "ScheduleFired" }>
type Dispatched = Extract<ScheduleEvent, { _tag: "ScheduleDispatched" }>

/** A schedule's definition as journaled: exactly one of cron and everySeconds is set. */
export type Definition = Omit<Created, "_tag" | "anchor" | "at">

export interface State {
  readonly status: "none" | "active" | "deleted"
  readonly definition: Definition | null
  readonly anchor: number
  /** The last slot fired (manual fires leave it). */
  readonly lastSlot: number | null
  readonly fires: number
  readonly lastFire: Fired | null
  /** The dispatch of `lastFire`, once journaled. */
  readonly lastFireDispatch: Dispatched | null
  /** Fires whose run or task was not started yet: a host that died after the fire left them to the next tick. */
  readonly pending: Readonly<Record<string, Fired>>
  readonly createdAt: number
  readonly updatedAt: number
}

export const initialState: State = {
  status: "none",
  definition: null,
  anchor: 0,
  lastSlot: null,
  fires: 0,
  lastFire: null,
  lastFireDispatch: null,
  pending: {},
  createdAt: 0,
  updatedAt: 0
}

export type Command =
  | { readonly _tag: "Create"; readonly id: string; readonly definition: Definition; readonly at: number }
  | {
    readonly _tag: "Update"
    readonly id: string
    readonly definition: Definition
    readonly at: number
    /** A loop agent's own update (its spec changed): allowed on a loop schedule, which refuses the API's. */
    readonly managed?: boolean
  }
  | { readonly _tag: "Delete"; readonly id: string; readonly by: string; readonly managed?: boolean }
  /** A host's timer: fire the due slot at `now`, if there is one. */
  | { readonly _tag: "Tick"; readonly id: string; readonly now: number }
  | { readonly _tag: "Fire"; readonly id: string; readonly now: number; readonly by: string }
  | {
    readonly _tag: "RecordDispatch"
    readonly fireId: string
    readonly runId: string | null
    readonly taskId: string | null
    readonly error: string | null
  }

export type Error = ScheduleNotFound | ScheduleManaged

/** When the schedule fires. */
export const timingOf = (d: Pick<Definition, "cron" | "everySeconds" | "timezone">): Slots.Timing =>
  d.cron !== null
    ? { _tag: "cron", cron: d.cron, timezone: d.timezone }
    : { _tag: "every", everySeconds: d.everySeconds ?? 60 }

const sameTiming = (a: Definition, b: Definition) =>
  a.cron === b.cron && a.everySeconds === b.everySeconds && a.timezone === b.timezone

/** The fire due at `now` in `state`, or null (disabled, deleted, or no slot due). */
export const dueAt = (state: State, now: number): Slots.Due | null =>
  state.status !== "active" || state.definition === null || !state.definition.enabled
    ? null
    : Slots.due(timingOf(state.definition), state.anchor, state.lastSlot, now)

/** The next slot after `now` (null when disabled, deleted, or the expression fires no more). */
export const nextAt = (state: State, now: number): number | null => {
  if (state.status !== "active" || state.definition === null || !state.definition.enabled) return null
  const timing = timingOf(state.definition)
  const first = Slots.firstSlot(timing, state.anchor, state.lastSlot)
  if (first === null) return null
  return first > now ? first : Slots.nextAfter(timing, state.anchor, now)
}

export const decide = (command: Command, state: State) => {
  switch (command._tag) {
    case "Create":
      // a re-sent create (same id) changes nothing; a loop agent's schedule (its id fixed by the agent) comes back
      // after its loop was dropped, starting afresh
      if (state.status === "active" || (state.status === "deleted" && command.definition.loop === undefined)) {
        return ignore
      }
      return accept<ScheduleEvent>({
        _tag: "ScheduleCreated",
        ...command.definition,
        anchor: command.at,
        at: command.at
      })
    case "Update": {
      const current = state.definition
      if (state.status !== "active" || current === null) return reject(new ScheduleNotFound({ id: command.id }))
      if (current.loop !== undefined && command.managed !== true) {
        return reject(new ScheduleManaged({ id: command.id, agentName: current.loop.agentName }))
      }
      const next = command.definition
      if (JSON.stringify(current) === JSON.stringify(next)) return ignore
      // slots restart from now when the timing changes or the schedule is enabled again: nothing missed while it was
      // off, or under the old timing, is fired
      const restart = !sameTiming(current, next) || (!current.enabled && next.enabled)
      return accept<ScheduleEvent>({
        _tag: "ScheduleUpdated",
        ...next,
        anchor: restart ? command.at : state.anchor,
        at: command.at
      })
    }
    case "Delete":
      if (state.status !== "active" || state.definition === null) {
        return reject(new ScheduleNotFound({ id: command.id }))
      }
      if (state.definition.loop !== undefined && command.managed !== true) {
        return reject(new ScheduleManaged({ id: command.id, agentName: state.definition.loop.agentName }))
      }
      return accept<ScheduleEvent>({ _tag: "ScheduleDeleted", by: command.by })
    case "Tick": {
      const due = dueAt(state, command.now)
      if (due === null) return ignore
      return accept<ScheduleEvent>({
        _tag: "ScheduleFired",
        fireId: Slots.slotKey(due.slot),
        slot: due.slot,
        coalesced: due.coalesced,
        manual: false,
        firedAt: command.now,
        by: "schedule"
      })
    }
    case "Fire":
      if (state.status !== "active") return reject(new ScheduleNotFound({ id: command.id }))
      return accept<ScheduleEvent>({
        _tag: "ScheduleFired",
        fireId: `manual-${state.fires + 1}`,
        slot: null,
        coalesced: 0,
        manual: true,
        firedAt: command.now,
        by: command.by
      })
    case "RecordDispatch":
      if (state.pending[command.fireId] === undefined) return ignore
      return accept<ScheduleEvent>({
        _tag: "ScheduleDispatched",
        fireId: command.fireId,
        runId: command.runId,
        taskId: command.taskId,
        error: command.error
      })
  }
}

export const evolve = (state: State, event: ScheduleEvent): State => {
  switch (event._tag) {
    case "ScheduleCreated": {
      const { _tag, anchor, at, ...definition } = event
      return { ...initialState, status: "active", definition, anchor, createdAt: at, updatedAt: at, fires: state.fires }
    }
    case "ScheduleUpdated": {
      const { _tag, anchor, at, ...definition } = event
      return {
        ...state,
        definition,
        anchor,
        lastSlot: anchor !== state.anchor ? null : state.lastSlot,
        updatedAt: at
      }
    }
    case "ScheduleDeleted":
      return { ...state, status: "deleted" }
    case "ScheduleFired":
      return {
        ...state,
        fires: state.fires + 1,
        lastSlot: event.slot ?? state.lastSlot,
        lastFire: event,
        lastFireDispatch: null,
        pending: { ...state.pending, [event.fireId]: event }
      }
    case "ScheduleDispatched": {
      const { [event.fireId]: _, ...pending } = state.pending
      return {
        ...state,
        pending,
        lastFireDispatch: state.lastFire?.fireId === event.fireId ? event : state.lastFireDispatch
      }
    }
  }
}

export const decider: Decider<State, Command, ScheduleEvent, Error> = {
  initialState,
  decide,
  evolve,
  snapshot: { version: 1 }
}
