// The /v1 HTTP API: agents and runs for SDKs, the CLI and bridges. Handlers decode, authenticate, call one
// actor or query, and answer; lists read Postgres projections, single resources fall back to the journal.
import { Context, Duration, Effect, Layer, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Agents } from "../actors/agent/Agents.ts"
import { Audit } from "../actors/audit/Audit.ts"
import * as Tools from "../actors/model/Tools.ts"
import { Runs } from "../actors/run/Runs.ts"
import { Journal } from "../bus/Journal.ts"
import * as Queries from "../projections/Queries.ts"
import * as Api from "../schema/Api.ts"
import type { AgentSpec } from "../schema/AgentSpec.ts"
import { AgentName, RunId, StepId } from "../schema/Ids.ts"
import { isTerminal } from "../schema/Events.ts"
import { Auth, type Principal } from "./Auth.ts"
import { sseComment, sseFrame, toEventResponse } from "./Events.ts"
import { BadRequest, body, bodyOr, decode, Forbidden, handled, json, query } from "./Http.ts"
import * as Scopes from "./Scopes.ts"

export const param = Effect.map(HttpRouter.params, (p) => p)

export const agentName = Effect.flatMap(param, (p) => decode(AgentName, p["name"], "name"))
const runId = Effect.flatMap(param, (p) => decode(RunId, p["id"], "id")).pipe(
  Effect.tap((id) => Effect.annotateCurrentSpan({ run_id: id }))
)

/** Tools a spec names must be built-in tools, or be answered by a child run of another agent (`agent`). */
const checkTools = (spec: AgentSpec) => {
  const issues = (spec.tools ?? []).flatMap((t, i) =>
    t.agent === undefined && !Tools.isKnown(t.name)
      ? [{
        field: `spec.tools[${i}].name`,
        message: `unknown tool '${t.name}'; built-in tools are ${
          Tools.names.join(", ")
        }, or set 'agent' to answer it with a child run`
      }]
      : []
  )
  return issues.length === 0 ? Effect.void : Effect.fail(new BadRequest({ issues }))
}

/** The route pattern a request matched, and the scope the table gives it (`route` provides it to `authed`). */
export class CurrentRoute extends Context.Service<CurrentRoute, {
  readonly method: Scopes.Method
  readonly path: string
  readonly scope: Scopes.Scope
}>()("lantern/edge/CurrentRoute") {}

/**
 * A /v1 route. Only a pattern of the scope table (Scopes.ts) type-checks, and its handler learns the scope
 * through `CurrentRoute`, which `authed` enforces.
 */
export const route = <M extends Scopes.Method, E, R>(
  method: M,
  path: Scopes.PathOf<M>,
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) =>
  HttpRouter.add(
    method,
    path,
    handled(
      Effect.provideService(
        handler,
        CurrentRoute,
        CurrentRoute.of({ method, path, scope: Scopes.required(method, path) })
      )
    )
  )

/** Who the caller is, for the record: a key's id, or the bootstrap token of its tenant. Never a secret. */
export const actorOf = (principal: Principal) =>
  principal.keyId === null ? `token:${principal.tenant}` : `key:${principal.keyId}`

/**
 * Authenticates the request (401), checks its key holds the route's scope (403 naming it, audited as
 * `scope.denied`), and runs `f` as the key's tenant.
 */
export const authed = <E, R>(f: (tenant: string) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    const principal = yield* auth.principal
    // the request's span and every span under it name the tenant
    yield* Effect.annotateCurrentSpan({ tenant_id: principal.tenant })
    const current = yield* CurrentRoute
    if (!Scopes.holds(principal, current.scope)) {
      yield* (yield* Audit).record({
        tenant: principal.tenant,
        action: "scope.denied",
        actor: actorOf(principal),
        target: `${current.method} ${current.path}`,
        outcome: "denied",
        detail: { missingScope: current.scope }
      })
      return yield* new Forbidden({
        missingScope: current.scope,
        reason: `this key lacks the scope '${current.scope}' that ${current.method} ${current.path} needs`
      })
    }
    return yield* f(principal.tenant).pipe(Effect.annotateSpans({ tenant_id: principal.tenant }))
  })

export const agentRoutes = Layer.mergeAll(
  route(
    "POST",
    "/v1/agents",
    authed((tenant) =>
      Effect.gen(function*() {
        const request = yield* body(Api.CreateAgentRequest)
        yield* checkTools(request.spec)
        const agent = yield* (yield* Agents).create(tenant, request)
        return json(agent, 201, { location: `/v1/agents/${agent.name}` })
      })
    )
  ),
  route("GET", "/v1/agents", authed((tenant) => Effect.map(Queries.listAgents(tenant), (items) => json({ items })))),
  route(
    "GET",
    "/v1/agents/:name",
    authed((tenant) =>
      Effect.gen(function*() {
        const name = yield* agentName
        const projected = yield* (Queries.getAgent(tenant, name))
        return json(projected ?? (yield* (yield* Agents).get(tenant, name)))
      })
    )
  ),
  route(
    "PUT",
    "/v1/agents/:name",
    authed((tenant) =>
      Effect.gen(function*() {
        const name = yield* agentName
        const request = yield* body(Api.UpdateAgentRequest)
        yield* checkTools(request.spec)
        return json(yield* (yield* Agents).update(tenant, name, request))
      })
    )
  ),
  route(
    "GET",
    "/v1/agents/:name/versions",
    authed((tenant) =>
      Effect.gen(function*() {
        const name = yield* agentName
        // versions are immutable and few: the journal is the complete, always-current list
        return json({ items: yield* (yield* Agents).versions(tenant, name) })
      })
    )
  )
)

