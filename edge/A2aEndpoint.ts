// The A2A JSON-RPC endpoint (ADR 0045): `POST /a2a/{tenant}/{agent}` (a public agent's card url) and `POST /a2a`
// (the deployment card's, the agent named by the message's `metadata.skill`) answer `message/send`, which starts a
// run of the agent with the message's text and waits for it a bounded time, `message/stream` (the same run, its
// progress as Server-Sent Events), `tasks/get`, `tasks/resubscribe` and `tasks/cancel`: an A2A task is a run.
// Behind the API's bearer keys: runs:write to send, runs:read to read; another tenant's key finds no agent.
import { Duration, Effect, Layer, Schedule, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Visibility } from "../actors/agent/Visibility.ts"
import { Runs } from "../actors/run/Runs.ts"
import { isAgentName } from "../schema/Ids.ts"
import type { RunView } from "../schema/Run.ts"
import * as Sse from "../schema/Sse.ts"
import { Auth } from "./Auth.ts"
import { sseResponse } from "./Events.ts"
import { holds, type Scope } from "./Scopes.ts"

/** How long `message/send` waits for its run to end before answering the task as it stands. */
export const WAIT = Duration.seconds(30)

/** JSON-RPC's error codes, and A2A's for a task it does not know. */
export const Codes = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  taskNotFound: -32001,
  taskNotCancelable: -32002,
  /** Implementation-defined (JSON-RPC's server error range): no key, a key without the scope, no such agent. */
  refused: -32000
} as const

type Id = string | number | null

/** The methods this endpoint answers; `message/stream` and `tasks/resubscribe` answer with Server-Sent Events. */
export const METHODS = ["message/send", "message/stream", "tasks/get", "tasks/cancel", "tasks/resubscribe"] as const

const encoder = new TextEncoder()
const rpcEvent = (id: Id, result: unknown) =>
  encoder.encode(Sse.encode({ data: JSON.stringify({ jsonrpc: "2.0", id, result }) }))

/** A status-update event of the run's task; `final` on the last one, after which the stream ends. */
const statusUpdate = (run: RunView) => {
  const task = taskOf(run)
  return {
    kind: "status-update",
    taskId: run.id,
    contextId: run.id,
    status: task.status,
    final: run.status !== "running"
  }
}

/**
 * A streamed task (A2A's `message/stream`, `tasks/resubscribe`): the Task as it stands, then a status-update at each
 * change of state (read every 250 ms), the output as an artifact-update once it succeeded, and a final status-update.
 */
const streamOf = (id: Id, runs: Runs["Service"], tenant: string, first: RunView) => {
  const changes = Stream.unfold(
    first,
    (last: RunView) =>
      last.status !== "running" ? Effect.succeed(undefined) : runs.get(tenant, last.id).pipe(
        Effect.repeat({
          schedule: Schedule.spaced("250 millis"),
          until: (r) => r.status !== last.status || r.waiting?.kind !== last.waiting?.kind
        }),
        Effect.map((r) => [r, r] as const)
      )
  )
  const events = changes.pipe(
    Stream.flatMap((run) =>
      Stream.fromIterable([
        ...(run.status === "succeeded"
          ? [{
            kind: "artifact-update",
            taskId: run.id,
            contextId: run.id,
            artifact: { artifactId: "output", parts: [partOf(run.output)] },
            lastChunk: true
          }]
          : []),
        statusUpdate(run)
      ])
    ),
    Stream.map((event) => rpcEvent(id, event))
  )
  const opening = first.status === "running"
    ? Stream.make(rpcEvent(id, taskOf(first)))
    : Stream.make(rpcEvent(id, taskOf(first)), rpcEvent(id, statusUpdate(first)))
  return sseResponse(encoder.encode(Sse.comment("lantern a2a stream")), Stream.concat(opening, events))
}

const answer = (id: Id, body: { result: unknown } | { error: { code: number; message: string } }, status = 200) =>
  HttpServerResponse.jsonUnsafe(
    { jsonrpc: "2.0", id, ...body },
    status === 401 ? { status, headers: { "www-authenticate": "Bearer" } } : { status }
  )
