// The sensor actor's pure logic (ADR 0056), two kinds of instance on the sensor stream: a dedupe key (taken once, by
// the first sensor event that claims it, for good) and a sensor event (received once, then accepted with what it
// created or marked as the duplicate of an earlier one, once).
import type { SensorEvent } from "../../schema/Sensor.ts"
import { accept, type Decider, ignore } from "../kernel/Decider.ts"

// ---- a dedupe key: lantern.sensor.<tenant>.key-<sha256> ----

export interface Key {
  readonly owner: string | null
}

export type KeyCommand = {
  readonly _tag: "Claim"
  readonly kind: "eventId" | "dedupeKey"
  readonly sensorId: string
  readonly value: string
  readonly sensorEventId: string
}

export const key: Decider<Key, KeyCommand, SensorEvent, never> = {
  initialState: { owner: null },
  decide: (command, state) => {
    if (state.owner !== null) return ignore
    const { _tag, ...fields } = command
    return accept<SensorEvent>({ _tag: "SensorKeyClaimed", ...fields })
  },
  evolve: (state, e) => (e._tag === "SensorKeyClaimed" && state.owner === null ? { owner: e.sensorEventId } : state)
}

// ---- a sensor event: lantern.sensor.<tenant>.<sev id> ----

type Received = Extract<SensorEvent, { _tag: "SensorEventReceived" }>

export interface Arrival {
  readonly received: Received | null
  readonly accepted: { readonly taskId: string | null; readonly workflowId: string | null } | null
  readonly duplicate: { readonly of: string; readonly by: "eventId" | "dedupeKey" } | null
}

export type ArrivalCommand =
  | { readonly _tag: "Receive"; readonly event: Omit<Received, "_tag"> }
  | { readonly _tag: "Accept"; readonly taskId: string | null; readonly workflowId: string | null }
  | { readonly _tag: "MarkDuplicate"; readonly of: string; readonly by: "eventId" | "dedupeKey" }

const settled = (a: Arrival) => a.accepted !== null || a.duplicate !== null

export const arrival: Decider<Arrival, ArrivalCommand, SensorEvent, never> = {
  initialState: { received: null, accepted: null, duplicate: null },
  decide: (command, state) => {
    switch (command._tag) {
      case "Receive":
        return state.received !== null ? ignore : accept<SensorEvent>({ _tag: "SensorEventReceived", ...command.event })
      case "Accept":
        return state.received === null || settled(state)
          ? ignore
          : accept<SensorEvent>({ _tag: "SensorEventAccepted", taskId: command.taskId, workflowId: command.workflowId })
      case "MarkDuplicate":
        return state.received === null || settled(state)
          ? ignore
          : accept<SensorEvent>({ _tag: "SensorEventDuplicated", duplicateOf: command.of, by: command.by })
    }
  },
  evolve: (state, e) => {
    switch (e._tag) {
      case "SensorEventReceived":
        return { ...state, received: e }
      case "SensorEventAccepted":
        return { ...state, accepted: { taskId: e.taskId, workflowId: e.workflowId } }
      case "SensorEventDuplicated":
        return { ...state, duplicate: { of: e.duplicateOf, by: e.by } }
      default:
        return state
    }
  }
}
