// The interpreter of a run's decisions: one session of driving a run while this host holds its lease. It asks
// Decisions what to do next and does it (journal a command, start a child, reserve and call, sleep, park),
// feeding each effect's result back to Decisions for the command to journal. It decides nothing itself.
import { Clock, Deferred, Duration, Effect, Fiber, Random, Result, Schedule } from "effect"
import { isBusUnavailable } from "../../bus/Journal.ts"
import { Leases } from "../../bus/Leases.ts"
import * as Retry from "../../bus/Retry.ts"
import type { RunCommand } from "../../schema/Commands.ts"
import type { Stored } from "../../schema/Envelope.ts"
import { Budgets, type Hold } from "../budget/Budgets.ts"
import * as Actor from "../kernel/Actor.ts"
import * as Failpoints from "../kernel/Failpoints.ts"
import type { State } from "./Decider.ts"
import * as Decisions from "./Decisions.ts"
import * as Perform from "./Perform.ts"
import * as GraphWorkflow from "../workflow/Graph.ts"
import { Registry } from "../workflow/Registry.ts"
import * as Session from "./Workflow.ts"
import { actor, addressOf, Runs } from "./Runs.ts"

/** How a drive ended for this host. */
export type Outcome =
  /**
   * The run ended (or never started): `state` is its final state, as this host last saw it; `journal` the whole
   * journal when this drive saw every event of it (it started the run and nothing else appended), else null.
   */
  | { readonly _tag: "Finished"; readonly state: State; readonly journal: ReadonlyArray<Stored> | null }
  | { readonly _tag: "Parked"; readonly dueAt: number }
  | { readonly _tag: "Busy"; readonly retryInMs: number }
  | { readonly _tag: "Lost" }

/** How often a drive's write is tried again while the bus is away (each try waits for the bus itself first). */
const OUTLAST_BUS = Schedule.spaced("1 second")

