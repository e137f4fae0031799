// Step completions in the wire form (an event's type and payload) that receipt verifiers, the cockpit and the benches
// read: a StepsCompleted stands for its steps' StepCompleted events, in order (ADR 0067). Pure and import-free, so
// the SDK and the cockpit bundle it; typed readers use `Events.expand`.

export const STEP_COMPLETED = "StepCompleted"
export const STEPS_COMPLETED = "StepsCompleted"

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

export const RUN_SUCCEEDED = "RunSucceeded"

/**
 * The StepCompleted payloads an event stands for: its own for a StepCompleted, its steps' for a StepsCompleted and
 * for a RunSucceeded that carries the completion of the step whose answer ended the run (ADR 0077).
 */
export const payloadsOf = (type: unknown, payload: unknown): ReadonlyArray<Record<string, unknown>> => {
  if (type === STEP_COMPLETED) return isRecord(payload) ? [payload] : [{}]
  if (type !== STEPS_COMPLETED && type !== RUN_SUCCEEDED) return []
  if (!isRecord(payload) || !Array.isArray(payload["steps"])) return []
  return payload["steps"].filter(isRecord)
}

/**
 * An event in wire form as the events it stands for: a StepsCompleted as one StepCompleted per step; a RunSucceeded
 * with steps as one StepCompleted per step, then the RunSucceeded without them; any other as itself.
 */
export const expand = <E extends { readonly type: string; readonly payload?: unknown }>(e: E): ReadonlyArray<E> => {
  if (e.type === STEPS_COMPLETED) {
    return payloadsOf(e.type, e.payload).map((p) => ({ ...e, type: STEP_COMPLETED, payload: p }))
  }
  if (e.type === RUN_SUCCEEDED && isRecord(e.payload) && Array.isArray(e.payload["steps"])) {
    const { steps: _steps, ...end } = e.payload
    return [...payloadsOf(e.type, e.payload).map((p) => ({ ...e, type: STEP_COMPLETED, payload: p })), {
      ...e,
      payload: end
    }]
  }
  return [e]
}
