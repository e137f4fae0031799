// The queue workflow actor's shell (ADR 0056): one journal per (tenant, template, instanceKey) on
// lantern.queueflow.<tenant>.<qfw id> (the id is a hash of the three, so a second create finds the first), phase
// tasks submitted through the TaskQueue with the dedupe key `qfw:<id>:<phase>:<iteration>`, and a worker that
// advances workflows on task changes and, every few seconds, on what the queue says of their current tasks (a
// change missed while no host listened is caught there). Queue snapshots are journaled on the same stream.
import { createHash } from "node:crypto"
import { Clock, Context, Duration, Effect, Layer, Schedule, Schema, Stream } from "effect"
import { Journal } from "../../bus/Journal.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import { QUEUEFLOWS } from "../../bus/Topology.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import { ALPHABET } from "../../schema/Ids.ts"
import type {
  QueueFlowEvent,
  QueueFlowRequest,
  QueueFlowView,
  Report,
  SnapshotView
} from "../../schema/QueueFlow.ts"
import { MAX_ITERATIONS_DEFAULT } from "../../schema/QueueFlow.ts"
import type { TaskSubmission } from "../../schema/Task.ts"
import * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import { type TaskSummary, TaskQueue } from "../task/Queue.ts"
import * as Decider from "./Decider.ts"
import * as Reports from "./Reports.ts"
import * as Templates from "./Templates.ts"

export const actor = Actor.make(Decider.decider)
export const snapshotActor = Actor.make(Decider.snapshot)

export const addressOf = (tenant: string, id: string): ActorAddress => ({ type: "queueflow", tenant, id })

/** The one id of a (tenant, template, instanceKey): `qfw_` and 26 base32 characters of their SHA-256. */
export const idOf = (tenant: string, template: string, instanceKey: string): string => {
  const digest = createHash("sha256").update(`${tenant}\u0000${template}\u0000${instanceKey}`).digest()
  let out = "qfw_"
  for (let i = 0; i < 26; i++) out += ALPHABET[digest[i]! % 32]!
  return out
}

export class QueueFlowNotFound extends Schema.TaggedError<QueueFlowNotFound>()("QueueFlowNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no queue workflow '${this.id}'`
  }
}

export class SnapshotNotFound extends Schema.TaggedError<SnapshotNotFound>()("SnapshotNotFound", {
  id: Schema.String
}) {
  override get message() {
    return `no snapshot '${this.id}'`
  }
}

/** The view of a workflow's journal. */
export const viewOf = (id: string, tenant: string, stored: ReadonlyArray<Stored>): QueueFlowView | null => {
  const flow = actor.fromStored(addressOf(tenant, id), stored).state
  const created = flow.created
  if (created === null) return null
  const template = Templates.find(created.template)
  const last = flow.phases[flow.phases.length - 1] ?? null
  const lastFinished = [...flow.phases].reverse().find((p) => p.status === "finished") ?? null
  const ended = stored.find((s) => s.event._tag === "QueueFlowEnded")
  const at = Decider.current(flow)
  return {
    id,
    template: created.template,
    instanceKey: created.instanceKey,
    base: created.base,
    status: flow.status,
    phase: last?.phase ?? null,
    stage: template?.stage(lastFinished?.phase ?? null, at?.phase ?? null, flow.result) ?? null,
    iteration: flow.phases.reduce((n, p) => Math.max(n, p.iteration), 0),
    maxIterations: created.maxIterations,
    result: flow.result,
    reason: flow.reason,
    currentTaskId: at?.taskId ?? null,
    context: created.context,
    sensorEventId: created.sensorEventId,
    phases: flow.phases.map((p) => ({ ...p, artifacts: [...p.artifacts] })),
    artifactPaths: flow.phases.map((p) => p.artifactPath),
    createdAt: stored[0]!.envelope.at,
    updatedAt: stored[stored.length - 1]!.envelope.at,
    endedAt: ended?.envelope.at ?? null
  }
}

