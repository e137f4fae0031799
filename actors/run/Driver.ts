// Drives runs: takes run ids off the LANTERN_WORK queue, takes the run's lease, replays its journal and
// interprets its decisions (actors/run/Interpret.ts) until the run ends or waits (a timer, an approval, a child
// run, a retry backoff), then parks it in the lease bucket for the watchdog to wake. A completed step is never
// executed again; a step whose host died runs again under the same attempt and idempotency key. Losing the
// lease stops the drive.
import { Config, Context, Deferred, Duration, Effect, FiberSet, Layer, Schedule } from "effect"
import * as Consumer from "../../bus/Consumer.ts"
import { type Acquired, Leases } from "../../bus/Leases.ts"
import { Nats } from "../../bus/Nats.ts"
import { WORK } from "../../bus/Topology.ts"
import * as Actor from "../kernel/Actor.ts"
import * as Fibers from "../kernel/Fibers.ts"
import { Receipts } from "../receipts/Receipts.ts"
import { Tools } from "../model/Tools.ts"
import { HttpTools } from "../tools/Http.ts"
import { isTerminal } from "./Decider.ts"
import * as Interpret from "./Interpret.ts"
import * as Dispatch from "./Dispatch.ts"
import { Runs } from "./Runs.ts"

export type { Outcome } from "./Interpret.ts"
type Outcome = Interpret.Outcome

export interface Settings {
  /** How long a work message may go without a heartbeat from its host before it is redelivered. */
  readonly ackWait: Duration.Input
  /** Runs driven at once from the work queue. */
  readonly concurrency: number
  /** Drive runs started on this host here (up to `localSlots` of them) rather than queue them for any host. */
  readonly local: boolean
  /**
   * Runs started on this host driven here at once (ADR 0068): more than the queue's, as such a run skips the
   * queue's round trips and the journal read (ADR 0039) that a run overflowing to the queue pays.
   */
  readonly localSlots: number
}

export class Driver extends Context.Service<Driver, {
  /**
   * Drives one run while this host holds its lease, until it ends, waits, or the lease is lost. `start`: a run this
   * host just started, with its lease and journal (actors/run/Dispatch.ts): nothing is acquired or read.
   */
  readonly drive: (
    tenant: string,
    runId: string,
    start?: Dispatch.Start
  ) => Effect.Effect<Outcome, Actor.ExecuteError<never>>
}>()("lantern/actors/Driver") {
  static readonly layer = Layer.effect(
    Driver,
    Effect.gen(function*() {
      const { nc } = yield* Nats
      const leases = yield* Leases
      const runs = yield* Runs
      const receipts = yield* Receipts
      const session = yield* Interpret.make

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

      const drive = (tenant: string, runId: string, start?: Dispatch.Start) =>
        Effect.gen(function*() {
          // a duplicate work message for a run this host already drives: the lease would let it in again
          const key = `${tenant}.${runId}`
          if (inFlight.has(key)) return { _tag: "Busy", retryInMs: 1_000 } as Outcome
          const cancelled = yield* Deferred.make<void>()
          inFlight.set(key, cancelled)
          const acquired: Acquired = start !== undefined
            ? { _tag: "Acquired", lease: start.lease }
            : yield* leases.acquire(tenant, runId).pipe(
              Effect.onError(() => Effect.sync(() => inFlight.delete(key)))
            )
          if (acquired._tag === "Busy") {
            inFlight.delete(key)
            return { _tag: "Busy", retryInMs: acquired.retryInMs } as Outcome
          }
          const current = { lease: acquired.lease }
          // no renewals: the lease holds while this host lives; it is lost only if another host takes the run over
          // (it found this host dead: a bus outage, a stall), and then the drive stops at once
          const lost = Effect.andThen(
            leases.lost(current.lease),
            Effect.as(Effect.logWarning(`lost the lease of ${key}; stopping`), { _tag: "Lost" } as Outcome)
          )
          const outcome = yield* session(tenant, runId, cancelled, start).pipe(
            Effect.raceFirst(lost),
            Effect.ensuring(Effect.sync(() => inFlight.delete(key)))
          )
          // hand the lease back: a finished run leaves the bucket, a waiting one is parked until it is due
          const handBack = outcome._tag === "Finished"
            ? leases.release(current.lease)
            : outcome._tag === "Parked"
            ? leases.park(current.lease, outcome.dueAt)
            : Effect.void
          // a run that ended gets its signed receipt now; one that could not be issued is issued when first asked for
          const receipt = outcome._tag === "Finished" && isTerminal(outcome.state)
            ? receipts.issue(tenant, runId, outcome.journal).pipe(
              Effect.catchCause((cause) => Effect.logWarning(`run ${runId}: receipt not issued yet`, cause))
            )
            : Effect.void
          // neither waits for the other: the writes after a run's end are on the bus at once (the next run's writes
          // queue behind them on the server's disk)
          yield* Effect.all([handBack.pipe(Effect.catchTag("LeaseLost", () => Effect.void)), receipt], {
            concurrency: 2,
            discard: true
          })
          // a child run that ended wakes its parent, which is waiting for it
          const parent = outcome._tag === "Finished" && isTerminal(outcome.state) ? outcome.state.parent : null
          if (parent !== null) yield* runs.enqueue(parent.tenant, parent.runId, `child:${runId}:done`)
          return outcome
        }).pipe(
          Effect.withSpan("Run.drive", { attributes: { "lantern.tenant": tenant, "lantern.run": runId } }, {
            captureStackTrace: false
          }),
          // every span of the drive (journal reads and appends, budgets, model calls) names its tenant and run
          Effect.annotateSpans({ tenant_id: tenant, run_id: runId })
        )

      return Driver.of({ drive })
    })
  ).pipe(Layer.provide(Layer.merge(Tools.layer, HttpTools.layer)))
}

