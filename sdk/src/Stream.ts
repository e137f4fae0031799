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

/** Where the stream stands across connections. */
interface Cursor {
  /** The position of the last event yielded: what Last-Event-ID sends. */
  last: number
  /** Connections in a row that ended without an event. */
  failures: number
  /** The wait before the next connection; a `retry:` field of the server replaces it. */
  delay: number
}

/** A gateway in front of a restarting server answers these: try again. Any other error status is the answer. */
const TRANSIENT = new Set([502, 503, 504])

/** What a frame of a stream gives: the value to yield (null for a frame that only moves the cursor), and whether it ends the stream. */
type Read<A> = (message: Sse.Message) => { readonly value: A | null; readonly last: boolean }

const readEvent: Read<RunEvent> = (m) => {
  const event = JSON.parse(m.data) as RunEvent
  return { value: event, last: TERMINAL.has(event.type) }
}

/** A POST that answers with a stream: its JSON body and headers. */
interface Sending {
  readonly body: string
  readonly headers: Readonly<Record<string, unknown>>
}

/**
 * One connection: its events until the last one or until it ends or breaks, then how it ended. A GET resumes after
 * `cursor.last`; `sending` makes it a POST (`runs.follow`'s start), whose error answers are all thrown.
 */
async function* connection<A>(
  settings: Settings,
  url: string,
  cursor: Cursor,
  signal: AbortSignal | undefined,
  read: Read<A>,
  sending?: Sending
): AsyncGenerator<A, End, undefined> {
  const controller = new AbortController()
  const abort = () => controller.abort(signal?.reason)
  signal?.addEventListener("abort", abort, { once: true })
  let received = 0
  try {
    const request = sending === undefined
      ? {
        headers: headersOf(
          settings,
          "text/event-stream",
          cursor.last > 0 ? { "last-event-id": cursor.last } : {},
          false
        )
      }
      : { method: "POST", body: sending.body, headers: headersOf(settings, "text/event-stream", sending.headers, true) }
    const res = await settings.fetch(url, { ...request, signal: controller.signal })
    if (sending !== undefined && res.status >= 400) throw fromAnswer(res.status, res.statusText, await res.text())
    if (res.status >= 400 && !TRANSIENT.has(res.status)) throw fromAnswer(res.status, res.statusText, await res.text())
    const type = res.headers.get("content-type") ?? ""
    if (res.status >= 400 || !type.startsWith("text/event-stream") || res.body === null) {
      return { _tag: "broken", received, cause: new Error(`HTTP ${res.status}, ${type || "no content type"}`) }
    }
    const decoder = Sse.makeDecoder()
    const text = new TextDecoder()
    const reader = res.body.getReader()
    for (;;) {
      const chunk = await reader.read()
      const messages = chunk.done
        ? [...decoder.push(text.decode()), ...decoder.end()]
        : decoder.push(text.decode(chunk.value, { stream: true }))
      for (const m of messages) {
        if (m.event === "error") throw new Error(`the server broke the stream: ${m.data}`)
        const { value, last } = read(m)
        cursor.last = m.id === null ? cursor.last + 1 : positionOf(m.id)
        cursor.failures = 0
        if (value === null) continue
        received++
        yield value
        if (last) return { _tag: "terminal" }
      }
      cursor.delay = decoder.retry() ?? cursor.delay
      if (chunk.done) return { _tag: "closed", received }
    }
  } catch (cause) {
    signal?.throwIfAborted()
    if (cause instanceof LanternError) throw cause
    return { _tag: "broken", received, cause }
  } finally {
    signal?.removeEventListener("abort", abort)
    controller.abort()
  }
}

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
  const cursor: Cursor = { last: positionOf(options.lastEventId), failures: 0, delay: options.retryDelayMs ?? 1000 }
  const url = urlOf(settings, pathOf(operations.runStream.path, { id }))
  for (;;) {
    signal?.throwIfAborted()
    const end = yield* connection(settings, url, cursor, signal, readEvent)
    if (end._tag === "terminal") return
    // an empty stream that ended cleanly: complete when the run has finished (a failed look is no answer: go on)
    if (end._tag === "closed" && end.received === 0 && await finished().catch(() => false)) return
    if (++cursor.failures > maxRetries) {
      throw end._tag === "broken"
        ? unreachable(settings.baseUrl, end.cause)
        : new LanternError(0, "unreachable", `the event stream of run ${id} kept closing before its end`)
    }
    await sleep(cursor.delay, signal)
  }
}

/** The run as `runs.create` answers it. */
export type StartedRun = Operations["createRun"]["response"]

/** What `runs.follow` gives: the run as started, then its events (`RunEvent`) to the terminal one. */
export type RunFollowed = { readonly type: "run"; readonly run: StartedRun } | RunEvent

const readFollowed: Read<RunFollowed> = (m) => {
  if (m.event === "run") return { value: { type: "run", run: JSON.parse(m.data) as StartedRun }, last: false }
  return readEvent(m)
}

