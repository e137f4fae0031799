// Test support: conditions polled to a deadline (never a fixed sleep), in real time, so they work beside the test
// clock too: as a Promise (`eventually`, `probeUntil`) or as an Effect (`until`).
import { Effect } from "effect"

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it returns a value or the deadline passes. */
export const eventually = async <A>(
  check: () => Promise<A | undefined | null | false>,
  deadlineMs = 30_000,
  what = "condition"
): Promise<A> => {
  const deadline = Date.now() + deadlineMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v !== undefined && v !== null && v !== false) return v
    } catch (e) {
      last = e
    }
    await pause(50)
  }
  throw new Error(
    `timed out after ${deadlineMs} ms waiting for ${what}${last === undefined ? "" : `: ${String(last)}`}`
  )
}

/** Polls `probe` until `ok` holds or the deadline passes; the last value is returned either way. */
export const probeUntil = async <A>(
  probe: () => Promise<A>,
  ok: (a: A) => boolean,
  deadlineMs = 20_000
): Promise<A> => {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const value = await probe()
    if (ok(value) || Date.now() > deadline) return value
    await pause(25)
  }
}

/**
 * Polls `check` (a value, or an Effect of one) until it holds; a defect naming `what` once `ms` have passed. For
 * what arrives asynchronously beside the fibers under test (a watch delivering other hosts' writes).
 */
export const until = <E = never, R = never>(
  check: () => boolean | Effect.Effect<boolean, E, R>,
  what: string,
  ms = 5_000
): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    for (;;) {
      const checked = check()
      if (typeof checked === "boolean" ? checked : yield* checked) return
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.promise(() => pause(10))
    }
  })
