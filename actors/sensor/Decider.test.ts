import { describe, it } from "vitest"
import type { SensorEvent } from "../../schema/Sensor.ts"
import { given } from "../kernel/given.ts"
import { arrival, key } from "./Decider.ts"

const claimed: SensorEvent = {
  _tag: "SensorKeyClaimed",
  kind: "eventId",
  sensorId: "github",
  value: "d-1",
  sensorEventId: "sev_a"
}
const received: SensorEvent = {
  _tag: "SensorEventReceived",
  sensorEventId: "sev_a",
  sensorId: "github",
  eventId: "d-1",
  dedupeKey: null,
  payload: {},
  proposedTask: null,
  proposedWorkflow: null,
  via: "http"
}

describe("sensor deciders", () => {
  it("a key is claimed once, by the first", () => {
    const { _tag, ...fields } = claimed
    given(key).when({ _tag: "Claim", ...fields }).then([claimed])
    given(key, [claimed]).when({ _tag: "Claim", ...fields, sensorEventId: "sev_b" }).then([])
  })

  it("an arrival is received once and settled once: accepted or a duplicate, never both", () => {
    const { _tag, ...fields } = received as Extract<SensorEvent, { _tag: "SensorEventReceived" }>
    given(arrival).when({ _tag: "Receive", event: fields }).then([received])
    given(arrival, [received]).when({ _tag: "Receive", event: fields }).then([])
    given(arrival).when({ _tag: "Accept", taskId: "tsk_1", workflowId: null }).then([])
    const accepted: SensorEvent = { _tag: "SensorEventAccepted", taskId: "tsk_1", workflowId: null }
    given(arrival, [received]).when({ _tag: "Accept", taskId: "tsk_1", workflowId: null }).then([accepted])
    given(arrival, [received, accepted]).when({ _tag: "Accept", taskId: "tsk_2", workflowId: null }).then([])
    given(arrival, [received, accepted]).when({ _tag: "MarkDuplicate", of: "sev_0", by: "dedupeKey" }).then([])
    const duplicated: SensorEvent = { _tag: "SensorEventDuplicated", duplicateOf: "sev_0", by: "dedupeKey" }
    given(arrival, [received]).when({ _tag: "MarkDuplicate", of: "sev_0", by: "dedupeKey" }).then([duplicated])
    given(arrival, [received, duplicated]).when({ _tag: "Accept", taskId: "tsk_1", workflowId: null }).then([])
  })
})
