// The operator queue (issue 16, ADR 0054): four workers of one host (the production worker code, with an adapter
// that completes at once, so the queue is what is measured) drain a backlog of 10,000 tasks of mixed priorities:
// every task claimed exactly once (counted on the stream, per task subject), each worker's claims in priority
// order; then the end-to-end latency of a task (submit → completed) at 1 and 16 in flight, beside the raw
// JetStream publish-with-ack measured in the same run.
import { mkdtempSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigProvider, Effect, Layer } from "effect"
import { Hosts } from "../bus/Hosts.ts"
import { Nats, unavailable } from "../bus/Nats.ts"
import { TASKS } from "../bus/Topology.ts"
import { Ids } from "../actors/kernel/Ids.ts"
import type { Adapter } from "../actors/task/Adapter.ts"
import { Adapters, fromList } from "../actors/task/Adapters.ts"
import { Artifacts } from "../actors/task/Artifacts.ts"
import { Workers } from "../actors/task/Dispatch.ts"
import { claimsBefore, type Entry } from "../actors/task/Index.ts"
import { Tasks } from "../actors/task/Tasks.ts"
import * as TaskWorker from "../actors/task/Worker.ts"
import * as RawPublish from "./RawPublish.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

const TENANT = "bench"
const BACKLOG = 10_000
const WORKERS = 4

