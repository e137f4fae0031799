// Dispatch (ADR 0054): the tenant's pause (journaled on lantern.task.<tenant>.dispatch, folded by every host's
// index, so every worker stops claiming within a moment of the append), and the registry of this host's workers,
// which answers the deployment-wide question "which workers are there and what does each run?" over NATS.
import { Context, Effect, Layer } from "effect"
import { Nats } from "../../bus/Nats.ts"
import type { DispatchView } from "../../schema/Task.ts"
import { Tasks } from "./Tasks.ts"

type WorkerView = DispatchView["workers"][number]

/** Where hosts answer with their workers (every host that runs workers subscribes; no queue group). */
export const WORKERS_SUBJECT = "lantern.tasks.workers"

/** How long GET /v1/dispatch waits for hosts to answer. */
const GATHER_MS = 300

export class Workers extends Context.Service<Workers, {
  /** Registers a worker of this host (idle). */
  readonly register: (id: string, host: string) => void
  /** What the worker runs now (null: idle). */
  readonly running: (id: string, task: { tenant: string; taskId: string } | null) => void
  readonly local: () => ReadonlyArray<WorkerView>
  /** Every host's workers (those that answer within a moment). */
  readonly all: () => Effect.Effect<ReadonlyArray<WorkerView>>
}>()("lantern/actors/task/Workers") {
  static readonly layer = Layer.effect(
    Workers,
    Effect.gen(function*() {
      const { nc } = yield* Nats
      const mine = new Map<string, WorkerView>()
      const local = () => [...mine.values()]
      const sub = nc.subscribe(WORKERS_SUBJECT, {
        callback: (_e, m) => {
          if (mine.size > 0) m.respond(JSON.stringify(local()))
        }
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
      return Workers.of({
        register: (id, host) => {
          mine.set(id, { id, host, taskId: null, tenant: null, since: null })
        },
        running: (id, task) => {
          const w = mine.get(id)
          if (w === undefined) return
          mine.set(id, {
            ...w,
            taskId: task?.taskId ?? null,
            tenant: task?.tenant ?? null,
            since: task === null ? null : new Date().toISOString()
          })
        },
        local,
        all: () =>
          Effect.promise(async () => {
            const out = new Map<string, WorkerView>()
            try {
              const replies = await nc.requestMany(WORKERS_SUBJECT, "", { strategy: "timer", maxWait: GATHER_MS })
              for await (const m of replies) {
                try {
                  for (const w of JSON.parse(m.string()) as Array<WorkerView>) out.set(w.id, w)
                } catch {
                  // a host that answers nonsense is left out
                }
              }
            } catch {
              // no host answered: only this one's
            }
            for (const w of local()) out.set(w.id, w)
            return [...out.values()].sort((a, b) => a.id.localeCompare(b.id))
          })
      })
    })
  )
}

/** `GET /v1/dispatch`: the tenant's pause, its queue's depth, and the deployment's workers (tasks of other tenants hidden). */
export const view = (tenant: string) =>
  Effect.gen(function*() {
    const tasks = yield* Tasks
    const workers = yield* (yield* Workers).all()
    const d = tasks.dispatch(tenant)
    return {
      paused: d.paused,
      reason: d.reason,
      changedAt: d.changedAt === null ? null : new Date(d.changedAt).toISOString(),
      changedBy: d.changedBy,
      ...tasks.depth(tenant),
      workers: workers.map((w) =>
        w.tenant === tenant ? w : { ...w, taskId: null, tenant: null, since: w.taskId === null ? null : w.since }
      )
    } satisfies DispatchView
  })
