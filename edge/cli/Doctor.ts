// `lantern doctor`: checks in turn that the edge answers, that it is ready (bus, database), that the token is
// accepted, and that one real run of a tiny agent goes through; one ✓/✗ line per check, with its time. The agent
// is one well-known probe (`lantern-doctor-probe`), created once per tenant and reused; its runs are left out of
// `GET /v1/runs` unless asked for by name, so repeated doctors leave one agent and no clutter in the run list.
import { Clock, Console, Effect, Option, Runtime, Schema } from "effect"
import { AgentSpec, Api } from "../../schema/index.ts"
import { Client, type ClientError } from "./Client.ts"
import * as ClientApi from "./Client.ts"
import { endpoints } from "../Api.ts"
import * as Format from "./Format.ts"

export const AGENT = Api.PROBE_AGENT
export const SPEC: AgentSpec.AgentSpec = { systemPrompt: "You are the Lantern doctor.", model: "auto", maxTurns: 2 }
const POLL_EVERY = "250 millis"

/** Some check failed; the checks are printed already, this only sets the exit code. */
export class DoctorFailed extends Schema.TaggedError<DoctorFailed>()("DoctorFailed", {
  failed: Schema.Array(Schema.String)
}) {
  override get message() {
    return `failed checks: ${this.failed.join(", ")}`
  }
  override readonly [Runtime.errorReported] = false
}

interface Outcome {
  readonly ok: boolean
  readonly detail: string
}

const pass = (detail: string): Outcome => ({ ok: true, detail })
const fail = (detail: string): Outcome => ({ ok: false, detail })
/** A failed call as the check's detail: the same text the commands print, without the `error: ` prefix. */
const failed = (e: ClientError): Outcome => fail(Format.failure(e).replace(/^error: /, ""))

const Readiness = Schema.fromJsonString(Schema.Record(Schema.String, Schema.Unknown))
const decodeReadiness = Schema.decodeUnknownOption(Readiness)

const sameSpec = (a: AgentSpec.ResolvedSpec, b: AgentSpec.ResolvedSpec) =>
  a.systemPrompt === b.systemPrompt && a.model === b.model && a.maxTurns === b.maxTurns &&
  a.tools.length === b.tools.length

/** The doctor agent, created on first use and updated only when its spec has changed. */
const ensureAgent = Effect.gen(function*() {
  const want = AgentSpec.resolve(SPEC)
  const existing = yield* ClientApi.call(endpoints.getAgent, { params: { name: AGENT } }).pipe(
    Effect.map((r) => Option.some(r.value)),
    Effect.catchIf(
      (e) => e._tag === "ApiError" && e.status === 404,
      () => Effect.succeed(Option.none<Api.AgentResponse>())
    )
  )
  if (Option.isNone(existing)) {
    const created = yield* ClientApi.call(endpoints.createAgent, {
      body: {
        name: AGENT,
        description: "Probe of `lantern doctor`: its runs are hidden from GET /v1/runs",
        spec: SPEC
      }
    })
    return pass(`${AGENT} v${created.value.latestVersion} created`)
  }
  if (sameSpec(existing.value.spec, want)) return pass(`${AGENT} v${existing.value.latestVersion}`)
  const updated = yield* ClientApi.call(endpoints.updateAgent, { params: { name: AGENT }, body: { spec: SPEC } })
  return pass(`${AGENT} v${updated.value.latestVersion} (spec updated)`)
}).pipe(Effect.catch((e) => Effect.succeed(failed(e))))

/** Polls the run until it ends; a 404 right after the start only means its row is not written yet. */
const awaitRun = (id: string): Effect.Effect<Option.Option<Api.RunResponse>, ClientError, Client> =>
  ClientApi.call(endpoints.getRun, { params: { id } }).pipe(
    Effect.map((r) => Option.some(r.value)),
    Effect.catchIf((e) => e._tag === "ApiError" && e.status === 404, () => Effect.succeed(Option.none())),
    Effect.flatMap((r) =>
      Option.isSome(r) && Format.TERMINAL_STATUSES.has(r.value.status)
        ? Effect.succeed(r)
        : Effect.sleep(POLL_EVERY).pipe(Effect.andThen(awaitRun(id)))
    )
  )

const liveRun = (timeoutSeconds: number) =>
  Effect.gen(function*() {
    const started = yield* ClientApi.call(endpoints.createRun, { body: { agentName: AGENT, input: "ping" } })
    const id = started.value.id
    const ended = yield* awaitRun(id).pipe(
      Effect.timeoutOrElse({ duration: `${timeoutSeconds} seconds`, orElse: () => Effect.succeed(Option.none()) })
    )
    if (Option.isNone(ended)) return fail(`${id} did not end within ${timeoutSeconds} s`)
    const r = ended.value
    return r.status === "succeeded"
      ? pass(`${id} succeeded in ${r.steps} step${r.steps === 1 ? "" : "s"}: ${Format.inline(r.output, 60)}`)
      : fail(`${id} ${r.status}${r.error === null ? "" : `: ${r.error.code}: ${r.error.message}`}`)
  }).pipe(Effect.catch((e) => Effect.succeed(failed(e))))

