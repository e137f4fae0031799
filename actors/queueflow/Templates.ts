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

/** Review words: approval leads to merge, rejection closes, a request for changes leads to a revise. */
export const APPROVED = new Set(["approved", "approve", "merge", "lgtm", ...DONE])
export const CLOSED = new Set(["closed", "close", "rejected", "reject", "declined"])
export const CHANGES_REQUESTED = new Set(["changes_requested", "request_changes", "changes", "revise", "needs_changes"])

/**
 * open → review → merge (approved) or closed (rejected); a review that requests changes starts a **new revise task**,
 * then review n+1, up to `maxIterations` reviews. Stages: opened → reviewed | changes_requested → revised → … →
 * merged | closed.
 */
export const prLifecycle: Template = {
  name: "pr-lifecycle",
  phases: ["open", "review", "revise", "merge"],
  first: "open",
  // the first review keeps its iteration-less path; later reviews and every revise carry their iteration
  artifactPath: (base, p, n) =>
    p === "revise" || (p === "review" && n > 1) ? `reports/${base}-${p}-${n}.md` : `reports/${base}-${p}.md`,
  next: (p, n, machineStatus, maxIterations) => {
    const ms = norm(machineStatus)
    switch (p) {
      case "open":
        return FAILED.has(ms) ? end("failed", ms, `open reported ${machineStatus}`) : phase("review", 1)
      case "review":
        if (APPROVED.has(ms)) return phase("merge", 1)
        if (CLOSED.has(ms)) return end("complete", "closed", `review reported ${machineStatus}`)
        if (CHANGES_REQUESTED.has(ms)) {
          return n < maxIterations ? phase("revise", n) : end(
            "failed",
            "max_iterations",
            `review ${n} requested changes after ${n} of ${maxIterations} reviews (maxIterations)`
          )
        }
        return end(
          "failed",
          "unknown_status",
          `review reported machineStatus '${machineStatus}'; a pr-lifecycle knows approved, changes_requested and closed (rejected)`
        )
      case "revise":
        return FAILED.has(ms) ? end("failed", ms, `revise ${n} reported ${machineStatus}`) : phase("review", n + 1)
      case "merge":
        return FAILED.has(ms) ? end("failed", ms, `merge reported ${machineStatus}`) : end("complete", "merged", null)
      default:
        return end("failed", "unknown_phase", `pr-lifecycle has no phase '${p}'`)
    }
  },
  stage: (last, current, result) => {
    if (result === "merged" || result === "closed") return result
    const done = last ?? null
    if (done === "review") return current === "revise" ? "changes_requested" : "reviewed"
    if (done === "revise") return "revised"
    if (done === "open") return "opened"
    return current === "open" ? "opening" : current
  }
}

export const templates: Readonly<Record<string, Template>> = {
  "goal-loop": goalLoop,
  "pr-lifecycle": prLifecycle
}

export const find = (name: string): Template | undefined => templates[name]

export interface Problem {
  readonly field: string
  readonly message: string
}

/** What the queue would refuse of a task submission, found before anything is written. */
export const submissionProblems = (
  s: {
    readonly agentName?: string
    readonly adapter?: unknown
    readonly availableAt?: string
    readonly delayMinutes?: number
  },
  at: string,
  needsRunner = true
): ReadonlyArray<Problem> => {
  const out: Array<Problem> = []
  if (s.availableAt !== undefined && s.delayMinutes !== undefined) {
    out.push({ field: `${at}delayMinutes`, message: "give availableAt or delayMinutes, not both" })
  }
  if (
    s.availableAt !== undefined &&
    (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/u.test(s.availableAt) ||
      Number.isNaN(Date.parse(s.availableAt)))
  ) {
    out.push({
      field: `${at}availableAt`,
      message: "Expected an ISO 8601 date and time with a zone, such as 2026-12-03T10:05:00Z"
    })
  }
  if (s.agentName !== undefined && s.adapter !== undefined) {
    out.push({ field: `${at}agentName`, message: "give agentName or adapter, not both" })
  }
  if (needsRunner && s.agentName === undefined && s.adapter === undefined) {
    out.push({
      field: `${at}adapter`,
      message: "give an adapter (or a chain of them), or agentName for an agent adapter"
    })
  }
  return out
}

interface Runs {
  readonly agentName?: string | undefined
  readonly adapter?: unknown
}

/** A phase's runner: the workflow's `task`, with the phase's own settings over it (its way to run replaces the task's). */
export const runnerOf = <R extends Runs>(task: R | null | undefined, own: R | null | undefined): R => {
  const base: Record<string, unknown> = { ...(task ?? {}) }
  if (own?.agentName !== undefined || own?.adapter !== undefined) {
    delete base["agentName"]
    delete base["adapter"]
  }
  return { ...base, ...(own ?? {}) } as R
}

/**
 * What would keep a workflow request from running: a phase its template does not have, or a phase whose task would
 * have no adapter (or two ways to run). `at` prefixes the fields (`proposedWorkflow.` from a sensor event).
 */
export const requestProblems = (
  request: {
    readonly template: string
    readonly task?: Runs
    readonly phases?: Readonly<Record<string, Runs>>
  },
  at = ""
): ReadonlyArray<Problem> => {
  const template = find(request.template)
  if (template === undefined) return [{ field: `${at}template`, message: `no template '${request.template}'` }]
  const out: Array<Problem> = []
  for (const name of Object.keys(request.phases ?? {})) {
    if (!template.phases.includes(name)) {
      out.push({
        field: `${at}phases.${name}`,
        message: `${template.name} has no phase '${name}' (its phases: ${template.phases.join(", ")})`
      })
    }
  }
  for (const name of template.phases) {
    const own = request.phases?.[name]
    const runner = runnerOf<Runs>(request.task, own)
    if (runner.agentName !== undefined && runner.adapter !== undefined) {
      out.push({
        field: own?.agentName !== undefined ? `${at}phases.${name}.agentName` : `${at}task.agentName`,
        message: `the ${name} task would have both agentName and adapter: give one`
      })
    } else if (runner.agentName === undefined && runner.adapter === undefined) {
      out.push({
        field: `${at}task`,
        message: `the ${name} task has no adapter: give task.adapter or task.agentName (or phases.${name})`
      })
      break
    }
  }
  return out
}

/** The artifacts' base of an instance key: lowercase, runs of anything else as one '-'. */
export const baseOf = (instanceKey: string): string => {
  const slug = instanceKey.toLowerCase().replace(/[^a-z0-9._]+/g, "-").replace(/^[-._]+|[-._]+$/g, "").slice(0, 80)
  return slug === "" ? "workflow" : slug
}
