// How stored events are shown to API clients (JSON list and Server-Sent Events).
import type { EventResponse } from "../schema/Api.ts"
import type { Stored } from "../schema/Envelope.ts"
import * as Sse from "../schema/Sse.ts"

/** An event as clients see it; `position` is its place in the run's journal, 1…N. */
export const toEventResponse = (s: Stored, position: number): EventResponse => ({
  position,
  seq: s.seq,
  eventId: s.envelope.eventId,
  type: s.envelope.type,
  version: s.envelope.version,
  at: s.envelope.at,
  causationId: s.envelope.causationId,
  correlationId: s.envelope.correlationId,
  traceparent: s.envelope.traceparent,
  payload: s.envelope.payload
})

const encoder = new TextEncoder()

/**
 * One SSE frame. The id is the event's position in the run's journal (1…N), not the bus's stream-global
 * sequence, so a client resumes with Last-Event-ID: N and gets the (N+1)th event on.
 */
export const sseFrame = (s: Stored, position: number): Uint8Array =>
  encoder.encode(
    Sse.encode({ id: String(position), event: s.envelope.type, data: JSON.stringify(toEventResponse(s, position)) })
  )

/** A comment frame (keep-alives), which clients skip. */
export const sseComment = (text: string): Uint8Array => encoder.encode(Sse.comment(text))
