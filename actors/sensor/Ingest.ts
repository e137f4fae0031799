// Sensor events over NATS (ADR 0056 on ADR 0051): an ingest event published on `lantern.ingest.<tenant>.sensors`
// whose `data` is a sensor event (sensorId, payload, dedupeKey?, proposedTask?, proposedWorkflow?) is posted to the
// queue as `POST /v1/sensors/events` would, with the ingest event's eventId. A durable consumer of its own on the
// ingest stream, beside the ingest router (which still checks the envelope, dead-letters a bad one and records it):
// a well-formed ingest event whose data is not a sensor event is dead-lettered here with the field at fault.
import { Clock, Effect, Layer, Schedule, Schema } from "effect"
import * as Consumer from "../../bus/Consumer.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import type { DeadLetter } from "../../schema/Ingest.ts"
import * as Issues from "../../schema/Issues.ts"
import { SensorIngestData } from "../../schema/Sensor.ts"
import * as Contract from "../ingest/Contract.ts"
import * as IngestActor from "../ingest/Ingest.ts"
import { problemsOf, Sensors } from "./Sensors.ts"

/** The ingest source whose events are sensor events for the operator queue. */
export const SOURCE = "sensors"

export const durable: Consumer.Durable = {
  stream: IngestActor.INGEST,
  durable: "sensor-ingest",
  filterSubject: `lantern.ingest.*.${SOURCE}`,
  ackWait: "30 seconds",
  maxAckPending: 256,
  ackPolicy: "explicit"
}

const decodeData = Schema.decodeUnknownResult(SensorIngestData)

export type Checked =
  | { readonly _tag: "Skip" }
  | { readonly _tag: "Dead"; readonly tenant: string; readonly field: string; readonly reason: string }
  | {
    readonly _tag: "Post"
    readonly tenant: string
    readonly eventId: string
    readonly data: typeof SensorIngestData.Type
  }

/** What to do with a message on the sensors' ingest subject. Pure. */
export const check = (subject: string, msgId: string | undefined, bytes: Uint8Array): Checked => {
  const checked = Contract.check(subject, msgId, bytes)
  // the ingest router dead-letters what breaks the ingest contract itself
  if (!checked.ok) return { _tag: "Skip" }
  const decoded = decodeData(checked.event.data)
  if (decoded._tag === "Failure") {
    const [first] = Issues.toFieldIssues(decoded.failure.issue)
    return {
      _tag: "Dead",
      tenant: checked.tenant,
      field: first === undefined ? "data" : `data.${first.field}`,
      reason: first?.message ?? "Expected a sensor event"
    }
  }
  const [problem] = problemsOf(decoded.success)
  if (problem !== undefined) {
    return { _tag: "Dead", tenant: checked.tenant, field: `data.${problem.field}`, reason: problem.message }
  }
  return { _tag: "Post", tenant: checked.tenant, eventId: checked.event.eventId, data: decoded.success }
}

/** The consumer, on every host that drives work. */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    yield* IngestActor.applyStreams
    const { js } = yield* Nats
    const sensors = yield* Sensors
    const handle = (m: Consumer.Message) =>
      Effect.gen(function*() {
        const checked = check(m.subject, m.header("Nats-Msg-Id"), m.data)
        switch (checked._tag) {
          case "Skip":
            return Consumer.Decision.Ack()
          case "Dead": {
            const letter: Omit<DeadLetter, "seq"> = {
              source: SOURCE,
              subject: m.subject,
              field: checked.field,
              reason: checked.reason,
              data: m.text().slice(0, IngestActor.DEAD_DATA_BYTES),
              encoding: "utf8",
              at: new Date(yield* Clock.currentTimeMillis).toISOString()
            }
            yield* Effect.tryPromise({
              try: () =>
                js.publish(IngestActor.deadSubjectOf(checked.tenant, SOURCE), JSON.stringify(letter), {
                  msgID: `sensor-dead:${m.seq}`
                }),
              catch: unavailable("publish a dead letter")
            })
            return Consumer.Decision.Ack()
          }
          case "Post": {
            const posted = yield* Effect.result(
              sensors.post(checked.tenant, { ...checked.data, eventId: checked.eventId }, "ingest")
            )
            if (posted._tag === "Success") return Consumer.Decision.Ack()
            const e = posted.failure
            if (e._tag === "TaskRefused") {
              yield* Effect.logWarning(
                `sensor event ${m.subject} #${m.seq}: the proposed task was refused: ${e.message}`
              )
              return Consumer.Decision.Ack()
            }
            return yield* Effect.fail(e)
          }
        }
      })
    yield* Consumer.ensure(durable)
    yield* Consumer.run(durable, 16, handle).pipe(
      Effect.tapError((e) => Effect.logWarning(`sensor ingest: ${e.message}; starting again`)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.catchCause((cause) => Effect.logError("sensor ingest stopped", cause)),
      Effect.forkScoped
    )
  })
)
