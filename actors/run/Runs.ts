// The run actor's command side: start a run pinned to an agent version (idempotent per Idempotency-Key),
// hand it to the drivers through the work queue, start child runs for tool calls, decide approvals, cancel a
// run (and its children), and read it from its journal.
import { createHash } from "node:crypto"
import { Clock, Context, Effect, Layer, Option, Result, Schema } from "effect"
import { checkSizes, Journal } from "../../bus/Journal.ts"
import * as Kv from "../../bus/Kv.ts"
import { type Lease, Leases } from "../../bus/Leases.ts"
import { Dispatch } from "./Dispatch.ts"
import { headersOf, Nats, unavailable } from "../../bus/Nats.ts"
import { IDEMPOTENCY_BUCKET, IDEMPOTENCY_TTL_MS } from "../../bus/Topology.ts"
import type { ApprovalDecision, NewRun, RunView, SignalView } from "../../schema/Run.ts"
import * as Canonical from "../../schema/Canonical.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import type { ResolvedSpec } from "../../schema/AgentSpec.ts"
import {
  type AgentNotFound,
  type AgentVersionNotFound,
  type BudgetExceeded,
  BusUnavailable,
  IdempotencyKeyReused,
  InvalidCommand,
  RunAlreadyFinished,
  RunNotFound,
  WorkflowNotFound
} from "../../schema/Errors.ts"
import * as GraphWorkflow from "../workflow/Graph.ts"
import { Registry } from "../workflow/Registry.ts"
import { Agents } from "../agent/Agents.ts"
import { Identities, type IdentityUnavailable } from "../identity/Identity.ts"
import { Budgets } from "../budget/Budgets.ts"
import { ModelProvider } from "../model/ModelProvider.ts"
import * as Actor from "../kernel/Actor.ts"
import * as Failpoints from "../kernel/Failpoints.ts"
import { Ids } from "../kernel/Ids.ts"
import type { StartRun as StartRunCommand } from "../../schema/Commands.ts"
import * as Decider from "./Decider.ts"
import * as Plan from "./Plan.ts"
import * as View from "./View.ts"

export const actor = Actor.make(Decider.decider)

export const addressOf = (tenant: string, runId: string): ActorAddress => ({ type: "run", tenant, id: runId })

export const workSubject = (tenant: string, runId: string) => `lantern.work.run.${tenant}.${runId}`
export const cancelSubject = (tenant: string, runId: string) => `lantern.ctl.cancel.${tenant}.${runId}`

/** The `lantern-idempotency` bucket: `<tenant>.<sha256 of the caller's Idempotency-Key>` → the run it started. */
export const idempotencyBucket = Kv.bucket({
  name: IDEMPOTENCY_BUCKET,
  value: Schema.NonEmptyString,
  ttl: IDEMPOTENCY_TTL_MS,
  what: "an idempotency key"
})

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")

/** Stand-ins of the sizes of a run id and of the identity `Identities.ensure` mints, to measure a RunStarted early. */
const RUN_ID_SIZED = `run_${"0".repeat(26)}`
const IDENTITY_SIZED = { publicKey: "0".repeat(43), keyId: "0".repeat(16) }

export type StartError =
  | Actor.ExecuteError<Decider.Error>
  | AgentNotFound
  | AgentVersionNotFound
  | BudgetExceeded
  | IdentityUnavailable
  | WorkflowNotFound

/** The spec a workflow's run carries: its code decides, so no prompt, turns or tools of its own. */
const WORKFLOW_SPEC: ResolvedSpec = { systemPrompt: "", model: "auto", maxTurns: 0, tools: [] }

/** A child run to start for a parent's tool call. */
export interface ChildRequest {
  readonly tenant: string
  readonly runId: string
  /** The agent the child runs; with `workflow` set, the workflow's name instead. */
  readonly agentName: string
  /** The child runs this workflow (its current code) rather than an agent. */
  readonly workflow?: boolean
  readonly input: unknown
  readonly parent: Decider.Parent
}