export interface Result {
  readonly tasks: number
  readonly workers: number
  readonly backlogMs: number
  readonly claimsPerSecond: number
  /** Tasks whose subject holds other than exactly one claim (0 when every task was claimed once). */
  readonly notOnce: number
  /** Claims that came after a claim of lower priority (or of the same priority submitted later) by the same worker. */
  readonly orderViolations: number
  readonly perWorker: ReadonlyArray<number>
  readonly latency1: Stats.Summary
  readonly latency16: Stats.Summary
  readonly raw: Stats.Summary
  /** Journal appends per task: submit, claim, adapter chosen, attempt closed. */
  readonly appendsPerTask: number
  /** The machine's 1-minute load average as the section began and as it ended (it is shared). */
  readonly load: readonly [number, number]
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench tasks: ${text}\n`))

const outcome = {
  status: "completed",
  operatorSummary: "done",
  machineStatus: "ok",
  fileChanges: [],
  artifactPaths: [],
  followUpTasks: [],
  externalMessages: []
} as const

export const run = (scale: number) =>
  Effect.gen(function*() {
    const backlog = Math.max(200, Math.round(BACKLOG * scale))
    const loadBefore = loadavg()[0]!
    const home = mkdtempSync(join(tmpdir(), "lantern-bench-tasks-"))
    // the worker code reads its settings as `lantern serve` does: four workers, artifacts under a temporary home
    const settings = ConfigProvider.layerAdd(
      ConfigProvider.fromUnknown({ LANTERN_TASK_WORKERS: String(WORKERS), LANTERN_HOME: home }),
      { asPrimary: true }
    )

    /** Per worker, each task it claimed as the index held it at the claim, in claim order. */
    const claims = new Map<string, Array<Entry>>()
    let tasksRef: Tasks["Service"] | null = null
    const instant: Adapter = {
      type: "script",
      probe: () => Effect.succeed({ ok: true as const }),
      execute: (_spec, ctx) =>
        Effect.sync(() => {
          const entry = tasksRef?.entry(ctx.tenant, ctx.taskId)
          const worker = entry?.state.running?.worker ?? "?"
          const list = claims.get(worker) ?? []
          if (entry !== undefined) list.push(entry)
          claims.set(worker, list)
          return { outcome, seen: { taskId: ctx.taskId }, usage: { costUsd: 0, tokens: 0 }, ref: {} }
        })
    }

    const services = TaskWorker.layer.pipe(
      Layer.provide(Layer.succeed(Adapters, Adapters.of(fromList([instant])))),
      Layer.provideMerge(Layer.mergeAll(Tasks.layer, Workers.layer, Hosts.layer, Artifacts.layer)),
      Layer.provideMerge(Ids.layer),
      Layer.provide(settings)
    )

    return yield* Effect.gen(function*() {
      const tasks = yield* Tasks
      tasksRef = tasks
      const { jsm } = yield* Nats
      const spec = { type: "script" as const, command: ["noop"] }

      // raw JetStream: publish-with-ack, one at a time, the same run and connection
      const payload = RawPublish.payloadOf(600)
      yield* RawPublish.run(1, 300, payload, "tasks-warm")
      const raw = yield* RawPublish.run(1, Math.max(500, Math.round(3000 * scale)), payload, "tasks")

      // the backlog: submitted while dispatch is paused, then released at once
      yield* tasks.setDispatch(TENANT, true, "loading the backlog", "bench")
      yield* progress(`submitting ${backlog} tasks (priorities 0-9)`)
      yield* Effect.forEach(
        Array.from({ length: backlog }, (_, i) => i),
        (i) =>
          tasks.submit(TENANT, {
            kind: "bench",
            source: "bench",
            payload: { i },
            priority: (i * 7) % 10,
            adapter: spec
          }),
        { concurrency: 32, discard: true }
      )
      let drained = 0
      let lastDone = 0
      const stopCounting = tasks.onChange((c) => {
        if (c.task.tenant === TENANT && c.task.status === "completed" && c.previous === "running") {
          drained++
          lastDone = performance.now()
        }
      })
      yield* progress(`draining with ${WORKERS} workers`)
      const t0 = performance.now()
      yield* tasks.setDispatch(TENANT, false, null, "bench")
      // bounded: a drain that stops moving for a minute fails the bench with where it stood, rather than hang it
      for (let seen = drained, since = performance.now(); drained < backlog;) {
        yield* Effect.sleep("20 millis")
        if (drained !== seen) [seen, since] = [drained, performance.now()]
        else if (performance.now() - since > 60_000) {
          return yield* Effect.die(new Error(`the backlog stalled at ${drained} of ${backlog} tasks drained`))
        }
      }
      stopCounting()
      const backlogMs = lastDone - t0

      // exactly once: the stream holds one TaskClaimed per task subject (4 events per task, one claim among them)
      const counts = yield* Effect.tryPromise({
        try: async () => {
          const info = await jsm.streams.info(TASKS, { subjects_filter: `lantern.task.${TENANT}.*` })
          return info.state.subjects ?? {}
        },
        catch: unavailable("count task events")
      })
      const views = yield* tasks.list(TENANT)
      let notOnce = 0
      for (const v of views) {
        const claimed = v.attempts.length
        const events = counts[`lantern.task.${TENANT}.${v.id}`] ?? 0
        if (claimed !== 1 || events !== 4) notOnce++
      }
      let orderViolations = 0
      const perWorker = [...claims.values()].map((l) => l.length)
      for (const list of claims.values()) {
        for (let i = 1; i < list.length; i++) {
          const a = list[i - 1]!
          const b = list[i]!
          // all were claimable from the release on: a later claim must not come before an earlier one in claim order
          if (claimsBefore(b, a)) orderViolations++
        }
      }

      yield* progress(
        `backlog: ${backlog} tasks in ${(backlogMs / 1000).toFixed(2)} s (${
          (backlog * 1000 / backlogMs).toFixed(0)
        } claims/s), ${notOnce} not claimed exactly once, ${orderViolations} order violations, per worker ${
          perWorker.join("/")
        }`
      )
      // end-to-end latency: submit → completed as the index sees it
      const completed = new Map<string, () => void>()
      let lost = 0
      const unlisten = tasks.onChange((c) => {
        if (c.task.tenant === TENANT && c.task.status === "completed") completed.get(c.task.id)?.()
      })
      const one = (i: number) =>
        Effect.gen(function*() {
          const t = performance.now()
          let resolve: () => void = () => undefined
          const finished = new Promise<void>((r) => (resolve = r))
          const { view } = yield* tasks.submit(TENANT, {
            kind: "latency",
            source: "bench",
            payload: { i },
            adapter: spec
          })
          completed.set(view.id, resolve)
          if (tasks.entry(TENANT, view.id)?.state.status === "completed") resolve()
          const ended = yield* Effect.promise(() => finished).pipe(Effect.timeout("60 seconds"), Effect.option)
          completed.delete(view.id)
          if (ended._tag === "None") {
            const e = tasks.entry(TENANT, view.id)
            yield* progress(`task ${view.id} not completed after 60 s: ${e?.state.status} seq ${e?.seq}`)
            lost++
          }
          return performance.now() - t
        })
      const latency = (inFlight: number, total: number) =>
        Effect.gen(function*() {
          const t = performance.now()
          const samples = yield* Effect.forEach(Array.from({ length: total }, (_, i) => i), one, {
            concurrency: inFlight
          })
          return Stats.summarize(samples, performance.now() - t)
        })
      yield* progress("end-to-end latency at 1 and 16 in flight")
      yield* latency(1, 50)
      const latency1 = yield* latency(1, Math.max(100, Math.round(500 * scale)))
      const latency16 = yield* latency(16, Math.max(320, Math.round(2000 * scale)))
      unlisten()
      if (lost > 0) yield* progress(`${lost} tasks of the latency phase did not complete within 60 s`)

      return {
        tasks: backlog,
        workers: WORKERS,
        backlogMs,
        claimsPerSecond: backlog * 1000 / backlogMs,
        notOnce,
        orderViolations,
        perWorker,
        latency1,
        latency16,
        raw,
        appendsPerTask: 4,
        load: [loadBefore, loadavg()[0]!]
      } satisfies Result
    }).pipe(Effect.provide(services))
  }).pipe(Effect.scoped)

const ms = (n: number) => `${n.toFixed(2)} ms`

export const render = (r: Result): string =>
  [
    `Operator queue: ${r.tasks} tasks of priorities 0-9 drained by ${r.workers} workers of one host (adapter completes at once; ${r.appendsPerTask} journal appends per task; load average ${
      r.load[0].toFixed(2)
    } → ${r.load[1].toFixed(2)})`,
    table(["", "figure", "raw JetStream (same run)"], [
      [
        "claims/s (backlog drained)",
        `${r.claimsPerSecond.toFixed(0)}/s (${(r.backlogMs / 1000).toFixed(2)} s)`,
        `${r.raw.perSecond.toFixed(0)} publishes/s, 1 in flight`
      ],
      ["claimed exactly once", r.notOnce === 0 ? "every task" : `${r.notOnce} tasks NOT`, ""],
      ["priority order per worker", r.orderViolations === 0 ? "held" : `${r.orderViolations} violations`, ""],
      ["claims per worker", r.perWorker.join(", "), ""],
      [
        "task latency, 1 in flight (median / p99)",
        `${ms(r.latency1.medianMs)} / ${ms(r.latency1.p99Ms)}`,
        `${ms(r.raw.medianMs)} / ${ms(r.raw.p99Ms)} per publish (x${
          (r.latency1.medianMs / r.raw.medianMs).toFixed(1)
        }; ${r.appendsPerTask} appends)`
      ],
      [
        "task latency, 16 in flight (median / p99)",
        `${ms(r.latency16.medianMs)} / ${ms(r.latency16.p99Ms)}`,
        `${r.latency16.perSecond.toFixed(0)} tasks/s`
      ]
    ])
  ].join("\n")

export const json = (r: Result): string => JSON.stringify({ section: "tasks", ...r })
