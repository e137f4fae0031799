// A workload's journal (lantern.workload.<tenant>.<id>) as the spawner's modules use it: a command executed through
// the workload's decider (its receipt issued when the command ends it, ADR 0062), and its state loaded. The state
// each command left is kept in memory until the workload ends (ADR 0073): its harness's next report is decided on it
// without reading the journal back; the append's expected sequence catches a host that wrote since, and a
// conflict reads the journal again.
import { Effect } from "effect"
import { Journal } from "../../bus/Journal.ts"
import type { ActorAddress } from "../../schema/Envelope.ts"
import { BusUnavailable } from "../../schema/Errors.ts"
import * as W from "../../schema/Workload.ts"
import * as Actor from "../kernel/Actor.ts"
import { Receipts } from "../receipts/Receipts.ts"
import * as Decider from "./Decider.ts"

export const addressOf = (tenant: string, id: string): ActorAddress => ({ type: "workload", tenant, id })

/** Workloads whose last state is kept at most (the oldest is forgotten first; it is read again when needed). */
const MAX_KNOWN = 10_000

/** Journal errors other than the bus being down are defects here: every command below is valid for its state. */
export const orDie = <A, E>(effect: Effect.Effect<A, E>) =>
  effect.pipe(Effect.catch((e) => e instanceof BusUnavailable ? Effect.fail(e) : Effect.die(e))) as Effect.Effect<
    A,
    BusUnavailable
  >

export const make = Effect.gen(function*() {
  const journal = yield* Journal
  const receipts = yield* Receipts
  const run = yield* Actor.provider

  /** The state the last command here left, per workload still running (insertion order: oldest first). */
  const known = new Map<string, Actor.Loaded<Decider.State>>()
  const keyOf = (tenant: string, id: string) => `${tenant}.${id}`
  /** Keeps what `outcome` left, unless the workload has ended or the append was a re-send (memory may be behind). */
  const remember = (tenant: string, id: string, outcome: Actor.Outcome<Decider.State, W.WorkloadEvent>) => {
    const key = keyOf(tenant, id)
    known.delete(key)
    if (outcome.duplicates > 0 || Decider.isFinished(outcome.loaded.state)) return
    known.set(key, outcome.loaded)
    if (known.size > MAX_KNOWN) known.delete(known.keys().next().value!)
  }

  // the command that ends a workload issues its receipt (ADR 0062): once, the first host's (the bucket keeps the
  // first written); one that failed here is issued by the first reader of GET /v1/workloads/{id}/receipt
  const execute = (tenant: string, id: string, command: Decider.Command, key: string) => {
    const actor = Actor.make(Decider.decider(id))
    const meta = { idempotencyKey: key, correlationId: id }
    const last = known.get(keyOf(tenant, id))
    return run(
      last === undefined ? actor.execute(addressOf(tenant, id), command, meta) : actor.executeOn(last, command, meta)
    ).pipe(
      Effect.tap((outcome) => Effect.sync(() => remember(tenant, id, outcome))),
      Effect.tapError(() => Effect.sync(() => known.delete(keyOf(tenant, id)))),
      Effect.tap((outcome) =>
        outcome.appended.some((e) => W.TERMINAL_WORKLOAD_EVENTS.has(e._tag))
          ? receipts.issueWorkload(tenant, id).pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning(`workload ${id}: its receipt was not issued now (it will be when asked for)`, cause)
            )
          )
          : Effect.void
      )
    )
  }

  const load = (tenant: string, id: string) =>
    run(journal.read(addressOf(tenant, id))).pipe(
      Effect.mapError((e) =>
        e._tag === "BusUnavailable" ? e : new BusUnavailable({ operation: "read workload", reason: e.message })
      ),
      Effect.map((stored) => ({
        state: stored.reduce((s, x) => Decider.evolve(s, x.event as W.WorkloadEvent), Decider.initialState),
        createdAt: stored[0]?.envelope.at ?? null,
        lastSeq: stored.length === 0 ? 0 : stored[stored.length - 1]!.seq
      }))
    )

  return { run, execute, load, remember }
})

export type WorkloadJournal = Effect.Success<typeof make>