export class Runs extends Context.Service<Runs, {
  /** Starts a run (or returns the one this idempotency key already started) and queues it for a driver. */
  readonly start: (
    tenant: string,
    request: NewRun,
    idempotencyKey: string | null,
    /** Set by an eval run for its cases: the run is eval traffic, journaled so on its RunStarted. */
    options?: { readonly evalRunId?: string }
  ) => Effect.Effect<{ readonly run: RunView; readonly created: boolean }, StartError>
  readonly cancel: (
    tenant: string,
    runId: string,
    reason: string,
    by: string
  ) => Effect.Effect<RunView, Actor.ExecuteError<Decider.Error>>
  readonly get: (tenant: string, runId: string) => Effect.Effect<RunView, RunNotFound | Actor.ReadError>
  readonly events: (
    tenant: string,
    runId: string
  ) => Effect.Effect<ReadonlyArray<Stored>, RunNotFound | Actor.ReadError>
  /** Starts (or finds) the child run answering a tool call; idempotent, since the child's id is fixed. */
  readonly startChild: (child: ChildRequest) => Effect.Effect<Decider.State, StartError>
  /** Records a human's decision on a step waiting for approval and wakes the run. */
  readonly approve: (
    tenant: string,
    runId: string,
    stepId: string,
    decision: ApprovalDecision
  ) => Effect.Effect<RunView, Actor.ExecuteError<Decider.Error>>
  /**
   * Sends a workflow's run the signal `name` with `value`: journaled as the next `signal:<name>:<n>` step, for the
   * code's n-th `ctx.waitForEvent(name)`, and the run woken.
   */
  readonly signal: (
    tenant: string,
    runId: string,
    name: string,
    value: unknown
  ) => Effect.Effect<SignalView, Actor.ExecuteError<Decider.Error>>
  /**
   * Puts a run on the work queue. `dedupe` names this wake-up: equal names within the duplicate window
   * queue the run once (default `drive:<runId>`).
   */
  readonly enqueue: (tenant: string, runId: string, dedupe?: string) => Effect.Effect<void, BusUnavailable>
}>()("lantern/actors/Runs") {
  static readonly layer = Layer.effect(
    Runs,
    Effect.gen(function*() {
      const journal = yield* Journal
      const ids = yield* Ids
      const agents = yield* Agents
      const { js, nc } = yield* Nats
      const leases = yield* Leases
      const dispatch = yield* Dispatch
      const claims = yield* Kv.open(idempotencyBucket)
      const provide = yield* Actor.provider
      const budgets = yield* Budgets
      const provider = yield* ModelProvider
      const identities = yield* Identities
      const registry = yield* Registry

      /**
       * Counts a new run against the budgets of its agent and tenant, refusing it (402) when a hard cap leaves no
       * room: the day's runs, the day's cost against its first model call at worst, or a per-run cap that call
       * alone would break. A run already started (an idempotent retry) is not counted again.
       */
      const admit = (
        tenant: string,
        runId: string,
        agentName: string,
        spec: ResolvedSpec,
        input: unknown,
        fresh: boolean,
        workflow = false
      ) =>
        Effect.gen(function*() {
          if (!fresh && (yield* journal.lastSeq(addressOf(tenant, runId))) > 0) return
          const first = { ...Decider.initialState, status: "running" as const, runId, agentName, spec, input }
          yield* budgets.admitRun(
            tenant,
            agentName,
            runId,
            // a workflow's code makes its model calls later, each reserved then: its start costs nothing up front,
            // but counts against the day's runs like any run
            workflow
              ? Effect.succeed({ promptTokens: 0, maxTokens: 0, worstCaseUsd: 0, models: [] })
              : provider.quote(Plan.modelRequest(first, { model: spec.model }, `${runId}:quote`, tenant))
          )
        })

      /**
       * Refuses a start whose RunStarted could not be journaled (EventTooLarge, HTTP 413) before anything of the run
       * is written: no idempotency key claimed, no lease entry for the watchdog to recover, no identity, no budget
       * count. The event is measured in the envelope `begin` appends it in, with stand-ins for the run id and identity.
       */
      const mustFit = (tenant: string, command: Omit<StartRunCommand, "_tag" | "runId">) =>
        Effect.gen(function*() {
          const address = addressOf(tenant, RUN_ID_SIZED)
          const event = { _tag: "RunStarted" as const, runId: RUN_ID_SIZED, ...command, identity: IDENTITY_SIZED }
          const batch = yield* provide(actor.envelopes(address, [event], {
            idempotencyKey: `${RUN_ID_SIZED}:start`,
            correlationId: command.parent?.runId ?? RUN_ID_SIZED
          }, 0))
          yield* checkSizes(nc, batch)
        })

      /**
       * The run id for a caller's key: the first request to claim the key wins (KV create is CAS). `fresh`: the id
       * was made by this request, so its journal is known to be empty and need not be read.
       */
      const runIdFor = (tenant: string, key: string | null, made: string) =>
        Effect.gen(function*() {
          if (key === null) return { runId: made, fresh: true }
          const kvKey = `${tenant}.${sha256(key)}`
          // a claim that ages out between the refused create and the read is claimed again
          for (let attempt = 0; attempt < 3; attempt++) {
            const claimed = yield* claims.create(kvKey, made)
            if (claimed._tag === "Created") return { runId: made, fresh: true }
            const existing = yield* claims.get(kvKey).pipe(Effect.catchTag("CorruptValue", Effect.die))
            if (Option.isSome(existing)) return { runId: existing.value.value, fresh: false }
          }
          return yield* new BusUnavailable({
            operation: "claim idempotency key",
            reason: "the key kept changing under concurrent writes"
          })
        })

      const readRun = (tenant: string, runId: string) =>
        Effect.flatMap(
          journal.read(addressOf(tenant, runId)),
          (stored) => stored.length === 0 ? Effect.fail(new RunNotFound({ id: runId })) : Effect.succeed(stored)
        )

      const get = (tenant: string, runId: string) => Effect.map(readRun(tenant, runId), (s) => View.fromStored(s)!)

      // the work item carries the caller's trace context, so the driving host continues the run's trace
      const enqueue = (tenant: string, runId: string, dedupe?: string) =>
        Effect.gen(function*() {
          const parent = yield* Actor.traceparent
          yield* Effect.tryPromise({
            try: () =>
              js.publish(workSubject(tenant, runId), JSON.stringify({ tenant, runId }), {
                msgID: dedupe ?? `drive:${runId}`,
                headers: headersOf({ traceparent: parent })
              }),
            catch: unavailable(`enqueue ${runId}`)
          })
        })

      /**
       * Journals a run's start and has it driven. The lease entry is written first, so a host that dies before the
       * run is driven or queued leaves it to the watchdog instead of stranding it; an interrupted caller (a dropped
       * request) waits for the start to finish, for the same reason. A new run is driven on this host
       * when it has a free slot (its entry names this host, ADR 0039), otherwise queued for any host.
       */
      const begin = (
        tenant: string,
        runId: string,
        command: Omit<StartRunCommand, "_tag" | "runId">,
        fresh = false
      ) =>
        Effect.gen(function*() {
          const here = fresh && dispatch.claim()
          /** The run's lease entry: held by this host when it drives the run, else registered for any host. */
          const entry = Effect.gen(function*() {
            const lease = here
              ? yield* leases.claim(tenant, runId).pipe(Effect.onError(() => Effect.sync(() => dispatch.release())))
              : null
            if (here && lease === null) dispatch.release()
            if (lease === null) yield* leases.register(tenant, runId)
            return lease
          })
          /** A run held here that will not be driven here: its slot back, its entry parked for the watchdog. */
          const giveUp = (lease: Lease | null) => (e: { readonly _tag: string }) =>
            lease === null ? Effect.void : Effect.gen(function*() {
              dispatch.release()
              const now = yield* Clock.currentTimeMillis
              yield* (e._tag === "EventTooLarge" ? leases.release(lease) : leases.park(lease, now + leases.graceMs))
                .pipe(Effect.ignore)
            })
          const address = addressOf(tenant, runId)
          // the run's own key pair; a retry of a start already journaled keeps the journaled one. A run id this
          // request made has no journal: its key pair is made and stored while its lease entry is written (two
          // independent KV writes, both before RunStarted, ADR 0071), each awaited whatever the other's outcome, so
          // a lease taken is parked again when the identity fails
          const { lease, identity } = fresh
            ? yield* Effect.gen(function*() {
              const [held, made] = yield* Effect.all([
                Effect.result(entry),
                Effect.result(identities.ensure(tenant, runId))
              ], { concurrency: 2 })
              if (Result.isFailure(held)) return yield* Effect.fail(held.failure)
              if (Result.isFailure(made)) {
                yield* giveUp(held.success)(made.failure)
                return yield* Effect.fail(made.failure)
              }
              return { lease: held.success, identity: { identity: made.success } }
            })
            : yield* Effect.gen(function*() {
              const held = yield* entry
              const started = (yield* journal.lastSeq(address)) > 0
              return {
                lease: held,
                identity: started
                  ? {}
                  : { identity: yield* identities.ensure(tenant, runId).pipe(Effect.tapError(giveUp(held))) }
              }
            })
          const start = { _tag: "StartRun" as const, runId, ...command, ...identity }
          const meta = { idempotencyKey: `${runId}:start`, correlationId: command.parent?.runId ?? runId }
          // a run id this request made has an empty journal: decided on the empty state, nothing read first
          const empty = { address, state: Decider.initialState, seq: 0, events: 0, snapshotEvents: 0 }
          const outcome = yield* provide(
            fresh ? actor.executeOn(empty, start, meta) : actor.execute(address, start, meta)
          ).pipe(
            Effect.tapError(giveUp(lease)),
            // measured beforehand (mustFit), but should the bus's limit have shrunk since: the run never started,
            // so its entry must not stay for the watchdog to recover
            Effect.tapError((e) =>
              e._tag === "EventTooLarge" && lease === null
                ? Effect.ignore(leases.discard(tenant, runId))
                : Effect.void
            )
          )
          yield* Failpoints.hit("before-run-queued", runId)
          if (lease !== null) {
            // the drive continues the caller's trace, as a queued run's does through its work message
            dispatch.start(tenant, runId, {
              lease,
              loaded: outcome.loaded,
              stored: outcome.stored,
              traceparent: yield* Actor.traceparent
            })
            return outcome
          }
          // also on an idempotent retry: the first attempt may have died before queueing the run
          if (!Decider.isTerminal(outcome.loaded.state)) yield* enqueue(tenant, runId)
          return outcome
        }).pipe(
          // once a lease is taken or a start journaled, the run is driven or queued, whatever happens to the caller:
          // a request whose client went away is interrupted, and would otherwise leave a run journaled and held by
          // this live host, which nobody drives (a bus call that hangs still ends with its own timeout)
          Effect.uninterruptible,
          Effect.annotateSpans({ tenant_id: tenant, run_id: runId })
        )

      const digestOf = (agentName: string, agentVersion: number | null, input: unknown) =>
        sha256(Canonical.stringify({ agentName, agentVersion, input: input ?? null }))

      /**
       * What a run of an agent's version, or of a workflow at its current code, starts with. An unpinned run of an
       * agent with a running experiment gets the version of the arm `splitKey()` falls in (ADR 0058).
       */
      const commandOf = (tenant: string, request: NewRun, splitKey: () => string) =>
        Effect.gen(function*() {
          if (request.workflow !== undefined) {
            const ref = yield* registry.current(request.workflow)
            if (Option.isNone(ref)) return yield* new WorkflowNotFound({ name: request.workflow })
            return {
              agentName: request.workflow,
              agentVersion: 0,
              agentDigest: ref.value.digest,
              spec: WORKFLOW_SPEC,
              input: request.input ?? null,
              requestDigest: digestOf(`workflow:${request.workflow}`, null, request.input),
              workflow: ref.value
            }
          }
          const agentName = request.agentName ?? ""
          const chosen = yield* agents.choose(tenant, agentName, request.agentVersion, splitKey)
          const version = chosen.version
          return {
            agentName,
            agentVersion: version.version,
            agentDigest: version.digest,
            spec: version.spec,
            input: request.input ?? null,
            requestDigest: digestOf(agentName, request.agentVersion ?? null, request.input),
            // an agent drawn as a graph runs it as a workflow pinned to the version (ADR 0042)
            ...(version.spec.workflow === undefined
              ? {}
              : { workflow: { name: GraphWorkflow.nameOf(agentName), digest: version.digest } }),
            ...(chosen.experiment === undefined ? {} : { experiment: chosen.experiment })
          }
        })

      const start = (tenant: string, request: NewRun, key: string | null, options?: { evalRunId?: string }) =>
        Effect.gen(function*() {
          const made = yield* ids.next("run")
          const of = yield* commandOf(tenant, request, () => key ?? made)
          const command = options?.evalRunId === undefined ? of : { ...of, evalRunId: options.evalRunId }
          yield* mustFit(tenant, command)
          const { runId, fresh } = yield* runIdFor(tenant, key, made)
          yield* Effect.annotateCurrentSpan({ run_id: runId })
          yield* admit(
            tenant,
            runId,
            command.agentName,
            command.spec,
            command.input,
            fresh,
            command.workflow !== undefined
          ).pipe(Effect.annotateSpans({ run_id: runId }))
          const outcome = yield* begin(tenant, runId, command, fresh)
          // a new run's journal is what was just appended: answered from it, not read back
          const run = fresh && outcome.stored.length > 0 ? View.fromStored(outcome.stored) : null
          return { run: run ?? (yield* get(tenant, runId)), created: outcome.appended.length > 0 }
        }).pipe(
          Effect.catchTag("RunNotFound", (e) => Effect.die(e)),
          // the decider knows only the run the key claimed: the caller is told the key it sent
          Effect.catchTag(
            "IdempotencyKeyReused",
            (e) => Effect.fail(key === null ? e : new IdempotencyKeyReused({ key }))
          ),
          Effect.withSpan("Runs.start", {
            attributes: { "lantern.tenant": tenant, "lantern.agent": request.agentName ?? request.workflow ?? "" }
          }, { captureStackTrace: false })
        )

      const startChild = (child: ChildRequest) =>
        Effect.gen(function*() {
          const existing = yield* provide(actor.load(addressOf(child.tenant, child.runId)))
          if (existing.state.status !== "new") return existing.state
          const of = yield* commandOf(
            child.tenant,
            child.workflow === true
              ? { workflow: child.agentName, input: child.input }
              : { agentName: child.agentName, input: child.input },
            () => child.runId
          )
          const command = { ...of, requestDigest: digestOf(child.agentName, null, child.input), parent: child.parent }
          yield* mustFit(child.tenant, command)
          yield* admit(
            child.tenant,
            child.runId,
            child.agentName,
            command.spec,
            child.input,
            false,
            command.workflow !== undefined
          )
          const outcome = yield* begin(child.tenant, child.runId, command)
          return outcome.loaded.state
        }).pipe(
          Effect.withSpan("Runs.startChild", {
            attributes: { "lantern.run": child.runId, "lantern.agent": child.agentName }
          })
        )

      const approve = (tenant: string, runId: string, stepId: string, decision: ApprovalDecision) =>
        Effect.gen(function*() {
          const stored = yield* readRun(tenant, runId)
          const started = stored.findLast((s) => s.event._tag === "StepStarted" && s.event.stepId === stepId)
          const now = yield* Clock.currentTimeMillis
          yield* provide(actor.executeOn(actor.fromStored(addressOf(tenant, runId), stored), {
            _tag: "DecideApproval",
            stepId,
            approved: decision.approved,
            by: decision.by,
            reason: decision.reason ?? "",
            durationMs: started === undefined ? 0 : Math.max(0, now - Date.parse(started.envelope.at))
          }, { idempotencyKey: `${runId}:${stepId}:approval`, correlationId: runId }))
          yield* enqueue(tenant, runId, `approval:${runId}:${stepId}`)
          return yield* get(tenant, runId)
        }).pipe(
          Effect.mapError((e) => (e._tag === "RunNotFound" ? new RunNotFound({ id: runId }) : e)),
          Effect.withSpan("Runs.approve", { attributes: { "lantern.tenant": tenant, "lantern.run": runId } })
        )

      const cancelTree = (
        tenant: string,
        runId: string,
        reason: string,
        by: string
      ): Effect.Effect<void, Actor.ExecuteError<Decider.Error>> =>
        Effect.gen(function*() {
          const outcome = yield* provide(actor.execute(addressOf(tenant, runId), { _tag: "CancelRun", reason, by }, {
            idempotencyKey: `${runId}:cancel`,
            correlationId: runId
          }))
          // interrupt the step in flight on whichever host drives the run, and wake a parked run to clear its lease
          nc.publish(cancelSubject(tenant, runId), "")
          yield* enqueue(tenant, runId, `cancel:${runId}`)
          // cancellation propagates to children still running
          for (const step of outcome.loaded.state.steps) {
            if (step.request._tag !== "agent" || step.status === "completed") continue
            yield* cancelTree(tenant, step.request.childRunId, `parent ${runId} canceled: ${reason}`, by).pipe(
              Effect.catchTags({ RunAlreadyFinished: () => Effect.void, RunNotFound: () => Effect.void })
            )
          }
        })

      const cancel = (tenant: string, runId: string, reason: string, by: string) =>
        Effect.gen(function*() {
          yield* cancelTree(tenant, runId, reason, by)
          return yield* get(tenant, runId).pipe(Effect.catchTag("RunNotFound", (e) => Effect.die(e)))
        }).pipe(
          Effect.mapError((e) => (e._tag === "RunNotFound" ? new RunNotFound({ id: runId }) : e)),
          Effect.withSpan("Runs.cancel")
        )

      const signal = (tenant: string, runId: string, name: string, value: unknown) =>
        Effect.gen(function*() {
          const address = addressOf(tenant, runId)
          // signals racing for the same number: the loser's command is ignored (the step exists), it takes the next
          for (let attempt = 0; attempt < 10; attempt++) {
            const loaded = yield* provide(actor.load(address))
            const state = loaded.state
            if (state.status === "new") return yield* new RunNotFound({ id: runId })
            if (Decider.isTerminal(state)) return yield* new RunAlreadyFinished({ id: runId, status: state.status })
            if (state.workflow === null) {
              return yield* new InvalidCommand({ command: "Signal", reason: "signals are for runs of workflows" })
            }
            const seq = state.steps.filter((s) => s.stepId.startsWith(`signal:${name}:`)).length + 1
            const stepId = `signal:${name}:${seq}`
            const outcome = yield* provide(actor.executeOn(loaded, {
              _tag: "CompleteStep",
              stepId,
              attempt: 1,
              request: { _tag: "code", kind: "signal" },
              result: { _tag: "code", value: value ?? null },
              tokensIn: 0,
              tokensOut: 0,
              costUsd: 0,
              durationMs: 0
            }, { idempotencyKey: `${runId}:${stepId}:${yield* ids.next("evt")}`, correlationId: runId })).pipe(
              Effect.catchTag("AppendConflict", () => Effect.succeed(null))
            )
            if (outcome === null || outcome.appended.length === 0) continue
            yield* enqueue(tenant, runId, `signal:${runId}:${name}:${seq}`)
            return { runId, name, seq }
          }
          return yield* new InvalidCommand({
            command: "Signal",
            reason: "the run kept changing under concurrent signals"
          })
        }).pipe(Effect.withSpan("Runs.signal", { attributes: { "lantern.tenant": tenant, "lantern.run": runId } }))

      return Runs.of({ start, startChild, approve, cancel, get, events: readRun, enqueue, signal })
    })
  )
}
