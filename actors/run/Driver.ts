// Drives runs: takes run ids off the LANTERN_WORK queue, takes the run's lease, replays its journal and
// executes the next action until the run ends or waits (a timer, an approval, a child run, a retry backoff),
// then parks it in the lease bucket for the watchdog to wake. A completed step is never executed again; a step
// whose host died runs again under the same attempt and idempotency key. Losing the lease stops the drive.
import { Clock, Config, Context, Deferred, Duration, Effect, Fiber, Layer, Random, type Redacted, Result, Schedule } from "effect"
import type { JsMsg } from "@nats-io/jetstream"
import * as Consumer from "../../bus/Consumer.ts"
import { type Lease, LeaseLost, Leases } from "../../bus/Leases.ts"
import { Nats } from "../../bus/Nats.ts"
import { WORK } from "../../bus/Topology.ts"
import { policyOf } from "../../schema/AgentSpec.ts"
import type { RunCommand } from "../../schema/Commands.ts"
import type { EventTooLarge, ProviderError } from "../../schema/Errors.ts"
import type { BudgetRefusal, ErrorInfo, Route, StepRequest, StepResult } from "../../schema/Events.ts"
import { Budgets } from "../budget/Budgets.ts"
import { Secrets } from "../secrets/Secrets.ts"
import * as Actor from "../kernel/Actor.ts"
import * as Failpoints from "../kernel/Failpoints.ts"
import { Receipts } from "../receipts/Receipts.ts"
import { ModelProvider } from "../model/ModelProvider.ts"
import { Tools } from "../model/Tools.ts"
import { isTerminal, type State, type Step, stepOf } from "./Decider.ts"
import * as Plan from "./Plan.ts"
import { actor, addressOf, Runs } from "./Runs.ts"

export interface Settings {
  /** How long a work message may go without a heartbeat from its host before it is redelivered. */
  readonly ackWait: Duration.Input
  readonly concurrency: number
}

interface Performed {
  readonly result: StepResult
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
  readonly cachedTokensIn?: number
  readonly reasoningTokens?: number
  readonly route?: Route
}

interface Failure {
  readonly error: ErrorInfo
  readonly route?: Route
}

/** How a drive ended for this host. */
export type Outcome =
  /** The run ended (or never started): `state` is its final state, as this host last saw it. */
  | { readonly _tag: "Finished"; readonly state: State }
  | { readonly _tag: "Parked"; readonly dueAt: number }
  | { readonly _tag: "Busy"; readonly retryInMs: number }
  | { readonly _tag: "Lost" }

const MAX_ACTIONS = 10_000
/** Waits shorter than this are slept through holding the lease; longer ones park the run. */
const PARK_AFTER_MS = 2_000
/** A run waiting for a child re-checks it this often, in case the child's wake-up was lost. */
const CHILD_POLL_MS = 60_000

/** The error code a provider failure is filed under, which the retry policy's `retryOn` refers to. */
export const codeOf = (e: ProviderError): string =>
  e.status === 429 ? "rate_limited" : e.retryable ? "provider_unavailable" : "provider_error"

/** The steps that answer a model's tool calls, counted against `maxToolCallsPerRun`. */
const isToolCall = (request: StepRequest) => request._tag === "tool" || request._tag === "sleep" || request._tag === "agent"
const toolCallsOf = (state: State) => state.steps.filter((s) => isToolCall(s.request)).length

const budgetError = (refusal: BudgetRefusal): ErrorInfo => ({ code: "budget_exceeded", message: refusal.reason, budget: refusal })

/** The code a step or run fails with when one of its events is too large for the bus. */
export const PAYLOAD_TOO_LARGE = "payload_too_large"

/** What of a run a command would journal, for the message of a refusal of its event. */
const whatOf = (command: RunCommand): string => {
  switch (command._tag) {
    case "CompleteStep":
      return `the result of step ${command.stepId}`
    case "FailStep":
      return `the error of step ${command.stepId}`
    case "StartStep":
      return `the request of step ${command.stepId}`
    case "SucceedRun":
      return "the run's output"
    case "FailRun":
      return "the run's error"
    default:
      return "an event of the run"
  }
}

/** The error a step or run fails with for an event too large for the bus: the sizes only, never the payload. */
export const tooLargeError = (what: string, e: EventTooLarge): ErrorInfo => ({
  code: PAYLOAD_TOO_LARGE,
  message: `${what} is too large to journal: ${e.message}`
})

