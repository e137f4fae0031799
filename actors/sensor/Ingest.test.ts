import { describe, expect, it } from "vitest"
import * as Ingest from "./Ingest.ts"

const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))
const subject = "lantern.ingest.acme.sensors"

describe("sensor events over NATS ingest", () => {
  it("posts an ingest event whose data is a sensor event, with the ingest event's id", () => {
    const checked = Ingest.check(
      subject,
      undefined,
      bytes({
        eventId: "gh-1",
        type: "issue.opened",
        data: {
          sensorId: "github",
          payload: { n: 1 },
          proposedWorkflow: { template: "goal-loop", instanceKey: "i-1", task: { agentName: "coder" } }
        }
      })
    )
    expect(checked).toMatchObject({ _tag: "Post", tenant: "acme", eventId: "gh-1", data: { sensorId: "github" } })
  })

  it("dead-letters data that is not a sensor event, naming the field (an unknown template too)", () => {
    const unknown = Ingest.check(
      subject,
      undefined,
      bytes({
        eventId: "gh-2",
        type: "x",
        data: { sensorId: "github", payload: 1, proposedWorkflow: { template: "nope", instanceKey: "k" } }
      })
    )
    expect(unknown).toMatchObject({ _tag: "Dead", tenant: "acme", field: "data.proposedWorkflow.template" })
    const missing = Ingest.check(subject, undefined, bytes({ eventId: "gh-3", type: "x", data: { payload: 1 } }))
    expect(missing).toMatchObject({ _tag: "Dead", field: "data.sensorId" })
    const unrunnable = Ingest.check(
      subject,
      undefined,
      bytes({
        eventId: "gh-4",
        type: "x",
        data: { sensorId: "github", payload: 1, proposedWorkflow: { template: "goal-loop", instanceKey: "k" } }
      })
    )
    expect(unrunnable).toMatchObject({ _tag: "Dead", field: "data.proposedWorkflow.task" })
  })

  it("leaves what breaks the ingest contract itself to the ingest router", () => {
    expect(Ingest.check(subject, undefined, new TextEncoder().encode("not json"))).toEqual({ _tag: "Skip" })
    expect(Ingest.check("lantern.ingest.acme", undefined, bytes({ eventId: "a", type: "b", data: {} }))).toEqual({
      _tag: "Skip"
    })
  })
})
