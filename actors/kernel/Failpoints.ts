// Failpoints for fault-injection tests: LANTERN_FAILPOINTS names places where this process kills itself with
// SIGKILL (no finalizers, like a power cut), e.g. `after-effect:turn-2`. Unset in production: then `hit` is a
// no-op costing one lookup in an empty list.
import { Effect } from "effect"

export const POINTS = [
  "before-run-queued",
  "before-step-start",
  "after-step-start",
  "after-effect",
  "after-step-complete"
] as const
export type Point = (typeof POINTS)[number]

interface Armed {
  readonly point: Point
  readonly stepId: string | null
}

/** Parses `point[:stepId]` entries separated by commas; unknown points are refused so a typo cannot pass silently. */
export const parse = (spec: string): ReadonlyArray<Armed> =>
  spec.split(",").map((s) => s.trim()).filter((s) => s !== "").map((entry) => {
    const i = entry.indexOf(":")
    const point = (i < 0 ? entry : entry.slice(0, i)) as Point
    if (!POINTS.includes(point))
      throw new Error(`LANTERN_FAILPOINTS: unknown point '${point}'; known: ${POINTS.join(", ")}`)
    return { point, stepId: i < 0 ? null : entry.slice(i + 1) }
  })

const armed = parse(process.env["LANTERN_FAILPOINTS"] ?? "")

/** Kills this process if the failpoint `point` is armed for `stepId`. */
export const hit = (point: Point, stepId: string): Effect.Effect<void> =>
  armed.length === 0
    ? Effect.void
    : Effect.suspend(() => {
      if (!armed.some((a) => a.point === point && (a.stepId === null || a.stepId === stepId))) return Effect.void
      process.stderr.write(`failpoint ${point}:${stepId} hit: killing process ${process.pid}\n`)
      process.kill(process.pid, "SIGKILL")
      return Effect.never
    })
