// How stored events are shown to API clients (JSON list and Server-Sent Events).
import type { EventResponse } from "../schema/Api.ts"
import type { Stored } from "../schema/Envelope.ts"

export const toEventResponse = (s: Stored): EventResponse => ({
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

/** One SSE frame: the stream sequence is the event id, so a client resumes with Last-Event-ID. */
export const sseFrame = (s: Stored): Uint8Array =>
  encoder.encode(`id: ${s.seq}\nevent: ${s.envelope.type}\ndata: ${JSON.stringify(toEventResponse(s))}\n\n`)

export const sseComment = (text: string): Uint8Array => encoder.encode(`: ${text}\n\n`)
