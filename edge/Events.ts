// How stored events are shown to API clients (JSON list and Server-Sent Events).
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Duration, Stream } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "effect/http"
import type { EventResponse } from "../schema/Api.ts"
import type { Stored } from "../schema/Envelope.ts"
import * as Sse from "../schema/Sse.ts"
import * as Tokens from "../schema/Tokens.ts"

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

/** A live-token frame (ADR 0061): `token` with a piece of a step's text, or `reset`. */
export const tokenFrame = (f: Tokens.Frame): Uint8Array =>
  encoder.encode(
    Tokens.isReset(f)
      ? Sse.encode({ event: "reset", data: JSON.stringify({ stepId: f.stepId, attempt: f.attempt, seq: f.seq }) })
      : Sse.encode({ event: "token", data: JSON.stringify(f) })
  )

/** A `run` frame: the run as `POST /v1/runs` answers it, first in `POST /v1/runs/stream`'s stream. */
export const runFrame = (run: unknown): Uint8Array =>
  encoder.encode(Sse.encode({ event: "run", data: JSON.stringify(run) }))

/** A comment frame (keep-alives), which clients skip. */
export const sseComment = (text: string): Uint8Array => encoder.encode(Sse.comment(text))

/** An error frame: the stream ends with it when what it follows fails. */
export const sseError = (message: string): Uint8Array =>
  encoder.encode(Sse.encode({ event: "error", data: JSON.stringify({ message }) }))

/**
 * A Server-Sent Events response: the first frame at once (so a client knows the stream is open), then the events,
 * with a keep-alive comment every 15 s until the events end. A failure of the events ends the stream with an error
 * frame (or silently, for a public stream that shows no errors).
 */
export const sseResponse = <E extends { readonly message: string }>(
  first: Uint8Array,
  events: Stream.Stream<Uint8Array, E>,
  options: {
    readonly headers?: Record<string, string>
    readonly errors?: "frame" | "silent"
    readonly status?: number
  } = {}
): HttpServerResponse.HttpServerResponse => {
  const pings = Stream.tick(Duration.seconds(15)).pipe(Stream.drop(1), Stream.map(() => sseComment("ping")))
  const body = Stream.concat(Stream.make(first), events).pipe(
    Stream.merge(pings, { haltStrategy: "left" }),
    Stream.catch((e: E) => options.errors === "silent" ? Stream.empty : Stream.make(sseError(e.message)))
  )
  return HttpServerResponse.stream(body, {
    ...(options.status === undefined ? {} : { status: options.status }),
    contentType: "text/event-stream",
    headers: { ...options.headers, "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" }
  })
}

/** How long a connection holds a stream's last frame for the end of its response before it lets the frame go. */
const LAST_FRAME_HOLD_MS = 100

/**
 * For a stream that knows its last frame (a run's terminal event): call the returned function when that frame is
 * next. What is written on the request's connection is then held (the socket corked) until the response ends, which
 * sends it all at once, so the last frame and the end of the response leave in one write (ADR 0087). A client that
 * stops reading at the last frame (the SDK does) then finds the response complete and its connection free for its
 * next request; with the end in a write of its own, it often had to close the connection instead. Held at most
 * LAST_FRAME_HOLD_MS, in case the end does not follow.
 */
export const lastFrameNext = (request: HttpServerRequest.HttpServerRequest): () => void => () => {
  const socket = NodeHttpServerRequest.toIncomingMessage(request).socket as
    | { cork?: () => void; uncork?: () => void; destroyed?: boolean }
    | null
  if (socket?.cork === undefined || socket.uncork === undefined || socket.destroyed === true) return
  socket.cork()
  const release = setTimeout(() => socket.uncork?.(), LAST_FRAME_HOLD_MS)
  release.unref()
  // the end uncorks the socket itself; the timer must not touch what the connection's next response holds
  NodeHttpServerRequest.toServerResponse(request).once("finish", () => clearTimeout(release))
}
