// A run's journal as a timeline: one entry per step with each attempt (started, completed or failed, and when a
// failed one is retried), between the run's start and its end. Pure: the journal's events in, entries out.
import type { EventResponse } from "../../schema/Api.ts"
import * as Completions from "../../schema/Completions.ts"

export interface Attempt {
  readonly attempt: number
  readonly startedAt: string | null
  readonly endedAt: string | null
  readonly outcome: "running" | "completed" | "failed"
  readonly result: Record<string, unknown> | null
  readonly error: { readonly code: string; readonly message: string } | null
  readonly retryAt: number | null
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
  readonly route: Record<string, unknown> | null
}

export interface Step {
  readonly stepId: string
  /** The request's kind: model, tool, sleep, approval, agent. */
  readonly kind: string
  readonly request: Record<string, unknown>
  readonly wakeAt: number | null
  readonly attempts: ReadonlyArray<Attempt>
}

export type Entry =
  | {
    readonly _tag: "start"
    readonly at: string
    readonly agent: string
    readonly version: number
    readonly input: unknown
  }
  | { readonly _tag: "step"; readonly step: Step }
  | { readonly _tag: "end"; readonly at: string; readonly type: string; readonly detail: unknown }

const record = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : {}
const num = (v: unknown): number => (typeof v === "number" ? v : 0)

export const build = (events: ReadonlyArray<EventResponse>): ReadonlyArray<Entry> => {
  const entries: Array<Entry> = []
  const steps = new Map<string, { step: Step; index: number }>()
  const update = (id: string, f: (s: Step) => Step, request?: Record<string, unknown>) => {
    const found = steps.get(id)
    if (found === undefined) {
      const step: Step = f({
        stepId: id,
        kind: String(request?.["_tag"] ?? "step"),
        request: request ?? {},
        wakeAt: null,
        attempts: []
      })
      steps.set(id, { step, index: entries.length })
      entries.push({ _tag: "step", step })
    } else {
      const step = f(found.step)
      steps.set(id, { step, index: found.index })
      entries[found.index] = { _tag: "step", step }
    }
  }
  const attempt = (s: Step, n: number, f: (a: Attempt) => Attempt): Step => {
    const existing = s.attempts.find((a) => a.attempt === n)
    const base: Attempt = existing ?? {
      attempt: n,
      startedAt: null,
      endedAt: null,
      outcome: "running",
      result: null,
      error: null,
      retryAt: null,
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0,
      route: null
    }
    const next = f(base)
    return {
      ...s,
      attempts: existing === undefined
        ? [...s.attempts, next]
        : s.attempts.map((a) => (a.attempt === n ? next : a))
    }
  }

  // local steps journaled together (a StepsCompleted, ADR 0067) show as the steps they are
  for (const e of events.flatMap(Completions.expand)) {
    const p = record(e.payload)
    switch (e.type) {
      case "RunStarted":
        entries.push({
          _tag: "start",
          at: e.at,
          agent: String(p["agentName"]),
          version: num(p["agentVersion"]),
          input: p["input"]
        })
        break
      case "StepStarted":
        update(String(p["stepId"]), (s) =>
          attempt(
            { ...s, wakeAt: typeof p["wakeAt"] === "number" ? p["wakeAt"] : s.wakeAt },
            num(p["attempt"]),
            (a) => ({ ...a, startedAt: e.at })
          ), record(p["request"]))
        break
      case "StepCompleted":
        update(String(p["stepId"]), (s) =>
          attempt(s, num(p["attempt"]), (a) => ({
            ...a,
            startedAt: a.startedAt ?? e.at,
            endedAt: e.at,
            outcome: "completed",
            result: record(p["result"]),
            tokensIn: num(p["tokensIn"]),
            tokensOut: num(p["tokensOut"]),
            costUsd: num(p["costUsd"]),
            route: p["route"] === undefined ? null : record(p["route"])
          })), p["request"] === undefined ? undefined : record(p["request"]))
        break
      case "StepFailed": {
        const error = record(p["error"])
        update(String(p["stepId"]), (s) =>
          attempt(s, num(p["attempt"]), (a) => ({
            ...a,
            endedAt: e.at,
            outcome: "failed",
            error: { code: String(error["code"]), message: String(error["message"]) },
            retryAt: p["retryable"] === true && typeof p["retryAt"] === "number" ? p["retryAt"] : null,
            route: p["route"] === undefined ? null : record(p["route"])
          })))
        break
      }
      case "RunSucceeded":
        entries.push({ _tag: "end", at: e.at, type: e.type, detail: p["output"] })
        break
      case "RunFailed":
        entries.push({ _tag: "end", at: e.at, type: e.type, detail: p["error"] })
        break
      case "RunCanceled":
        entries.push({ _tag: "end", at: e.at, type: e.type, detail: p })
        break
      default:
        break
    }
  }
  return entries
}