/** When a waiting step is due: a timer's fire time, an approval's expiry. */
const wakeAtFor = (state: State, request: StepRequest, now: number): number | undefined => {
  if (request._tag === "sleep") return now + Math.round(request.seconds * 1000)
  if (request._tag === "approval") {
    const tool = state.spec?.tools.find((t) => t.name === request.call.name)
    return tool?.approval === undefined ? undefined : now + tool.approval.expiresInSeconds * 1000
  }
  return undefined
}

export class Driver extends Context.Service<Driver, {
  /** Drives one run while this host holds its lease, until it ends, waits, or the lease is lost. */
  readonly drive: (tenant: string, runId: string) => Effect.Effect<Outcome, Actor.ExecuteError<never>>
}>()("lantern/actors/Driver") {
  static readonly layer = Layer.effect(
    Driver,
    Effect.gen(function*() {
      const provider = yield* ModelProvider
      const { nc } = yield* Nats
      const leases = yield* Leases
      const runs = yield* Runs
      const provide = yield* Actor.provider
      const budgets = yield* Budgets
      const secrets = yield* Secrets
      const tools = yield* Tools

      /** The tenant's own provider keys its agent names (`routing.credentials`), resolved now, for this call only. */
      const apiKeysOf = (
        tenant: string,
        state: State
      ): Effect.Effect<Readonly<Record<string, Redacted.Redacted<string>>> | null, Effect.Error<ReturnType<typeof secrets.resolve>>> => {
        const credentials = state.spec?.routing?.credentials
        if (credentials === undefined || Object.keys(credentials).length === 0) return Effect.succeed(null)
        return Effect.map(
          Effect.forEach(Object.entries(credentials), ([providerName, uri]) =>
            Effect.map(secrets.resolve(tenant, uri, `run:${state.runId}`), (value) => [providerName, value] as const)),
          (pairs) => Object.fromEntries(pairs)
        )
      }
      const receipts = yield* Receipts

      /**
       * Reserves a model step's worst case in the budgets of its agent and tenant (a hold of no scopes when neither
       * has one). The reservation outlives the call by the lease's time to live: past that, its host is taken for dead.
       */
      const reserveFor = (tenant: string, state: State, step: Step, key: string, now: number) =>
        budgets.reserve({
          tenant,
          agentName: state.agentName,
          runId: state.runId,
          reservationId: key,
          quote: provider.quote(Plan.modelRequest(state, step.request as { model: string }, key, tenant)),
          run: { costUsd: state.costUsd, tokens: state.tokensIn + state.tokensOut, toolCalls: toolCallsOf(state) },
          expiresAt: now + policyOf(state.spec!).stepTimeoutMs + leases.ttlMs
        })

      // cancel signals for runs driven on this host: completing the deferred interrupts the step in flight
      const inFlight = new Map<string, Deferred.Deferred<void>>()
      const sub = nc.subscribe("lantern.ctl.cancel.>", {
        callback: (_err, msg) => {
          const [, , , tenant, runId] = msg.subject.split(".")
          const d = inFlight.get(`${tenant}.${runId}`)
          if (d !== undefined) Deferred.doneUnsafe(d, Effect.void)
        }
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))

      const perform = (tenant: string, state: State, request: StepRequest, key: string): Effect.Effect<Performed, Failure> => {
        if (request._tag === "tool") {
          return Effect.map(tools.run(request.call), (output) => ({ result: { _tag: "tool", callId: request.call.id, output }, tokensIn: 0, tokensOut: 0, costUsd: 0 }))
        }
        if (request._tag !== "model") return Effect.die(new Error(`step kind ${request._tag} is waited on, not performed`))
        const timeoutMs = policyOf(state.spec!).stepTimeoutMs
        return apiKeysOf(tenant, state).pipe(
          Effect.flatMap((apiKeys) => provider.complete({ ...Plan.modelRequest(state, request, key, tenant), ...(apiKeys === null ? {} : { apiKeys }) })),
          Effect.map((r): Performed => ({
            result: { _tag: "model" as const, answer: r.answer },
            tokensIn: r.tokensIn,
            tokensOut: r.tokensOut,
            costUsd: r.costUsd,
            ...(r.cachedTokensIn === undefined ? {} : { cachedTokensIn: r.cachedTokensIn }),
            ...(r.reasoningTokens === undefined ? {} : { reasoningTokens: r.reasoningTokens }),
            ...(r.route === undefined ? {} : { route: r.route })
          })),
          Effect.mapError((e): Failure =>
            e._tag === "ProviderError"
              ? { error: { code: codeOf(e), message: e.message }, ...(e.route === undefined ? {} : { route: e.route }) }
              : { error: { code: e._tag === "SecretNotFound" || e._tag === "InvalidSecretUri" ? "secret_not_found" : "secret_unavailable", message: e.message } }
          ),
          Effect.timeoutOrElse({
            duration: Duration.millis(timeoutMs),
            orElse: () => Effect.fail<Failure>({ error: { code: "timeout", message: `the step took longer than ${timeoutMs} ms` } })
          })
        )
      }

      /** One session of driving a run while holding its lease. */
      const session = (tenant: string, runId: string, cancelled: Deferred.Deferred<void>) =>
        Effect.gen(function*() {
          const address = addressOf(tenant, runId)
          let loaded = yield* provide(actor.load(address))
          // commands refused because the run changed under us (cancel, another host) end in a reload
          const execOnce = (command: RunCommand, key: string | ((seq: number) => string)) =>
            provide(actor.executeOn(loaded, command, { idempotencyKey: key, correlationId: runId })).pipe(
              Effect.map((o) => o.loaded),
              Effect.catchTags({
                InvalidCommand: () => provide(actor.load(address)),
                RunAlreadyFinished: () => provide(actor.load(address)),
                RunNotFound: () => provide(actor.load(address)),
                IdempotencyKeyReused: () => provide(actor.load(address)),
                StepNotFound: () => provide(actor.load(address)),
                NotAwaitingApproval: () => provide(actor.load(address))
              })
            )
          /**
           * An event too large for the bus would be as large on every retry: a step's completion or failure becomes a
           * small StepFailed (code payload_too_large, the sizes only, not retryable), anything else fails the run.
           * Either way the run ends; the step's effect is not performed again.
           */
          const exec = (command: RunCommand, key: string | ((seq: number) => string)) =>
            execOnce(command, key).pipe(
              Effect.catchTag("EventTooLarge", (e) => {
                const error = tooLargeError(whatOf(command), e)
                return command._tag === "CompleteStep" || command._tag === "FailStep"
                  ? execOnce(
                    { _tag: "FailStep", stepId: command.stepId, attempt: command.attempt, error, retryable: false },
                    `${runId}:${command.stepId}:${command.attempt}:failed`
                  )
                  : execOnce({ _tag: "FailRun", error }, `${runId}:failed`)
              })
            )
          const complete = (step: Step, p: Performed, durationMs: number) =>
            exec({
              _tag: "CompleteStep",
              stepId: step.stepId,
              attempt: step.attempt,
              result: p.result,
              tokensIn: p.tokensIn,
              tokensOut: p.tokensOut,
              costUsd: p.costUsd,
              durationMs,
              ...(p.cachedTokensIn === undefined ? {} : { cachedTokensIn: p.cachedTokensIn }),
              ...(p.reasoningTokens === undefined ? {} : { reasoningTokens: p.reasoningTokens }),
              ...(p.route === undefined ? {} : { route: p.route })
            }, `${runId}:${step.stepId}:${step.attempt}:completed`).pipe(Effect.annotateSpans({ step_id: step.stepId }))
          const fail = (step: Step, error: ErrorInfo, retryAt: number | null, route?: Route) =>
            exec({
              _tag: "FailStep",
              stepId: step.stepId,
              attempt: step.attempt,
              error,
              retryable: retryAt !== null,
              ...(retryAt === null ? {} : { retryAt }),
              ...(route === undefined ? {} : { route })
            }, `${runId}:${step.stepId}:${step.attempt}:failed`).pipe(Effect.annotateSpans({ step_id: step.stepId }))
          /** Sleeps until `until` unless a cancel comes first; true when cancelled. */
          const sleepUntil = (until: number) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.sleep(Duration.millis(Math.max(0, until - now))).pipe(
                Effect.as(false),
                Effect.raceFirst(Effect.as(Deferred.await(cancelled), true))
              ))

          for (let i = 0; i < MAX_ACTIONS; i++) {
            const now = yield* Clock.currentTimeMillis
            if (loaded.state.status === "new") return { _tag: "Finished", state: loaded.state } as Outcome
            const action = Plan.next(loaded.state)
            switch (action._tag) {
              case "Done":
                return { _tag: "Finished", state: loaded.state } as Outcome
              case "Succeed":
                loaded = yield* exec({ _tag: "SucceedRun", output: action.output }, `${runId}:succeeded`)
                continue
              case "Fail":
                loaded = yield* exec({ _tag: "FailRun", error: action.error }, `${runId}:failed`)
                continue
              case "Wait": {
                const step = action.step
                const request = step.request
                if (request._tag === "agent") {
                  const depth = (loaded.state.parent?.depth ?? 0) + 1
                  if (depth > Plan.MAX_RUN_DEPTH) {
                    const output = `error: child runs nest at most ${Plan.MAX_RUN_DEPTH} deep; ${request.agentName} was not started`
                    loaded = yield* complete(step, { result: { _tag: "tool", callId: request.call.id, output }, tokensIn: 0, tokensOut: 0, costUsd: 0 }, 0)
                    continue
                  }
                  const child = yield* runs.startChild({
                    tenant,
                    runId: request.childRunId,
                    agentName: request.agentName,
                    input: request.call.arguments,
                    parent: { tenant, runId, stepId: step.stepId, depth }
                  }).pipe(Effect.result)
                  if (Result.isFailure(child)) {
                    if (child.failure._tag === "EventTooLarge") {
                      loaded = yield* fail(step, tooLargeError(`the input of child run ${request.childRunId}`, child.failure), null)
                      continue
                    }
                    const reason = child.failure._tag === "AgentNotFound" || child.failure._tag === "AgentVersionNotFound"
                      ? child.failure.message
                      : null
                    if (reason === null) return yield* Effect.fail(child.failure as Actor.ExecuteError<never>)
                    loaded = yield* complete(step, { result: { _tag: "tool", callId: request.call.id, output: `error: ${reason}` }, tokensIn: 0, tokensOut: 0, costUsd: 0 }, 0)
                    continue
                  }
                  const c = child.success
                  if (!isTerminal(c)) return { _tag: "Parked", dueAt: now + CHILD_POLL_MS } as Outcome
                  const output = c.status === "succeeded"
                    ? (typeof c.output === "string" ? c.output : JSON.stringify(c.output))
                    : `error: child run ${c.runId} ${c.status}: ${c.error?.message ?? ""}`
                  loaded = yield* complete(step, {
                    result: { _tag: "tool", callId: request.call.id, output },
                    tokensIn: c.tokensIn,
                    tokensOut: c.tokensOut,
                    costUsd: c.costUsd
                  }, 0)
                  continue
                }
                const until = action.until ?? now + CHILD_POLL_MS
                if (until > now) {
                  if (until - now > PARK_AFTER_MS) return { _tag: "Parked", dueAt: until } as Outcome
                  if (yield* sleepUntil(until)) {
                    loaded = yield* provide(actor.load(address))
                    continue
                  }
                  continue
                }
                if (request._tag === "approval") {
                  loaded = yield* fail(step, { code: "approval_expired", message: `nobody approved step ${step.stepId} before it expired` }, null)
                } else if (request._tag === "sleep") {
                  loaded = yield* complete(step, { result: { _tag: "tool", callId: request.call.id, output: `slept ${request.seconds} seconds` }, tokensIn: 0, tokensOut: 0, costUsd: 0 }, Math.round(request.seconds * 1000))
                }
                continue
              }
              case "Execute": {
                if (action.notBefore !== null && action.notBefore > now) {
                  if (action.notBefore - now > PARK_AFTER_MS) return { _tag: "Parked", dueAt: action.notBefore } as Outcome
                  if (yield* sleepUntil(action.notBefore)) loaded = yield* provide(actor.load(address))
                  continue
                }
                if (isToolCall(action.request) && stepOf(loaded.state, action.stepId) === undefined) {
                  const admitted = yield* Effect.result(budgets.admitToolCall(tenant, loaded.state.agentName, runId, toolCallsOf(loaded.state)))
                  if (Result.isFailure(admitted)) {
                    if (admitted.failure._tag !== "BudgetExceeded") return yield* Effect.fail(admitted.failure)
                    loaded = yield* exec({ _tag: "FailRun", error: budgetError(admitted.failure.refusal) }, `${runId}:failed`)
                    continue
                  }
                }
                yield* Failpoints.hit("before-step-start", action.stepId)
                const wakeAt = wakeAtFor(loaded.state, action.request, now)
                loaded = yield* exec(
                  { _tag: "StartStep", stepId: action.stepId, request: action.request, ...(wakeAt === undefined ? {} : { wakeAt }) },
                  (seq) => `${runId}:${action.stepId}:start@${seq}`
                ).pipe(Effect.annotateSpans({ step_id: action.stepId }))
                const step = stepOf(loaded.state, action.stepId)
                if (step === undefined || step.status !== "started") continue
                yield* Failpoints.hit("after-step-start", action.stepId)
                if (Plan.isWaiting(step.request)) continue
                const key = `${runId}:${action.stepId}:${step.attempt}`
                const reserved = step.request._tag === "model"
                  ? yield* Effect.result(reserveFor(tenant, loaded.state, step, key, now))
                  : Result.succeed(null)
                if (Result.isFailure(reserved)) {
                  const e = reserved.failure
                  if (e._tag !== "BudgetExceeded") return yield* Effect.fail(e)
                  loaded = yield* fail(step, budgetError(e.refusal), null)
                  continue
                }
                const hold = reserved.success
                /** Replaces the reservation with what the call cost: settled before the step completes, never after. */
                const settle = (costUsd: number, tokens: number) =>
                  hold === null || hold.scopes.length === 0 ? Effect.void : budgets.settle(hold, { costUsd, tokens })
                const outcome = yield* perform(tenant, loaded.state, step.request, key).pipe(
                  Effect.withSpan("Run.step", {
                    attributes: { step_id: step.stepId, "lantern.step.kind": step.request._tag, "lantern.step.attempt": step.attempt }
                  }),
                  Effect.annotateSpans({ step_id: step.stepId }),
                  Effect.raceFirst(Effect.andThen(Deferred.await(cancelled), Effect.succeed("canceled" as const))),
                  Effect.result
                )
                if (Result.isSuccess(outcome) && outcome.success === "canceled") {
                  yield* settle(0, 0)
                  loaded = yield* provide(actor.load(address))
                  continue
                }
                const finished = yield* Clock.currentTimeMillis
                if (Result.isSuccess(outcome)) {
                  yield* Failpoints.hit("after-effect", action.stepId)
                  const p = outcome.success as Performed
                  yield* settle(p.costUsd, p.tokensIn + p.tokensOut)
                  loaded = yield* complete(step, p, finished - now)
                  yield* Failpoints.hit("after-step-complete", action.stepId)
                } else {
                  yield* settle(0, 0)
                  const { error, route } = outcome.failure
                  const retry = Plan.shouldRetry(loaded.state, error.code, step.attempt)
                  const random = yield* Random.next
                  const retryAt = retry ? finished + Plan.backoffMs(policyOf(loaded.state.spec!), step.attempt, random) : null
                  loaded = yield* fail(step, error, retryAt, route)
                }
                continue
              }
            }
          }
          return yield* Effect.die(new Error(`run ${runId} exceeded ${MAX_ACTIONS} actions`))
        })

      /** Renews the lease every third of its time to live; completes `lost` when another host has it. */
      const keepAlive = (current: { lease: Lease }, lost: Deferred.Deferred<void>) =>
        Effect.gen(function*() {
          const every = Duration.millis(Math.max(50, Math.floor(leases.ttlMs / 3)))
          while (true) {
            yield* Effect.sleep(every)
            // uninterruptible: a renewal that reached the bucket must update our revision, or the release or park
            // that follows an interrupt would be refused as stale and leave the entry to the watchdog
            const renewed = yield* Effect.uninterruptible(Effect.tap(Effect.result(leases.renew(current.lease)), (r) =>
              Effect.sync(() => {
                if (Result.isSuccess(r)) current.lease = r.success
              })))
            if (Result.isSuccess(renewed)) continue
            if (renewed.failure instanceof LeaseLost) {
              yield* Effect.logWarning(`lost the lease of ${current.lease.key}; stopping`)
              yield* Deferred.succeed(lost, undefined)
              return
            }
            yield* Effect.logWarning(`cannot renew lease ${current.lease.key}: ${renewed.failure.message}`)
          }
        })

      const drive = (tenant: string, runId: string) =>
        Effect.gen(function*() {
          // a duplicate work message for a run this host already drives: the lease would let it in again
          const key = `${tenant}.${runId}`
          if (inFlight.has(key)) return { _tag: "Busy", retryInMs: 1_000 } as Outcome
          const cancelled = yield* Deferred.make<void>()
          inFlight.set(key, cancelled)
          const acquired = yield* leases.acquire(tenant, runId).pipe(Effect.onError(() => Effect.sync(() => inFlight.delete(key))))
          if (acquired._tag === "Busy") {
            inFlight.delete(key)
            return { _tag: "Busy", retryInMs: acquired.retryInMs } as Outcome
          }
          const current = { lease: acquired.lease }
          const lost = yield* Deferred.make<void>()
          const renewing = yield* Effect.forkChild(keepAlive(current, lost))
          const outcome = yield* session(tenant, runId, cancelled).pipe(
            Effect.raceFirst(Effect.as(Deferred.await(lost), { _tag: "Lost" } as Outcome)),
            Effect.ensuring(Effect.andThen(Fiber.interrupt(renewing), Effect.sync(() => inFlight.delete(key))))
          )
          // hand the lease back: a finished run leaves the bucket, a waiting one is parked until it is due
          const handBack = outcome._tag === "Finished"
            ? leases.release(current.lease)
            : outcome._tag === "Parked"
            ? leases.park(current.lease, outcome.dueAt)
            : Effect.void
          yield* handBack.pipe(Effect.catchTag("LeaseLost", () => Effect.void))
          // a run that ended gets its signed receipt now; one that could not be issued is issued when first asked for
          if (outcome._tag === "Finished" && isTerminal(outcome.state)) {
            yield* receipts.issue(tenant, runId).pipe(
              Effect.catchCause((cause) => Effect.logWarning(`run ${runId}: receipt not issued yet`, cause))
            )
          }
          // a child run that ended wakes its parent, which is waiting for it
          const parent = outcome._tag === "Finished" && isTerminal(outcome.state) ? outcome.state.parent : null
          if (parent !== null) yield* runs.enqueue(parent.tenant, parent.runId, `child:${runId}:done`)
          return outcome
        }).pipe(
          Effect.withSpan("Run.drive", { attributes: { "lantern.tenant": tenant, "lantern.run": runId } }),
          // every span of the drive (journal reads and appends, budgets, model calls) names its tenant and run
          Effect.annotateSpans({ tenant_id: tenant, run_id: runId })
        )

      return Driver.of({ drive })
    })
  ).pipe(Layer.provide(Tools.layer))
}

