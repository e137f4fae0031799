// The pure slot arithmetic of schedules (ADR 0055): which slot of a cron expression (croner, in an IANA time zone) or
// of an interval is due at `now`, how many missed slots one fire coalesces, and when the next one is. No I/O, no clock:
// every function takes the instant it reasons about, so tests drive it with any time they like.
import { Cron } from "croner"

/** When a schedule fires: a cron expression read in a time zone, or every N seconds from its anchor. */
export type Timing =
  | { readonly _tag: "cron"; readonly cron: string; readonly timezone: string }
  | { readonly _tag: "every"; readonly everySeconds: number }

/** The most missed slots a fire counts one by one (a per-minute cron down for 16 hours); past it `coalesced` stops. */
export const MAX_COUNTED = 1_000

const NICKNAMES = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"])

const crons = new Map<string, Cron>()

/** The parsed expression (parsed once per expression and zone on this host). Throws on a bad one. */
const cronOf = (cron: string, timezone: string): Cron => {
  const key = `${timezone}\n${cron}`
  let c = crons.get(key)
  if (c === undefined) {
    c = new Cron(cron.trim(), { paused: true, timezone })
    if (crons.size > 10_000) crons.clear()
    crons.set(key, c)
  }
  return c
}

/** Why `timezone` is not an IANA time zone this runtime knows, or null when it is one. */
export const timezoneProblem = (timezone: string): string | null => {
  if (timezone.length === 0 || timezone.length > 64) return "expected an IANA time zone such as Europe/Berlin or UTC"
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone })
    return null
  } catch {
    return `unknown IANA time zone '${timezone}'`
  }
}

/**
 * Why `cron` is not a usable cron expression, or null when it is: five fields (minute hour day-of-month month
 * day-of-week), six with seconds first, or a nickname (@hourly, @daily, @weekly, @monthly, @yearly); it must fire at
 * least once from `now` on. (croner alone would also take an ISO date as a one-off time: refused here.)
 */
export const cronProblem = (cron: string, timezone: string, now: number): string | null => {
  const text = cron.trim()
  if (!NICKNAMES.has(text.toLowerCase())) {
    const fields = text.split(/\s+/u)
    if (fields.length !== 5 && fields.length !== 6) {
      return `expected 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or a nickname such as @daily; got ${fields.length}`
    }
    if (fields.some((f) => !/^[0-9A-Za-z*,/?#LW-]+$/u.test(f))) return "unexpected characters in a field"
  }
  try {
    const next = cronOf(text, timezone).nextRun(new Date(now))
    return next === null ? "the expression never fires" : null
  } catch (e) {
    return e instanceof Error ? e.message.replace(/^CronPattern: /u, "") : String(e)
  }
}

/** The first slot strictly after `after` (epoch ms), or null when the expression fires no more. */
export const nextAfter = (timing: Timing, anchor: number, after: number): number | null => {
  if (timing._tag === "every") {
    const n = timing.everySeconds * 1000
    if (after < anchor) return anchor
    return anchor + (Math.floor((after - anchor) / n) + 1) * n
  }
  const next = cronOf(timing.cron, timing.timezone).nextRun(new Date(after))
  return next === null ? null : next.getTime()
}

/**
 * The first slot not yet fired: an interval's first slot is its anchor itself (it fires when created, then every N
 * seconds), a cron's is its first time after the anchor; after a fire, the first slot after the last one fired.
 */
export const firstSlot = (timing: Timing, anchor: number, lastSlot: number | null): number | null =>
  lastSlot === null
    ? (timing._tag === "every" ? anchor : nextAfter(timing, anchor, anchor))
    : nextAfter(timing, anchor, lastSlot)

/** A fire that is due: the latest slot at or before now, how many slots it stands for, and the next slot after now. */
export interface Due {
  readonly slot: number
  /** Slots from the first not yet fired up to `slot`, inclusive: 1 when none was missed (at most MAX_COUNTED). */
  readonly coalesced: number
  readonly next: number | null
}

/**
 * What is due at `now`: nothing (null) when the first slot not yet fired is later; otherwise ONE fire for the latest
 * slot at or before `now`, standing for every slot missed since (coalesced catch-up: never one fire per missed slot),
 * and the next slot computed from `now`.
 */
export const due = (timing: Timing, anchor: number, lastSlot: number | null, now: number): Due | null => {
  const first = firstSlot(timing, anchor, lastSlot)
  if (first === null || first > now) return null
  if (timing._tag === "every") {
    const n = timing.everySeconds * 1000
    const latest = anchor + Math.floor((now - anchor) / n) * n
    return { slot: latest, coalesced: Math.min(MAX_COUNTED, Math.round((latest - first) / n) + 1), next: latest + n }
  }
  const cron = cronOf(timing.cron, timing.timezone)
  const latest = cron.previousRuns(1, new Date(now + 1))[0]?.getTime() ?? first
  let coalesced = 1
  for (let at = first; coalesced < MAX_COUNTED;) {
    const following = cron.nextRun(new Date(at))
    if (following === null || following.getTime() > latest) break
    at = following.getTime()
    coalesced++
  }
  return { slot: Math.max(latest, first), coalesced, next: nextAfter(timing, anchor, now) }
}

/** The slot's key: the same slot of the same schedule is one fire, whichever host journals it. */
export const slotKey = (slot: number) => `slot-${slot}`
