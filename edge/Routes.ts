// The /v1 agents and runs for SDKs, the CLI and bridges. Handlers call one actor or query and answer; lists read
// Postgres projections, single resources fall back to the journal. Their requests are decoded by edge/Serve.ts.
import { Effect, Stream } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { Agents } from "../actors/agent/Agents.ts"
import * as Tools from "../actors/model/Tools.ts"
import { Runs } from "../actors/run/Runs.ts"
import { Journal } from "../bus/Journal.ts"
import { Tokens } from "../bus/Tokens.ts"
import * as Queries from "../projections/Queries.ts"
import type { AgentSpec } from "../schema/AgentSpec.ts"
import type { ActorAddress } from "../schema/Envelope.ts"
import { isTerminal } from "../schema/Events.ts"
import * as Graph from "../schema/Graph.ts"
import { lastFrameNext, runFrame, sseComment, sseFrame, sseResponse, toEventResponse, tokenFrame } from "./Events.ts"
import { pinMcpTools } from "./McpRoutes.ts"
import { BadRequest } from "./Http.ts"
import * as Slots from "../actors/schedule/Slots.ts"
import { actorOf, demand, handlers, reply } from "./Serve.ts"

/** Tools a spec names must be built-in tools, or be answered by a child run of another agent (`agent`). */
const checkTools = (spec: AgentSpec) => {
  const issues = (spec.tools ?? []).flatMap((t, i) => {
    if (t.http !== undefined && t.a2a !== undefined) {
      return [{ field: `spec.tools[${i}].a2a`, message: "a tool is answered by HTTP or by an A2A agent, not both" }]
    }
    if (t.a2a !== undefined) {
      if (t.agent !== undefined) {
        return [{ field: `spec.tools[${i}].a2a`, message: "a tool is answered by an agent or by A2A, not both" }]
      }
      if (Tools.isKnown(t.name)) {
        return [{
          field: `spec.tools[${i}].name`,
          message: `'${t.name}' is a built-in tool; name the A2A tool otherwise`
        }]
      }
      return []
    }
    if (t.http !== undefined) {
      if (t.agent !== undefined) {
        return [{ field: `spec.tools[${i}].http`, message: "a tool is answered by an agent or by HTTP, not both" }]
      }
      if (Tools.isKnown(t.name)) {
        return [{
          field: `spec.tools[${i}].name`,
          message: `'${t.name}' is a built-in tool; name the HTTP tool otherwise`
        }]
      }
      // every placeholder of the URL is a declared parameter
      const declared = Object.keys((t.parameters["properties"] ?? {}) as Record<string, unknown>)
      const unknown = [...t.http.url.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!).filter((n) =>
        !declared.includes(n)
      )
      return unknown.length === 0 ? [] : [{
        field: `spec.tools[${i}].http.url`,
        message: `the URL names ${
          unknown.map((n) => `{${n}}`).join(", ")
        }, which parameters.properties does not declare`
      }]
    }
    return t.agent === undefined && !Tools.isKnown(t.name)
      ? [{
        field: `spec.tools[${i}].name`,
        message: `unknown tool '${t.name}'; built-in tools are ${
          Tools.names.join(", ")
        }, set 'agent' to answer it with a child run, or 'http' to answer it with an HTTP API`
      }]
      : []
  })
  return issues.length === 0 ? Effect.void : Effect.fail(new BadRequest({ issues }))
}

/** The tools a graph's tool node may name: the built-in functions. */
const GRAPH_TOOLS = Tools.builtins.map((t) => t.name)

/** A graph in a spec is checked as a whole, as `PUT /v1/agents/{name}/workflow` checks it. */
const checkGraph = (spec: AgentSpec) => {
  const problems = spec.workflow === undefined ? [] : Graph.problems(spec.workflow, GRAPH_TOOLS)
  return problems.length === 0
    ? Effect.void
    : Effect.fail(new BadRequest({ issues: problems.map((p) => ({ ...p, field: `spec.workflow.${p.field}` })) }))
}

/** A loop's own cron must be one croner reads, and an event-driven (`nano`) loop has none (ADR 0055). */
const checkLoop = (spec: AgentSpec) => {
  const loop = spec.loop
  if (loop?.cron === undefined) return Effect.void
  const problem = loop.tier === "nano"
    ? "a nano loop is event-driven: it has no cron"
    : Slots.cronProblem(loop.cron, "UTC", Date.now())
  return problem === null
    ? Effect.void
    : Effect.fail(new BadRequest({ issues: [{ field: "spec.loop.cron", message: problem }] }))
}

