// The budget actor's shell: one journal per scope (`lantern.budget.<tenant>._tenant` for the tenant,
// `lantern.budget.<tenant>.<agent>` for one agent). A model call reserves its worst case in every scope that
// has a budget (the agent's, then the tenant's) before it is made, and settles to its actual cost after; a
// run is counted against the day's runs before it starts. Appends are optimistic (the journal's sequence is
// the lock across hosts); on one host, decisions on a scope are serialised so they do not conflict with each
// other. Scopes without a budget are never written.
import { createHash } from "node:crypto"
import { Clock, Context, Effect, Layer, Result, Semaphore } from "effect"
import { Journal, subjectOf } from "../../bus/Journal.ts"
import { Leases } from "../../bus/Leases.ts"
import * as Subjects from "../../bus/Subjects.ts"
import { streamOf } from "../../bus/Topology.ts"
import type { BudgetLimits } from "../../schema/Budget.ts"
import * as Canonical from "../../schema/Canonical.ts"
import type { ActorAddress } from "../../schema/Envelope.ts"
import { BudgetExceeded } from "../../schema/Errors.ts"
import type { BudgetEvent, BudgetRefusal, BudgetSeed } from "../../schema/Events.ts"
import * as Actor from "../kernel/Actor.ts"
import { fold } from "../kernel/Decider.ts"
import type { Quote } from "../model/ModelProvider.ts"
import * as Caps from "./Caps.ts"
import * as Decider from "./Decider.ts"
import * as Scopes from "./Scopes.ts"
import { addressOf, type Scope, scopeName, type View } from "./Scopes.ts"

export const actor = Actor.make(Decider.decider)

/** Whether the watch's last sequence of a scope (`watched`) and this host's copy of it say it has no journal. */
const noJournal = (watched: number | null | undefined, cached: Actor.Loaded<Decider.State> | undefined) =>
  watched === 0 && (cached === undefined || cached.seq === 0)

/** What `applying` answers where no budget applies. */
const NO_BUDGETS: ReadonlyArray<{ readonly scope: Scope; readonly state: Decider.State }> = []

// where budgets apply, where the budget routes have always imported it from
export { addressOf, agentScope, type Scope, scopeName, TENANT, type View } from "./Scopes.ts"

/** What a model call holds until it settles. */
export interface Hold {
  readonly tenant: string
  readonly runId: string
  readonly reservationId: string
  readonly scopes: ReadonlyArray<Scope>
}

/** What a run has used so far, for its per-run caps. */
export type RunUsage = Caps.RunUsage

export interface ReserveRequest {
  readonly tenant: string
  readonly agentName: string
  readonly runId: string
  /** `runId:stepId:attempt`: a restart of the same attempt finds its reservation again. */
  readonly reservationId: string
  /** The call's worst case: computed only when a budget applies (scopes without one cost nothing to check). */
  readonly quote: Effect.Effect<Quote>
  readonly run: RunUsage
  /** When the reservation stops counting if its host never settles it. */
  readonly expiresAt: number
}

