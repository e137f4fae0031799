// The sensor routes (ADR 0056): an event posted once per (sensorId, eventId) and dedupeKey; a proposed task the
// queue refuses is 400 naming its field.
import { Effect } from "effect"
import { problemsOf, Sensors } from "../actors/sensor/Sensors.ts"
import { BadRequest } from "./Http.ts"
import { handlers, reply } from "./Serve.ts"

export const sensorHandlers = handlers({
  postSensorEvent: ({ tenant, body }) => {
    const problems = problemsOf(body)
    if (problems.length > 0) return Effect.fail(new BadRequest({ issues: problems }))
    return Sensors.use((s) => s.post(tenant, body, "http")).pipe(
      Effect.catchTag(
        "TaskRefused",
        (e) => Effect.fail(new BadRequest({ issues: [{ field: `proposedTask.${e.field}`, message: e.message }] }))
      ),
      Effect.map((answer) => reply(answer.accepted ? 201 : 200, answer))
    )
  },
  listSensorEvents: ({ tenant, query }) =>
    Effect.map(Sensors.use((s) => s.list(tenant)), (all) => ({
      items: all.filter((e) =>
        (query.sensorId === undefined || e.sensorId === query.sensorId) &&
        (query.status === undefined || e.status === query.status)
      )
    }))
})
