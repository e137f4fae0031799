// Server-Sent Events from the edge, as the cockpit reads them: `makeEventStream` is the plain connection (fetch, so the
// key travels in a header and never in a URL; schema/Sse.ts's decoder; resume with Last-Event-ID; back-off), and
// `createEventStream` its reactive wrapper, closed when its owner is disposed.
import { createSignal, onCleanup } from "solid-js"
import * as Sse from "../../schema/Sse.ts"

export type ReadyState = "connecting" | "open" | "closed"

export interface StreamOptions {
  readonly token: string
  /** The id to resume after on the first connection (later ones resume after the last id received). */
  readonly lastEventId?: string | null | undefined
  readonly onMessage: (message: Sse.Message) => void
  readonly onState?: ((state: ReadyState) => void) | undefined
  /** A refusal (401, 403, 404…): the stream stops and does not reconnect. */
  readonly onError?: ((error: Error) => void) | undefined
  /** Whether a message is the last one: the stream then closes instead of reconnecting. */
  readonly isLast?: ((message: Sse.Message) => boolean) | undefined
  /** The first wait before a reconnection (doubled up to 15 s while connections keep failing). */
  readonly retryMs?: number | undefined
}

const MAX_DELAY_MS = 15_000

/** Opens `url` as an event stream; the returned `close` ends it for good. */
export const makeEventStream = (url: string, options: StreamOptions): { readonly close: () => void } => {
  let closed = false
  let lastId = options.lastEventId ?? null
  let controller: AbortController | null = null
  const base = options.retryMs ?? 1000
  let delay = base
  const state = (s: ReadyState) => options.onState?.(s)

  const connect = async (): Promise<"again" | "done"> => {
    controller = new AbortController()
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: "text/event-stream" }
    if (lastId !== null && lastId !== "") headers["last-event-id"] = lastId
    const res = await fetch(url, { headers, signal: controller.signal, cache: "no-store" })
    if (res.status >= 400 && ![502, 503, 504].includes(res.status)) {
      const body = await res.json().catch(() => null) as { error?: { message?: string } } | null
      options.onError?.(new Error(body?.error?.message ?? `HTTP ${res.status}`))
      return "done"
    }
    if (!res.ok || res.body === null) return "again"
    state("open")
    const decoder = Sse.makeDecoder()
    const text = new TextDecoder()
    const reader = res.body.getReader()
    for (;;) {
      const chunk = await reader.read()
      const messages = chunk.done
        ? [...decoder.push(text.decode()), ...decoder.end()]
        : decoder.push(text.decode(chunk.value, { stream: true }))
      for (const m of messages) {
        if (closed) return "done"
        if (m.id !== null) lastId = m.id
        delay = decoder.retry() ?? base
        options.onMessage(m)
        if (options.isLast?.(m) === true) return "done"
      }
      if (chunk.done) return "again"
    }
  }

  void (async () => {
    state("connecting")
    while (!closed) {
      const next = await connect().catch(() => "again" as const)
      if (closed || next === "done") break
      state("connecting")
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(delay * 2, MAX_DELAY_MS)
    }
    closed = true
    ;(controller as AbortController | null)?.abort()
    state("closed")
  })()

  return {
    close: () => {
      closed = true
      controller?.abort()
    }
  }
}

/**
 * The stream of `url` for as long as the calling owner lives: `readyState()`, `error()` and the last message as
 * `data()`; every message also reaches `onMessage`, in order (a burst is not folded into one `data()`).
 */
export const createEventStream = (url: string, options: Omit<StreamOptions, "onState" | "onError">) => {
  const [data, setData] = createSignal<Sse.Message | null>(null)
  const [error, setError] = createSignal<Error | null>(null)
  const [readyState, setReadyState] = createSignal<ReadyState>("connecting")
  const source = makeEventStream(url, {
    ...options,
    onMessage: (m) => {
      setData(m)
      options.onMessage(m)
    },
    onState: (s) => {
      setReadyState(s)
      if (s === "open") setError(null)
    },
    onError: setError
  })
  onCleanup(source.close)
  return { data, error, readyState, close: source.close }
}