export class Budgets extends Context.Service<Budgets, {
  /** Sets the caps; `projected` (today's usage from the projections) seeds what the journal has not counted. */
  readonly set: (
    tenant: string,
    scope: Scope,
    limits: BudgetLimits,
    by: string,
    projected?: BudgetSeed
  ) => Effect.Effect<View, Actor.ExecuteError<never>>
  readonly view: (tenant: string, scope: Scope) => Effect.Effect<View, Actor.ReadError>
  /** The budgets that apply to a run of `agentName`: the agent's and the tenant's, where set. */
  readonly applying: (
    tenant: string,
    agentName: string
  ) => Effect.Effect<ReadonlyArray<{ readonly scope: Scope; readonly state: Decider.State }>, Actor.ReadError>
  /**
   * Counts a new run against the day in every budgeted scope; refuses it when a hard cap leaves no room.
   * `firstCall` (its first model call's worst case) is computed only when a budget applies.
   */
  readonly admitRun: (
    tenant: string,
    agentName: string,
    runId: string,
    firstCall: Effect.Effect<Quote>
  ) => Effect.Effect<void, BudgetExceeded | Actor.ExecuteError<never>>
  /** Holds the call's worst case in every budgeted scope; a hold of no scopes when none has a budget. */
  readonly reserve: (request: ReserveRequest) => Effect.Effect<Hold, BudgetExceeded | Actor.ExecuteError<never>>
  /** Replaces the hold with the call's actual cost (0 for a call that failed without an answer). */
  readonly settle: (
    hold: Hold,
    actual: { readonly costUsd: number; readonly tokens: number }
  ) => Effect.Effect<void, Actor.ExecuteError<never>>
  /**
   * Admits one more tool call of a run that made `made` of them: refused when a hard `maxToolCallsPerRun` leaves no
   * room, a soft one passed is alerted and the call let through.
   */
  readonly admitToolCall: (
    tenant: string,
    agentName: string,
    runId: string,
    made: number
  ) => Effect.Effect<void, BudgetExceeded | Actor.ExecuteError<never>>
  /** Journals a soft cap passed by a run (per-run caps, which only the run's driver sees). */
  readonly alert: (
    tenant: string,
    scope: Scope,
    refusal: BudgetRefusal,
    runId: string
  ) => Effect.Effect<void, Actor.ExecuteError<never>>
  /** The hard cap that spending `usd` more (and `tokens`) on one new run would break, if any; changes nothing. */
  readonly wouldExceed: (
    tenant: string,
    agentName: string,
    usd: number,
    tokens: number
  ) => Effect.Effect<BudgetRefusal | null, Actor.ReadError>
}>()("lantern/actors/Budgets") {
  static readonly layer = Layer.effect(
    Budgets,
    Effect.gen(function*() {
      const journal = yield* Journal
      const leases = yield* Leases
      const provide = yield* Actor.provider
      // the latest state this host knows of each scope; refreshed from the journal's tail before each use
      const known = new Map<string, Actor.Loaded<Decider.State>>()
      // which scopes have a journal at all: most have none (no budget was ever set), and need no request to say so
      const present = yield* Subjects.watch(streamOf.budget, "lantern.budget.>", "budgets")
      const locks = new Map<string, Semaphore.Semaphore>()
      const keyOf = (a: ActorAddress) => `${a.tenant}.${a.id}`
      const lockOf = (a: ActorAddress) => {
        const key = keyOf(a)
        let lock = locks.get(key)
        if (lock === undefined) {
          lock = Semaphore.makeUnsafe(1)
          locks.set(key, lock)
        }
        return lock
      }

      /** Whether the scope has no journal, as the subject watch tells and this host's last write agrees. */
      const unbudgeted = (address: ActorAddress): boolean =>
        noJournal(present.lastSeq(subjectOf(address)), known.get(keyOf(address)))

      /**
       * The scope as of its journal's last event. The subject watch knows which scopes have a journal and the last
       * sequence of each: no request for a scope without one (most: no budget was ever set there), none for one this
       * host already holds at the watched sequence, a tail read when it moved. The bus is asked for the last
       * sequence only when the watch cannot say (not current, a journal listed but not seen since it restarted) or
       * trails this host's own last write; the answer is taught back to the watch.
       */
      const fresh = (address: ActorAddress): Effect.Effect<Actor.Loaded<Decider.State>, Actor.ReadError> =>
        Effect.gen(function*() {
          const subject = subjectOf(address)
          const cached = known.get(keyOf(address))
          const watched = present.lastSeq(subject)
          if (noJournal(watched, cached)) {
            known.delete(keyOf(address))
            return { address, state: Decider.decider.initialState, seq: 0, events: 0, snapshotEvents: 0 }
          }
          let last: number
          if (typeof watched === "number" && watched > 0 && (cached === undefined || cached.seq <= watched)) {
            last = watched
          } else {
            const generation = present.generation()
            last = yield* journal.lastSeq(address)
            present.learn(subject, last, generation)
          }
          if (cached !== undefined && cached.seq === last) return cached
          if (cached === undefined || cached.seq > last) {
            const loaded = yield* provide(actor.load(address))
            known.set(keyOf(address), loaded)
            return loaded
          }
          const tail = yield* journal.readFrom(address, cached.seq)
          const events = tail.events.map((s) => s.event as BudgetEvent)
          const next: Actor.Loaded<Decider.State> = {
            ...cached,
            state: fold(Decider.decider, events, cached.state),
            seq: tail.events.length === 0 ? cached.seq : tail.events[tail.events.length - 1]!.seq,
            events: cached.events + events.length
          }
          known.set(keyOf(address), next)
          return next
        })

      /**
       * Decides on the scope's fresh state, serialised on this host; other hosts are met by the append's OCC.
       * Idempotency keys are message ids deduplicated across the whole budget stream, so each carries its scope:
       * the agent's and the tenant's settle of one call must not drop each other as duplicates.
       */
      const execute = (address: ActorAddress, command: Decider.Command, key: string | ((seq: number) => string)) =>
        lockOf(address).withPermits(1)(
          Effect.gen(function*() {
            const loaded = yield* fresh(address)
            const scope = keyOf(address)
            const idempotencyKey = typeof key === "string" ? `${scope}:${key}` : (seq: number) => `${scope}:${key(seq)}`
            const outcome = yield* provide(
              actor.executeOn(loaded, command, { idempotencyKey, correlationId: address.id })
            )
            known.set(keyOf(address), outcome.loaded)
            return outcome.loaded.state
          })
        )

      /** For commands the decider never refuses (set, settle, alert): a refusal would be a bug. */
      const accepted = (address: ActorAddress, command: Decider.Command, key: string | ((seq: number) => string)) =>
        execute(address, command, key).pipe(Effect.catchTag("BudgetExceeded", (e) => Effect.die(e)))

      const applying = (tenant: string, agentName: string) =>
        // no scope that applies has a journal (most runs: no budget was ever set): nothing to read, no fiber forked
        Scopes.applying(agentName).every((scope) => unbudgeted(addressOf(tenant, scope)))
          ? Effect.succeed(NO_BUDGETS)
          : Effect.map(
            Effect.forEach(Scopes.applying(agentName), (scope) =>
              Effect.map(fresh(addressOf(tenant, scope)), (l) => ({ scope, state: l.state })), {
              concurrency: 2
            }),
            (all) =>
              all.filter((s) =>
                s.state.limits !== null
              )
          )

      const settleIn = (
        hold: Hold,
        scopes: ReadonlyArray<Scope>,
        actual: { readonly costUsd: number; readonly tokens: number }
      ) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          yield* Effect.forEach(scopes, (scope) =>
            accepted(
              addressOf(hold.tenant, scope),
              {
                _tag: "Settle",
                reservationId: hold.reservationId,
                runId: hold.runId,
                costUsd: actual.costUsd,
                tokens: actual.tokens,
                now
              },
              `settle:${hold.reservationId}`
            ), { discard: true })
        })

      /** The budgets that apply, as the per-run policy reads them. */
      const limited = (budgets: ReadonlyArray<{ readonly scope: Scope; readonly state: Decider.State }>) =>
        budgets.map(({ scope, state }) => ({ scope, name: scopeName(scope), limits: state.limits! }))

      const alertIn = (tenant: string, scope: Scope, refusal: BudgetRefusal, runId: string, key: string) =>
        Effect.gen(function*() {
          yield* accepted(
            addressOf(tenant, scope),
            {
              _tag: "Alert",
              cap: refusal.cap,
              limit: refusal.limit,
              value: Caps.alertValue(refusal),
              runId,
              now: yield* Clock.currentTimeMillis
            },
            key
          )
        })

      /** Journals the soft caps a verdict passed, each once per `keyPrefix` and cap. */
      const alertAll = (tenant: string, runId: string, verdict: Caps.RunVerdict<Scope>, keyPrefix: string) =>
        Effect.forEach(
          verdict.alerts,
          ({ refusal, scope }) => alertIn(tenant, scope, refusal, runId, `${keyPrefix}:${refusal.cap}`),
          { discard: true }
        )

      return Budgets.of({
        set: (tenant, scope, limits, by, projected) =>
          Effect.gen(function*() {
            const state = yield* accepted(
              addressOf(tenant, scope),
              {
                _tag: "SetBudget",
                scope: scopeName(scope),
                limits,
                by,
                ...(projected === undefined ? {} : { projected })
              },
              // the same caps set twice at one position are one change; different ones must not dedupe
              (seq: number) =>
                `set@${seq}:${
                  createHash("sha256").update(Canonical.stringify({ limits, by })).digest("hex").slice(0, 16)
                }`
            )
            return Scopes.viewOf(scope, state, yield* Clock.currentTimeMillis)
          }),
        view: (tenant, scope) =>
          Effect.gen(function*() {
            const loaded = yield* fresh(addressOf(tenant, scope))
            return Scopes.viewOf(scope, loaded.state, yield* Clock.currentTimeMillis)
          }),
        applying,
        admitRun: (tenant, agentName, runId, firstCallQuote) =>
          Effect.gen(function*() {
            const budgets = yield* applying(tenant, agentName)
            if (budgets.length === 0) return
            const firstCall = yield* firstCallQuote
            // a run whose first call alone breaks a hard per-run cap is refused before it starts (soft ones are
            // alerted at the call itself)
            const { refused } = Caps.perRun(limited(budgets), (name, limits) =>
              Caps.overRun(name, limits, Caps.NO_USAGE, firstCall))
            if (refused !== null)
              return yield* new BudgetExceeded({ refusal: refused })
            const now = yield* Clock.currentTimeMillis
            const count: Decider.Command = { _tag: "CountRun", runId, now, firstCallUsd: firstCall.worstCaseUsd }
            // every scope is asked before any counts, so a refusal by the tenant does not leave the agent's count
            // raised by a run that never starts (a race with another host can still do that: it errs towards refusing)
            for (const { state } of budgets) {
              const decided = Decider.decide(count, state)
              if (Result.isFailure(decided))
                return yield* decided.failure
            }
            for (const { scope } of budgets)
              yield* execute(addressOf(tenant, scope), count, `run:${runId}`)
          }),
        reserve: (request) =>
          Effect.gen(function*() {
            const hold: Hold = {
              tenant: request.tenant,
              runId: request.runId,
              reservationId: request.reservationId,
              scopes: []
            }
            const budgets = yield* applying(request.tenant, request.agentName)
            if (budgets.length === 0) return hold
            const quote = yield* request.quote
            const verdict = Caps.perRun(limited(budgets), (name, limits) =>
              Caps.overRun(name, limits, request.run, quote))
            yield* alertAll(request.tenant, request.runId, verdict, `alert:${request.reservationId}`)
            if (verdict.refused !== null)
              return yield* new BudgetExceeded({ refusal: verdict.refused })
            const held: Array<Scope> = []
            for (const { scope } of budgets) {
              const now = yield* Clock.currentTimeMillis
              const reserved = yield* execute(
                addressOf(request.tenant, scope),
                {
                  _tag: "Reserve",
                  reservationId: request.reservationId,
                  runId: request.runId,
                  amountUsd: quote.worstCaseUsd,
                  tokens: quote.promptTokens + quote.maxTokens,
                  host: leases.host,
                  now,
                  expiresAt: request.expiresAt
                },
                (seq: number) =>
                  `reserve:${request.reservationId}@${seq}`
              ).pipe(
                Effect.as(true),
                // refused by a later scope: give back what the earlier ones hold (released, not settled, so that a
                // restart of this attempt may reserve again), then refuse
                Effect.tapError((e) =>
                  e._tag === "BudgetExceeded"
                    ? Effect.forEach(held, (s) =>
                      Effect.ignore(accepted(
                        addressOf(request.tenant, s),
                        {
                          _tag: "Release",
                          reservationId: request.reservationId,
                          reason: `refused by ${e.refusal.scope}: ${e.refusal.cap}`
                        },
                        (seq: number) => `release:${request.reservationId}@${seq}`
                      )), { discard: true })
                    : Effect.void
                )
              )
              if (reserved) held.push(scope)
            }
            return { ...hold, scopes: held }
          }),
        settle: (hold, actual) => settleIn(hold, hold.scopes, actual),
        admitToolCall: (tenant, agentName, runId, made) =>
          Effect.gen(function*() {
            const verdict = Caps.perRun(limited(yield* applying(tenant, agentName)), (name, limits) =>
              Caps.overToolCalls(name, limits, made, 1))
            yield* alertAll(tenant, runId, verdict, `alert:${runId}`)
            if (verdict.refused !== null)
              return yield* new BudgetExceeded({ refusal: verdict.refused })
          }),
        alert: (tenant, scope, refusal, runId) =>
          alertIn(tenant, scope, refusal, runId, `alert:${runId}:${refusal.cap}`),
        wouldExceed: (tenant, agentName, usd, tokens) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            for (const { state } of yield* applying(tenant, agentName)) {
              const refusal = Decider.wouldExceed(state, usd, tokens, now)
              if (refusal !== null) return refusal
            }
            return null
          })
      })
    })
  )
}
