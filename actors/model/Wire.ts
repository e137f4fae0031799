// The HTTP plumbing every model provider shares: errors with the key scrubbed out, which statuses are worth
// another attempt, and one POST whose answer is either a JSON body or an SSE stream folded into a draft. The
// request and the reading of its body run under one abort signal, fired by the timeout, by an interrupt (a
// cancel) and once the answer is complete, so a cancelled call closes its connection at any point.
import { Effect } from "effect"
import { ProviderError, type ProviderErrorKind } from "../../schema/Errors.ts"
import * as Sse from "./Sse.ts"

export const isRetryableStatus = (status: number) => status === 408 || status === 429 || status >= 500

/** An exception's message and its cause's (fetch puts the network reason in `cause`). */
export const describe = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e)
  const cause = e.cause instanceof Error ? ` (${e.cause.message})` : ""
  return `${e.message}${cause}`
}

/** The kind of a failure with this status (if any) and retryability, when the maker does not know better. */
export const kindOf = (status: number | undefined, retryable: boolean): ProviderErrorKind =>
  status === 429 ? "rate_limited" : retryable ? "unavailable" : "refused"

/** The longest `Retry-After` honoured: a provider asking for more is waited on this long, then tried again. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000

/**
 * A `Retry-After` value (delay seconds or an HTTP-date) as milliseconds from `now`, capped at
 * `MAX_RETRY_AFTER_MS`; undefined when absent or unreadable.
 */
export const parseRetryAfter = (value: string | null, now: number): number | undefined => {
  if (value === null) return undefined
  const text = value.trim()
  // an HTTP-date names its day and month; a bare number that is not a delay (`-3`) is no date either
  const ms = /^\d+(\.\d+)?$/.test(text)
    ? Number(text) * 1000
    : /[A-Za-z]/.test(text)
    ? Date.parse(text) - now
    : Number.NaN
  if (!Number.isFinite(ms)) return undefined
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.ceil(ms)))
}

/** What a refused answer says beyond its status: how long to wait before the next attempt. */
export const refusalOf = (response: globalThis.Response, now: number): Extra => {
  const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), now)
  return retryAfterMs === undefined ? {} : { retryAfterMs }
}

export interface Extra {
  /** Set when the status and retryability do not say it (a timeout). */
  readonly kind?: ProviderErrorKind
  readonly retryAfterMs?: number
}

export type Fail = (reason: string, retryable: boolean, status?: number, extra?: Extra) => ProviderError

/** A provider's error constructor; the key never reaches an error, not even when a server echoes it back. */
export const failWith = (provider: string, secret: string): Fail => {
  const scrub = (text: string) => (secret === "" ? text : text.split(secret).join("[redacted]"))
  return (reason, retryable, status, extra) =>
    new ProviderError({
      provider,
      kind: extra?.kind ?? kindOf(status, retryable),
      reason: scrub(reason),
      retryable,
      ...(status === undefined ? {} : { status }),
      ...(extra?.retryAfterMs === undefined ? {} : { retryAfterMs: extra.retryAfterMs })
    })
}

/** The error with `secret` (a per-request key) scrubbed out of its reason too. */
export const scrub = (e: ProviderError, secret: string): ProviderError =>
  secret === "" || !e.reason.includes(secret)
    ? e
    : new ProviderError({
      provider: e.provider,
      kind: e.kind,
      reason: e.reason.split(secret).join("[redacted]"),
      retryable: e.retryable,
      ...(e.status === undefined ? {} : { status: e.status }),
      ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }),
      ...(e.route === undefined ? {} : { route: e.route })
    })

/** `retry-after` and the request id of a refused answer, as notes for its error. */
export const headerNotes = (response: globalThis.Response, requestIdHeader: string): ReadonlyArray<string> => [
  ...[response.headers.get("retry-after")].flatMap((v) => (v === null ? [] : [`retry-after: ${v}`])),
  ...[response.headers.get(requestIdHeader)].flatMap((v) => (v === null ? [] : [`request-id: ${v}`]))
]

export interface Exchange<D> {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
  readonly timeoutMs: number
  readonly fail: Fail
  /** The error of an answer with a status other than 2xx. */
  readonly refused: (response: globalThis.Response, text: string) => ProviderError
  /** The draft of an answer sent as one JSON body (servers that ignore `stream`). */
  readonly json: (text: string, status: number) => Effect.Effect<D, ProviderError>
  readonly stream: {
    readonly initial: D
    /** One server-sent event folded into the draft. */
    readonly step: (draft: D, event: Sse.Event) => Effect.Effect<D, ProviderError>
    readonly done: (draft: D) => boolean
    /** The reason given when the stream ends before `done`. */
    readonly endedEarly: string
  }
}

/** POSTs `body` as JSON and folds the answer into a draft. */
export const exchange = <D>(x: Exchange<D>): Effect.Effect<D, ProviderError> =>
  Effect.acquireUseRelease(
    Effect.sync(() => new AbortController()),
    (controller) =>
      Effect.gen(function*() {
        const timeout = AbortSignal.timeout(x.timeoutMs)
        const transport = (e: unknown) =>
          timeout.aborted
            ? x.fail(`no answer within ${x.timeoutMs} ms`, true, undefined, { kind: "timeout" })
            : x.fail(`request failed: ${describe(e)}`, true)
        const response = yield* Effect.tryPromise({
          try: () =>
            fetch(x.url, {
              method: "POST",
              headers: {
                "content-type": "application/json",
                accept: "text/event-stream, application/json",
                ...x.headers
              },
              body: JSON.stringify(x.body),
              // the body stream stays tied to this signal, so cancelling also stops a stream being read
              signal: AbortSignal.any([controller.signal, timeout])
            }),
          catch: transport
        })
        if (!response.ok || !(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
          const text = yield* Effect.tryPromise({ try: () => response.text(), catch: transport })
          return yield* (response.ok ? x.json(text, response.status) : Effect.fail(x.refused(response, text)))
        }
        if (response.body === null) return yield* x.fail("the event stream has no body", true, response.status)
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
        const parser = Sse.parser()
        let draft = x.stream.initial
        while (!x.stream.done(draft)) {
          const read = yield* Effect.tryPromise({ try: () => reader.read(), catch: transport })
          if (read.done) return yield* x.fail(x.stream.endedEarly, true)
          for (const event of parser.feed(read.value)) {
            draft = yield* x.stream.step(draft, event)
            if (x.stream.done(draft)) break
          }
        }
        return draft
      }),
    // after a complete answer this is a no-op; on interruption it closes the connection
    (controller) => Effect.sync(() => controller.abort())
  )