/**
 * Starts a run and follows it in one request (`POST /v1/runs/stream`, ADR 0082): the run as started, then its events
 * to the terminal one. A refusal (400, 402, 404…) is thrown as a LanternError before anything starts. A connection
 * that breaks after the run is known is resumed with `stream` after the last event received; one that breaks before
 * is thrown (start again with the same idempotency key to follow the same run).
 */
export async function* follow(
  settings: Settings,
  body: unknown,
  idempotencyKey: string | undefined,
  options: StreamOptions,
  finished: (id: string) => Promise<boolean>
): AsyncGenerator<RunFollowed, void, undefined> {
  const cursor: Cursor = { last: 0, failures: 0, delay: options.retryDelayMs ?? 1000 }
  let run: StartedRun | null = null
  const sending: Sending = {
    body: JSON.stringify(body),
    headers: idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey }
  }
  const url = urlOf(settings, operations.createRunStream.path)
  const connected = connection(settings, url, cursor, options.signal, readFollowed, sending)
  for (;;) {
    const next = await connected.next()
    if (next.done === true) {
      if (next.value._tag === "terminal") return
      if (run === null) {
        throw next.value._tag === "broken"
          ? unreachable(settings.baseUrl, next.value.cause)
          : new LanternError(0, "unreachable", "the run's stream closed before the run was started")
      }
      break
    }
    if ("run" in next.value) {
      run = next.value.run
      // the connection counts a frame without an id as the next position, but the run frame is no journal event
      cursor.last = 0
    }
    yield next.value
  }
  const { id } = run
  yield* stream(settings, id, { ...options, lastEventId: cursor.last }, () => finished(id))
}

/**
 * What `runs.tokens` gives (ADR 0061): a piece of a model step's text as it streams, `reset` when the text of that
 * step so far is void (the server's router failed over), and last the run's terminal event.
 */
export type RunToken =
  | {
    readonly type: "token"
    readonly stepId: string
    readonly attempt: number
    readonly seq: number
    readonly text: string
  }
  | { readonly type: "reset"; readonly stepId: string; readonly attempt: number; readonly seq: number }
  | { readonly type: "end"; readonly event: RunEvent }

const readToken: Read<RunToken> = (m) => {
  if (m.event === "token") return { value: { type: "token", ...JSON.parse(m.data) } as RunToken, last: false }
  if (m.event === "reset") return { value: { type: "reset", ...JSON.parse(m.data) } as RunToken, last: false }
  const event = JSON.parse(m.data) as RunEvent
  return { value: { type: "end", event }, last: TERMINAL.has(event.type) }
}

/**
 * The live text of a run's model steps until its terminal event; nothing for a run already finished. Tokens are a
 * preview and are not kept: a broken connection is not resumed but thrown (the journal, `stream`, has the answers).
 */
export async function* tokens(
  settings: Settings,
  id: string,
  options: Pick<StreamOptions, "signal"> = {}
): AsyncGenerator<RunToken, void, undefined> {
  const cursor: Cursor = { last: 0, failures: 0, delay: 0 }
  const url = urlOf(settings, pathOf(operations.runTokens.path, { id }))
  const end = yield* connection(settings, url, cursor, options.signal, readToken)
  if (end._tag === "broken") throw unreachable(settings.baseUrl, end.cause)
}

/** A piece of a workload's output, as `workloads.logs` gives it. */
export interface WorkloadOutput {
  readonly stream: "stdout" | "stderr"
  readonly text: string
}

/** Output frames are yielded; the `end` frame (the workload as it ended) ends the stream; anything else moves on. */
const readOutput: Read<WorkloadOutput> = (m) => {
  if (m.event === "output") return { value: JSON.parse(m.data) as WorkloadOutput, last: false }
  return { value: null, last: m.event === "end" }
}

/**
 * A workload's stdout and stderr from after `lastEventId` until it ends, resumed with Last-Event-ID when a
 * connection breaks. An error answer (404, 401…) is thrown at once as a LanternError.
 */
export async function* workloadLogs(
  settings: Settings,
  id: string,
  options: StreamOptions
): AsyncGenerator<WorkloadOutput, void, undefined> {
  const { signal } = options
  const maxRetries = options.maxRetries ?? 5
  const cursor: Cursor = { last: positionOf(options.lastEventId), failures: 0, delay: options.retryDelayMs ?? 1000 }
  const url = urlOf(settings, pathOf(operations.workloadLogs.path, { id }))
  for (;;) {
    signal?.throwIfAborted()
    const end = yield* connection(settings, url, cursor, signal, readOutput)
    if (end._tag === "terminal") return
    if (++cursor.failures > maxRetries) {
      throw end._tag === "broken"
        ? unreachable(settings.baseUrl, end.cause)
        : new LanternError(0, "unreachable", `the logs of workload ${id} kept closing before its end`)
    }
    await sleep(cursor.delay, signal)
  }
}

