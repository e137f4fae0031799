// The budget of one scope (the tenant, or one agent of it) as a pure decider. Every model call reserves its
// worst case before it is made and settles to its actual cost after; a reservation that would take the day's
// spend plus what is already held past a hard cap is refused, so concurrent runs cannot race past the cap.
// Reservations carry an expiry: one whose host died stops counting when it passes and is released by the
// next reservation on the scope. What each cap refuses, and the per-run caps that only a run's driver can check,
// are in Caps.ts.
import { Result } from "effect"
import type { BudgetLimits } from "../../schema/Budget.ts"
import { BudgetExceeded } from "../../schema/Errors.ts"
import type { BudgetEvent, BudgetRefusal, BudgetSeed } from "../../schema/Events.ts"
import { accept, type Decider, ignore } from "../kernel/Decider.ts"
import * as Caps from "./Caps.ts"

export interface Reservation {
  readonly runId: string
  readonly day: string
  readonly amountUsd: number
  readonly tokens: number
  readonly host: string
  readonly expiresAt: number
}

export interface Day {
  readonly spentUsd: number
  readonly tokens: number
  readonly runs: number
  /** Calls settled this day: one settles once, whichever host ran it. */
  readonly settled: ReadonlyArray<string>
  readonly counted: ReadonlyArray<string>
  /** Soft caps already alerted this day. */
  readonly alerted: ReadonlyArray<string>
}

export interface State {
  readonly scope: string
  readonly limits: BudgetLimits | null
  readonly setBy: string | null
  readonly days: Readonly<Record<string, Day>>
  readonly open: Readonly<Record<string, Reservation>>
}

export const initialState: State = { scope: "", limits: null, setBy: null, days: {}, open: {} }

/** Day totals are kept this many days; the ids that make settling and counting idempotent, two days. */
export const KEEP_DAYS = 40
const KEEP_IDS_DAYS = 2

export type Command =
  | {
    readonly _tag: "SetBudget"
    readonly scope: string
    readonly limits: BudgetLimits
    readonly by: string
    /** The day's totals as the projections know them; only what the journal does not count yet is seeded. */
    readonly projected?: BudgetSeed
  }
  | {
    readonly _tag: "Reserve"
    readonly reservationId: string
    readonly runId: string
    readonly amountUsd: number
    readonly tokens: number
    readonly host: string
    readonly now: number
    readonly expiresAt: number
  }
  | {
    readonly _tag: "Settle"
    readonly reservationId: string
    readonly runId: string
    readonly costUsd: number
    readonly tokens: number
    readonly now: number
  }
  | {
    readonly _tag: "CountRun"
    readonly runId: string
    readonly now: number
    /** The run's first model call at worst: a day with less room than this refuses the run up front. */
    readonly firstCallUsd: number
  }
  | {
    /** Gives a reservation back unspent (another scope refused the call): it may be reserved again later. */
    readonly _tag: "Release"
    readonly reservationId: string
    readonly reason: string
  }
  | {
    readonly _tag: "Alert"
    readonly cap: string
    readonly limit: number
    readonly value: number
    readonly runId: string
    readonly now: number
  }

/** The UTC day of an epoch-ms time, `YYYY-MM-DD`. */
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10)

const emptyDay: Day = { spentUsd: 0, tokens: 0, runs: 0, settled: [], counted: [], alerted: [] }

export const dayIn = (state: State, day: string): Day => state.days[day] ?? emptyDay

/** What live reservations hold on `day` at `now`: expired ones no longer count, whether or not released yet. */
export const reservedOn = (state: State, day: string, now: number): number => {
  let held = 0
  for (const r of Object.values(state.open)) if (r.day === day && r.expiresAt > now) held += r.amountUsd
  return held
}

const expired = (state: State, now: number): Array<BudgetEvent> =>
  Object.entries(state.open)
    .filter(([, r]) => r.expiresAt <= now)
    .map(([reservationId, r]) => ({
      _tag: "BudgetReleased" as const,
      reservationId,
      reason: `expired at ${new Date(r.expiresAt).toISOString()} without being settled (host ${r.host})`
    }))

/** A hard refusal fails the decision; a soft one is let through with an alert, once per cap and day. */
const enforce = (
  state: State,
  day: string,
  runId: string,
  refusal: BudgetRefusal | null,
  events: Array<BudgetEvent>
): Result.Result<Array<BudgetEvent>, BudgetExceeded> => {
  if (refusal === null) return Result.succeed(events)
  if (state.limits?.hardFail !== false) return Result.fail(new BudgetExceeded({ refusal }))
  if (dayIn(state, day).alerted.includes(refusal.cap)) return Result.succeed(events)
  return Result.succeed([...events, {
    _tag: "BudgetAlerted",
    day,
    cap: refusal.cap,
    limit: refusal.limit,
    value: Caps.round(refusal.spent + refusal.reserved + refusal.requested),
    runId
  }])
}

