// Slot arithmetic (ADR 0055): intervals and cron expressions in a time zone, coalesced catch-up (one fire for the
// missed slots, the next slot counted from now), and the expressions and zones refused.
import { describe, expect, it } from "vitest"
import * as Slots from "./Slots.ts"

const at = (iso: string) => Date.parse(iso)
const every = (everySeconds: number): Slots.Timing => ({ _tag: "every", everySeconds })
const cron = (expr: string, timezone = "UTC"): Slots.Timing => ({ _tag: "cron", cron: expr, timezone })

describe("an interval", () => {
  const anchor = at("2026-12-03T10:00:00Z")
  const timing = every(305)

  it("is first due at its anchor, then every N seconds", () => {
    expect(Slots.firstSlot(timing, anchor, null)).toBe(anchor)
    expect(Slots.due(timing, anchor, null, anchor - 1)).toBeNull()
    expect(Slots.due(timing, anchor, null, anchor)).toEqual({ slot: anchor, coalesced: 1, next: anchor + 305_000 })
  })

  it("ticked at 10:05, again at 10:05, then at 13:00 fires 1, 0, 1 times, the last standing for 35 slots", () => {
    let last: number | null = null
    const fires: Array<Slots.Due> = []
    for (const now of ["10:05:00", "10:05:00", "13:00:00"].map((t) => at(`2026-12-03T${t}Z`))) {
      const due = Slots.due(timing, anchor, last, now)
      if (due !== null) {
        fires.push(due)
        last = due.slot
      }
    }
    expect(fires).toHaveLength(2)
    expect(fires[0]).toEqual({ slot: anchor, coalesced: 1, next: at("2026-12-03T10:05:05Z") })
    // 10:05:05 … 12:57:55 (10:00 + 35 · 305 s): 35 slots missed, ONE fire for them; the next slot is the first
    // after 13:00, not the first missed one
    expect(fires[1]).toEqual({
      slot: at("2026-12-03T12:57:55Z"),
      coalesced: 35,
      next: at("2026-12-03T13:03:00Z")
    })
  })

  it("counts no slot twice and skips none: fires at every tick past a slot cover every slot exactly once", () => {
    let last: number | null = null
    let covered = 0
    for (let now = anchor; now < anchor + 3_600_000; now += 97_000) {
      const due = Slots.due(timing, anchor, last, now)
      if (due === null) continue
      covered += due.coalesced
      last = due.slot
    }
    // slots at anchor + k·305 s up to the last tick (anchor + 37·97 s = 3589 s): k = 0 … 11
    expect(covered).toBe(12)
  })
})

describe("a cron expression", () => {
  it("is first due at its first time after the anchor", () => {
    const t = cron("*/5 * * * *")
    const anchor = at("2026-12-03T10:02:00Z")
    expect(Slots.due(t, anchor, null, at("2026-12-03T10:04:59Z"))).toBeNull()
    expect(Slots.due(t, anchor, null, at("2026-12-03T10:05:00Z"))).toEqual({
      slot: at("2026-12-03T10:05:00Z"),
      coalesced: 1,
      next: at("2026-12-03T10:10:00Z")
    })
  })

  it("after downtime fires once for the latest missed slot and counts the missed ones", () => {
    const t = cron("*/5 * * * *")
    const due = Slots.due(t, 0, at("2026-12-03T10:05:00Z"), at("2026-12-03T13:02:00Z"))
    expect(due).toEqual({ slot: at("2026-12-03T13:00:00Z"), coalesced: 35, next: at("2026-12-03T13:05:00Z") })
    // and the same tick again: nothing
    expect(Slots.due(t, 0, due!.slot, at("2026-12-03T13:02:00Z"))).toBeNull()
  })

  it("is read in its time zone", () => {
    const t = cron("0 8 * * *", "America/New_York")
    const due = Slots.due(t, at("2026-12-03T00:00:00Z"), null, at("2026-12-03T13:30:00Z"))
    // 08:00 in New York in December is 13:00 UTC
    expect(due?.slot).toBe(at("2026-12-03T13:00:00Z"))
    expect(due?.next).toBe(at("2026-12-04T13:00:00Z"))
  })

  it("stops counting missed slots at MAX_COUNTED", () => {
    const due = Slots.due(cron("* * * * * *"), 0, at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z"))
    expect(due?.coalesced).toBe(Slots.MAX_COUNTED)
    expect(due?.slot).toBe(at("2026-02-01T00:00:00Z"))
  })
})

describe("what is refused", () => {
  const now = at("2026-12-03T10:00:00Z")
  it.each([
    ["61 * * * *", "minute"],
    ["* * *", "5 fields"],
    ["2026-12-03T10:00:00", "5 fields"],
    ["0 0 30 2 *", "never fires"],
    ["* * * * * * *", "5 fields"],
    ["0;rm * * * *", "unexpected characters"]
  ])("%s", (expr, why) => {
    expect(Slots.cronProblem(expr, "UTC", now)).toContain(why)
  })
  it.each(["*/5 * * * *", "0 9 * * 1", "@daily", "*/10 * * * * *", "0 8 * * MON-FRI"])("accepts %s", (expr) => {
    expect(Slots.cronProblem(expr, "Europe/Berlin", now)).toBeNull()
  })
  it("an unknown time zone", () => {
    expect(Slots.timezoneProblem("Mars/Olympus")).toContain("unknown IANA time zone")
    expect(Slots.timezoneProblem("Europe/Berlin")).toBeNull()
    expect(Slots.timezoneProblem("UTC")).toBeNull()
  })
})
