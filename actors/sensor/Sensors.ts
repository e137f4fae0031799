// The sensor actor's shell (ADR 0056): an arrival is journaled (lantern.sensor.<tenant>.<sev id>), then claims its
// (sensorId, eventId) and its dedupeKey, each a journal of its own whose first append expects an empty subject, so
// of two concurrent arrivals exactly one wins each key, for good. The winner's proposed task and workflow are then
// created with keys derived from its id (a task dedupe key, the workflow's (template, instanceKey)), so finishing an
// arrival twice (a repeat that finds it unfinished after a crash) creates nothing twice.
import { createHash } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { Journal } from "../../bus/Journal.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import { SENSORS } from "../../bus/Topology.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import type { SensorEventAnswer, SensorEventRequest, SensorEventView } from "../../schema/Sensor.ts"
import * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import { QueueFlows } from "../queueflow/QueueFlows.ts"
import * as Templates from "../queueflow/Templates.ts"
import { TaskQueue, type TaskRefused } from "../task/Queue.ts"
import * as Decider from "./Decider.ts"

export const keyActor = Actor.make(Decider.key)
export const arrivalActor = Actor.make(Decider.arrival)

export const addressOf = (tenant: string, id: string): ActorAddress => ({ type: "sensor", tenant, id })

/** The journal of a dedupe key: `key-` and 40 hex of SHA-256 (an event id may hold any visible character). */
export const keyIdOf = (kind: "eventId" | "dedupeKey", sensorId: string, value: string): string =>
  `key-${
    createHash("sha256").update(
      kind === "eventId" ? `eventId\u0000${sensorId}\u0000${value}` : `dedupeKey\u0000${value}`
    )
      .digest("hex").slice(0, 40)
  }`

/** What the queue would refuse of an event's proposals, found before anything is written. */
export const problemsOf = (event: {
  readonly proposedTask?: SensorEventRequest["proposedTask"]
  readonly proposedWorkflow?: SensorEventRequest["proposedWorkflow"]
}): ReadonlyArray<Templates.Problem> => [
  ...(event.proposedTask === undefined ? [] : Templates.submissionProblems(event.proposedTask, "proposedTask.")),
  ...(event.proposedWorkflow === undefined
    ? []
    : Templates.requestProblems(event.proposedWorkflow, "proposedWorkflow."))
]

export type PostError = Actor.ExecuteError<never> | TaskRefused

/** How far a chain of duplicates is followed to its original (each link is one arrival's record). */
const MAX_CHAIN = 8

export const viewOf = (id: string, stored: ReadonlyArray<Stored>): SensorEventView | null => {
  const a = arrivalActor.fromStored(addressOf("_", id), stored).state
  if (a.received === null) return null
  const r = a.received
  return {
    id,
    sensorId: r.sensorId,
    eventId: r.eventId,
    dedupeKey: r.dedupeKey,
    via: r.via,
    status: a.accepted !== null ? "accepted" : a.duplicate !== null ? "duplicate" : "received",
    taskId: a.accepted?.taskId ?? null,
    workflowId: a.accepted?.workflowId ?? null,
    duplicateOf: a.duplicate?.of ?? null,
    payload: r.payload,
    receivedAt: stored[0]!.envelope.at
  }
}