/** What the projected day holds beyond the journal's own count of it; null when nothing. */
export const seedOf = (state: State, projected: BudgetSeed): BudgetSeed | null => {
  const journaled = dayIn(state, projected.day)
  const seed = {
    day: projected.day,
    spentUsd: Caps.round(Math.max(0, projected.spentUsd - journaled.spentUsd)),
    tokens: Math.max(0, projected.tokens - journaled.tokens),
    runs: Math.max(0, projected.runs - journaled.runs)
  }
  return seed.spentUsd > 0 || seed.tokens > 0 || seed.runs > 0 ? seed : null
}

export const decide = (command: Command, state: State): Result.Result<ReadonlyArray<BudgetEvent>, BudgetExceeded> => {
  switch (command._tag) {
    case "SetBudget": {
      const seed = command.projected === undefined ? null : seedOf(state, command.projected)
      return accept<BudgetEvent>({
        _tag: "BudgetSet",
        scope: command.scope,
        limits: command.limits,
        by: command.by,
        ...(seed === null ? {} : { seed })
      })
    }
    case "Reserve": {
      const day = dayOf(command.now)
      const held = state.open[command.reservationId]
      // the same attempt again (its host died and another restarted it): take the reservation over, no second hold.
      // One already expired no longer counts (others may have used its room): it is released and reserved anew.
      if (held !== undefined && held.expiresAt > command.now) {
        if (held.host === command.host && held.expiresAt >= command.expiresAt) return ignore
        return accept<BudgetEvent>({
          _tag: "BudgetReserved",
          reservationId: command.reservationId,
          runId: held.runId,
          day: held.day,
          amountUsd: held.amountUsd,
          tokens: held.tokens,
          host: command.host,
          expiresAt: Math.max(held.expiresAt, command.expiresAt)
        })
      }
      if (Object.values(state.days).some((d) => d.settled.includes(command.reservationId))) return ignore
      const current = { spent: dayIn(state, day).spentUsd, reserved: reservedOn(state, day, command.now) }
      const refusal = Caps.over(
        state.scope,
        "maxCostUsdPerDay",
        state.limits?.maxCostUsdPerDay,
        current,
        command.amountUsd,
        " USD"
      )
      return enforce(state, day, command.runId, refusal, [
        ...expired(state, command.now),
        {
          _tag: "BudgetReserved",
          reservationId: command.reservationId,
          runId: command.runId,
          day,
          amountUsd: command.amountUsd,
          tokens: command.tokens,
          host: command.host,
          expiresAt: command.expiresAt
        }
      ])
    }
    case "Settle": {
      const held = state.open[command.reservationId]
      const day = held?.day ?? dayOf(command.now)
      if (Object.values(state.days).some((d) => d.settled.includes(command.reservationId))) return ignore
      const settled: BudgetEvent = {
        _tag: "BudgetSettled",
        reservationId: command.reservationId,
        runId: command.runId,
        day,
        costUsd: command.costUsd,
        tokens: command.tokens
      }
      const after = evolve(state, settled)
      const current = { spent: dayIn(after, day).spentUsd, reserved: 0 }
      const passed = state.limits?.hardFail === false
        ? Caps.over(after.scope, "maxCostUsdPerDay", state.limits.maxCostUsdPerDay, current, 0, " USD")
        : null
      // settling never fails: the money is spent; a soft cap it passes is alerted
      return enforce(after, day, command.runId, passed, [settled])
    }
    case "CountRun": {
      const day = dayOf(command.now)
      const today = dayIn(state, day)
      if (today.counted.includes(command.runId)) return ignore
      const byRuns = Caps.over(
        state.scope,
        "maxRunsPerDay",
        state.limits?.maxRunsPerDay,
        { spent: today.runs, reserved: 0 },
        1,
        " runs"
      )
      const byCost = Caps.over(
        state.scope,
        "maxCostUsdPerDay",
        state.limits?.maxCostUsdPerDay,
        { spent: today.spentUsd, reserved: reservedOn(state, day, command.now) },
        command.firstCallUsd,
        " USD"
      )
      const counted: Array<BudgetEvent> = [{ _tag: "BudgetRunCounted", runId: command.runId, day }]
      return Result.flatMap(
        enforce(state, day, command.runId, byRuns, counted),
        (events) => enforce(evolveAll(state, events), day, command.runId, byCost, events)
      )
    }
    case "Release":
      return state.open[command.reservationId] === undefined
        ? ignore
        : accept<BudgetEvent>({ _tag: "BudgetReleased", reservationId: command.reservationId, reason: command.reason })
    case "Alert": {
      const day = dayOf(command.now)
      if (dayIn(state, day).alerted.includes(command.cap)) return ignore
      return accept<BudgetEvent>({
        _tag: "BudgetAlerted",
        day,
        cap: command.cap,
        limit: command.limit,
        value: command.value,
        runId: command.runId
      })
    }
  }
}