/** A frame of the tenant's run activity (`GET /v1/stream`): which run an event was of, its type, and the run's status after it. */
export interface RunActivity {
  /** The bus's stream sequence of the event: the frame's id, which `lastEventId` resumes after. */
  readonly seq: number
  readonly runId: string
  readonly type: string
  readonly at: string
  readonly status: "running" | "succeeded" | "failed" | "canceled"
  readonly stepId: string | null
}

const readActivity: Read<RunActivity> = (m) => ({
  value: m.event === "ready" ? null : JSON.parse(m.data) as RunActivity,
  last: false
})

/**
 * Every run event of the tenant from now on (or after `lastEventId`, a frame's `seq`), live and without end, as an
 * async iterator; a dropped connection is resumed after the last frame received. Stop it with `signal` or `return()`.
 */
export async function* activity(
  settings: Settings,
  options: StreamOptions
): AsyncGenerator<RunActivity, void, undefined> {
  const { signal } = options
  const maxRetries = options.maxRetries ?? 5
  const cursor: Cursor = { last: positionOf(options.lastEventId), failures: 0, delay: options.retryDelayMs ?? 1000 }
  const url = urlOf(settings, operations.tenantStream.path)
  for (;;) {
    signal?.throwIfAborted()
    const end = yield* connection(settings, url, cursor, signal, readActivity)
    // a connection that gave frames and closed is no failure: the next resumes after them
    if (end._tag === "broken" || (end._tag === "closed" && end.received === 0)) {
      if (++cursor.failures > maxRetries) {
        throw end._tag === "broken"
          ? unreachable(settings.baseUrl, end.cause)
          : new LanternError(0, "unreachable", "the tenant's run activity stream kept closing")
      }
    }
    await sleep(cursor.delay, signal)
  }
}

/** An event of a session's journal (`GET /v1/sessions/{id}/stream`): turns received, runs, answers, deliveries. */
export type SessionEvent = RunEvent

/**
 * A session's journal from its start (or after `lastEventId`, an event's `position`), live and without end, as an
 * async iterator; a dropped connection is resumed after the last event received. Stop it with `signal` or `return()`.
 */
export async function* sessionEvents(
  settings: Settings,
  id: string,
  options: StreamOptions
): AsyncGenerator<SessionEvent, void, undefined> {
  const { signal } = options
  const maxRetries = options.maxRetries ?? 5
  const cursor: Cursor = { last: positionOf(options.lastEventId), failures: 0, delay: options.retryDelayMs ?? 1000 }
  const url = urlOf(settings, pathOf(operations.sessionStream.path, { id }))
  const read: Read<SessionEvent> = (m) => ({ value: JSON.parse(m.data) as SessionEvent, last: false })
  for (;;) {
    signal?.throwIfAborted()
    const end = yield* connection(settings, url, cursor, signal, read)
    if (end._tag === "broken" || (end._tag === "closed" && end.received === 0)) {
      if (++cursor.failures > maxRetries) {
        throw end._tag === "broken"
          ? unreachable(settings.baseUrl, end.cause)
          : new LanternError(0, "unreachable", `the stream of session ${id} kept closing`)
      }
    }
    await sleep(cursor.delay, signal)
  }
}

/** A frame of the tenant's queue (`GET /v1/tasks/stream`): a task event, its task and the task's status after it. */
export interface TaskActivity {
  /** The bus's stream sequence of the event: the frame's id, which `lastEventId` resumes after. */
  readonly seq: number
  /** Absent on a dispatch change (`type: "DispatchSet"`, with `paused` and `reason`). */
  readonly taskId?: string
  readonly type: string
  readonly at: string
  readonly status?:
    | "pending"
    | "running"
    | "completed"
    | "retryable_failure"
    | "blocked"
    | "permanent_failure"
    | "canceled"
    | null
  readonly attempt?: number
  readonly paused?: boolean
  readonly reason?: string | null
}

const readTaskActivity: Read<TaskActivity> = (m) => ({
  value: m.event === "ready" ? null : JSON.parse(m.data) as TaskActivity,
  last: false
})

/**
 * Every queue event of the tenant from now on (or after `lastEventId`, a frame's `seq`), live and without end, as an
 * async iterator; a dropped connection is resumed after the last frame received. Stop it with `signal` or `return()`.
 */
export async function* taskActivity(
  settings: Settings,
  options: StreamOptions
): AsyncGenerator<TaskActivity, void, undefined> {
  const { signal } = options
  const maxRetries = options.maxRetries ?? 5
  const cursor: Cursor = { last: positionOf(options.lastEventId), failures: 0, delay: options.retryDelayMs ?? 1000 }
  const url = urlOf(settings, operations.taskStream.path)
  for (;;) {
    signal?.throwIfAborted()
    const end = yield* connection(settings, url, cursor, signal, readTaskActivity)
    if (end._tag === "broken" || (end._tag === "closed" && end.received === 0)) {
      if (++cursor.failures > maxRetries) {
        throw end._tag === "broken"
          ? unreachable(settings.baseUrl, end.cause)
          : new LanternError(0, "unreachable", "the tenant's queue stream kept closing")
      }
    }
    await sleep(cursor.delay, signal)
  }
}
