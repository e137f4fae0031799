// The queue workflow templates (ADR 0056): which phase comes first, where each phase's artifact goes, and what a
// finished phase leads to given its task's machineStatus. Pure.

/** What a finished phase leads to. */
export type Step =
  | { readonly _tag: "Phase"; readonly phase: string; readonly iteration: number }
  | {
    readonly _tag: "End"
    readonly status: "complete" | "failed"
    readonly result: string
    readonly reason: string | null
  }

export interface Template {
  readonly name: string
  readonly phases: ReadonlyArray<string>
  readonly first: string
  readonly artifactPath: (base: string, phase: string, iteration: number) => string
  readonly next: (phase: string, iteration: number, machineStatus: string, maxIterations: number) => Step
  /** The stage a workflow shows: the phase, or the lifecycle word (pr-lifecycle). */
  readonly stage: (lastFinished: string | null, current: string | null, result: string | null) => string | null
}

const norm = (s: string) => s.trim().toLowerCase()
/** machineStatus words that mean the goal is reached. */
export const DONE = new Set(["done", "complete", "completed", "ok", "pass", "passed", "success", "succeeded"])
export const CONTINUE = new Set(["continue", "retry", "again", "not_done"])
export const FAILED = new Set(["failed", "fail", "abandon", "abandoned", "impossible"])

const phase = (p: string, iteration: number): Step => ({ _tag: "Phase", phase: p, iteration })
const end = (status: "complete" | "failed", result: string, reason: string | null): Step => ({
  _tag: "End",
  status,
  result,
  reason
})

/**
 * plan → execute → verify; verify's `continue` starts a new execute (the next iteration) until `maxIterations`,
 * `done` completes, `failed` fails, anything else fails naming it.
 */
export const goalLoop: Template = {
  name: "goal-loop",
  phases: ["plan", "execute", "verify"],
  first: "plan",
  artifactPath: (base, p, n) => (p === "plan" ? `plans/${base}-plan.md` : `reports/${base}-${p}-${n}.md`),
  next: (p, n, machineStatus, maxIterations) => {
    const ms = norm(machineStatus)
    switch (p) {
      case "plan":
        return FAILED.has(ms) ? end("failed", ms, `plan reported ${machineStatus}`) : phase("execute", 1)
      case "execute":
        return FAILED.has(ms) ? end("failed", ms, `execute ${n} reported ${machineStatus}`) : phase("verify", n)
      case "verify":
        if (DONE.has(ms)) return end("complete", "done", null)
        if (CONTINUE.has(ms)) {
          return n < maxIterations
            ? phase("execute", n + 1)
            : end(
              "failed",
              "max_iterations",
              `verify asked to continue after iteration ${n} of ${maxIterations} (maxIterations)`
            )
        }
        if (FAILED.has(ms)) return end("failed", ms, `verify ${n} reported ${machineStatus}`)
        return end(
          "failed",
          "unknown_status",
          `verify ${n} reported machineStatus '${machineStatus}'; a goal loop knows continue, done (ok, pass) and failed`
        )
      default:
        return end("failed", "unknown_phase", `goal-loop has no phase '${p}'`)
    }
  },
  stage: (_last, current) => current
}

/** open → review → merge (approved) or closed (rejected); opened → reviewed → merged | closed. */
export const prLifecycle: Template = {
  name: "pr-lifecycle",
  phases: ["open", "review", "merge"],
  first: "open",
  artifactPath: (base, p) => `reports/${base}-${p}.md`,
  next: (p, _n, machineStatus) => {
    const ms = norm(machineStatus)
    switch (p) {
      case "open":
        return FAILED.has(ms) ? end("failed", ms, `open reported ${machineStatus}`) : phase("review", 1)
      case "review":
        if (["approved", "approve", "merge", "lgtm", ...DONE].includes(ms)) return phase("merge", 1)
        if (["closed", "close", "rejected", "reject", "declined"].includes(ms)) {
          return end("complete", "closed", `review reported ${machineStatus}`)
        }
        return end(
          "failed",
          "unknown_status",
          `review reported machineStatus '${machineStatus}'; a pr-lifecycle knows approved and closed (rejected)`
        )
      case "merge":
        return FAILED.has(ms) ? end("failed", ms, `merge reported ${machineStatus}`) : end("complete", "merged", null)
      default:
        return end("failed", "unknown_phase", `pr-lifecycle has no phase '${p}'`)
    }
  },
  stage: (last, current, result) => {
    if (result === "merged" || result === "closed") return result
    const done = last ?? null
    if (done === "review") return "reviewed"
    if (done === "open") return "opened"
    return current === "open" ? "opening" : current
  }
}

export const templates: Readonly<Record<string, Template>> = {
  "goal-loop": goalLoop,
  "pr-lifecycle": prLifecycle
}

export const find = (name: string): Template | undefined => templates[name]

/** The artifacts' base of an instance key: lowercase, runs of anything else as one '-'. */
export const baseOf = (instanceKey: string): string => {
  const slug = instanceKey.toLowerCase().replace(/[^a-z0-9._]+/g, "-").replace(/^[-._]+|[-._]+$/g, "").slice(0, 80)
  return slug === "" ? "workflow" : slug
}