export const settingsConfig = Config.all({
  ackWait: Config.Duration("LANTERN_DRIVE_ACK_WAIT").pipe(Config.withDefault(Duration.seconds(15))),
  concurrency: Config.Int("LANTERN_DRIVE_CONCURRENCY").pipe(Config.withDefault(64)),
  local: Config.Boolean("LANTERN_DRIVE_LOCAL").pipe(Config.withDefault(true)),
  localSlots: Config.Int("LANTERN_DRIVE_LOCAL_SLOTS").pipe(Config.withDefault(256))
})

export const durable = (settings: Settings): Consumer.Durable => ({
  stream: WORK,
  durable: "run-driver",
  filterSubject: "lantern.work.run.>",
  ackWait: settings.ackWait,
  maxAckPending: settings.concurrency * 4,
  ackPolicy: "explicit"
})

const handle = (driver: Driver["Service"]) => (m: Consumer.Message) => {
  const [, , , tenant, runId] = m.subject.split(".")
  if (tenant === undefined || runId === undefined)
    return Effect.succeed(Consumer.Decision.Term({ reason: "bad subject" }))
  const parent = Actor.parentSpan(m.header("traceparent"))
  return driver.drive(tenant, runId).pipe(
    parent === null ? (e) => e : Effect.withParentSpan(parent),
    // another host drives the run: look again shortly, in case it parks it before seeing why we were woken
    Effect.map((o) =>
      o._tag === "Busy"
        ? Consumer.Decision.Nak({ delay: Duration.millis(Math.min(1_000, Math.max(100, o.retryInMs))) })
        : Consumer.Decision.Ack()
    ),
    Effect.catch((e): Effect.Effect<Consumer.Decision> =>
      e._tag === "EventTooLarge"
        // even the small event that fails the run did not fit: retrying cannot help
        ? Effect.as(
          Effect.logError(`run ${runId}: ${e.message}; not retried`),
          Consumer.Decision.Term({ reason: "event too large" })
        )
        : Effect.as(
          Effect.logWarning(`run ${runId}: ${e.message}; retrying later`),
          Consumer.Decision.Nak({ delay: "2 seconds" })
        )
    ),
    // outermost: it takes the consumer's context as it is (flattened once, then cached), not one with this drive's
    // parent span added, which it would copy
    Fibers.deep
  )
}

/** The background consumer that drives queued runs on this host. */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* settingsConfig
    const driver = yield* Driver
    const leases = yield* Leases
    yield* Effect.logInfo(
      `driving runs as ${leases.host} (concurrency ${settings.concurrency}, ${
        settings.local ? settings.localSlots : 0
      } slots for runs started here)`
    )
    // runs started on this host are driven here, in slots of their own (actors/run/Dispatch.ts): a drive that
    // fails hands the run to the work queue, retried until the bus takes it
    const dispatch = yield* Dispatch.Dispatch
    const runs = yield* Runs
    const fork = yield* FiberSet.makeRuntime<never>()
    yield* dispatch.install((tenant, runId, start) => {
      const parent = Actor.parentSpan(start.traceparent ?? undefined)
      fork(
        driver.drive(tenant, runId, start).pipe(
          parent === null ? (e) => e : Effect.withParentSpan(parent),
          Effect.catch((e) =>
            Effect.andThen(
              Effect.logWarning(`run ${runId}: ${e.message}; queued to be driven again`),
              runs.enqueue(tenant, runId, `retry:${runId}:${start.lease.revision}`).pipe(
                Effect.retry(Schedule.spaced("1 second"))
              )
            )
          ),
          Effect.ensuring(Effect.sync(() => dispatch.release())),
          // outermost, as for the queue's drives
          Fibers.deep
        )
      )
    }, settings.local ? settings.localSlots : 0)
    yield* Effect.forkScoped(
      Consumer.run(durable(settings), settings.concurrency, handle(driver)).pipe(
        Effect.tapCause((c) => Effect.logWarning("run driver consumer stopped; resubscribing", c)),
        Effect.retry(Schedule.spaced("1 second"))
      )
    )
  })
)
