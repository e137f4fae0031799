// A run's live events as an async iterator over the API's Server-Sent Events: each event's id is its position in the
// run's journal, so a dropped connection is resumed with Last-Event-ID and no event is lost or repeated.
import * as Sse from "../../schema/Sse.ts"
import { type Operations, operations } from "./Api.generated.ts"
import { fromAnswer, LanternError, unreachable } from "./Errors.ts"
import { headersOf, pathOf, type Settings, urlOf } from "./Http.ts"

/** An event of a run's journal, as `runs.events` and `runs.stream` give it. */
export type RunEvent = Operations["runEvents"]["response"]["items"][number]

export interface StreamOptions {
  /** The position of the last event already received: the stream starts after it (0 or absent: from the start). */
  readonly lastEventId?: number | string | undefined
  /** How many reconnections in a row, without an event between them, before giving up (5 when absent). */
  readonly maxRetries?: number | undefined
  /** The wait before a reconnection in milliseconds, unless the server asked for another (1000 when absent). */
  readonly retryDelayMs?: number | undefined
  readonly signal?: AbortSignal | undefined
}

const TERMINAL = new Set(["RunSucceeded", "RunFailed", "RunCanceled"])

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener("abort", done)
      resolve()
    }
    signal?.addEventListener("abort", done, { once: true })
  })

const positionOf = (v: number | string | undefined): number => {
  if (v === undefined || v === "") return 0
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`lastEventId must be a position (0, 1, 2…), not '${v}'`)
  return n
}

/** How one connection ended. */
type End =
  | { readonly _tag: "terminal" }
  | { readonly _tag: "closed"; readonly received: number }
  | { readonly _tag: "broken"; readonly received: number; readonly cause: unknown }

/**
 * The run's events from after `lastEventId` to its terminal event. A connection that breaks or ends early is opened
 * again with Last-Event-ID; a stream that the server ends without events while the run has finished is complete
 * (the caller already had everything). An error answer (404, 401…) is thrown at once as a LanternError.
 */
export async function* stream(
  settings: Settings,
  id: string,
  options: StreamOptions,
  finished: () => Promise<boolean>
): AsyncGenerator<RunEvent, void, undefined> {
  const { signal } = options
  const maxRetries = options.maxRetries ?? 5
  let last = positionOf(options.lastEventId)
  let delay = options.retryDelayMs ?? 1000
  let failures = 0
  const url = urlOf(settings, pathOf(operations.runStream.path, { id }))
  for (;;) {
    signal?.throwIfAborted()
    const controller = new AbortController()
    const abort = () => controller.abort(signal?.reason)
    signal?.addEventListener("abort", abort, { once: true })
    let end: End = { _tag: "closed", received: 0 }
    try {
      let res: Response | undefined
      try {
        res = await settings.fetch(url, {
          headers: headersOf(settings, "text/event-stream", last > 0 ? { "last-event-id": last } : {}, false),
          signal: controller.signal
        })
      } catch (cause) {
        signal?.throwIfAborted()
        end = { _tag: "broken", received: 0, cause }
      }
      if (res !== undefined) {
        // a gateway in front of a restarting server answers 502-504: try again; any other error status is the answer
        if (res.status >= 400 && res.status !== 502 && res.status !== 503 && res.status !== 504) {
          throw fromAnswer(res.status, res.statusText, await res.text())
        }
        const type = res.headers.get("content-type") ?? ""
        if (res.status >= 400 || !type.startsWith("text/event-stream") || res.body === null) {
          end = {
            _tag: "broken",
            received: 0,
            cause: new Error(`HTTP ${res.status}, ${type || "no content type"}`)
          }
        } else {
          const decoder = Sse.makeDecoder()
          const text = new TextDecoder()
          let received = 0
          try {
            const reader = res.body.getReader()
            read: for (;;) {
              const chunk = await reader.read()
              const messages = chunk.done
                ? [...decoder.push(text.decode()), ...decoder.end()]
                : decoder.push(text.decode(chunk.value, { stream: true }))
              for (const m of messages) {
                if (m.event === "error") throw new Error(`the server broke the stream: ${m.data}`)
                const event = JSON.parse(m.data) as RunEvent
                last = m.id === null ? last + 1 : positionOf(m.id)
                received++
                failures = 0
                yield event
                if (TERMINAL.has(event.type)) {
                  end = { _tag: "terminal" }
                  break read
                }
              }
              if (chunk.done) {
                end = { _tag: "closed", received }
                break
              }
            }
            const retry = decoder.retry()
            if (retry !== null) delay = retry
          } catch (cause) {
            signal?.throwIfAborted()
            end = { _tag: "broken", received, cause }
          }
        }
      }
    } finally {
      signal?.removeEventListener("abort", abort)
      controller.abort()
    }
    if (end._tag === "terminal") return
    if (end._tag === "closed" && end.received === 0 && await finished()) return
    if (++failures > maxRetries) {
      throw end._tag === "broken"
        ? unreachable(settings.baseUrl, end.cause)
        : new LanternError(0, "unreachable", `the event stream of run ${id} kept closing before its end`)
    }
    await sleep(delay, signal)
  }
}