/** The task a due phase is carried out by: the workflow's runner settings, its context and the artifact expected. */
export const submissionOf = (
  id: string,
  flow: Decider.Flow,
  phase: Decider.Phase
): TaskSubmission => {
  const created = flow.created!
  const runner = Templates.runnerOf(created.task, created.phases?.[phase.phase])
  const loop = created.template === "goal-loop"
    ? phase.phase !== "plan"
    : phase.phase === "revise" || (phase.phase === "review" && phase.iteration > 1)
  const label = `${phase.phase}${loop ? ` ${phase.iteration} of ${created.maxIterations}` : ""}`
  const statuses = created.template === "goal-loop" && phase.phase === "verify"
    ? "done, continue or failed"
    : created.template === "pr-lifecycle" && phase.phase === "review"
    ? "approved, changes_requested or closed"
    : "ok"
  const { description, ...settings } = runner
  return {
    kind: `${created.template}.${phase.phase}`,
    source: "queueflow",
    subject: `${created.template} ${created.instanceKey}: ${label}`.slice(0, 500),
    description: description ??
      `The ${label} phase of the ${created.template} workflow '${created.instanceKey}'. Write its artifact to ${phase.artifactPath} under the task's artifact root, and report machineStatus ${statuses}.`,
    payload: {
      workflowId: id,
      template: created.template,
      instanceKey: created.instanceKey,
      phase: phase.phase,
      iteration: phase.iteration,
      maxIterations: created.maxIterations,
      artifactPath: phase.artifactPath,
      context: created.context,
      previous: flow.phases.filter((p) => p.status === "finished").map((p) => ({
        phase: p.phase,
        iteration: p.iteration,
        taskId: p.taskId,
        machineStatus: p.machineStatus,
        artifactPath: p.artifactPath
      }))
    },
    dedupeKey: `qfw:${id}:${phase.phase}:${phase.iteration}`,
    ...settings
  }
}

const changeOf = (task: TaskSummary): Decider.Command => ({
  _tag: "TaskChanged",
  taskId: task.id,
  status: task.status,
  machineStatus: task.outcome?.machineStatus ?? null,
  reason: task.reason,
  artifacts: Reports.artifactsOf(task)
})

export type FlowError = Actor.ExecuteError<never>