export interface Options {
  readonly json: boolean
  readonly runTimeoutSeconds: number
}

/** Runs every check, printing each as it ends (or a JSON report at the end); fails when one did not pass. */
export const run = (options: Options) =>
  Effect.gen(function*() {
    const client = yield* Client
    const checks: Array<Format.Check> = []
    const record = (name: string, ms: number, o: Outcome) =>
      Effect.gen(function*() {
        const c: Format.Check = { name, ok: o.ok, ms, detail: o.detail }
        checks.push(c)
        if (!options.json) yield* Console.log(Format.check(c))
      })
    const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        const o = yield* effect
        return [o, (yield* Clock.currentTimeMillis) - start] as const
      })
    const skip = (names: ReadonlyArray<string>, why: string) =>
      Effect.forEach(names, (n) => record(n, 0, fail(`skipped: ${why}`)), { discard: true })

    // 1. The edge answers.
    const [edge, edgeMs] = yield* timed(
      client.probe("/healthz").pipe(
        Effect.map((p) =>
          p.status === 200
            ? pass(`${client.baseUrl} answers`)
            : fail(`/healthz answered HTTP ${p.status}: ${Format.short(p.text, 80)}`)
        ),
        Effect.catch((e) => Effect.succeed(failed(e)))
      )
    )
    yield* record("edge", edgeMs, edge)
    if (!edge.ok) {
      yield* skip(["bus", "database", "auth", "agent", "run"], "the edge did not answer")
      return yield* finish(checks, client.baseUrl, options.json)
    }

    // 2. It is ready: the bus and the database.
    const [ready, readyMs] = yield* timed(
      client.probe("/readyz").pipe(
        Effect.map((p) => {
          const parts = decodeReadiness(p.text)
          const part = (name: string): Outcome => {
            const value = Option.flatMap(parts, (b) => Option.fromNullishOr(b[name]))
            if (Option.isNone(value)) return fail(`/readyz answered HTTP ${p.status}: ${Format.short(p.text, 80)}`)
            return value.value === "ok"
              ? pass("ok")
              : fail(typeof value.value === "string" ? value.value : Format.inline(value.value))
          }
          const bus = part("bus")
          // the server's version and durability, as /readyz reports them
          const nats = Option.flatMap(parts, (b) => Option.fromNullishOr(b["nats"])).pipe(
            Option.map((n) => n as { readonly version?: unknown; readonly sync?: unknown }),
            Option.map((n) => `nats-server ${String(n.version ?? "?")}, sync ${String(n.sync ?? "?")}`)
          )
          return {
            bus: bus.ok && Option.isSome(nats) ? pass(nats.value) : bus,
            database: part("database")
          }
        }),
        Effect.catch((e) => Effect.succeed({ bus: failed(e), database: failed(e) })),
        Effect.map((parts) => ({ ok: parts.bus.ok && parts.database.ok, detail: "", parts }))
      )
    )
    yield* record("bus", readyMs, ready.parts.bus)
    yield* record("database", readyMs, ready.parts.database)

    // 3. The token is accepted.
    const [auth, authMs] = yield* timed(
      ClientApi.call(endpoints.listAgents, {}).pipe(
        Effect.map((r) =>
          pass(`${client.hasToken ? "token accepted" : "no token needed"} (${r.value.items.length} agents)`)
        ),
        Effect.catch((e) =>
          Effect.succeed(
            !client.hasToken && e._tag === "ApiError" && e.status === 401
              ? fail(`no token found\n${Format.hintFor401}`)
              : failed(e)
          )
        )
      )
    )
    yield* record("auth", authMs, auth)
    if (!ready.ok || !auth.ok) {
      yield* skip(["agent", "run"], ready.ok ? "the token was refused" : "the edge is not ready")
      return yield* finish(checks, client.baseUrl, options.json)
    }

    // 4. and 5. One real run, end to end.
    const [agent, agentMs] = yield* timed(ensureAgent)
    yield* record("agent", agentMs, agent)
    if (!agent.ok) {
      yield* skip(["run"], `the ${AGENT} agent could not be saved`)
      return yield* finish(checks, client.baseUrl, options.json)
    }
    const [live, liveMs] = yield* timed(liveRun(options.runTimeoutSeconds))
    yield* record("run", liveMs, live)
    return yield* finish(checks, client.baseUrl, options.json)
  })

const finish = (checks: ReadonlyArray<Format.Check>, url: string, json: boolean) =>
  Effect.gen(function*() {
    const failedChecks = checks.filter((c) => !c.ok).map((c) => c.name)
    if (json) {
      yield* Console.log(JSON.stringify({ ok: failedChecks.length === 0, url, checks }, null, 2))
    } else {
      yield* Console.log(
        failedChecks.length === 0 ? "\nall checks passed" : `\n${failedChecks.length} of ${checks.length} checks failed`
      )
    }
    if (failedChecks.length > 0) return yield* new DoctorFailed({ failed: failedChecks })
  })
