// `lantern sensors post|list` (ADR 0056): a sensor event from the command line, checked with the API's schema
// before anything is sent (exit 2 naming the field), and what it created or which event it repeats.
import { Console, Effect, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import { SensorEventRequest } from "../../schema/Sensor.ts"
import { endpoints } from "../Api.ts"
import * as Client from "./Client.ts"
import { invalid, issueText, jsonFlag } from "./Flags.ts"
import * as Input from "./Input.ts"

const sensor = Flag.String("sensor").pipe(
  Flag.withDescription("The sensor's id (lowercase letters, digits, '-', '_')"),
  Flag.withMetavar("ID")
)
const eventId = Flag.String("event-id").pipe(
  Flag.withDescription("The event's id at the sensor: a repeat of it creates nothing"),
  Flag.withMetavar("ID")
)
const dedupeKey = Flag.String("dedupe-key").pipe(
  Flag.withDescription("A key other events may share: the second event with it creates nothing"),
  Flag.withMetavar("KEY"),
  Flag.optional
)
const payload = jsonFlag("payload", "The event's payload as JSON ({} when absent)")
const task = jsonFlag("task", "A task to submit, as JSON: {kind, source, payload, …} as POST /v1/tasks takes")
const workflow = Flag.String("workflow").pipe(
  Flag.withDescription("A queue workflow to start: goal-loop or pr-lifecycle (needs --instance-key)"),
  Flag.withMetavar("TEMPLATE"),
  Flag.optional
)
const instanceKey = Flag.String("instance-key").pipe(
  Flag.withDescription("The workflow instance's key: one instance per template and key"),
  Flag.withMetavar("KEY"),
  Flag.optional
)
const context = jsonFlag("context", "The workflow's context as a JSON object, handed to every phase task")

const decodeRequest = Schema.decodeUnknownEffect(SensorEventRequest)

const post = Command.make(
  "post",
  { sensor, eventId, dedupeKey, payload, task, workflow, instanceKey, context, json: Input.json },
  Effect.fn(function*(i) {
    if (Option.isSome(i.workflow) !== Option.isSome(i.instanceKey)) {
      return yield* invalid("--workflow", "--workflow and --instance-key go together")
    }
    if (Option.isSome(i.context) && Option.isNone(i.workflow)) {
      return yield* invalid("--context", "a context is a workflow's: give --workflow and --instance-key")
    }
    const raw = {
      sensorId: i.sensor,
      eventId: i.eventId,
      payload: Option.getOrElse(i.payload, () => ({})),
      ...Option.match(i.dedupeKey, { onNone: () => ({}), onSome: (dedupeKey) => ({ dedupeKey }) }),
      ...Option.match(i.task, { onNone: () => ({}), onSome: (proposedTask) => ({ proposedTask }) }),
      ...(Option.isSome(i.workflow) && Option.isSome(i.instanceKey)
        ? {
          proposedWorkflow: {
            template: i.workflow.value,
            instanceKey: i.instanceKey.value,
            ...Option.match(i.context, { onNone: () => ({}), onSome: (context) => ({ context }) })
          }
        }
        : {})
    }
    yield* decodeRequest(raw, { onExcessProperty: "error", errors: "all" }).pipe(
      Effect.mapError((e) => invalid("sensor event", issueText(e.issue)))
    )
    const reply = yield* Client.call(endpoints.postSensorEvent, { body: raw as typeof SensorEventRequest.Encoded })
    const a = reply.value
    yield* Console.log(
      i.json
        ? JSON.stringify(reply.body, null, 2)
        : a.accepted
        ? [
          `accepted ${a.sensorEventId}`,
          ...(a.taskId === null ? [] : [`  task ${a.taskId}`]),
          ...(a.workflowId === null ? [] : [`  workflow ${a.workflowId}`])
        ].join("\n")
        : `duplicate of ${a.duplicateOf} (same ${a.duplicateBy}): nothing created`
    )
  })
).pipe(
  Command.withDescription(
    "Post a sensor event: a task and/or a queue workflow, created once per event id and dedupe key"
  ),
  Command.withExamples([
    {
      command:
        "lantern sensors post --sensor github --event-id 8812 --workflow goal-loop --instance-key issue-42 --context '{\"goal\":\"fix #42\"}'",
      description: "Start a goal loop for an issue, once"
    },
    {
      command:
        "lantern sensors post --sensor cron --event-id 2026-12-03 --dedupe-key nightly --task '{\"kind\":\"report\",\"source\":\"cron\",\"payload\":{}}'"
    }
  ])
)

const list = Command.make(
  "list",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listSensorEvents, {})
    yield* Console.log(
      i.json
        ? JSON.stringify(reply.body, null, 2)
        : reply.value.items.map((e) =>
          `${e.id}  ${e.sensorId}  ${e.eventId}  ${e.status}${e.status === "duplicate" ? ` of ${e.duplicateOf}` : ""}${
            e.taskId === null ? "" : `  task ${e.taskId}`
          }${e.workflowId === null ? "" : `  workflow ${e.workflowId}`}`
        ).join("\n")
    )
  })
).pipe(Command.withDescription("List sensor events, oldest first"), Command.withAlias("ls"))

export const sensors = Command.make("sensors").pipe(
  Command.withDescription("Post sensor events to the operator queue and list them"),
  Command.withSubcommands([post, list])
)