export const runRoutes = Layer.mergeAll(
  route(
    "POST",
    "/v1/runs",
    authed((tenant) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const rawKey = request.headers["idempotency-key"]
        const key = rawKey === undefined ? null : yield* decode(Api.IdempotencyKey, rawKey, "Idempotency-Key")
        const input = yield* body(Api.CreateRunRequest)
        const { run, created } = yield* (yield* Runs).start(tenant, input, key)
        return json(run, created ? 201 : 200, {
          location: `/v1/runs/${run.id}`,
          ...(created ? {} : { "idempotent-replayed": "true" })
        })
      })
    )
  ),
  route(
    "GET",
    "/v1/runs",
    authed((tenant) =>
      Effect.gen(function*() {
        const q = yield* decode(Api.RunListQuery, yield* query)
        return json(
          yield* (Queries.listRuns(tenant, {
            ...(q.status === undefined ? {} : { status: q.status }),
            ...(q.agentName === undefined ? {} : { agentName: q.agentName }),
            ...(q.limit === undefined ? {} : { limit: q.limit }),
            ...(q.cursor === undefined ? {} : { cursor: q.cursor })
          }))
        )
      })
    )
  ),
  route(
    "GET",
    "/v1/runs/:id",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        // the row answers when it has caught up with the journal (one last-by-subject get on the bus tells);
        // otherwise, right after a write, this one run is folded from its journal (ADR 0008)
        const [projected, last] = yield* Effect.all([
          Queries.getRunAt(tenant, id),
          (yield* Journal).lastSeq({ type: "run", tenant, id })
        ], { concurrency: 2 })
        if (projected !== null && projected.lastSeq >= last) return json(projected.run)
        return json(yield* (yield* Runs).get(tenant, id))
      })
    )
  ),
  route(
    "GET",
    "/v1/runs/:id/events",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        const events = yield* (yield* Runs).events(tenant, id)
        return json({ items: events.map((e, i) => toEventResponse(e, i + 1)) })
      })
    )
  ),
  route(
    "POST",
    "/v1/runs/:id/cancel",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        const input: Api.CancelRunRequest = yield* bodyOr(Api.CancelRunRequest, {})
        const by = actorOf(yield* (yield* Auth).principal)
        const run = yield* (yield* Runs).cancel(tenant, id, input.reason ?? "canceled by API", by)
        return json(run)
      })
    )
  ),
  route(
    "POST",
    "/v1/runs/:id/approvals/:stepId",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        const stepId = yield* Effect.flatMap(param, (p) => decode(StepId, p["stepId"], "stepId"))
        const decision = yield* body(Api.ApprovalRequest)
        return json(yield* (yield* Runs).approve(tenant, id, stepId, decision))
      })
    )
  ),
  route(
    "GET",
    "/v1/runs/:id/stream",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        const request = yield* HttpServerRequest.HttpServerRequest
        const journal = yield* Journal
        const address = { type: "run" as const, tenant, id }
        const lastEventId = request.headers["last-event-id"]
        // Last-Event-ID is a position in the run's journal (1…N, the ids this stream sends); an empty one is
        // no position, as in the SSE spec
        const after = lastEventId === undefined || lastEventId === ""
          ? 0
          : yield* decode(Api.LastEventId, lastEventId, "Last-Event-ID")
        const journaled = yield* journal.read(address)
        if (journaled.length === 0) return yield* (yield* Runs).get(tenant, id).pipe(Effect.as(json({})))
        // a client that already has the terminal event (or anything past the run's last event) of a finished
        // run gets an empty stream that ends at once, not pings forever
        const finished = after >= journaled.length && isTerminal(journaled[journaled.length - 1]!.event)
        // the follow works on stream sequences: resume after the sequence of the event at that position
        const from = Math.min(after, journaled.length)
        const afterSeq = from === 0 ? 0 : journaled[from - 1]!.seq
        const events = finished ? Stream.empty : journal.follow(address, afterSeq).pipe(
          Stream.takeUntil((s) => isTerminal(s.event)),
          Stream.zipWithIndex,
          Stream.map(([s, i]) => sseFrame(s, from + i + 1))
        )
        const pings = Stream.tick(Duration.seconds(15)).pipe(Stream.drop(1), Stream.map(() => sseComment("ping")))
        const body = Stream.concat(Stream.make(sseComment("lantern run stream")), events).pipe(
          Stream.merge(pings, { haltStrategy: "left" }),
          Stream.catch((e) =>
            Stream.make(new TextEncoder().encode(`event: error\ndata: ${JSON.stringify({ message: e.message })}\n\n`))
          )
        )
        return HttpServerResponse.stream(body, {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" }
        })
      })
    )
  )
)