export class QueueFlows extends Context.Service<QueueFlows, {
  /** Creates the instance of (template, instanceKey) and submits its first phase, or answers the existing one. */
  readonly create: (
    tenant: string,
    request: QueueFlowRequest,
    origin?: { readonly sensorEventId: string }
  ) => Effect.Effect<{ readonly workflow: QueueFlowView; readonly created: boolean }, FlowError>
  readonly get: (tenant: string, id: string) => Effect.Effect<QueueFlowView, QueueFlowNotFound | Actor.ReadError>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<QueueFlowView>, Actor.ReadError>
  /** Brings the workflow up to date with its current task (submitting a due phase's task first). */
  readonly advance: (tenant: string, id: string) => Effect.Effect<void, FlowError>
  readonly takeSnapshot: (tenant: string, label: string) => Effect.Effect<SnapshotView, FlowError>
  readonly getSnapshot: (tenant: string, id: string) => Effect.Effect<SnapshotView, SnapshotNotFound | Actor.ReadError>
  /** The report of [from, to): `from`/`to` an ISO time or a snapshot id; `to` now when null. */
  readonly report: (
    tenant: string,
    from: string | null,
    to: string | null
  ) => Effect.Effect<Report, SnapshotNotFound | Actor.ReadError>
}>()("lantern/actors/queueflow/QueueFlows") {
  static readonly layer = Layer.effect(
    QueueFlows,
    Effect.gen(function*() {
      const provide = yield* Actor.provider
      const journal = yield* Journal
      const ids = yield* Ids
      const queue = yield* TaskQueue
      const { jsm } = yield* Nats

      const subjects = (tenant: string, prefix: string) =>
        Effect.tryPromise({
          try: () => jsm.streams.info(QUEUEFLOWS, { subjects_filter: `lantern.queueflow.${tenant}.*` }),
          catch: unavailable(`list the queue workflows of ${tenant}`)
        }).pipe(
          Effect.map((info) =>
            Object.keys(info.state.subjects ?? {}).map((s) => s.split(".")[3]!).filter((id) => id.startsWith(prefix))
              .sort()
          )
        )

      const get = (tenant: string, id: string) =>
        Effect.gen(function*() {
          if (!/^qfw_[0-9a-z]{26}$/.test(id)) return yield* new QueueFlowNotFound({ id })
          const view = viewOf(id, tenant, yield* journal.read(addressOf(tenant, id)))
          return view === null ? yield* new QueueFlowNotFound({ id }) : view
        })

      const list = (tenant: string) =>
        Effect.gen(function*() {
          const out: Array<QueueFlowView> = []
          for (const id of yield* subjects(tenant, "qfw_")) {
            const view = viewOf(id, tenant, yield* journal.read(addressOf(tenant, id)))
            if (view !== null) out.push(view)
          }
          return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0))
        })

      const run = (tenant: string, id: string, command: Decider.Command, key: string) =>
        provide(actor.execute(addressOf(tenant, id), command, { idempotencyKey: key, correlationId: id }))

      const advance = (tenant: string, id: string): Effect.Effect<void, FlowError> =>
        Effect.gen(function*() {
          // each turn moves the workflow one step (a submission recorded, a task change applied); bounded, since a
          // phase can only be due once per (phase, iteration)
          for (let turn = 0; turn < 64; turn++) {
            const loaded = yield* provide(actor.load(addressOf(tenant, id)))
            const at = Decider.current(loaded.state)
            if (at === null) return
            if (at.taskId === null) {
              const submitted = yield* Effect.result(
                queue.submit(tenant, submissionOf(id, loaded.state, at), { workflowId: id, phase: at.phase })
              )
              if (submitted._tag === "Failure") {
                const e = submitted.failure
                if (e._tag === "BusUnavailable") return yield* Effect.fail(e)
                yield* run(tenant, id, {
                  _tag: "RefuseSubmission",
                  phase: at.phase,
                  iteration: at.iteration,
                  reason: `${e.field}: ${e.message}`
                }, `${id}:${at.phase}:${at.iteration}:refused`)
                return
              }
              yield* run(tenant, id, {
                _tag: "RecordSubmitted",
                phase: at.phase,
                iteration: at.iteration,
                taskId: submitted.success.task.id
              }, `${id}:${at.phase}:${at.iteration}:submitted`)
              continue
            }
            const task = yield* queue.get(tenant, at.taskId)
            if (task === null) return
            const done = yield* run(
              tenant,
              id,
              changeOf(task),
              `${id}:${at.taskId}:${task.status}:${task.updatedAt}:${loaded.seq}`
            )
            if (done.appended.length === 0) return
          }
        })

      const snapshotOf = (tenant: string, id: string) =>
        Effect.gen(function*() {
          if (!/^snp_[0-9a-z]{26}$/.test(id)) return yield* new SnapshotNotFound({ id })
          const stored = yield* journal.read(addressOf(tenant, id))
          const taken = snapshotActor.fromStored(addressOf(tenant, id), stored).state
          if (taken === null) return yield* new SnapshotNotFound({ id })
          const { _tag, snapshotId, ...rest } = taken
          return { id: snapshotId, ...rest } satisfies SnapshotView
        })

      /** A window's bound: a snapshot's time (and the snapshot), or an instant. */
      const bound = (tenant: string, value: string) =>
        value.startsWith("snp_")
          ? Effect.map(snapshotOf(tenant, value), (s) => ({ at: Date.parse(s.takenAt), snapshot: s }))
          : Effect.succeed({ at: Date.parse(value), snapshot: null as SnapshotView | null })

      return QueueFlows.of({
        create: (tenant, request, origin) =>
          Effect.gen(function*() {
            const id = idOf(tenant, request.template, request.instanceKey)
            const outcome = yield* run(tenant, id, {
              _tag: "Create",
              event: {
                workflowId: id,
                template: request.template,
                instanceKey: request.instanceKey,
                base: request.base ?? Templates.baseOf(request.instanceKey),
                context: request.context ?? {},
                maxIterations: request.maxIterations ?? MAX_ITERATIONS_DEFAULT,
                task: request.task ?? null,
                phases: request.phases ?? null,
                sensorEventId: origin?.sensorEventId ?? null
              }
            }, `${id}:create`)
            yield* advance(tenant, id)
            const view = viewOf(id, tenant, yield* journal.read(addressOf(tenant, id)))
            return { workflow: view!, created: outcome.appended.length > 0 }
          }),
        get,
        list,
        advance,
        takeSnapshot: (tenant, label) =>
          Effect.gen(function*() {
            const id = yield* ids.next("snp")
            const tasks = yield* queue.list(tenant)
            const flows = yield* list(tenant)
            const takenAt = new Date(yield* Clock.currentTimeMillis).toISOString()
            yield* provide(snapshotActor.execute(addressOf(tenant, id), {
              _tag: "Take",
              event: {
                snapshotId: id,
                label,
                takenAt,
                tasks: Reports.counts(tasks),
                // bounded so a snapshot always fits in one event
                workflows: flows.slice(-2000).map((f) => ({
                  id: f.id,
                  template: f.template,
                  instanceKey: f.instanceKey,
                  status: f.status,
                  phase: f.phase,
                  iteration: f.iteration
                }))
              }
            }, { idempotencyKey: `${id}:take`, correlationId: id }))
            return yield* snapshotOf(tenant, id).pipe(Effect.orDie)
          }),
        getSnapshot: snapshotOf,
        report: (tenant, from, to) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            let start: { at: number; snapshot: SnapshotView | null }
            if (from === null) {
              // latest: since the newest snapshot, or the last 24 hours when there is none
              const snaps = yield* subjects(tenant, "snp_")
              const newest = snaps[snaps.length - 1]
              start = newest === undefined
                ? { at: now - 86_400_000, snapshot: null }
                : yield* bound(tenant, newest)
            } else start = yield* bound(tenant, from)
            const end = to === null ? now + 1 : (yield* bound(tenant, to)).at
            const tasks = yield* queue.list(tenant)
            const flows = yield* list(tenant)
            return Reports.build(tasks, flows, { from: start.at, to: end, fromSnapshot: start.snapshot })
          })
      })
    })
  )
}