export const agentHandlers = handlers({
  createAgent: ({ tenant, body }) =>
    Effect.gen(function*() {
      yield* checkTools(body.spec)
      yield* checkGraph(body.spec)
      yield* checkLoop(body.spec)
      const spec = yield* pinMcpTools(tenant, body.spec)
      const agent = yield* (yield* Agents).create(tenant, { ...body, spec })
      return reply(201, agent, { location: `/v1/agents/${agent.name}` })
    }),
  listAgents: ({ tenant }) => Effect.map(Queries.listAgents(tenant), (items) => ({ items })),
  getAgent: ({ tenant, params }) =>
    Effect.gen(function*() {
      const projected = yield* Queries.getAgent(tenant, params.name)
      return projected ?? (yield* (yield* Agents).get(tenant, params.name))
    }),
  updateAgent: ({ tenant, params, body }) =>
    Effect.gen(function*() {
      yield* checkTools(body.spec)
      yield* checkGraph(body.spec)
      yield* checkLoop(body.spec)
      const spec = yield* pinMcpTools(tenant, body.spec)
      return yield* (yield* Agents).update(tenant, params.name, { ...body, spec })
    }),
  setAgentWorkflow: ({ tenant, params, body }) =>
    Effect.gen(function*() {
      const checked = Graph.check(body, GRAPH_TOOLS)
      if (checked._tag === "Invalid") return yield* new BadRequest({ issues: checked.problems })
      const agents = yield* Agents
      const { spec, description } = yield* agents.get(tenant, params.name)
      return yield* agents.update(tenant, params.name, { description, spec: { ...spec, workflow: checked.graph } })
    }),
  // versions are immutable and few: the journal is the complete, always-current list
  agentVersions: ({ tenant, params }) =>
    Effect.gen(function*() {
      return { items: yield* (yield* Agents).versions(tenant, params.name) }
    })
})

/**
 * A run's journal as SSE frames, from the event after stream sequence `afterSeq` (at journal position `from`) up to
 * its terminal event; each frame's id is its position.
 */
const framesFrom = (
  journal: Journal["Service"],
  address: ActorAddress,
  afterSeq: number,
  from: number,
  request: HttpServerRequest.HttpServerRequest
) => {
  const last = lastFrameNext(request)
  return journal.follow(address, afterSeq).pipe(
    Stream.takeUntil((s) => isTerminal(s.event)),
    Stream.zipWithIndex,
    Stream.map(([s, i]) => {
      // the terminal event ends the stream: it leaves with the end of the response
      if (isTerminal(s.event)) last()
      return sseFrame(s, from + i + 1)
    })
  )
}

