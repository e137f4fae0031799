// The schedule decider (ADR 0055), given/when/then with no bus: a tick at `now` (an injected clock) fires at most one
// due slot, coalescing the missed ones; manual fires leave the slots alone; a fire is dispatched once; updates restart
// the slots only when the timing changes or the schedule is enabled again; a loop agent's schedule is its agent's.
import { describe, expect, it } from "vitest"
import type { ScheduleEvent } from "../../schema/Schedule.ts"
import { fold } from "../kernel/Decider.ts"
import { given } from "../kernel/given.ts"
import * as D from "./Decider.ts"

const at = (t: string) => Date.parse(`2026-12-03T${t}Z`)
const ID = "sch_00000000000000000000000000"

const every305: D.Definition = {
  name: "every 305 s",
  target: { agentName: "worker" },
  cron: null,
  everySeconds: 305,
  timezone: "UTC",
  enabled: true
}
const created: ScheduleEvent = { _tag: "ScheduleCreated", ...every305, anchor: at("10:00:00"), at: at("10:00:00") }

type Fired = Extract<ScheduleEvent, { _tag: "ScheduleFired" }>
const fired = (slot: string, coalesced: number, now: string): Fired => ({
  _tag: "ScheduleFired",
  fireId: `slot-${at(slot)}`,
  slot: at(slot),
  coalesced,
  manual: false,
  firedAt: at(now),
  by: "schedule"
})

describe("ticks", () => {
  it("a 305-second schedule ticked at 10:05, again at 10:05, then at 13:00 fires 1, 0, 1 times", () => {
    const history: Array<ScheduleEvent> = [created]
    const counts: Array<number> = []
    for (const now of ["10:05:00", "10:05:00", "13:00:00"]) {
      const state = fold(D.decider, history)
      const decided = D.decider.decide({ _tag: "Tick", id: ID, now: at(now) }, state)
      if (decided._tag !== "Success") throw new Error("refused")
      counts.push(decided.success.length)
      history.push(...decided.success)
    }
    expect(counts).toEqual([1, 0, 1])
    expect(history.slice(1)).toEqual([fired("10:00:00", 1, "10:05:00"), fired("12:57:55", 35, "13:00:00")])
    // the next slot counts from now: 13:03:00, not 10:10:05
    expect(D.nextAt(fold(D.decider, history), at("13:00:00"))).toBe(at("13:03:00"))
  })

  it("a disabled schedule never fires on a tick, but fires manually", () => {
    const disabled: ScheduleEvent = { ...created, enabled: false } as ScheduleEvent
    given(D.decider, [disabled]).when({ _tag: "Tick", id: ID, now: at("12:00:00") }).then([])
    given(D.decider, [disabled]).when({ _tag: "Fire", id: ID, now: at("12:00:00"), by: "key:k1" }).then([{
      _tag: "ScheduleFired",
      fireId: "manual-1",
      slot: null,
      coalesced: 0,
      manual: true,
      firedAt: at("12:00:00"),
      by: "key:k1"
    }])
  })

  it("a manual fire leaves the slots as they were", () => {
    const manual: ScheduleEvent = {
      _tag: "ScheduleFired",
      fireId: "manual-1",
      slot: null,
      coalesced: 0,
      manual: true,
      firedAt: at("10:00:30"),
      by: "key:k1"
    }
    given(D.decider, [created, fired("10:00:00", 1, "10:00:01"), manual])
      .when({ _tag: "Tick", id: ID, now: at("10:05:05") })
      .then([fired("10:05:05", 1, "10:05:05")])
  })

  it("a deleted schedule neither ticks nor fires", () => {
    const history: Array<ScheduleEvent> = [created, { _tag: "ScheduleDeleted", by: "key:k1" }]
    given(D.decider, history).when({ _tag: "Tick", id: ID, now: at("11:00:00") }).then([])
    given(D.decider, history).when({ _tag: "Fire", id: ID, now: at("11:00:00"), by: "x" }).thenFails(
      "ScheduleNotFound"
    )
  })
})

