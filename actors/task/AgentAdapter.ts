// The `agent` adapter (ADR 0054): an attempt is a Lantern run of the agent with the task as its input; its answer is
// the outcome when it is a JSON Outcome, else a completed outcome with the answer as its summary. A failed run is a
// retryable failure (a rate-limit hint in its error reschedules it), unless the agent does not exist.
import { Effect, Stream } from "effect"
import { Journal } from "../../bus/Journal.ts"
import { isTerminal } from "../../schema/Events.ts"
import type { AdapterSpec } from "../../schema/Task.ts"
import { Agents } from "../agent/Agents.ts"
import { Runs } from "../run/Runs.ts"
import { type Adapter, attemptFailure, type AttemptResult } from "./Adapter.ts"
import * as Hints from "./Hints.ts"

type AgentSpec = Extract<AdapterSpec, { type: "agent" }>

const failure = attemptFailure

const textOf = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v ?? null))

export const make = Effect.gen(function*() {
  const runs = yield* Runs
  const agents = yield* Agents
  const journal = yield* Journal

  const adapter: Adapter = {
    type: "agent",
    probe: (tenant, spec) =>
      agents.get(tenant, (spec as AgentSpec).agentName).pipe(
        Effect.as({ ok: true as const }),
        Effect.catch((e) =>
          Effect.succeed({
            ok: false as const,
            reason: e._tag === "AgentNotFound" ? e.message : `cannot read the agent: ${e.message}`
          })
        )
      ),
    execute: (raw, ctx) =>
      Effect.gen(function*() {
        const spec = raw as AgentSpec
        const input = {
          taskId: ctx.taskId,
          kind: ctx.kind,
          subject: ctx.subject,
          description: ctx.description,
          payload: ctx.payload
        }
        const seen = { adapter: "agent", agentName: spec.agentName, agentVersion: spec.agentVersion ?? null, input }
        const started = yield* runs.start(ctx.tenant, {
          agentName: spec.agentName,
          input,
          ...(spec.agentVersion === undefined ? {} : { agentVersion: spec.agentVersion })
        }, `task:${ctx.tenant}:${ctx.taskId}:${ctx.attempt}`).pipe(
          Effect.mapError((e) =>
            failure(
              `the run did not start: ${e.message}`,
              e._tag !== "AgentNotFound" && e._tag !== "AgentVersionNotFound",
              seen,
              Hints.retryAfterOf(e.message)
            )
          )
        )
        const runId = started.run.id
        // the task canceled (or the worker stopping): the run is canceled too
        const aborted = Effect.callback<void>((resume) => {
          if (ctx.signal.aborted) return resume(Effect.void)
          const f = () => resume(Effect.void)
          ctx.signal.addEventListener("abort", f, { once: true })
          return Effect.sync(() => ctx.signal.removeEventListener("abort", f))
        })
        const ended = journal.follow({ type: "run", tenant: ctx.tenant, id: runId }, 0).pipe(
          Stream.takeUntil((s) => isTerminal(s.event)),
          Stream.runDrain,
          Effect.mapError((e) => failure(`cannot follow run ${runId}: ${e.message}`, true, seen))
        )
        const which = yield* Effect.raceFirst(
          Effect.as(ended, "ended" as const),
          Effect.as(aborted, "aborted" as const)
        )
        if (which === "aborted") {
          yield* runs.cancel(ctx.tenant, runId, "its task was canceled", "task").pipe(Effect.ignore)
          return yield* Effect.fail(failure(`canceled; run ${runId} canceled`, false, seen))
        }
        const view = yield* runs.get(ctx.tenant, runId).pipe(
          Effect.mapError((e) => failure(`cannot read run ${runId}: ${e.message}`, true, seen))
        )
        const usage = { costUsd: view.costUsd, tokens: view.tokensIn + view.tokensOut }
        if (view.status !== "succeeded") {
          const message = view.error === null
            ? `run ${runId} ${view.status}`
            : `run ${runId} ${view.status}: ${view.error.code}: ${view.error.message}`
          return yield* Effect.fail(
            failure(message, view.status !== "canceled", seen, Hints.retryAfterOf(view.error?.message ?? ""))
          )
        }
        const outcome = Hints.outcomeOf(view.output) ?? Hints.completedWith(textOf(view.output))
        return { outcome, seen, usage, ref: { runId } } satisfies AttemptResult
      })
  }
  return adapter
})
