// The task actor's shell (ADR 0054): every host keeps an index of every task, folded from the task stream as it
// grows (and from its own appends at once, so it reads its own writes), answers the TaskQueue port from it, and
// offers workers the best claimable task; a claim is an append expecting the task's last sequence, so of several
// workers on any number of hosts exactly one wins each attempt.
import { Clock, Context, Effect, Layer, Schedule, Stream } from "effect"
import { Journal } from "../../bus/Journal.ts"
import { Nats } from "../../bus/Nats.ts"
import * as Ordered from "../../bus/Ordered.ts"
import { TASKS } from "../../bus/Topology.ts"
import * as Envelope from "../../schema/Envelope.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import {
  DEFAULT_PRIORITY,
  type DispatchView,
  type TaskDetail,
  type TaskEvent,
  TaskConflict,
  TaskNotFound,
  type TaskOrigin,
  type TaskStatus,
  type TaskSubmission,
  type TaskView
} from "../../schema/Task.ts"
import * as Actor from "../kernel/Actor.ts"
import { fold } from "../kernel/Decider.ts"
import { Ids } from "../kernel/Ids.ts"
import * as Decider from "./Decider.ts"
import { Changes } from "./Changes.ts"
import { type Entry, Index, keyOf } from "./Index.ts"
import { type TaskChange, TaskQueue, TaskRefused, type TaskSummary } from "./Queue.ts"
import { DEFAULT_MAX_ATTEMPTS, idOfDedupeKey, resolveSubmission, type Settings, settingsConfig } from "./Submission.ts"
import { artifactRootOf, summaryOf, viewOf } from "./Views.ts"

export type { Entry } from "./Index.ts"
export { keyOf } from "./Index.ts"

const tasks = Actor.make(Decider.decider)
const dispatches = Actor.make(Decider.dispatch)

export const addressOf = (tenant: string, id: string): Envelope.ActorAddress => ({ type: "task", tenant, id })

export type WriteError = Actor.ExecuteError<Decider.Error>
/** What an operator's write can fail with (a claim's refusal never reaches one). */
export type OperatorError = Actor.ExecuteError<TaskConflict>

/** Drops the errors that cannot happen to an operator's command (a claim's refusal) or to `T`'s, into defects. */
const never =
  <T>(isImpossible: (e: unknown) => boolean) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, T>, R> =>
    Effect.catchIf(effect, (e) => isImpossible(e), (e) => Effect.die(e)) as unknown as Effect.Effect<
      A,
      Exclude<E, T>,
      R
    >

const operator = never<Decider.NotClaimable | TaskRefused>((e) =>
  e instanceof Decider.NotClaimable || e instanceof TaskRefused
)
const forSubmit = never<Decider.NotClaimable | TaskConflict | TaskNotFound>((e) =>
  e instanceof Decider.NotClaimable || e instanceof TaskConflict || e instanceof TaskNotFound
)

/** A claim that won: the task as it stands with the claim appended. */
export interface Claimed {
  readonly entry: Entry
  readonly attempt: number
}