const fail = (id: Id, code: number, message: string, status = 200) => answer(id, { error: { code, message } }, status)

const STATES = { running: "working", succeeded: "completed", failed: "failed", canceled: "canceled" } as const

const partOf = (value: unknown) =>
  typeof value === "string"
    ? { kind: "text", text: value }
    : typeof value === "object" && value !== null && !Array.isArray(value)
    ? { kind: "data", data: value }
    : { kind: "text", text: JSON.stringify(value) }

/** A run as an A2A Task: its state, its output as an artifact, its error as the status message. */
export const taskOf = (run: RunView) => ({
  kind: "task",
  id: run.id,
  contextId: run.id,
  status: {
    state: STATES[run.status],
    timestamp: run.updatedAt,
    ...(run.error === null ? {} : {
      message: {
        kind: "message",
        role: "agent",
        messageId: `${run.id}-error`,
        taskId: run.id,
        contextId: run.id,
        parts: [{ kind: "text", text: run.error.message }]
      }
    })
  },
  ...(run.status === "succeeded" ? { artifacts: [{ artifactId: "output", parts: [partOf(run.output)] }] } : {}),
  history: typeof run.input === "string"
    ? [{
      kind: "message",
      role: "user",
      messageId: `${run.id}-input`,
      taskId: run.id,
      contextId: run.id,
      parts: [{ kind: "text", text: run.input }]
    }]
    : [],
  metadata: { agent: run.agentName, agentVersion: run.agentVersion, costUsd: run.costUsd }
})

const record = (v: unknown): Record<string, unknown> | null =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : null

/** The text parts of a message, joined by newlines; null when it has none or is no message. */
export const textOf = (message: unknown): string | null => {
  const parts = record(message)?.["parts"]
  if (!Array.isArray(parts)) return null
  const texts = parts.flatMap((p) => {
    const part = record(p)
    return part?.["kind"] === "text" && typeof part["text"] === "string" ? [part["text"]] : []
  })
  return texts.length === 0 ? null : texts.join("\n")
}