/** Every tenant's workflows that have not ended, by tenant: what the sweep looks at. */
const openFlows = (skip: ReadonlySet<string>) =>
  Effect.gen(function*() {
    const { jsm } = yield* Nats
    const info = yield* Effect.tryPromise({
      try: () => jsm.streams.info(QUEUEFLOWS, { subjects_filter: "lantern.queueflow.*.*" }),
      catch: unavailable("list the queue workflows")
    })
    return Object.keys(info.state.subjects ?? {}).map((s) => s.split(".")).filter((t) =>
      t[3]!.startsWith("qfw_") && !skip.has(`${t[2]}.${t[3]}`)
    ).map((t) => ({ tenant: t[2]!, id: t[3]! }))
  })

/** How often every open workflow is checked against its current task, besides following task changes. */
export const SWEEP_EVERY = Duration.seconds(5)

/**
 * The workflows' worker: advances a workflow on every change of one of its tasks, and sweeps every open workflow
 * every few seconds (a change missed while no host listened, a submission a crash cut short).
 */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    const flows = yield* QueueFlows
    const queue = yield* TaskQueue
    const journal = yield* Journal
    const nats = yield* Nats
    const ended = new Set<string>()
    const advance = (tenant: string, id: string) =>
      flows.advance(tenant, id).pipe(
        Effect.catchCause((cause) => Effect.logWarning(`queue workflow ${tenant}/${id} not advanced`, cause))
      )

    yield* queue.changes(null).pipe(
      Stream.filter((c) => c.task.origin.workflowId !== undefined),
      Stream.runForEach((c) => advance(c.task.tenant, c.task.origin.workflowId!)),
      Effect.tapError((e: BusUnavailable) => Effect.logWarning(`queue workflows: task changes: ${e.message}`)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.catchCause((cause) => Effect.logError("queue workflows stopped following task changes", cause)),
      Effect.forkScoped
    )

    const sweep = Effect.gen(function*() {
      for (const { tenant, id } of yield* openFlows(ended).pipe(Effect.provideService(Nats, nats))) {
        yield* advance(tenant, id)
        const flow = actor.fromStored(addressOf(tenant, id), yield* journal.read(addressOf(tenant, id))).state
        if (flow.status === "complete" || flow.status === "failed") ended.add(`${tenant}.${id}`)
      }
    }).pipe(Effect.catchCause((cause) => Effect.logWarning("queue workflows sweep", cause)))
    yield* sweep.pipe(Effect.repeat(Schedule.spaced(SWEEP_EVERY)), Effect.forkScoped)
  })
)

export type { QueueFlowEvent }