export const runHandlers = handlers({
  createRun: ({ tenant, headers, body }) =>
    Effect.gen(function*() {
      const { run, created } = yield* (yield* Runs).start(tenant, body, headers["idempotency-key"] ?? null)
      return reply(created ? 201 : 200, run, {
        location: `/v1/runs/${run.id}`,
        ...(created ? {} : { "idempotent-replayed": "true" })
      })
    }),
  createRunStream: ({ tenant, principal, headers, body }) =>
    Effect.gen(function*() {
      // its answer is the run's events, which only runs:read shows: a key that may only start runs is refused
      // before anything starts, as a route's own scope refuses
      yield* demand(principal, "runs:read", "POST /v1/runs/stream", " (it answers with the run's events)")
      const { run, created } = yield* (yield* Runs).start(tenant, body, headers["idempotency-key"] ?? null)
      const address = { type: "run" as const, tenant, id: run.id }
      // followed from its first event, as a stream from the start is: this host has just appended to it (or, for a
      // retried key, the run exists), so nothing is asked of the bus before the follow reads the journal
      const request = yield* HttpServerRequest.HttpServerRequest
      return sseResponse(runFrame(run), framesFrom(yield* Journal, address, 0, 0, request), {
        status: created ? 201 : 200,
        headers: { location: `/v1/runs/${run.id}`, ...(created ? {} : { "idempotent-replayed": "true" }) }
      })
    }),
  listRuns: ({ tenant, query: q }) =>
    Queries.listRuns(tenant, {
      ...(q.status === undefined ? {} : { status: q.status }),
      ...(q.agentName === undefined ? {} : { agentName: q.agentName }),
      ...(q.limit === undefined ? {} : { limit: q.limit }),
      ...(q.cursor === undefined ? {} : { cursor: q.cursor })
    }),
  getRun: ({ tenant, params: { id } }) =>
    Effect.gen(function*() {
      yield* Effect.annotateCurrentSpan({ run_id: id })
      // the row answers when it has caught up with the journal (one last-by-subject get on the bus tells);
      // otherwise, right after a write, this one run is folded from its journal (ADR 0008)
      const [projected, last] = yield* Effect.all([
        Queries.getRunAt(tenant, id),
        (yield* Journal).lastSeq({ type: "run", tenant, id })
      ], { concurrency: 2 })
      if (projected !== null && projected.lastSeq >= last) return projected.run
      return yield* (yield* Runs).get(tenant, id)
    }),
  runEvents: ({ tenant, params: { id } }) =>
    Effect.gen(function*() {
      const events = yield* (yield* Runs).events(tenant, id)
      return { items: events.map((e, i) => toEventResponse(e, i + 1)) }
    }),
  cancelRun: (
    { tenant, principal, params: { id }, body }
  ) => (Runs.use((runs) => runs.cancel(tenant, id, body.reason ?? "canceled by API", actorOf(principal)))),
  approveStep: ({ tenant, params: { id, stepId }, body }) => Runs.use((runs) => runs.approve(tenant, id, stepId, body)),
  signalRun: ({ tenant, params: { id, name }, body }) =>
    Effect.map(Runs.use((runs) => runs.signal(tenant, id, name, body.value)), (view) => reply(202, view)),
  runStream: ({ tenant, params: { id }, headers }) =>
    Effect.gen(function*() {
      const journal = yield* Journal
      const request = yield* HttpServerRequest.HttpServerRequest
      const address = { type: "run" as const, tenant, id }
      // Last-Event-ID is a position in the run's journal (1…N, the ids this stream sends); an empty one is
      // no position, as in the SSE spec
      const after = headers["last-event-id"] ?? 0
      // from the start, the journal is followed from its first event: whether the run exists is all there is to
      // know first, which this host knows when it appended to the run lately (it started or drives it), else its
      // last sequence tells, without reading and decoding what is already journaled
      if (after === 0) {
        if (!(yield* journal.exists(address))) {
          return yield* (yield* Runs).get(tenant, id).pipe(Effect.as(HttpServerResponse.jsonUnsafe({})))
        }
        return sseResponse(sseComment("lantern run stream"), framesFrom(journal, address, 0, 0, request))
      }
      const journaled = yield* journal.read(address)
      if (journaled.length === 0) {
        return yield* (yield* Runs).get(tenant, id).pipe(Effect.as(HttpServerResponse.jsonUnsafe({})))
      }
      // a client that already has the terminal event (or anything past the run's last event) of a finished
      // run gets an empty stream that ends at once, not pings forever
      const finished = after >= journaled.length && isTerminal(journaled[journaled.length - 1]!.event)
      // the follow works on stream sequences: resume after the sequence of the event at that position
      const from = Math.min(after, journaled.length)
      const afterSeq = from === 0 ? 0 : journaled[from - 1]!.seq
      const events = finished ? Stream.empty : framesFrom(journal, address, afterSeq, from, request)
      return sseResponse(sseComment("lantern run stream"), events)
    }),
  runTokens: ({ tenant, params: { id } }) =>
    Effect.gen(function*() {
      const journal = yield* Journal
      const address = { type: "run" as const, tenant, id }
      const journaled = yield* journal.read(address)
      const last = journaled[journaled.length - 1]
      if (last === undefined) {
        return yield* (yield* Runs).get(tenant, id).pipe(Effect.as(HttpServerResponse.jsonUnsafe({})))
      }
      // a finished run streams no more tokens: its stream ends at once
      if (isTerminal(last.event)) return sseResponse(sseComment("lantern run tokens"), Stream.empty)
      // subscribed before the response opens: every token published once a client has the first frame is in it;
      // the terminal event is in the journal's follow from the last event read
      const live = yield* (yield* Tokens).follow(tenant, id)
      // the run's terminal event ends the stream: it leaves with the end of the response (ADR 0087)
      const lastFrame = lastFrameNext(yield* HttpServerRequest.HttpServerRequest)
      const end = journal.follow(address, last.seq).pipe(
        Stream.zipWithIndex,
        Stream.filter(([s]) => isTerminal(s.event)),
        Stream.take(1),
        Stream.map(([s, i]) => {
          lastFrame()
          return sseFrame(s, journaled.length + i + 1)
        })
      )
      return sseResponse(
        sseComment("lantern run tokens"),
        Stream.merge(Stream.map(live, tokenFrame), end, { haltStrategy: "right" })
      )
    })
})