const handle = (routed: boolean) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const route = routed ? yield* HttpRouter.params : {}
    const principal = yield* (yield* Auth).principal.pipe(Effect.result)
    if (principal._tag === "Failure") {
      return fail(null, Codes.refused, `unauthorized: ${principal.failure.message}`, 401)
    }
    const who = principal.success
    const text = yield* request.text.pipe(Effect.orElseSucceed(() => ""))
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      return fail(null, Codes.parse, "Parse error: the body is not JSON")
    }
    const call = record(body)
    const rawId = call?.["id"]
    const id: Id = typeof rawId === "string" || typeof rawId === "number" ? rawId : null
    if (call === null || call["jsonrpc"] !== "2.0" || typeof call["method"] !== "string" || id === null) {
      return fail(id, Codes.invalidRequest, "Invalid Request: expected {jsonrpc: \"2.0\", id, method, params}")
    }
    const method = call["method"]
    if (!(METHODS as ReadonlyArray<unknown>).includes(method)) {
      return fail(id, Codes.methodNotFound, `Method not found: ${method} (this agent answers ${METHODS.join(", ")})`)
    }
    const scope: Scope = method === "message/send" || method === "message/stream" || method === "tasks/cancel"
      ? "runs:write"
      : "runs:read"
    if (!holds(who, scope)) return fail(id, Codes.refused, `forbidden: this key lacks the scope ${scope}`, 403)
    const params = record(call["params"])
    if (params === null) return fail(id, Codes.invalidParams, "Invalid params: expected an object")
    const visibility = yield* Visibility
    const runs = yield* Runs
    // the agent a call may reach: the route's, else (the deployment's endpoint) any public agent of the key's tenant
    const reachable = (agent: string) =>
      (route["tenant"] === undefined || route["tenant"] === who.tenant) &&
      (route["agent"] === undefined || route["agent"] === agent)
    const isPublic = (agent: string) =>
      !isAgentName(agent) ?
        Effect.succeed(false) :
        Effect.map(visibility.isPublic(who.tenant, agent), (p) => p && reachable(agent)).pipe(
          Effect.orElseSucceed(() => false)
        )
    if (route["agent"] !== undefined && !(yield* isPublic(route["agent"]))) {
      return fail(id, Codes.refused, `agent_not_found: no public agent ${route["tenant"]}/${route["agent"]}`, 404)
    }

    if (method === "tasks/get" || method === "tasks/resubscribe" || method === "tasks/cancel") {
      const taskId = params["id"]
      if (typeof taskId !== "string") return fail(id, Codes.invalidParams, "Invalid params: `id` must be a string")
      const found = yield* runs.get(who.tenant, taskId).pipe(
        Effect.map((r): RunView | null => r),
        Effect.catchTag("RunNotFound", () => Effect.succeed(null)),
        Effect.result
      )
      if (found._tag === "Failure") return fail(id, Codes.internal, `Internal error: ${found.failure.message}`)
      const run = found.success
      if (run === null || !(yield* isPublic(run.agentName))) return fail(id, Codes.taskNotFound, "Task not found")
      if (method === "tasks/resubscribe") return streamOf(id, runs, who.tenant, run)
      if (method === "tasks/cancel") {
        if (run.status !== "running") {
          return fail(id, Codes.taskNotCancelable, `Task cannot be canceled: it is ${STATES[run.status]}`)
        }
        const canceled = yield* runs.cancel(
          who.tenant,
          run.id,
          "canceled through A2A tasks/cancel",
          `a2a:${who.tenant}`
        )
          .pipe(Effect.result)
        if (canceled._tag === "Failure") {
          return fail(id, Codes.taskNotCancelable, `Task cannot be canceled: ${canceled.failure.message}`)
        }
        return answer(id, { result: taskOf(canceled.success) })
      }
      return answer(id, { result: taskOf(run) })
    }

    const message = params["message"]
    const input = textOf(message)
    if (input === null) {
      return fail(id, Codes.invalidParams, "Invalid params: `message` must have at least one text part")
    }
    // on the deployment's endpoint the message names its skill: `<tenant>/<agent>` as the card lists it, or `<agent>`
    const skill = record(params["metadata"])?.["skill"] ?? record(record(message)?.["metadata"])?.["skill"]
    const named = typeof skill === "string" ? skill.split("/") : []
    const agent = route["agent"] ?? named.at(-1)
    if (agent === undefined || agent === "") {
      return fail(id, Codes.invalidParams, "Invalid params: name the agent with `metadata.skill` (a skill's id)")
    }
    if (named.length > 2 || (named.length === 2 && named[0] !== who.tenant)) {
      return fail(id, Codes.refused, `agent_not_found: no public agent ${String(skill)} for this key`, 404)
    }
    if (!(yield* isPublic(agent))) return fail(id, Codes.refused, `agent_not_found: no public agent ${agent}`, 404)
    const started = yield* runs.start(who.tenant, { agentName: agent, input }, null).pipe(Effect.result)
    if (started._tag === "Failure") {
      return fail(id, Codes.internal, `Internal error: the run did not start: ${started.failure.message}`)
    }
    const run = started.success.run
    if (method === "message/stream") return streamOf(id, runs, who.tenant, run)
    const blocking = record(params["configuration"])?.["blocking"] !== false
    // blocking: read the run until it ends, or until WAIT passes; the task answers as it stands then
    const settled = !blocking ? run : yield* runs.get(who.tenant, run.id).pipe(
      Effect.repeat({ schedule: Schedule.spaced("200 millis"), until: (r) => r.status !== "running" }),
      Effect.timeoutOption(WAIT),
      Effect.map((r) => r._tag === "Some" ? r.value : run),
      Effect.orElseSucceed(() => run)
    )
    return answer(id, { result: taskOf(settled) })
  })

const notAllowed = Effect.succeed(HttpServerResponse.empty({ status: 405, headers: { allow: "POST" } }))

export const routes = Layer.mergeAll(
  HttpRouter.add("POST", "/a2a", handle(false)),
  HttpRouter.add("POST", "/a2a/:tenant/:agent", handle(true)),
  HttpRouter.add("GET", "/a2a", notAllowed),
  HttpRouter.add("GET", "/a2a/:tenant/:agent", notAllowed)
)
