// The budget decider without a bus: reservations against the day's cap, settling, restarts of the same
// attempt, expiry, run counting, soft caps, day rollover and pruning, as given(events).when(command).then(…).
// The per-run caps and their hard/soft policy are specified in Caps.test.ts.
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { BudgetLimits } from "../../schema/Budget.ts"
import type { BudgetEvent } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import { given } from "../kernel/given.ts"
import * as Budget from "./Decider.ts"

const SCOPE = "agent:echoer"
/** Noon UTC on 2026-11-03; DAY is its UTC day. */
const T = Date.UTC(2026, 10, 3, 12)
const DAY = "2026-11-03"
const HOUR = 3_600_000

const hard: BudgetLimits = { maxCostUsdPerDay: 1, hardFail: true }
const soft: BudgetLimits = { maxCostUsdPerDay: 1, hardFail: false }
const set = (limits: BudgetLimits): BudgetEvent => ({ _tag: "BudgetSet", scope: SCOPE, limits, by: "token:dev" })

interface At {
  readonly now?: number
  readonly expiresAt?: number
  readonly host?: string
  readonly runId?: string
}

const reserve = (id: string, amountUsd: number, at: At = {}): Budget.Command => ({
  _tag: "Reserve",
  reservationId: id,
  runId: at.runId ?? "run_1",
  amountUsd,
  tokens: 100,
  host: at.host ?? "host-a",
  now: at.now ?? T,
  expiresAt: at.expiresAt ?? (at.now ?? T) + 60_000
})
const reserved = (id: string, amountUsd: number, at: At & { readonly day?: string } = {}): BudgetEvent => ({
  _tag: "BudgetReserved",
  reservationId: id,
  runId: at.runId ?? "run_1",
  day: at.day ?? DAY,
  amountUsd,
  tokens: 100,
  host: at.host ?? "host-a",
  expiresAt: at.expiresAt ?? (at.now ?? T) + 60_000
})
const settle = (id: string, costUsd: number, now = T, runId = "run_1"): Budget.Command => ({
  _tag: "Settle",
  reservationId: id,
  runId,
  costUsd,
  tokens: 40,
  now
})
const settled = (id: string, costUsd: number, day = DAY, runId = "run_1"): BudgetEvent => ({
  _tag: "BudgetSettled",
  reservationId: id,
  runId,
  day,
  costUsd,
  tokens: 40
})
const countRun = (runId: string, now = T, firstCallUsd = 0.1): Budget.Command => ({
  _tag: "CountRun",
  runId,
  now,
  firstCallUsd
})
const counted = (runId: string, day = DAY): BudgetEvent => ({ _tag: "BudgetRunCounted", runId, day })
const released = (id: string, expiresAt: number, host = "host-a"): BudgetEvent => ({
  _tag: "BudgetReleased",
  reservationId: id,
  reason: `expired at ${new Date(expiresAt).toISOString()} without being settled (host ${host})`
})

const stateOf = (events: ReadonlyArray<BudgetEvent>) => fold(Budget.decider, events)

