// The operator queue over HTTP (ADR 0054): tasks and dispatch. The handlers read this host's task index (actors/task/
// Tasks.ts), which folds its own writes at once; a task's detail reads its journal.
import { Effect, Stream } from "effect"
import { Audit } from "../actors/audit/Audit.ts"
import * as Dispatch from "../actors/task/Dispatch.ts"
import { TaskRefused } from "../actors/task/Queue.ts"
import { Tasks } from "../actors/task/Tasks.ts"
import { Journal } from "../bus/Journal.ts"
import type { Stored } from "../schema/Envelope.ts"
import * as Sse from "../schema/Sse.ts"
import type { TaskEvent, TaskStatus } from "../schema/Task.ts"
import { sseResponse } from "./Events.ts"
import { badRequest } from "./Http.ts"
import { actorOf, handlers, reply } from "./Serve.ts"

const encoder = new TextEncoder()

/** The task's status right after `e`, when the event says (a dispatch change says none). */
export const statusAfter = (e: TaskEvent): TaskStatus | null => {
  switch (e._tag) {
    case "TaskSubmitted":
    case "TaskRetried":
      return "pending"
    case "TaskClaimed":
    case "TaskAdapterChosen":
      return "running"
    case "TaskAttemptClosed":
      return e.status
    case "TaskCanceled":
      return "canceled"
    case "DispatchSet":
      return null
  }
}

/** One frame per queue event; its id is the bus's stream sequence, which Last-Event-ID resumes after. */
export const frameOf = (s: Stored): Uint8Array => {
  const e = s.event as TaskEvent
  const data = e._tag === "DispatchSet"
    ? { seq: s.seq, type: e._tag, at: s.envelope.at, paused: e.paused, reason: e.reason }
    : {
      seq: s.seq,
      taskId: s.envelope.actor.id,
      type: e._tag,
      at: s.envelope.at,
      status: statusAfter(e),
      ...("attempt" in e ? { attempt: e.attempt } : {})
    }
  return encoder.encode(Sse.encode({ id: String(s.seq), event: e._tag, data: JSON.stringify(data) }))
}

const refused = <A, E, R>(effect: Effect.Effect<A, E | TaskRefused, R>) =>
  Effect.catchIf(
    effect,
    (e): e is TaskRefused => e instanceof TaskRefused,
    (e) => Effect.fail(badRequest(e.field, e.message))
  )

export const taskHandlers = handlers({
  submitTask: ({ tenant, body }) =>
    Effect.gen(function*() {
      const { view, created } = yield* refused((yield* Tasks).submit(tenant, body))
      return reply(created ? 201 : 200, { ...view, duplicateOf: created ? null : view.id }, {
        location: `/v1/tasks/${view.id}`
      })
    }),
  listTasks: ({ tenant, query }) => Effect.map(Tasks.use((t) => t.list(tenant, query)), (items) => ({ items })),
  getTask: ({ tenant, params }) => Tasks.use((t) => t.get(tenant, params.id)),
  cancelTask: ({ tenant, principal, params, body }) =>
    Tasks.use((t) => t.cancel(tenant, params.id, actorOf(principal), body?.reason ?? null)),
  retryTask: ({ tenant, principal, params, body }) =>
    Tasks.use((t) =>
      t.retry(tenant, params.id, actorOf(principal), { requeue: false, extraAttempts: body?.extraAttempts ?? null })
    ),
  requeueTask: ({ tenant, principal, params }) =>
    Tasks.use((t) => t.retry(tenant, params.id, actorOf(principal), { requeue: true, extraAttempts: null })),
  getDispatch: ({ tenant }) => Dispatch.view(tenant),
  setDispatch: ({ tenant, principal, body }) =>
    Effect.gen(function*() {
      const by = actorOf(principal)
      yield* (yield* Tasks).setDispatch(tenant, body.paused, body.reason ?? null, by)
      yield* (yield* Audit).record({
        tenant,
        action: body.paused ? "dispatch.paused" : "dispatch.resumed",
        actor: by,
        target: "dispatch",
        outcome: "allowed",
        detail: body.reason === undefined ? {} : { reason: body.reason.slice(0, 200) }
      })
      return yield* Dispatch.view(tenant)
    }),
  taskStream: ({ tenant, headers }) =>
    Effect.gen(function*() {
      const journal = yield* Journal
      // every task of the tenant (and its dispatch): the subject filter is `lantern.task.<tenant>.*`
      const all = { type: "task" as const, tenant, id: "*" }
      const after = headers["last-event-id"] ?? (yield* journal.lastSeq(all))
      const events = journal.follow(all, after).pipe(Stream.map(frameOf))
      const ready = encoder.encode(Sse.encode({ id: String(after), event: "ready", data: JSON.stringify({ after }) }))
      return sseResponse(ready, events)
    })
})
