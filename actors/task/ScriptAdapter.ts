// The `script` adapter (ADR 0054): an attempt runs the command as a spawner workload at the task's isolation tier
// (`trusted` by default: the process backend in dev). The last line of its stdout that is a JSON Outcome is the
// outcome; an exit code other than 0 is a retryable failure, with a rate-limit hint when its output carries one
// ("try again in N seconds", "Retry-After: N"); a timeout is a retryable failure; a cancel terminates it.
import { Effect, Stream } from "effect"
import * as Backends from "../spawner/Backends.ts"
import { Spawner } from "../spawner/Spawner.ts"
import type { AdapterSpec } from "../../schema/Task.ts"
import type { WorkloadEvent, WorkloadSpec } from "../../schema/Workload.ts"
import { type Adapter, attemptFailure, type AttemptResult } from "./Adapter.ts"
import * as Hints from "./Hints.ts"

type ScriptSpec = Extract<AdapterSpec, { type: "script" }>

export const DEFAULT_TIMEOUT_SECONDS = 600

/** The most output kept to find the outcome line and hints in (the workload's journal keeps all of it). */
const OUTPUT_LIMIT = 1024 * 1024

const failure = attemptFailure

const tail = (text: string, n = 400) => (text.length <= n ? text : `…${text.slice(-n)}`)

export const make = Effect.gen(function*() {
  const spawner = yield* Spawner

  const adapter: Adapter = {
    type: "script",
    probe: (_tenant, raw) =>
      Effect.sync(() => {
        const tier = (raw as ScriptSpec).isolation ?? "trusted"
        const ok = spawner.backends.some((name) => Backends.byName(name)?.provides(tier) === true)
        return ok
          ? { ok: true as const }
          : {
            ok: false as const,
            reason: `isolation tier '${tier}' is unavailable on this host (backends: ${
              spawner.backends.join(", ") || "none"
            })`
          }
      }),
    execute: (raw, ctx) =>
      Effect.gen(function*() {
        const spec = raw as ScriptSpec
        const timeoutSeconds = spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS
        const isolation = spec.isolation ?? "trusted"
        const input = JSON.stringify({
          taskId: ctx.taskId,
          attempt: ctx.attempt,
          kind: ctx.kind,
          subject: ctx.subject,
          description: ctx.description,
          payload: ctx.payload
        })
        const seen = {
          adapter: "script",
          command: spec.command,
          args: spec.args ?? [],
          env: spec.env ?? {},
          secrets: (spec.secrets ?? []).map((s) => s.envName),
          isolation,
          timeoutSeconds,
          input
        }
        const workload: WorkloadSpec = {
          apiVersion: "lantern.dev/v1",
          kind: "AgentSpec",
          metadata: { name: `task-${ctx.taskId.slice(4)}-${ctx.attempt}`.slice(0, 63), labels: { task: ctx.taskId } },
          spec: {
            command: spec.command,
            ...(spec.args === undefined ? {} : { args: spec.args }),
            env: {
              ...spec.env,
              TASK_ID: ctx.taskId,
              TASK_ATTEMPT: String(ctx.attempt),
              TASK_ARTIFACT_ROOT: ctx.artifactRoot
            },
            ...(spec.secrets === undefined ? {} : { secrets: spec.secrets }),
            isolation,
            limits: { vcpu: 1, memoryMb: 1024, timeoutSeconds },
            network: "none"
          }
        }
        // the artifact root is the working directory, writable inside the sandbox, where the backend can share one
        const shared = yield* Effect.result(spawner.placement(isolation, { sharedWorkDir: true }))
        const view = yield* spawner.start(
          ctx.tenant,
          workload,
          input,
          `task:${ctx.taskId}`,
          shared._tag === "Success" ? { workDir: ctx.artifactRoot } : {}
        ).pipe(
          Effect.mapError((e) =>
            failure(`the script did not start: ${e.message}`, e._tag !== "IsolationUnavailable", seen)
          )
        )
        const workloadId = view.id
        let stdout = ""
        let stderr = ""
        let end: WorkloadEvent | null = null
        const followed = spawner.follow(ctx.tenant, workloadId, 0).pipe(
          Stream.runForEach((s) =>
            Effect.sync(() => {
              const e = s.event as WorkloadEvent
              if (e._tag === "WorkloadOutput") {
                if (e.stream === "stdout") stdout = (stdout + e.text).slice(-OUTPUT_LIMIT)
                else stderr = (stderr + e.text).slice(-OUTPUT_LIMIT)
              }
              if (e._tag === "WorkloadExited" || e._tag === "WorkloadTerminated" || e._tag === "WorkloadFailed") end = e
            })
          ),
          Effect.mapError((e) => failure(`cannot follow workload ${workloadId}: ${e.message}`, true, seen))
        )
        const aborted = Effect.callback<void>((resume) => {
          if (ctx.signal.aborted) return resume(Effect.void)
          const f = () => resume(Effect.void)
          ctx.signal.addEventListener("abort", f, { once: true })
          return Effect.sync(() => ctx.signal.removeEventListener("abort", f))
        })
        const which = yield* Effect.raceFirst(
          Effect.as(followed, "ended" as const),
          Effect.as(aborted, "aborted" as const)
        )
        if (which === "aborted") {
          yield* spawner.terminate(ctx.tenant, workloadId, `task:${ctx.taskId}`).pipe(Effect.ignore)
          return yield* Effect.fail(failure(`canceled; workload ${workloadId} terminated`, false, seen))
        }
        const finished = end as WorkloadEvent | null
        const output = `${stdout}\n${stderr}`
        const ref = { workloadId }
        if (finished === null) return yield* Effect.fail(failure(`workload ${workloadId} ended unseen`, true, seen))
        if (finished._tag === "WorkloadTerminated") {
          return yield* Effect.fail(
            failure(`workload ${workloadId} was stopped: ${finished.reason}`, true, seen, Hints.retryAfterOf(output))
          )
        }
        if (finished._tag === "WorkloadFailed") {
          return yield* Effect.fail(failure(`workload ${workloadId} failed: ${finished.reason}`, true, seen))
        }
        if (finished._tag !== "WorkloadExited") return yield* Effect.fail(failure("unexpected end", true, seen))
        if (finished.code !== 0) {
          return yield* Effect.fail(
            failure(
              `exit code ${finished.code}: ${tail((stderr.trim() || stdout.trim()) ?? "")}`,
              true,
              seen,
              Hints.retryAfterOf(output)
            )
          )
        }
        const outcome = Hints.lastOutcomeLine(stdout) ??
          Hints.completedWith(tail(stdout.trim().split("\n").pop()?.trim() || "exited 0"))
        return { outcome, seen, usage: { costUsd: 0, tokens: 0 }, ref } satisfies AttemptResult
      })
  }
  return adapter
})
