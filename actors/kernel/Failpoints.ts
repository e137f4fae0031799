// Failpoints for fault-injection tests: LANTERN_FAILPOINTS names places where this process kills itself with
// SIGKILL (no finalizers, like a power cut), e.g. `after-effect:turn-2`, or, with `=stall`, where the fiber passing
// stops for a few seconds (`before-run-queued=stall`: a test can drop the request's connection meanwhile). Unset in
// production: then `hit` is a no-op costing one lookup in an empty list.
import { Effect } from "effect"

export const POINTS = [
  "before-run-queued",
  "before-step-start",
  // a step's call made (it overlaps its StepStarted, ADR 0083), the StepStarted not yet appended
  "during-step-start",
  "after-step-start",
  "after-effect",
  "after-step-complete"
] as const
export type Point = (typeof POINTS)[number]

export const ACTIONS = ["kill", "stall"] as const
export type Action = (typeof ACTIONS)[number]

/** How long a `stall` failpoint holds the fiber that hits it. */
export const STALL_MS = 5_000

interface Armed {
  readonly point: Point
  readonly stepId: string | null
  readonly action: Action
}

/**
 * Parses `point[:stepId][=action]` entries separated by commas (the action is `kill` when absent); unknown points and
 * actions are refused so a typo cannot pass silently.
 */
export const parse = (spec: string): ReadonlyArray<Armed> =>
  spec.split(",").map((s) => s.trim()).filter((s) => s !== "").map((entry) => {
    const eq = entry.indexOf("=")
    const target = eq < 0 ? entry : entry.slice(0, eq)
    const action = (eq < 0 ? "kill" : entry.slice(eq + 1)) as Action
    if (!ACTIONS.includes(action)) {
      throw new Error(`LANTERN_FAILPOINTS: unknown action '${action}'; known: ${ACTIONS.join(", ")}`)
    }
    const i = target.indexOf(":")
    const point = (i < 0 ? target : target.slice(0, i)) as Point
    if (!POINTS.includes(point))
      throw new Error(`LANTERN_FAILPOINTS: unknown point '${point}'; known: ${POINTS.join(", ")}`)
    return { point, stepId: i < 0 ? null : target.slice(i + 1), action }
  })

const armed = parse(process.env["LANTERN_FAILPOINTS"] ?? "")

/** Kills this process, or stalls the calling fiber, if the failpoint `point` is armed for `stepId`. */
export const hit = (point: Point, stepId: string): Effect.Effect<void> =>
  armed.length === 0
    ? Effect.void
    : Effect.suspend(() => {
      const a = armed.find((a) => a.point === point && (a.stepId === null || a.stepId === stepId))
      if (a === undefined) return Effect.void
      if (a.action === "stall") {
        process.stderr.write(`failpoint ${point}:${stepId} hit: stalling ${STALL_MS} ms\n`)
        return Effect.sleep(STALL_MS)
      }
      process.stderr.write(`failpoint ${point}:${stepId} hit: killing process ${process.pid}\n`)
      process.kill(process.pid, "SIGKILL")
      return Effect.never
    })
