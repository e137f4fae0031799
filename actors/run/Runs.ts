// The run actor's command side: start a run pinned to an agent version (idempotent per Idempotency-Key),
// hand it to the drivers through the work queue, cancel it, and read it from its journal.
import { createHash } from "node:crypto"
import { Kvm } from "@nats-io/kv"
import { headers } from "@nats-io/nats-core"
import { Context, Effect, Layer } from "effect"
import { Journal } from "../../bus/Journal.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import { IDEMPOTENCY_BUCKET } from "../../bus/Topology.ts"
import type { CreateRunRequest, RunResponse } from "../../schema/Api.ts"
import * as Canonical from "../../schema/Canonical.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import { type AgentNotFound, type AgentVersionNotFound, type BusUnavailable, RunNotFound } from "../../schema/Errors.ts"
import { Agents } from "../agent/Agents.ts"
import * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import * as Decider from "./Decider.ts"
import * as View from "./View.ts"

export const actor = Actor.make(Decider.decider)

export const addressOf = (tenant: string, runId: string): ActorAddress => ({ type: "run", tenant, id: runId })

export const workSubject = (tenant: string, runId: string) => `lantern.work.run.${tenant}.${runId}`
export const cancelSubject = (tenant: string, runId: string) => `lantern.ctl.cancel.${tenant}.${runId}`

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")

export type StartError = Actor.ExecuteError<Decider.Error> | AgentNotFound | AgentVersionNotFound

export class Runs extends Context.Service<Runs, {
  /** Starts a run (or returns the one this idempotency key already started) and queues it for a driver. */
  readonly start: (
    tenant: string,
    request: CreateRunRequest,
    idempotencyKey: string | null
  ) => Effect.Effect<{ readonly run: RunResponse; readonly created: boolean }, StartError>
  readonly cancel: (tenant: string, runId: string, reason: string, by: string) => Effect.Effect<RunResponse, Actor.ExecuteError<Decider.Error>>
  readonly get: (tenant: string, runId: string) => Effect.Effect<RunResponse, RunNotFound | Actor.ReadError>
  readonly events: (tenant: string, runId: string) => Effect.Effect<ReadonlyArray<Stored>, RunNotFound | Actor.ReadError>
  /** Puts a run on the work queue (idempotent within the duplicate window). */
  readonly enqueue: (tenant: string, runId: string) => Effect.Effect<void, BusUnavailable>
}>()("lantern/actors/Runs") {
  static readonly layer = Layer.effect(
    Runs,
    Effect.gen(function*() {
      const journal = yield* Journal
      const ids = yield* Ids
      const agents = yield* Agents
      const { js, nc } = yield* Nats
      const kv = yield* Effect.tryPromise({ try: () => new Kvm(js).open(IDEMPOTENCY_BUCKET), catch: unavailable("open idempotency bucket") })
      const provide = yield* Actor.provider

      /** The run id for a caller's key: the first request to claim the key wins (KV create is CAS). */
      const runIdFor = (tenant: string, key: string | null) =>
        Effect.gen(function*() {
          const fresh = yield* ids.next("run")
          if (key === null) return fresh
          const kvKey = `${tenant}.${sha256(key)}`
          return yield* Effect.tryPromise({
            try: async () => {
              try {
                await kv.create(kvKey, fresh)
                return fresh
              } catch {
                const existing = await kv.get(kvKey)
                if (existing === null || existing.string() === "") throw new Error("idempotency key vanished")
                return existing.string()
              }
            },
            catch: unavailable("claim idempotency key")
          })
        })

      const readRun = (tenant: string, runId: string) =>
        Effect.flatMap(journal.read(addressOf(tenant, runId)), (stored) =>
          stored.length === 0 ? Effect.fail(new RunNotFound({ id: runId })) : Effect.succeed(stored))

      const get = (tenant: string, runId: string) => Effect.map(readRun(tenant, runId), (s) => View.fromStored(s)!)

      // the work item carries the caller's trace context, so the driving host continues the run's trace
      const enqueue = (tenant: string, runId: string) =>
        Effect.gen(function*() {
          const parent = yield* Actor.traceparent
          yield* Effect.tryPromise({
            try: () => {
              const h = headers()
              if (parent !== null) h.set("traceparent", parent)
              return js.publish(workSubject(tenant, runId), JSON.stringify({ tenant, runId }), { msgID: `drive:${runId}`, headers: h })
            },
            catch: unavailable(`enqueue ${runId}`)
          })
        })

      const start = (tenant: string, request: CreateRunRequest, key: string | null) =>
        Effect.gen(function*() {
          const version = yield* agents.version(tenant, request.agentName, request.agentVersion)
          const runId = yield* runIdFor(tenant, key)
          const requestDigest = sha256(Canonical.stringify({ agentName: request.agentName, agentVersion: request.agentVersion ?? null, input: request.input ?? null }))
          const outcome = yield* provide(actor.execute(addressOf(tenant, runId), {
            _tag: "StartRun",
            runId,
            agentName: request.agentName,
            agentVersion: version.version,
            agentDigest: version.digest,
            spec: version.spec,
            input: request.input ?? null,
            requestDigest
          }, { idempotencyKey: `${runId}:start`, correlationId: runId }))
          // also on an idempotent retry: the first attempt may have died before queueing the run
          if (!Decider.isTerminal(outcome.loaded.state)) yield* enqueue(tenant, runId)
          return { run: yield* get(tenant, runId), created: outcome.appended.length > 0 }
        }).pipe(
          Effect.catchTag("RunNotFound", (e) => Effect.die(e)),
          Effect.withSpan("Runs.start", { attributes: { "lantern.tenant": tenant, "lantern.agent": request.agentName } })
        )

      const cancel = (tenant: string, runId: string, reason: string, by: string) =>
        Effect.gen(function*() {
          yield* provide(actor.execute(addressOf(tenant, runId), { _tag: "CancelRun", reason, by }, {
            idempotencyKey: `${runId}:cancel`,
            correlationId: runId
          }))
          // interrupt the step in flight on whichever host drives the run
          nc.publish(cancelSubject(tenant, runId), "")
          return yield* get(tenant, runId).pipe(Effect.catchTag("RunNotFound", (e) => Effect.die(e)))
        }).pipe(
          Effect.mapError((e) => (e._tag === "RunNotFound" ? new RunNotFound({ id: runId }) : e)),
          Effect.withSpan("Runs.cancel")
        )

      return Runs.of({ start, cancel, get, events: readRun, enqueue })
    })
  )
}