describe("Budget decider", () => {
  describe("SetBudget", () => {
    it("journals the caps, replacing the previous ones whole", () => {
      given(Budget.decider, [set(hard)]).when({ _tag: "SetBudget", scope: SCOPE, limits: soft, by: "token:dev" }).then([
        set(soft)
      ])
      expect(stateOf([set(hard), set(soft)]).limits).toEqual(soft)
    })
  })

  describe("Reserve against the day's cost cap", () => {
    it("holds the worst case when it fits", () =>
      given(Budget.decider, [set(hard)]).when(reserve("r1", 0.4)).then([reserved("r1", 0.4)]))

    it("reserves without limit in a scope that has no budget", () =>
      given(Budget.decider, []).when(reserve("r1", 1e6)).then([reserved("r1", 1e6)]))

    it("fits exactly up to the cap", () =>
      given(Budget.decider, [set(hard), settled("s1", 0.6)]).when(reserve("r1", 0.4)).then([reserved("r1", 0.4)]))

    it("refuses (hard) what spent plus live reservations leave no room for, saying cap, limit, spent, reserved, requested", () => {
      const e = given(Budget.decider, [set(hard), settled("s1", 0.5), reserved("r1", 0.3)]).when(
        reserve("r2", 0.3, { runId: "run_2" })
      ).thenFails("BudgetExceeded")
      expect(e.refusal).toEqual({
        scope: SCOPE,
        cap: "maxCostUsdPerDay",
        limit: 1,
        spent: 0.5,
        reserved: 0.3,
        requested: 0.3,
        reason:
          "maxCostUsdPerDay of agent:echoer is 1 USD: 0.5 USD spent and 0.3 USD reserved leave no room for 0.3 USD more"
      })
    })

    it("soft (hardFail false): reserves anyway and alerts once per cap and day", () => {
      const over = [set(soft), settled("s1", 0.9)]
      given(Budget.decider, over).when(reserve("r1", 0.3)).then([
        reserved("r1", 0.3),
        { _tag: "BudgetAlerted", day: DAY, cap: "maxCostUsdPerDay", limit: 1, value: 1.2, runId: "run_1" }
      ])
      const alerted: BudgetEvent = {
        _tag: "BudgetAlerted",
        day: DAY,
        cap: "maxCostUsdPerDay",
        limit: 1,
        value: 1.2,
        runId: "run_1"
      }
      given(Budget.decider, [...over, reserved("r1", 0.3), alerted]).when(reserve("r2", 0.3, { runId: "run_2" })).then([
        reserved("r2", 0.3, { runId: "run_2" })
      ])
      expect(stateOf([...over, reserved("r1", 0.3), alerted]).days[DAY]!.alerted).toEqual(["maxCostUsdPerDay"])
    })

    it("soft: the next UTC day alerts again", () => {
      const alerted: BudgetEvent = {
        _tag: "BudgetAlerted",
        day: DAY,
        cap: "maxCostUsdPerDay",
        limit: 1,
        value: 1.2,
        runId: "run_1"
      }
      const tomorrow = T + 24 * HOUR
      given(Budget.decider, [set(soft), settled("s1", 0.9), alerted, settled("s2", 0.9, "2026-11-04")])
        .when(reserve("r2", 0.3, { now: tomorrow }))
        .then([
          reserved("r2", 0.3, { now: tomorrow, day: "2026-11-04" }),
          { _tag: "BudgetAlerted", day: "2026-11-04", cap: "maxCostUsdPerDay", limit: 1, value: 1.2, runId: "run_1" }
        ])
    })
  })

  describe("Settle", () => {
    it("replaces the reservation with the actual cost", () => {
      const history = [set(hard), reserved("r1", 0.4)]
      given(Budget.decider, history).when(settle("r1", 0.1)).then([settled("r1", 0.1)])
      const after = stateOf([...history, settled("r1", 0.1)])
      expect(after.open).toEqual({})
      expect(Budget.dayIn(after, DAY)).toMatchObject({ spentUsd: 0.1, tokens: 40 })
      expect(Budget.reservedOn(after, DAY, T)).toBe(0)
      // the room the worst case held is free again: only the actual cost stays spent
      given(Budget.decider, [...history, settled("r1", 0.1)]).when(reserve("r2", 0.9)).then([reserved("r2", 0.9)])
    })

    it("is idempotent: settling the same reservation again changes nothing", () =>
      given(Budget.decider, [set(hard), reserved("r1", 0.4), settled("r1", 0.1)]).when(settle("r1", 0.1)).then([]))

    it("a reservation settled already is not reserved again (a late re-send of the reserve)", () =>
      given(Budget.decider, [set(hard), reserved("r1", 0.4), settled("r1", 0.1)]).when(
        reserve("r1", 0.4, { host: "host-b" })
      ).then([]))

    it("counts in the day of the reservation, even when settled after midnight", () => {
      const late = reserved("r1", 0.4, { now: Date.UTC(2026, 10, 3, 23, 59) })
      given(Budget.decider, [set(hard), late]).when(settle("r1", 0.2, Date.UTC(2026, 10, 4, 0, 1))).then([
        settled("r1", 0.2, DAY)
      ])
    })

    it("settles a call whose reservation was released (its host was slow, not dead) on the day it settles", () =>
      given(Budget.decider, [set(hard), reserved("r1", 0.4), released("r1", T + 60_000)]).when(
        settle("r1", 0.2, T + HOUR)
      ).then([settled("r1", 0.2)]))

    it("never refuses, and alerts a soft cap the actual cost passes", () => {
      given(Budget.decider, [set(hard), settled("s1", 0.9), reserved("r1", 0.1)]).when(settle("r1", 0.5)).then([
        settled("r1", 0.5)
      ])
      given(Budget.decider, [set(soft), settled("s1", 0.9), reserved("r1", 0.1)]).when(settle("r1", 0.5)).then([
        settled("r1", 0.5),
        { _tag: "BudgetAlerted", day: DAY, cap: "maxCostUsdPerDay", limit: 1, value: 1.4, runId: "run_1" }
      ])
    })
  })

  describe("a restarted attempt (same reservation id)", () => {
    const held = reserved("r1", 0.4, { expiresAt: T + 60_000 })

    it("is taken over by the host that restarted it, without holding twice", () => {
      const restart = reserve("r1", 0.4, { host: "host-b", now: T + 20_000, expiresAt: T + 80_000 })
      const takeover = reserved("r1", 0.4, { host: "host-b", expiresAt: T + 80_000 })
      given(Budget.decider, [set(hard), held]).when(restart).then([takeover])
      const after = stateOf([set(hard), held, takeover])
      expect(Object.keys(after.open)).toEqual(["r1"])
      expect(after.open["r1"]!.host).toBe("host-b")
      expect(Budget.reservedOn(after, DAY, T + 20_000)).toBe(0.4)
    })

    it("is taken over even when the cap is full: its hold is already counted", () =>
      given(Budget.decider, [set(hard), settled("s1", 0.6), held])
        .when(reserve("r1", 0.4, { host: "host-b", now: T + 20_000, expiresAt: T + 80_000 }))
        .then([reserved("r1", 0.4, { host: "host-b", expiresAt: T + 80_000 })]))

    it("keeps the amount first held and the later expiry", () =>
      given(Budget.decider, [set(hard), held])
        .when(reserve("r1", 0.7, { host: "host-b", now: T + 20_000, expiresAt: T + 30_000 }))
        .then([reserved("r1", 0.4, { host: "host-b", expiresAt: T + 60_000 })]))

    it("changes nothing when its own host repeats it", () =>
      given(Budget.decider, [set(hard), held]).when(reserve("r1", 0.4, { expiresAt: T + 60_000 })).then([]))

    it("after its reservation expired: releases it and reserves anew under the cap", () => {
      const late = T + 90_000
      given(Budget.decider, [set(hard), held]).when(
        reserve("r1", 0.4, { host: "host-b", now: late, expiresAt: late + 60_000 })
      ).then([
        released("r1", T + 60_000),
        reserved("r1", 0.4, { host: "host-b", expiresAt: late + 60_000 })
      ])
      // the room it held was taken by others meanwhile: refused like any new hold
      const e = given(Budget.decider, [set(hard), held, reserved("r2", 0.7, { runId: "run_2", now: late - 1_000 })])
        .when(reserve("r1", 0.4, { host: "host-b", now: late, expiresAt: late + 60_000 }))
        .thenFails("BudgetExceeded")
      expect(e.refusal).toMatchObject({ cap: "maxCostUsdPerDay", spent: 0, reserved: 0.7, requested: 0.4 })
    })
  })

  describe("expiry", () => {
    const held = reserved("r1", 0.8, { expiresAt: T + 60_000 })

    it("an expired reservation stops counting, released or not", () => {
      const state = stateOf([set(hard), held])
      expect(Budget.reservedOn(state, DAY, T + 59_999)).toBe(0.8)
      expect(Budget.reservedOn(state, DAY, T + 60_000)).toBe(0)
      given(Budget.decider, [set(hard), held]).when(reserve("r2", 0.5, { now: T + 59_999 })).thenFails("BudgetExceeded")
    })

    it("is released by the next reservation, which may use its room", () => {
      const now = T + 61_000
      given(Budget.decider, [set(hard), held]).when(reserve("r2", 0.9, { runId: "run_2", now })).then([
        released("r1", T + 60_000),
        reserved("r2", 0.9, { runId: "run_2", now })
      ])
      const after = stateOf([set(hard), held, released("r1", T + 60_000), reserved("r2", 0.9, { runId: "run_2", now })])
      expect(Object.keys(after.open)).toEqual(["r2"])
      expect(Budget.dayIn(after, DAY).spentUsd).toBe(0)
    })
  })

  describe("CountRun", () => {
    const limits: BudgetLimits = { maxRunsPerDay: 3, maxCostUsdPerDay: 1, hardFail: true }

    it("counts a run once", () => {
      given(Budget.decider, [set(limits)]).when(countRun("run_1")).then([counted("run_1")])
      given(Budget.decider, [set(limits), counted("run_1")]).when(countRun("run_1")).then([])
    })

    it("refuses the run past maxRunsPerDay", () => {
      const three = [set(limits), counted("run_1"), counted("run_2"), counted("run_3")]
      const e = given(Budget.decider, three).when(countRun("run_4")).thenFails("BudgetExceeded")
      expect(e.refusal).toMatchObject({
        scope: SCOPE,
        cap: "maxRunsPerDay",
        limit: 3,
        spent: 3,
        reserved: 0,
        requested: 1
      })
      expect(Budget.dayIn(stateOf(three), DAY).runs).toBe(3)
    })

    it("refuses a run whose first call alone does not fit in the day's cost cap", () => {
      const e = given(Budget.decider, [set(limits), settled("s1", 0.6), reserved("r1", 0.3)]).when(
        countRun("run_2", T, 0.2)
      ).thenFails("BudgetExceeded")
      expect(e.refusal).toMatchObject({ cap: "maxCostUsdPerDay", spent: 0.6, reserved: 0.3, requested: 0.2 })
    })

    it("soft: counts the run and alerts", () =>
      given(Budget.decider, [set({ ...limits, hardFail: false }), counted("run_1"), counted("run_2"), counted("run_3")])
        .when(countRun("run_4")).then([
          counted("run_4"),
          { _tag: "BudgetAlerted", day: DAY, cap: "maxRunsPerDay", limit: 3, value: 4, runId: "run_4" }
        ]))
  })

  describe("Alert", () => {
    const alert: Budget.Command = {
      _tag: "Alert",
      cap: "maxToolCallsPerRun",
      limit: 1,
      value: 2,
      runId: "run_1",
      now: T
    }
    const alerted: BudgetEvent = {
      _tag: "BudgetAlerted",
      day: DAY,
      cap: "maxToolCallsPerRun",
      limit: 1,
      value: 2,
      runId: "run_1"
    }

    it("journals a per-run soft cap once per day", () => {
      given(Budget.decider, [set(soft)]).when(alert).then([alerted])
      given(Budget.decider, [set(soft), alerted]).when({ ...alert, runId: "run_2" }).then([])
      given(Budget.decider, [set(soft), alerted]).when({ ...alert, now: T + 24 * HOUR }).then([{
        ...alerted,
        day: "2026-11-04"
      }])
    })
  })

  describe("days", () => {
    it("the UTC day rolls over at midnight: spend and runs start again from zero", () => {
      const history = [
        set({ maxCostUsdPerDay: 1, maxRunsPerDay: 1, hardFail: true }),
        counted("run_1"),
        settled("s1", 1)
      ]
      const before = Date.UTC(2026, 10, 3, 23, 59, 59, 999)
      const after = Date.UTC(2026, 10, 4)
      expect(Budget.dayOf(before)).toBe(DAY)
      expect(Budget.dayOf(after)).toBe("2026-11-04")
      given(Budget.decider, history).when(reserve("r1", 0.1, { now: before })).thenFails("BudgetExceeded")
      given(Budget.decider, history).when(countRun("run_2", before)).thenFails("BudgetExceeded")
      given(Budget.decider, history).when(reserve("r1", 1, { now: after })).then([
        reserved("r1", 1, { now: after, day: "2026-11-04" })
      ])
      given(Budget.decider, history).when(countRun("run_2", after)).then([counted("run_2", "2026-11-04")])
      expect(Budget.dayIn(stateOf(history), "2026-11-04")).toMatchObject({ spentUsd: 0, runs: 0 })
    })

    it("a reservation held over midnight counts in its own day, not the next", () => {
      const held = reserved("r1", 0.9, { now: Date.UTC(2026, 10, 3, 23, 59), expiresAt: Date.UTC(2026, 10, 4, 1) })
      const state = stateOf([set(hard), held])
      expect(Budget.reservedOn(state, "2026-11-04", Date.UTC(2026, 10, 4, 0, 1))).toBe(0)
      given(Budget.decider, [set(hard), held]).when(reserve("r2", 1, { now: Date.UTC(2026, 10, 4, 0, 1) })).then([
        reserved("r2", 1, { now: Date.UTC(2026, 10, 4, 0, 1), day: "2026-11-04" })
      ])
    })

    it(`keeps the totals of the last ${Budget.KEEP_DAYS} days, and settled ids of the last two only`, () => {
      const days = Array.from(
        { length: Budget.KEEP_DAYS + 5 },
        (_, i) => new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10)
      )
      const history: Array<BudgetEvent> = [set(hard), ...days.map((day, i) => settled(`r${i}`, 0.25, day))]
      const state = stateOf(history)
      const kept = Object.keys(state.days).sort()
      expect(kept).toEqual(days.slice(-Budget.KEEP_DAYS))
      expect(kept.every((d) => state.days[d]!.spentUsd === 0.25)).toBe(true)
      expect(kept.slice(0, -2).every((d) => state.days[d]!.settled.length === 0)).toBe(true)
      expect(state.days[days.at(-1)!]!.settled).toEqual([`r${days.length - 1}`])
      expect(state.days[days.at(-2)!]!.settled).toEqual([`r${days.length - 2}`])
    })
  })

  describe("wouldExceed (a forecast against the hard caps; changes nothing)", () => {
    it("given no budget or a soft one, then nothing is refused", () => {
      expect(Budget.wouldExceed(stateOf([]), 1e6, 1e9, T)).toBeNull()
      expect(Budget.wouldExceed(stateOf([set({ ...soft, maxCostUsdPerRun: 0.1 })]), 1, 0, T)).toBeNull()
    })

    it("given a per-run cap below the forecast, then it refuses with that cap", () =>
      expect(Budget.wouldExceed(stateOf([set({ maxCostUsdPerRun: 0.5, hardFail: true })]), 0.6, 10, T)).toMatchObject({
        scope: SCOPE,
        cap: "maxCostUsdPerRun",
        spent: 0,
        requested: 0.6
      }))

    it("given spend and live reservations today, then a run that does not fit the day's cost is refused", () => {
      const history = [set(hard), settled("s1", 0.5), reserved("r1", 0.3)]
      expect(Budget.wouldExceed(stateOf(history), 0.3, 0, T)).toEqual({
        scope: SCOPE,
        cap: "maxCostUsdPerDay",
        limit: 1,
        spent: 0.5,
        reserved: 0.3,
        requested: 0.3,
        reason:
          `maxCostUsdPerDay of ${SCOPE} is 1 USD: 0.5 USD spent and 0.3 USD reserved today leave no room for a run forecast at 0.3 USD (p90)`
      })
      expect(Budget.wouldExceed(stateOf(history), 0.2, 0, T)).toBeNull()
      // the reservation expired: it no longer counts
      expect(Budget.wouldExceed(stateOf(history), 0.3, 0, T + HOUR)).toBeNull()
    })

    it("given the day's runs used up, then one more run is refused", () =>
      expect(Budget.wouldExceed(stateOf([set({ maxRunsPerDay: 1, hardFail: true }), counted("run_1")]), 0, 0, T))
        .toMatchObject({
          cap: "maxRunsPerDay",
          spent: 1,
          requested: 1,
          reason: `maxRunsPerDay of ${SCOPE} is 1: 1 runs started today`
        }))
  })

  it("evolve applies whatever decide emits, over a mixed history", () => {
    let state = stateOf([set(soft)])
    const commands: Array<Budget.Command> = []
    for (let i = 0; i < 30; i++) {
      const now = T + i * 10 * HOUR
      commands.push(countRun(`run_${i}`, now), reserve(`r${i}`, 0.3, { now, runId: `run_${i}` }))
      if (i % 3 !== 0) commands.push(settle(`r${i}`, 0.2, now + 1_000, `run_${i}`))
    }
    for (const command of commands) {
      const decided = Budget.decide(command, state)
      expect(Result.isSuccess(decided)).toBe(true)
      if (Result.isSuccess(decided)) state = decided.success.reduce(Budget.evolve, state)
    }
    // every third reservation was never settled: each expired and was released by a later reservation
    expect(state.open).toEqual({})
    expect(Object.values(state.days).reduce((n, d) => n + d.runs, 0)).toBe(30)
  })
})