describe("dispatch", () => {
  it("records what a fire started once", () => {
    const history = [created, fired("10:00:00", 1, "10:00:01")]
    const record = {
      _tag: "RecordDispatch",
      fireId: `slot-${at("10:00:00")}`,
      runId: "run_1",
      taskId: null,
      error: null
    }
    given(D.decider, history).when(record as D.Command).then([{
      _tag: "ScheduleDispatched",
      fireId: `slot-${at("10:00:00")}`,
      runId: "run_1",
      taskId: null,
      error: null
    }])
    const done: Array<ScheduleEvent> = [...history, {
      _tag: "ScheduleDispatched",
      fireId: `slot-${at("10:00:00")}`,
      runId: "run_1",
      taskId: null,
      error: null
    }]
    given(D.decider, done).when(record as D.Command).then([])
    const state = fold(D.decider, done)
    expect(state.pending).toEqual({})
    expect(state.lastFireDispatch?.runId).toBe("run_1")
  })
})

describe("updates", () => {
  const update = (definition: D.Definition, now: string): D.Command => ({
    _tag: "Update",
    id: ID,
    definition,
    at: at(now)
  })

  it("a changed timing restarts the slots from the update; a changed name keeps them", () => {
    const history = [created, fired("10:00:00", 1, "10:00:01")]
    given(D.decider, history).when(update({ ...every305, everySeconds: 60 }, "10:01:00")).then([{
      _tag: "ScheduleUpdated",
      ...every305,
      everySeconds: 60,
      anchor: at("10:01:00"),
      at: at("10:01:00")
    }])
    given(D.decider, history).when(update({ ...every305, name: "renamed" }, "10:01:00")).then([{
      _tag: "ScheduleUpdated",
      ...every305,
      name: "renamed",
      anchor: at("10:00:00"),
      at: at("10:01:00")
    }])
    given(D.decider, history).when(update(every305, "10:01:00")).then([])
  })

  it("enabled again, it fires nothing missed while it was off", () => {
    const history: Array<ScheduleEvent> = [
      created,
      fired("10:00:00", 1, "10:00:01"),
      { _tag: "ScheduleUpdated", ...every305, enabled: false, anchor: at("10:00:00"), at: at("10:01:00") },
      { _tag: "ScheduleUpdated", ...every305, enabled: true, anchor: at("12:00:00"), at: at("12:00:00") }
    ]
    const state = fold(D.decider, history)
    expect(D.dueAt(state, at("12:00:10"))).toEqual({ slot: at("12:00:00"), coalesced: 1, next: at("12:05:05") })
  })

  it("a loop agent's schedule refuses the API's changes and takes its agent's", () => {
    const loop: D.Definition = {
      name: "loop:watcher",
      target: { agentName: "watcher" },
      cron: "*/5 * * * *",
      everySeconds: null,
      timezone: "UTC",
      enabled: true,
      loop: { agentName: "watcher", tier: "micro" }
    }
    const history: Array<ScheduleEvent> = [{ _tag: "ScheduleCreated", ...loop, anchor: 0, at: 0 }]
    given(D.decider, history).when(update({ ...loop, enabled: false }, "10:00:00")).thenFails("ScheduleManaged")
    given(D.decider, history).when({ _tag: "Delete", id: ID, by: "key:k1" }).thenFails("ScheduleManaged")
    given(D.decider, history).when({ _tag: "Delete", id: ID, by: "agent:watcher", managed: true }).then([{
      _tag: "ScheduleDeleted",
      by: "agent:watcher"
    }])
    // the loop comes back: the same id is created afresh
    given(D.decider, [...history, { _tag: "ScheduleDeleted", by: "agent:watcher" } as ScheduleEvent])
      .when({ _tag: "Create", id: ID, definition: loop, at: at("11:00:00") })
      .then([{ _tag: "ScheduleCreated", ...loop, anchor: at("11:00:00"), at: at("11:00:00") }])
  })

  it("a re-sent create changes nothing", () => {
    given(D.decider, [created]).when({ _tag: "Create", id: ID, definition: every305, at: at("10:00:09") }).then([])
  })
})