export class Sensors extends Context.Service<Sensors, {
  /** Records an arrival and acts on it once per (sensorId, eventId) and per dedupeKey, for good. */
  readonly post: (
    tenant: string,
    event: SensorEventRequest,
    via: "http" | "ingest"
  ) => Effect.Effect<SensorEventAnswer, PostError>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<SensorEventView>, Actor.ReadError>
}>()("lantern/actors/sensor/Sensors") {
  static readonly layer = Layer.effect(
    Sensors,
    Effect.gen(function*() {
      const provide = yield* Actor.provider
      const journal = yield* Journal
      const ids = yield* Ids
      const queue = yield* TaskQueue
      const flows = yield* QueueFlows
      const { jsm } = yield* Nats

      const loadArrival = (tenant: string, id: string) => provide(arrivalActor.load(addressOf(tenant, id)))
      const onArrival = (tenant: string, id: string, command: Decider.ArrivalCommand, key: string) =>
        provide(arrivalActor.execute(addressOf(tenant, id), command, { idempotencyKey: key, correlationId: id }))

      /** Claims a key for `sensorEventId`: answers who owns it now (`sensorEventId` itself when the claim won). */
      const claim = (
        tenant: string,
        kind: "eventId" | "dedupeKey",
        sensorId: string,
        value: string,
        sensorEventId: string
      ) =>
        Effect.map(
          provide(keyActor.execute(
            addressOf(tenant, keyIdOf(kind, sensorId, value)),
            { _tag: "Claim", kind, sensorId, value, sensorEventId },
            { idempotencyKey: `${keyIdOf(kind, sensorId, value)}:${sensorEventId}`, correlationId: sensorEventId }
          )),
          (outcome) => outcome.loaded.state.owner!
        )

      type Settled =
        | { readonly _tag: "Accepted"; readonly taskId: string | null; readonly workflowId: string | null }
        | { readonly _tag: "Duplicate"; readonly of: string; readonly by: "eventId" | "dedupeKey" }

      /**
       * Takes a received arrival that holds its event id to its end: claims its dedupeKey, then creates what it
       * proposes (or marks it as the dedupe key's owner's duplicate). Idempotent: may run again, anywhere.
       */
      const finish = (tenant: string, id: string): Effect.Effect<Settled, PostError> =>
        Effect.gen(function*() {
          const { state } = yield* loadArrival(tenant, id)
          if (state.accepted !== null) return { _tag: "Accepted", ...state.accepted } as const
          if (state.duplicate !== null) return { _tag: "Duplicate", ...state.duplicate } as const
          const r = state.received!
          if (r.dedupeKey !== null) {
            const owner = yield* claim(tenant, "dedupeKey", r.sensorId, r.dedupeKey, id)
            if (owner !== id) {
              yield* onArrival(tenant, id, { _tag: "MarkDuplicate", of: owner, by: "dedupeKey" }, `${id}:duplicate`)
              return { _tag: "Duplicate", of: owner, by: "dedupeKey" } as const
            }
          }
          const task = r.proposedTask === null ? null : yield* queue.submit(tenant, {
            ...r.proposedTask,
            // the arrival's own key when the sensor gave none: finishing it again finds the same task
            dedupeKey: r.proposedTask.dedupeKey ?? `sensor:${id}`
          }, { sensorEventId: id })
          const workflow = r.proposedWorkflow === null
            ? null
            : yield* flows.create(tenant, r.proposedWorkflow, { sensorEventId: id })
          const accepted = { taskId: task?.task.id ?? null, workflowId: workflow?.workflow.id ?? null }
          yield* onArrival(tenant, id, { _tag: "Accept", ...accepted }, `${id}:accept`)
          // a concurrent finish may have recorded it first: what the journal says is the answer
          const after = (yield* loadArrival(tenant, id)).state
          return { _tag: "Accepted", ...(after.accepted ?? accepted) } as const
        })

      /** The original of `id`: itself once accepted, else what it duplicates, followed (and finished) to the end. */
      const original = (tenant: string, id: string): Effect.Effect<string, PostError> =>
        Effect.gen(function*() {
          let at = id
          for (let i = 0; i < MAX_CHAIN; i++) {
            const settled = yield* finish(tenant, at)
            if (settled._tag === "Accepted") return at
            at = settled.of
          }
          return at
        })

      return Sensors.of({
        post: (tenant, event, via) =>
          Effect.gen(function*() {
            const id = yield* ids.next("sev")
            yield* onArrival(tenant, id, {
              _tag: "Receive",
              event: {
                sensorEventId: id,
                sensorId: event.sensorId,
                eventId: event.eventId,
                dedupeKey: event.dedupeKey ?? null,
                payload: event.payload,
                proposedTask: event.proposedTask ?? null,
                proposedWorkflow: event.proposedWorkflow ?? null,
                via
              }
            }, `${id}:receive`)
            const duplicate = (of: string, by: "eventId" | "dedupeKey") =>
              Effect.map(original(tenant, of), (first): SensorEventAnswer => ({
                accepted: false,
                sensorEventId: id,
                taskId: null,
                workflowId: null,
                duplicateOf: first,
                duplicateBy: by
              }))
            const owner = yield* claim(tenant, "eventId", event.sensorId, event.eventId, id)
            if (owner !== id) {
              yield* onArrival(tenant, id, { _tag: "MarkDuplicate", of: owner, by: "eventId" }, `${id}:duplicate`)
              return yield* duplicate(owner, "eventId")
            }
            const settled = yield* finish(tenant, id)
            if (settled._tag === "Duplicate") return yield* duplicate(settled.of, settled.by)
            return {
              accepted: true,
              sensorEventId: id,
              taskId: settled.taskId,
              workflowId: settled.workflowId,
              duplicateOf: null,
              duplicateBy: null
            }
          }),
        list: (tenant) =>
          Effect.gen(function*() {
            const info = yield* Effect.tryPromise({
              try: () => jsm.streams.info(SENSORS, { subjects_filter: `lantern.sensor.${tenant}.*` }),
              catch: unavailable(`list the sensor events of ${tenant}`)
            })
            const out: Array<SensorEventView> = []
            const arrivals = Object.keys(info.state.subjects ?? {}).map((s) => s.split(".")[3]!).filter((id) =>
              id.startsWith("sev_")
            ).sort()
            for (const id of arrivals) {
              const view = viewOf(id, yield* journal.read(addressOf(tenant, id)))
              if (view !== null) out.push(view)
            }
            return out
          })
      })
    })
  )
}