export const settingsConfig = Config.all({
  ackWait: Config.Duration("LANTERN_DRIVE_ACK_WAIT").pipe(Config.withDefault(Duration.seconds(15))),
  concurrency: Config.Int("LANTERN_DRIVE_CONCURRENCY").pipe(Config.withDefault(64))
})

export const durable = (settings: Settings): Consumer.Durable => ({
  stream: WORK,
  durable: "run-driver",
  filterSubject: "lantern.work.run.>",
  ackWait: settings.ackWait,
  maxAckPending: settings.concurrency * 4,
  ackPolicy: "explicit"
})

const handle = (driver: Driver["Service"]) => (m: JsMsg) => {
  const [, , , tenant, runId] = m.subject.split(".")
  if (tenant === undefined || runId === undefined) return Effect.succeed(Consumer.Decision.Term({ reason: "bad subject" }))
  const parent = Actor.parentSpan(m.headers?.get("traceparent") || undefined)
  return driver.drive(tenant, runId).pipe(
    parent === null ? (e) => e : Effect.withParentSpan(parent),
    // another host drives the run: look again shortly, in case it parks it before seeing why we were woken
    Effect.map((o) => o._tag === "Busy" ? Consumer.Decision.Nak({ delay: Duration.millis(Math.min(1_000, Math.max(100, o.retryInMs))) }) : Consumer.Decision.Ack()),
    Effect.catch((e): Effect.Effect<Consumer.Decision> =>
      e._tag === "EventTooLarge"
        // even the small event that fails the run did not fit: retrying cannot help
        ? Effect.as(Effect.logError(`run ${runId}: ${e.message}; not retried`), Consumer.Decision.Term({ reason: "event too large" }))
        : Effect.as(Effect.logWarning(`run ${runId}: ${e.message}; retrying later`), Consumer.Decision.Nak({ delay: "2 seconds" }))
    )
  )
}

/** The background consumer that drives queued runs on this host. */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* settingsConfig
    const driver = yield* Driver
    const leases = yield* Leases
    yield* Effect.logInfo(
      `driving runs as ${leases.host} (concurrency ${settings.concurrency}, lease ttl ${leases.ttlMs} ms)`
    )
    yield* Effect.forkScoped(
      Consumer.run(durable(settings), settings.concurrency, handle(driver)).pipe(
        Effect.tapCause((c) => Effect.logWarning("run driver consumer stopped; resubscribing", c)),
        Effect.retry(Schedule.spaced("1 second"))
      )
    )
  })
)