export class Tasks extends Context.Service<Tasks, {
  readonly settings: Settings
  readonly submit: (
    tenant: string,
    submission: TaskSubmission,
    origin?: TaskOrigin
  ) => Effect.Effect<{ readonly view: TaskView; readonly created: boolean }, TaskRefused | Actor.ExecuteError<never>>
  readonly get: (tenant: string, id: string) => Effect.Effect<TaskDetail, TaskNotFound | Actor.ReadError>
  readonly list: (
    tenant: string,
    filter?: { readonly status?: TaskStatus; readonly kind?: string; readonly source?: string }
  ) => Effect.Effect<ReadonlyArray<TaskView>>
  readonly cancel: (
    tenant: string,
    id: string,
    by: string,
    reason: string | null
  ) => Effect.Effect<TaskView, TaskNotFound | OperatorError>
  readonly retry: (
    tenant: string,
    id: string,
    by: string,
    options: { readonly requeue: boolean; readonly extraAttempts: number | null }
  ) => Effect.Effect<TaskView, TaskNotFound | OperatorError>
  readonly dispatch: (tenant: string) => Decider.DispatchState
  readonly setDispatch: (
    tenant: string,
    paused: boolean,
    reason: string | null,
    by: string
  ) => Effect.Effect<Decider.DispatchState, Actor.ExecuteError<never>>
  /** Queue depth of the tenant: claimable per priority, delayed, running, blocked. */
  readonly depth: (tenant: string) => Omit<DispatchView, "paused" | "reason" | "changedAt" | "changedBy" | "workers">
  // ---- for workers ----
  /** Claims the best claimable task of any unpaused tenant for `worker` of host `holder`; null when none is. */
  readonly claimNext: (worker: string, holder: string) => Effect.Effect<Claimed | null>
  /** Journals a command of a claimed task's attempt (adapter chosen, finish, reclaim) and folds it in. */
  readonly execute: (
    tenant: string,
    id: string,
    command: Decider.Command,
    key: string
  ) => Effect.Effect<{ readonly entry: Entry; readonly appended: number }, WriteError>
  readonly entry: (tenant: string, id: string) => Entry | undefined
  /** Every task running now, any tenant. */
  readonly running: () => ReadonlyArray<Entry>
  /** When the next task of an unpaused tenant that is not due at `now` becomes claimable, if any. */
  readonly nextAvailable: (now: number) => number | null
  /** How many times the index changed so far: what a worker passes to `waitChange` after it looked. */
  readonly version: () => number
  /** Resolves at the index's first change after `version` `since` (at once if there was one), or after `ms`. */
  readonly waitChange: (ms: number, since: number) => Effect.Effect<void>
  /** Called with each task whose status changed (a running task canceled: its worker interrupts its adapter). */
  readonly onChange: (f: (change: TaskChange) => void) => () => void
  readonly queue: TaskQueue["Service"]
}>()("lantern/actors/task/Tasks") {
  static readonly layer = Layer.effect(
    Tasks,
    Effect.gen(function*() {
      const settings = yield* settingsConfig
      const journal = yield* Journal
      const ids = yield* Ids
      const nats = yield* Nats
      const provide = yield* Actor.provider

      const index = new Index()
      const pausedTenants = new Map<string, Decider.DispatchState>()
      const changes = yield* Changes.make

      /** Puts a newer state of a task into the index (older ones are ignored) and tells whoever follows. */
      const put = (tenant: string, id: string, state: Decider.State, seq: number, order: number) => {
        const changed = index.put(tenant, id, state, seq, order)
        if (changed === null) return index.get(keyOf(tenant, id))
        changes.publish({
          task: summaryOf(changed.entry, settings.home),
          previous: changed.before?.state.status ?? null
        })
        return changed.entry
      }

      const apply = (stored: Envelope.Stored) => {
        const { tenant, id } = stored.envelope.actor
        const event = stored.event as TaskEvent
        if (id === Decider.DISPATCH_ID) {
          const before = pausedTenants.get(tenant) ?? Decider.dispatch.initialState
          pausedTenants.set(tenant, Decider.dispatch.evolve(before, event))
          changes.wake()
          return
        }
        const current = index.get(keyOf(tenant, id))
        if (current !== undefined && current.seq >= stored.seq) return
        put(tenant, id, Decider.evolve(current?.state ?? Decider.initialState, event), stored.seq, stored.seq)
      }

      // the index follows the whole task stream from its start; a subscription that ends (its server went away)
      // is taken up again after the last sequence folded
      let reached = 0
      const follow = Effect.suspend(() =>
        Ordered.fromSeq(TASKS, reached + 1, 1_000, "the task index").pipe(
          Stream.mapEffect((m) => Envelope.decode(m.subject, m.seq, m.string())),
          Stream.runForEach((stored) =>
            Effect.sync(() => {
              reached = stored.seq
              apply(stored)
            })
          )
        )
      ).pipe(
        Effect.provideService(Nats, nats),
        Effect.catchCause((cause) =>
          Effect.logWarning("the task index's subscription stopped; following again", cause)
        ),
        Effect.repeat(Schedule.spaced("200 millis"))
      )
      yield* Effect.forkScoped(follow)

      const meta = (what: string, correlationId: string): Actor.Meta => {
        const nonce = Math.random().toString(36).slice(2, 10)
        return { idempotencyKey: (seq) => `${what}:${correlationId}:${nonce}@${seq}`, correlationId }
      }

      const load = (tenant: string, id: string) =>
        Effect.gen(function*() {
          const found = index.get(keyOf(tenant, id))
          if (found !== undefined) return found
          // not folded here yet (submitted on another host a moment ago): its journal says
          const loaded = yield* provide(tasks.load(addressOf(tenant, id)))
          if (loaded.state.submitted === null) return yield* new TaskNotFound({ id })
          return put(tenant, id, loaded.state, loaded.seq, loaded.seq - loaded.events + 1)!
        })

      const execute = (tenant: string, id: string, command: Decider.Command, key: string) =>
        Effect.gen(function*() {
          const current = index.get(keyOf(tenant, id))
          const loaded: Actor.Loaded<Decider.State> = current === undefined
            ? yield* provide(tasks.load(addressOf(tenant, id)))
            : { address: addressOf(tenant, id), state: current.state, seq: current.seq, events: 0, snapshotEvents: 0 }
          const outcome = yield* provide(tasks.executeOn(loaded, command, meta(key, id)))
          const first = outcome.stored[0]?.seq ?? outcome.loaded.seq
          const entry = put(tenant, id, outcome.loaded.state, outcome.loaded.seq, first) ?? {
            tenant,
            id,
            state: outcome.loaded.state,
            seq: outcome.loaded.seq,
            order: first
          }
          return { entry, appended: outcome.appended.length }
        })

      const now = Clock.currentTimeMillis

      const submit = (tenant: string, submission: TaskSubmission, origin: TaskOrigin = {}) =>
        Effect.gen(function*() {
          const at = yield* now
          const resolved = yield* Effect.try({
            try: () => resolveSubmission(submission, at, settings),
            catch: (e) => e instanceof TaskRefused ? e : new TaskRefused("body", String(e))
          })
          const id = submission.dedupeKey !== undefined
            ? idOfDedupeKey(tenant, submission.dedupeKey)
            : yield* ids.next("tsk")
          const { entry, appended } = yield* execute(tenant, id, {
            _tag: "Submit",
            event: {
              taskId: id,
              kind: submission.kind,
              source: submission.source,
              payload: submission.payload ?? null,
              subject: submission.subject ?? null,
              description: submission.description ?? null,
              priority: submission.priority ?? DEFAULT_PRIORITY,
              adapters: resolved.adapters,
              maxAttempts: submission.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
              availableAt: resolved.availableAt,
              dedupeKey: submission.dedupeKey ?? null,
              retry: resolved.retry,
              origin: { ...origin },
              artifactRoot: artifactRootOf(tenant, id),
              at
            }
          }, "submit")
          return { view: viewOf(entry, settings.home), created: appended > 0 }
        }).pipe(forSubmit)

      const matches = (
        e: Entry,
        tenant: string,
        filter: { readonly status?: TaskStatus; readonly kind?: string; readonly source?: string }
      ) =>
        e.tenant === tenant &&
        (filter.status === undefined || e.state.status === filter.status) &&
        (filter.kind === undefined || e.state.submitted!.kind === filter.kind) &&
        (filter.source === undefined || e.state.submitted!.source === filter.source)

      const listEntries = (
        tenant: string,
        filter: { readonly status?: TaskStatus; readonly kind?: string; readonly source?: string } = {}
      ) => [...index.values()].filter((e) => matches(e, tenant, filter)).sort((a, b) => b.order - a.order)

      const dispatchOf = (tenant: string) => pausedTenants.get(tenant) ?? Decider.dispatch.initialState
      const paused = (tenant: string) => dispatchOf(tenant).paused

      /**
       * Takes the index's first claimable task and appends its claim expecting the task's last sequence folded here;
       * a claim that loses (another worker's claim came first, or the index is behind its journal) passes to the next
       * task. The tasks it lost stay out of this call's way and are offered again when it returns.
       */
      const claimNext = (worker: string, holder: string) =>
        Effect.suspend(() => {
          const taken: Array<Entry> = []
          return Effect.gen(function*() {
            for (;;) {
              const at = yield* now
              const best = index.take(at, paused)
              if (best === null) return null
              taken.push(best)
              const attempt = best.state.attempts.length + 1
              const won = yield* provide(tasks.executeOn(
                {
                  address: addressOf(best.tenant, best.id),
                  state: best.state,
                  seq: best.seq,
                  events: 0,
                  snapshotEvents: 0
                },
                { _tag: "Claim", attempt, worker, holder, at },
                // the worker in the key: a losing claim is never mistaken for the winner's append
                { idempotencyKey: `claim:${best.id}:${attempt}:${worker}:${holder}`, correlationId: best.id }
              )).pipe(
                Effect.map((o) =>
                  put(best.tenant, best.id, o.loaded.state, o.loaded.seq, best.order) ??
                    { ...best, state: o.loaded.state, seq: o.loaded.seq }
                ),
                Effect.catchCause((cause) => Effect.as(Effect.logDebug(`claim of ${best.id} lost`, cause), null))
              )
              if (won !== null && won.state.running?.worker === worker && won.state.running.attempt === attempt) {
                return { entry: won, attempt } satisfies Claimed
              }
            }
          }).pipe(Effect.ensuring(Effect.sync(() => taken.forEach((e) => index.release(e.tenant, e.id)))))
        })

      const queue: TaskQueue["Service"] = {
        submit: (tenant, submission, origin) =>
          submit(tenant, submission, origin).pipe(
            Effect.map(({ view, created }) => ({
              task: summaryOf(index.get(keyOf(tenant, view.id))!, settings.home),
              created
            })),
            Effect.catch((e): Effect.Effect<never, TaskRefused | BusUnavailable> =>
              e instanceof TaskRefused
                ? Effect.fail(e)
                : e._tag === "BusUnavailable"
                ? Effect.fail(e)
                : Effect.die(e)
            )
          ),
        get: (tenant, id) =>
          load(tenant, id).pipe(
            Effect.map((e) => summaryOf(e, settings.home)),
            Effect.catch((e): Effect.Effect<TaskSummary | null, BusUnavailable> =>
              e._tag === "TaskNotFound"
                ? Effect.succeed(null)
                : e._tag === "BusUnavailable"
                ? Effect.fail(e)
                : Effect.die(e)
            )
          ),
        list: (tenant, filter) =>
          Effect.sync(() => listEntries(tenant, filter).map((e) => summaryOf(e, settings.home))),
        changes: (tenant) => changes.stream(tenant)
      }

      return Tasks.of({
        settings,
        submit,
        get: (tenant, id) =>
          Effect.gen(function*() {
            const entry = yield* load(tenant, id)
            const stored = yield* journal.read(addressOf(tenant, id))
            // the journal read may be ahead of the index: fold it
            const last = stored[stored.length - 1]
            const fresh = last !== undefined && last.seq > entry.seq
              ? put(
                tenant,
                id,
                fold(Decider.decider, stored.map((s) => s.event as TaskEvent)),
                last.seq,
                stored[0]!.seq
              ) ?? entry
              : entry
            return {
              ...viewOf(fresh, settings.home),
              events: stored.map((s) => ({
                seq: s.seq,
                type: s.envelope.type,
                at: s.envelope.at,
                payload: s.envelope.payload
              }))
            }
          }),
        list: (tenant, filter) => Effect.sync(() => listEntries(tenant, filter).map((e) => viewOf(e, settings.home))),
        cancel: (tenant, id, by, reason) =>
          Effect.gen(function*() {
            yield* load(tenant, id)
            const { entry } = yield* execute(tenant, id, { _tag: "Cancel", id, by, reason, at: yield* now }, "cancel")
            return viewOf(entry, settings.home)
          }).pipe(operator),
        retry: (tenant, id, by, options) =>
          Effect.gen(function*() {
            yield* load(tenant, id)
            const { entry } = yield* execute(tenant, id, {
              _tag: "Retry",
              id,
              by,
              requeue: options.requeue,
              extraAttempts: options.extraAttempts,
              at: yield* now
            }, options.requeue ? "requeue" : "retry")
            return viewOf(entry, settings.home)
          }).pipe(operator),
        dispatch: dispatchOf,
        setDispatch: (tenant, paused, reason, by) =>
          Effect.gen(function*() {
            const outcome = yield* provide(dispatches.execute(
              addressOf(tenant, Decider.DISPATCH_ID),
              { _tag: "SetDispatch", paused, reason, by, at: yield* now },
              meta("dispatch", tenant)
            ))
            pausedTenants.set(tenant, outcome.loaded.state)
            changes.wake()
            return outcome.loaded.state
          }),
        depth: (tenant) => index.depth(tenant, Date.now()),
        claimNext,
        execute,
        entry: (tenant, id) => index.get(keyOf(tenant, id)),
        running: () => index.running(),
        // only later instants of tenants not paused: a due task waits for a change (a claim, a resume), not a timer
        nextAvailable: (now) => index.nextAvailable(now, paused),
        version: () => changes.version,
        waitChange: (ms, since) => changes.wait(ms, since),
        onChange: (f) => changes.onChange(f),
        queue
      })
    })
  )

  /** The TaskQueue port (schedules, sensors and queue workflows submit through it), answered by this host's Tasks. */
  static readonly layerQueue = Layer.effect(
    TaskQueue,
    Effect.gen(function*() {
      return TaskQueue.of((yield* Tasks).queue)
    })
  )
}