export const make = Effect.gen(function*() {
  const leases = yield* Leases
  const runs = yield* Runs
  const budgets = yield* Budgets
  const provide = yield* Actor.provider
  const { perform, quote, callModel, quoteRequest } = yield* Perform.make
  const registry = yield* Registry

  /**
   * Drives the run until it ends or waits; completing `cancelled` interrupts the call in flight. `initial`: the
   * state and whole journal of a run this host just started, so nothing is read back.
   */
  return (
    tenant: string,
    runId: string,
    cancelled: Deferred.Deferred<void>,
    initial?: { readonly loaded: Actor.Loaded<State>; readonly stored: ReadonlyArray<Stored> }
  ): Effect.Effect<Outcome, Actor.ExecuteError<never>> =>
    Effect.gen(function*() {
      const address = addressOf(tenant, runId)
      // the journal as appended by this drive, while it has seen all of it; a reload forgets it
      let journal: Array<Stored> | null = initial === undefined ? null : [...initial.stored]
      const reload = Effect.tap(provide(actor.load(address)), () =>
        Effect.sync(() => {
          journal = null
        }))
      let loaded = initial === undefined ? yield* reload : initial.loaded
      /**
       * A write of the drive (a command, a settle) waits for the bus as long as it is away, while this host holds the
       * lease (the drive stops when another host takes the run over): a drive that gave up would be driven again,
       * and a step whose effect was performed but not journaled would be performed again (a model asked again).
       * Each write is idempotent by its key, so an attempt whose answer was lost is not written twice.
       */
      const outlastBus = <A, E extends { readonly _tag: string; readonly message: string }, R>(
        what: string,
        write: Effect.Effect<A, E, R>
      ) =>
        write.pipe(
          Effect.tapError((e) =>
            e._tag === "BusUnavailable"
              ? Effect.logWarning(`run ${runId}: ${what}: ${e.message}; trying again`)
              : Effect.void
          ),
          (e) => Retry.afterFailure(e, { schedule: OUTLAST_BUS, while: isBusUnavailable })
        )
      // the budgets as this drive calls them: each call outlasts the bus as the drive's own writes do (a reserve or
      // an admission that gave up would start the step again; a settle, ask the model again)
      const budget = {
        reserve: (request: Parameters<typeof budgets.reserve>[0]) =>
          outlastBus(`reserving ${request.reservationId}`, budgets.reserve(request)),
        admitToolCall: (...args: Parameters<typeof budgets.admitToolCall>) =>
          outlastBus("admitting a tool call", budgets.admitToolCall(...args)),
        settle: (...args: Parameters<typeof budgets.settle>) =>
          outlastBus(`settling ${args[0].reservationId}`, budgets.settle(...args))
      }
      // commands refused because the run changed under us (cancel, another host) end in a reload
      const execOnce = (command: RunCommand) =>
        outlastBus(
          `journaling ${command._tag}`,
          provide(
            actor.executeOn(loaded, command, { idempotencyKey: Decisions.keyOf(runId, command), correlationId: runId })
          )
        ).pipe(
          Effect.map((o) => {
            journal?.push(...o.stored)
            return o.loaded
          }),
          Effect.catchTags({
            InvalidCommand: () => reload,
            RunAlreadyFinished: () => reload,
            RunNotFound: () => reload,
            IdempotencyKeyReused: () => reload,
            StepNotFound: () => reload,
            NotAwaitingApproval: () => reload
          })
        )
      /** An event too large for the bus is replaced by the small one Decisions says, once. */
      const exec = (command: RunCommand) =>
        execOnce(command).pipe(
          Effect.catchTag("EventTooLarge", (e) => execOnce(Decisions.whenTooLarge(command, e.message))),
          Effect.annotateSpans(
            command._tag === "StartStep" || command._tag === "CompleteStep" || command._tag === "FailStep"
              ? { step_id: command.stepId }
              : {}
          )
        )
      /** Performs a local step (a built-in tool) before anything is journaled: its completion, or null when it failed. */
      const performLocal = (state: State, call: Extract<Decisions.Call, { _tag: "CallTool" }>, startedAt: number) =>
        perform(tenant, state, call).pipe(
          Effect.withSpan("Run.step", {
            attributes: { step_id: call.step.stepId, "lantern.step.kind": "tool", "lantern.step.attempt": 1 }
          }, { captureStackTrace: false }),
          Effect.annotateSpans({ step_id: call.step.stepId }),
          Effect.result,
          Effect.flatMap((performed) =>
            Result.isFailure(performed) ? Effect.succeed(null) : Effect.map(
              Clock.currentTimeMillis,
              (finished) => Decisions.completeLocal(call.step, performed.success, finished - startedAt)
            )
          )
        )
      /**
       * Performs the local steps ready once `done` (completions not journaled yet) is, one after the other (the
       * other built-in calls of the turn), and adds their completions to `done`; a step that is not local, not
       * admitted or fails ends the batch there (ADR 0067).
       */
      const performAhead = (state: State, done: Array<Decisions.CompleteStep>, now: number) =>
        Effect.gen(function*() {
          for (;;) {
            const ahead = Decisions.afterLocal(state, done)
            const more = Decisions.decide(ahead, now)
            if (more._tag !== "Start") return done
            const call = Decisions.local(ahead, more.command, now, leases.graceMs)
            if (call === null) return done
            if (more.toolCallsMade !== null) {
              const admitted = yield* Effect.result(
                budget.admitToolCall(tenant, ahead.agentName, runId, more.toolCallsMade)
              )
              if (Result.isFailure(admitted)) {
                if (admitted.failure._tag !== "BudgetExceeded") return yield* Effect.fail(admitted.failure)
                return done
              }
            }
            const started = yield* Clock.currentTimeMillis
            const completion = yield* performLocal(ahead, call, started)
            if (completion === null) return done
            done.push(completion)
          }
        })
      /**
       * Journals completions performed together as one event; a batch too large for the bus is journaled step by
       * step instead, each as it would have been alone.
       */
      const journalLocal = (done: ReadonlyArray<Decisions.CompleteStep>) =>
        done.length === 1 ? exec(done[0]!) : execOnce(Decisions.completeLocals(done)).pipe(
          Effect.catchTag("EventTooLarge", () =>
            Effect.gen(function*() {
              for (const completion of done) loaded = yield* exec(completion)
              return loaded
            }))
        )
      /**
       * Journals a model step's answer (`done[0]`) with what it leads to: the built-in calls it asked for, performed
       * already (`done` after it: one StepsCompleted, ADR 0075), or the run's end when the answer ends it (one
       * RunSucceeded, ADR 0077); otherwise alone. An end too large for the bus with the answer is journaled after it.
       */
      const journalAnswer = (done: ReadonlyArray<Decisions.CompleteStep>, now: number) => {
        if (done.length > 1) return journalLocal(done)
        const answer = done[0]!
        const next = Decisions.decide(Decisions.afterLocal(loaded.state, done), now)
        if (next._tag !== "Succeed" || next.command._tag !== "SucceedRun") return exec(answer)
        const { _tag, ...step } = answer
        return execOnce({ ...next.command, steps: [step] }).pipe(Effect.catchTag("EventTooLarge", () => exec(answer)))
      }
      /** Replaces a reservation with what its call cost (nothing to do without one, or with no budget in it). */
      const settleHold = (hold: Hold | null, costUsd: number, tokens: number) =>
        hold === null || hold.scopes.length === 0 ? Effect.void : budget.settle(hold, { costUsd, tokens })
      /**
       * A step's call: reserved against the budgets (a model call), then made unless the run is cancelled first.
       * Refused: a budget would be exceeded, and nothing was called.
       */
      const makeCall = (call: Exclude<Decisions.Call, { _tag: "Wait" }>, state: State) =>
        Effect.gen(function*() {
          const step = call.step
          const hold = call._tag === "CallModel"
            ? yield* Effect.result(budget.reserve({
              tenant,
              agentName: state.agentName,
              runId,
              reservationId: call.key,
              quote: quote(tenant, state, call),
              run: call.usage,
              expiresAt: call.reserveUntil
            }))
            : Result.succeed(null)
          if (Result.isFailure(hold)) {
            const e = hold.failure
            if (e._tag !== "BudgetExceeded") return yield* Effect.fail(e)
            return { _tag: "Refused", refusal: e.refusal } as const
          }
          const outcome = yield* perform(tenant, state, call).pipe(
            Effect.withSpan("Run.step", {
              attributes: {
                step_id: step.stepId,
                "lantern.step.kind": step.request._tag,
                "lantern.step.attempt": step.attempt
              }
            }, { captureStackTrace: false }),
            Effect.annotateSpans({ step_id: step.stepId }),
            Effect.raceFirst(Effect.andThen(Deferred.await(cancelled), Effect.succeed("canceled" as const))),
            Effect.result
          )
          if (Result.isSuccess(outcome) && outcome.success === "canceled") {
            return { _tag: "Canceled", hold: hold.success } as const
          }
          return {
            _tag: "Made",
            hold: hold.success,
            outcome: outcome as Result.Result<Decisions.Performed, Decisions.Failure>
          } as const
        })
      /** What a call made for nothing cost, settled: what it used when it was made, else nothing. */
      const settleMade = (made: Effect.Success<ReturnType<typeof makeCall>>) =>
        made._tag === "Refused"
          ? Effect.void
          : made._tag === "Canceled" || Result.isFailure(made.outcome)
          ? settleHold(made.hold, 0, 0)
          : settleHold(
            made.hold,
            made.outcome.success.costUsd,
            made.outcome.success.tokensIn + made.outcome.success.tokensOut
          )
      /** Sleeps until `until` unless a cancel comes first; true when cancelled. */
      const sleepUntil = (until: number) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sleep(Duration.millis(Math.max(0, until - now))).pipe(
            Effect.as(false),
            Effect.raceFirst(Effect.as(Deferred.await(cancelled), true))
          ))

      // a code-first workflow's code decides what its run does (actors/run/Workflow.ts)
      const workflow = loaded.state.workflow
      if (workflow !== null && loaded.state.status === "running") {
        // a graph agent's run compiles the graph its version pinned (ADR 0042); code comes from the registry
        const graph = GraphWorkflow.isGraph(workflow.name) ? loaded.state.spec?.workflow : undefined
        const definition = graph !== undefined
          ? Result.succeed(GraphWorkflow.compile(graph, loaded.state.agentName))
          : yield* Effect.result(registry.load(workflow))
        if (Result.isFailure(definition)) {
          const e = definition.failure
          if (e._tag === "BusUnavailable") return yield* Effect.fail(e)
          loaded = yield* exec({ _tag: "FailRun", error: { code: "workflow_code_unavailable", message: e.message } })
          return { _tag: "Finished", state: loaded.state, journal } as Outcome
        }
        const ended = yield* Session.drive(definition.success, {
          tenant,
          runId,
          state: () => loaded.state,
          exec: (command) =>
            Effect.map(exec(command), (l) => {
              loaded = l
            }),
          // a model call of the code: reserved against the budgets like an agent's, then made, then settled
          llm: (stepId, attempt, request, timeoutMs) =>
            Effect.gen(function*() {
              const key = `${runId}:${stepId}:${attempt}`
              const modelRequest = { ...request, idempotencyKey: key, tenant }
              const state = loaded.state
              const now = yield* Clock.currentTimeMillis
              const hold = yield* Effect.result(budget.reserve({
                tenant,
                agentName: state.agentName,
                runId,
                reservationId: key,
                quote: quoteRequest(modelRequest),
                run: { costUsd: state.costUsd, tokens: state.tokensIn + state.tokensOut, toolCalls: 0 },
                expiresAt: now + timeoutMs + leases.graceMs
              }))
              if (Result.isFailure(hold)) {
                const e = hold.failure
                if (e._tag !== "BudgetExceeded") return yield* Effect.fail(e)
                return { _tag: "Failed", failure: { error: Decisions.budgetError(e.refusal) } } as const
              }
              const outcome = yield* Effect.result(
                callModel(tenant, state, modelRequest, timeoutMs, { stepId, attempt })
              )
              const used = Result.isSuccess(outcome)
                ? { costUsd: outcome.success.costUsd, tokens: outcome.success.tokensIn + outcome.success.tokensOut }
                : { costUsd: 0, tokens: 0 }
              if (hold.success.scopes.length > 0) yield* budget.settle(hold.success, used)
              return Result.isSuccess(outcome)
                ? { _tag: "Performed", performed: outcome.success } as const
                : { _tag: "Failed", failure: outcome.failure } as const
            }),
          startChild: (childRunId, target, input, parent) =>
            runs.startChild({
              tenant,
              runId: childRunId,
              agentName: "agent" in target ? target.agent : target.workflow,
              ...("workflow" in target ? { workflow: true } : {}),
              input,
              parent: { tenant, runId, ...parent }
            }),
          cancelled
        }).pipe(Effect.mapError((e) => e as Actor.ExecuteError<never>))
        switch (ended._tag) {
          case "Parked":
            return { _tag: "Parked", dueAt: ended.until } as Outcome
          case "Canceled":
            loaded = yield* reload
            break
          case "Returned":
            loaded = yield* exec({ _tag: "SucceedRun", output: ended.output })
            break
          case "Threw":
            loaded = yield* exec({ _tag: "FailRun", error: { code: ended.code, message: ended.message } })
            break
        }
        return { _tag: "Finished", state: loaded.state, journal } as Outcome
      }

      for (let i = 0; i < Decisions.MAX_DECISIONS; i++) {
        const now = yield* Clock.currentTimeMillis
        const decision = Decisions.decide(loaded.state, now)
        switch (decision._tag) {
          case "Finish":
            return { _tag: "Finished", state: loaded.state, journal } as Outcome
          case "Park":
            return { _tag: "Parked", dueAt: decision.until } as Outcome
          case "Sleep":
            if (yield* sleepUntil(decision.until)) loaded = yield* reload
            continue
          case "StartChild": {
            const started = yield* runs.startChild({
              tenant,
              runId: decision.runId,
              agentName: decision.agentName,
              input: decision.input,
              parent: { tenant, ...decision.parent }
            }).pipe(
              Effect.map((child): Decisions.ChildOutcome => ({ _tag: "Started", child })),
              Effect.catchTags({
                EventTooLarge: (e) => Effect.succeed<Decisions.ChildOutcome>({ _tag: "TooLarge", message: e.message }),
                AgentNotFound: (e) => Effect.succeed<Decisions.ChildOutcome>({ _tag: "NotFound", message: e.message }),
                AgentVersionNotFound: (e) =>
                  Effect.succeed<Decisions.ChildOutcome>({ _tag: "NotFound", message: e.message })
              }),
              // anything else (a budget refusing the child, the bus) fails this drive: the work message is retried later
              Effect.mapError((e) => e as Actor.ExecuteError<never>)
            )
            const after = Decisions.afterChild(decision.step, started, now)
            if (after._tag === "Park") return { _tag: "Parked", dueAt: after.until } as Outcome
            if (after._tag === "FailStep" || after._tag === "CompleteStep") loaded = yield* exec(after)
            continue
          }
          case "Start": {
            if (decision.toolCallsMade !== null) {
              const admitted = yield* Effect.result(
                budget.admitToolCall(tenant, loaded.state.agentName, runId, decision.toolCallsMade)
              )
              if (Result.isFailure(admitted)) {
                const e = admitted.failure
                if (e._tag !== "BudgetExceeded") return yield* Effect.fail(e)
                loaded = yield* exec(Decisions.refuseToolCall(e.refusal))
                continue
              }
            }
            const stepId = decision.command.stepId
            yield* Failpoints.hit("before-step-start", stepId)
            const local = decision.command._tag === "StartStep"
              ? Decisions.local(loaded.state, decision.command, now, leases.graceMs)
              : null
            const first = local === null ? null : yield* performLocal(loaded.state, local, now)
            if (first !== null) {
              // performed first, journaled once: nothing was written that a crash could leave half done. The local
              // steps ready with it (the other built-in calls of the turn) are performed too and journaled with it
              // as one event (ADR 0067).
              loaded = yield* journalLocal(yield* performAhead(loaded.state, [first], now))
              continue
            }
            // a call's StepStarted is appended while the call is made (ADR 0083): the call is decided on the state
            // that StepStarted makes (the decider is pure), so a step waits for the longer of the two, not for both
            // in turn. It is still reserved against the budgets before it is made; a host that dies before the
            // StepStarted is durable leaves the step to be started again, and asked again with the same key, as a
            // host dying during the call always did.
            const ahead = decision.command._tag === "StartStep"
              ? Decisions.callOnStart(loaded.state, decision.command, now, leases.graceMs)
              : null
            const calling = ahead === null ? null : yield* Effect.forkChild(makeCall(ahead.call, ahead.state))
            yield* Failpoints.hit("during-step-start", stepId)
            loaded = yield* exec(decision.command)
            const call = Decisions.afterStart(loaded.state, stepId, now, leases.graceMs)
            if (calling !== null && (call === null || call._tag === "Wait" || call.key !== ahead!.call.key)) {
              // the journal did not start the step the call was made for (a cancel, another writer came first): what
              // the call cost is settled, and the next decision is made on the journal as it now is
              yield* settleMade(yield* Fiber.join(calling))
              continue
            }
            if (call === null) continue
            yield* Failpoints.hit("after-step-start", stepId)
            if (call._tag === "Wait") continue
            const step = call.step
            const made = calling === null ? yield* makeCall(call, loaded.state) : yield* Fiber.join(calling)
            if (made._tag === "Refused") {
              loaded = yield* exec(Decisions.refuseCall(step, made.refusal))
              continue
            }
            if (made._tag === "Canceled") {
              yield* settleMade(made)
              loaded = yield* reload
              continue
            }
            const outcome = made.outcome
            /** Replaces the reservation with what the call cost: settled before the step completes, never after. */
            const settle = (costUsd: number, tokens: number) => settleHold(made.hold, costUsd, tokens)
            const finished = yield* Clock.currentTimeMillis
            if (Result.isSuccess(outcome)) {
              yield* Failpoints.hit("after-effect", stepId)
              const performed = outcome.success as Decisions.Performed
              yield* settle(performed.costUsd, performed.tokensIn + performed.tokensOut)
              const completion = Decisions.afterCall(
                loaded.state,
                step,
                { _tag: "Performed", performed },
                now,
                finished,
                0
              )
              // a model's answer is journaled with the built-in calls it asks for, performed first (ADR 0075), or
              // with the run's end it leads to (ADR 0077): one write instead of two
              loaded = yield* (completion._tag === "CompleteStep" && call._tag === "CallModel"
                ? Effect.flatMap(
                  performAhead(loaded.state, [completion], finished),
                  (done) => journalAnswer(done, finished)
                )
                : exec(completion))
              yield* Failpoints.hit("after-step-complete", stepId)
            } else {
              yield* settle(0, 0)
              const random = yield* Random.next
              loaded = yield* exec(
                Decisions.afterCall(
                  loaded.state,
                  step,
                  { _tag: "Failed", failure: outcome.failure },
                  now,
                  finished,
                  random
                )
              )
            }
            continue
          }
          default:
            // the run's end, a fired timer, an expired approval, a child nested too deep: journal what was decided
            loaded = yield* exec(decision.command)
            continue
        }
      }
      return yield* Effect.die(new Error(`run ${runId} took more than ${Decisions.MAX_DECISIONS} decisions`))
    })
})