const withDay = (state: State, day: string, f: (d: Day) => Day): State => {
  const days = { ...state.days, [day]: f(dayIn(state, day)) }
  const names = Object.keys(days).sort().slice(-KEEP_DAYS)
  const keep: Record<string, Day> = {}
  for (const [i, name] of names.entries()) {
    const d = days[name]!
    // ids only matter for a restart of recent work: days long past keep their totals only
    keep[name] = i >= names.length - KEEP_IDS_DAYS ? d : { ...d, settled: [], counted: [] }
  }
  return { ...state, days: keep }
}

export const evolve = (state: State, event: BudgetEvent): State => {
  switch (event._tag) {
    case "BudgetSet": {
      const set = { ...state, scope: event.scope, limits: event.limits, setBy: event.by }
      const seed = event.seed
      if (seed === undefined) return set
      return withDay(set, seed.day, (d) => ({
        ...d,
        spentUsd: d.spentUsd + seed.spentUsd,
        tokens: d.tokens + seed.tokens,
        runs: d.runs + seed.runs
      }))
    }
    case "BudgetReserved":
      return {
        ...state,
        open: {
          ...state.open,
          [event.reservationId]: {
            runId: event.runId,
            day: event.day,
            amountUsd: event.amountUsd,
            tokens: event.tokens,
            host: event.host,
            expiresAt: event.expiresAt
          }
        }
      }
    case "BudgetSettled": {
      const { [event.reservationId]: _, ...open } = state.open
      return withDay({ ...state, open }, event.day, (d) => ({
        ...d,
        spentUsd: d.spentUsd + event.costUsd,
        tokens: d.tokens + event.tokens,
        settled: [...d.settled, event.reservationId]
      }))
    }
    case "BudgetReleased": {
      const { [event.reservationId]: _, ...open } = state.open
      return { ...state, open }
    }
    case "BudgetRunCounted":
      return withDay(state, event.day, (d) => ({ ...d, runs: d.runs + 1, counted: [...d.counted, event.runId] }))
    case "BudgetAlerted":
      return withDay(state, event.day, (d) => ({ ...d, alerted: [...d.alerted, event.cap] }))
  }
}

const evolveAll = (state: State, events: ReadonlyArray<BudgetEvent>) => events.reduce(evolve, state)

/**
 * The hard cap of this scope that one new run costing `usd` (and `tokens`) would break, if any: its per-run caps,
 * then the day's cost (spent and live reservations) and the day's runs. A soft budget never refuses.
 */
export const wouldExceed = (state: State, usd: number, tokens: number, now: number): BudgetRefusal | null => {
  const limits = state.limits
  if (limits === null || !limits.hardFail) return null
  const perRunCap = Caps.overRun(state.scope, limits, Caps.NO_USAGE, {
    promptTokens: tokens,
    maxTokens: 0,
    worstCaseUsd: usd,
    models: []
  })
  if (perRunCap !== null) return perRunCap
  const day = dayOf(now)
  const today = dayIn(state, day)
  const reserved = reservedOn(state, day, now)
  if (limits.maxCostUsdPerDay !== undefined && today.spentUsd + reserved + usd > limits.maxCostUsdPerDay + 1e-12) {
    return {
      scope: state.scope,
      cap: "maxCostUsdPerDay",
      limit: limits.maxCostUsdPerDay,
      spent: Caps.round(today.spentUsd),
      reserved: Caps.round(reserved),
      requested: Caps.round(usd),
      reason: `maxCostUsdPerDay of ${state.scope} is ${limits.maxCostUsdPerDay} USD: ${
        Caps.round(today.spentUsd)
      } USD spent and ${Caps.round(reserved)} USD reserved today leave no room for a run forecast at ${
        Caps.round(usd)
      } USD (p90)`
    }
  }
  if (limits.maxRunsPerDay !== undefined && today.runs + 1 > limits.maxRunsPerDay) {
    return {
      scope: state.scope,
      cap: "maxRunsPerDay",
      limit: limits.maxRunsPerDay,
      spent: today.runs,
      reserved: 0,
      requested: 1,
      reason: `maxRunsPerDay of ${state.scope} is ${limits.maxRunsPerDay}: ${today.runs} runs started today`
    }
  }
  return null
}

export const decider: Decider<State, Command, BudgetEvent, BudgetExceeded> = {
  initialState,
  decide,
  evolve,
  snapshot: { version: 1 }
}
