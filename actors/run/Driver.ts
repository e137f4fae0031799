// Drives runs: takes run ids off the LANTERN_WORK queue, replays each run's journal, and executes the next
// action until the run ends. A completed step is never executed again; a step whose host died mid-way runs
// again as a new attempt. The work message is acked only when the run is terminal, so a dead host's runs
// are redelivered to another host after the ack wait.
import { Clock, Config, Context, Deferred, Duration, Effect, Layer, Result, Schedule } from "effect"
import type { JsMsg } from "@nats-io/jetstream"
import * as Consumer from "../../bus/Consumer.ts"
import { Nats } from "../../bus/Nats.ts"
import { WORK } from "../../bus/Topology.ts"
import type { RunCommand } from "../../schema/Commands.ts"
import type { ErrorInfo, StepRequest, StepResult } from "../../schema/Events.ts"
import * as Actor from "../kernel/Actor.ts"
import { ModelProvider } from "../model/ModelProvider.ts"
import * as Tools from "../model/Tools.ts"
import { type State, stepOf } from "./Decider.ts"
import * as Plan from "./Plan.ts"
import { actor, addressOf } from "./Runs.ts"

export interface Settings {
  /** How long a run may go without a heartbeat from its host before another host takes it over. */
  readonly ackWait: Duration.Input
  readonly concurrency: number
}

interface Performed {
  readonly result: StepResult
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

const MAX_ACTIONS = 10_000

export class Driver extends Context.Service<Driver, {
  /** Drives one run until it is terminal (or until there is nothing this host can do now). */
  readonly drive: (tenant: string, runId: string) => Effect.Effect<void, Actor.ExecuteError<never>>
}>()("lantern/actors/Driver") {
  static readonly layer = Layer.effect(
    Driver,
    Effect.gen(function*() {
      const provider = yield* ModelProvider
      const { nc } = yield* Nats
      const provide = yield* Actor.provider

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

      const perform = (state: State, request: StepRequest, key: string): Effect.Effect<Performed, { error: ErrorInfo; retryable: boolean }> => {
        if (request._tag === "tool") {
          const tool = Tools.find(request.call.name)
          const output = tool === undefined ? `error: unknown tool '${request.call.name}'` : tool.run(request.call.arguments)
          return Effect.succeed({ result: { _tag: "tool", callId: request.call.id, output }, tokensIn: 0, tokensOut: 0, costUsd: 0 })
        }
        return provider.complete({
          model: request.model,
          messages: Plan.conversation(state),
          tools: state.spec?.tools ?? [],
          idempotencyKey: key
        }).pipe(
          Effect.map((r) => ({ result: { _tag: "model" as const, answer: r.answer }, tokensIn: r.tokensIn, tokensOut: r.tokensOut, costUsd: r.costUsd })),
          Effect.mapError((e) => ({ error: { code: "provider_error", message: e.message }, retryable: e.retryable }))
        )
      }

      const drive = (tenant: string, runId: string) =>
        Effect.gen(function*() {
          const address = addressOf(tenant, runId)
          const cancelled = yield* Deferred.make<void>()
          inFlight.set(`${tenant}.${runId}`, cancelled)
          let loaded = yield* provide(actor.load(address))
          // commands refused because the run changed under us (cancel, another host) end in a reload
          const exec = (command: RunCommand, key: string | ((seq: number) => string)) =>
            provide(actor.executeOn(loaded, command, { idempotencyKey: key, correlationId: runId })).pipe(
              Effect.map((o) => o.loaded),
              Effect.catchTags({
                InvalidCommand: () => provide(actor.load(address)),
                RunAlreadyFinished: () => provide(actor.load(address)),
                RunNotFound: () => provide(actor.load(address)),
                IdempotencyKeyReused: () => provide(actor.load(address))
              })
            )
          for (let i = 0; i < MAX_ACTIONS; i++) {
            const action = Plan.next(loaded.state)
            if (action._tag === "Done") return
            if (action._tag === "Succeed") {
              loaded = yield* exec({ _tag: "SucceedRun", output: action.output }, `${runId}:succeeded`)
              continue
            }
            if (action._tag === "Fail") {
              loaded = yield* exec({ _tag: "FailRun", error: action.error }, `${runId}:failed`)
              continue
            }
            loaded = yield* exec({ _tag: "StartStep", stepId: action.stepId, request: action.request }, (seq) => `${runId}:${action.stepId}:start@${seq}`)
            const step = stepOf(loaded.state, action.stepId)
            if (step === undefined || step.status !== "started") continue
            const key = `${runId}:${action.stepId}:${step.attempt}`
            const started = yield* Clock.currentTimeMillis
            const outcome = yield* perform(loaded.state, step.request, key).pipe(
              Effect.raceFirst(Effect.andThen(Deferred.await(cancelled), Effect.succeed("canceled" as const))),
              Effect.result
            )
            if (Result.isSuccess(outcome) && outcome.success === "canceled") {
              loaded = yield* provide(actor.load(address))
              continue
            }
            if (Result.isSuccess(outcome)) {
              const p = outcome.success as Performed
              loaded = yield* exec({
                _tag: "CompleteStep",
                stepId: action.stepId,
                attempt: step.attempt,
                result: p.result,
                tokensIn: p.tokensIn,
                tokensOut: p.tokensOut,
                costUsd: p.costUsd,
                durationMs: (yield* Clock.currentTimeMillis) - started
              }, `${key}:completed`)
            } else {
              loaded = yield* exec({
                _tag: "FailStep",
                stepId: action.stepId,
                attempt: step.attempt,
                error: outcome.failure.error,
                retryable: outcome.failure.retryable
              }, `${key}:failed`)
              if (outcome.failure.retryable) yield* Effect.sleep(Duration.millis(250 * 2 ** step.attempt))
            }
          }
          return yield* Effect.die(new Error(`run ${runId} exceeded ${MAX_ACTIONS} actions`))
        }).pipe(
          Effect.ensuring(Effect.sync(() => inFlight.delete(`${tenant}.${runId}`))),
          Effect.withSpan("Run.drive", { attributes: { "lantern.tenant": tenant, "lantern.run": runId } })
        )

      return Driver.of({ drive })
    })
  )
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
    Effect.as(Consumer.Decision.Ack()),
    Effect.catch((e) =>
      Effect.as(Effect.logWarning(`run ${runId}: ${e.message}; retrying later`), Consumer.Decision.Nak({ delay: "2 seconds" }))
    )
  )
}

/** The background consumer that drives queued runs on this host. */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* settingsConfig
    const driver = yield* Driver
    yield* Effect.forkScoped(
      Consumer.run(durable(settings), settings.concurrency, handle(driver)).pipe(
        Effect.tapCause((c) => Effect.logWarning("run driver consumer stopped; resubscribing", c)),
        Effect.retry(Schedule.spaced("1 second"))
      )
    )
  })
)
