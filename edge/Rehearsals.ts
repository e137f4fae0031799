// Rehearsals (ADR 0047): an agent's runs in a window that failed or got feedback of 2 or less, with their inputs,
// versions, costs and preferred outputs (an eval's own case runs excluded); replayed as eval cases scored against the preferred output where one was
// given, else "does not fail". Failed runs come from the runs projection, low scores from the agent's eval book.
import { Clock, Effect } from "effect"
import { Evals } from "../actors/eval/Evals.ts"
import { Runs } from "../actors/run/Runs.ts"
import * as Queries from "../projections/Queries.ts"
import { type Case, type RehearsalItem, type RehearseRequest, windowMs } from "../schema/Eval.ts"

/** The rehearsal's runs, newest first, at most `limit` (100 by default). */
export const find = (tenant: string, request: RehearseRequest) =>
  Effect.gen(function*() {
    const since = (yield* Clock.currentTimeMillis) - windowMs(request.window)
    const limit = request.limit ?? 100
    const evals = yield* Evals
    const feedback = yield* evals.feedback(tenant, request.agentName)
    // a run's latest feedback is what it got
    const latest = new Map(feedback.map((f) => [f.runId, f]))
    const items = new Map<string, RehearsalItem>()
    const feedbackFields = (runId: string) => {
      const f = latest.get(runId)
      return {
        feedbackScore: f?.score ?? null,
        ...(f?.preferredOutput === undefined ? {} : { preferredOutput: f.preferredOutput })
      }
    }
    if (request.includeFailures !== false) {
      let cursor: string | undefined
      pages: for (;;) {
        const page = yield* Queries.listRuns(tenant, {
          agentName: request.agentName,
          status: "failed",
          limit: 200,
          ...(cursor === undefined ? {} : { cursor })
        })
        for (const run of page.items) {
          if (Date.parse(run.createdAt) < since) break pages
          if (yield* evals.isEvalTraffic(tenant, run.id)) continue
          items.set(run.id, {
            runId: run.id,
            reason: "failed",
            input: run.input,
            agentVersion: run.agentVersion,
            status: run.status,
            costUsd: run.costUsd,
            createdAt: run.createdAt,
            ...feedbackFields(run.id)
          })
        }
        if (page.nextCursor === null) break
        cursor = page.nextCursor
      }
    }
    if (request.includeLowScore !== false) {
      const runs = yield* Runs
      for (const f of latest.values()) {
        if (f.score > 2 || items.has(f.runId)) continue
        const run = yield* runs.get(tenant, f.runId).pipe(Effect.catchTag("RunNotFound", () => Effect.succeed(null)))
        if (run === null || Date.parse(run.createdAt) < since) continue
        items.set(run.id, {
          runId: run.id,
          reason: "lowScore",
          input: run.input,
          agentVersion: run.agentVersion,
          status: run.status,
          costUsd: run.costUsd,
          createdAt: run.createdAt,
          ...feedbackFields(run.id)
        })
      }
    }
    return [...items.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.runId.localeCompare(a.runId))
      .slice(0, limit)
  })

/** Each run as a case: its original input, and its preferred output to equal when feedback gave one. */
export const casesOf = (items: ReadonlyArray<RehearsalItem>): ReadonlyArray<Case> =>
  items.map((i) => ({
    name: i.runId,
    input: i.input,
    assert: i.preferredOutput === undefined ? [] : [{ equals: i.preferredOutput }]
  }))
