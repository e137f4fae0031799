// The tenant-wide stream of run activity (`GET /v1/stream`), what the cockpit's list of runs follows: one small
// frame per run event, live from the moment of the request or resumed after the bus sequence a client last saw.
import { Effect, Stream } from "effect"
import { Journal } from "../bus/Journal.ts"
import type { RunActivity } from "../schema/Api.ts"
import type { Stored } from "../schema/Envelope.ts"
import { TERMINAL_RUN_EVENTS } from "../schema/Events.ts"
import { TERMINAL_STATUS } from "../schema/Receipt.ts"
import * as Sse from "../schema/Sse.ts"
import { sseResponse } from "./Events.ts"
import { handlers } from "./Serve.ts"

const encoder = new TextEncoder()

/** What a run event tells a list of runs: which run, which step, and the run's status after it. */
export const activityOf = (s: Stored): RunActivity => {
  const payload = s.envelope.payload as Record<string, unknown> | null
  const stepId = payload !== null && typeof payload === "object" && typeof payload["stepId"] === "string"
    ? payload["stepId"]
    : null
  return {
    seq: s.seq,
    runId: s.envelope.actor.id,
    type: s.envelope.type,
    at: s.envelope.at,
    status: TERMINAL_RUN_EVENTS.has(s.envelope.type) ? TERMINAL_STATUS.get(s.envelope.type)! : "running",
    stepId
  }
}

/** One frame: its id is the bus's stream sequence, which orders every run's events and is what Last-Event-ID names. */
export const activityFrame = (s: Stored): Uint8Array => {
  const a = activityOf(s)
  return encoder.encode(Sse.encode({ id: String(a.seq), event: a.type, data: JSON.stringify(a) }))
}

export const streamHandlers = handlers({
  tenantStream: ({ tenant, headers }) =>
    Effect.gen(function*() {
      const journal = yield* Journal
      // every run of the tenant: the follow's subject filter is `lantern.run.<tenant>.*` (a tenant is one token)
      const runs = { type: "run" as const, tenant, id: "*" }
      // without Last-Event-ID the stream starts now: after the tenant's last run event stored so far
      const after = headers["last-event-id"] ?? (yield* journal.lastSeq(runs))
      const events = journal.follow(runs, after).pipe(Stream.map(activityFrame))
      // the first frame says where the stream starts, so a client that lists the runs now misses nothing after
      const ready = encoder.encode(Sse.encode({ id: String(after), event: "ready", data: JSON.stringify({ after }) }))
      return sseResponse(ready, events)
    })
})
