// One session of driving a code-first workflow's run (ADR 0041): the workflow's function runs from the top; each
// durable operation it asks for is answered from the journal when the journal has it (a replay) and otherwise
// performed and journaled once. The run parks when its code waits on a timer that is not due (the promise the
// code awaits is simply never settled; the next session replays from the top), and ends when the function
// returns or throws. A failure of the bus ends the session (the run is driven again later), never the code.
import { randomUUID } from "node:crypto"
import { Clock, Deferred, Effect } from "effect"
import type { RunCommand } from "../../schema/Commands.ts"
import type { ModelAnswer } from "../../schema/StepOutcome.ts"
import type { Request as ModelRequest } from "../model/ModelProvider.ts"
import * as Failpoints from "../kernel/Failpoints.ts"
import { type Failure, type Performed, startedBy } from "./Decisions.ts"
import * as Plan from "./Plan.ts"
import type { State, Step } from "./Decider.ts"
import {
  type Context as WorkflowContext,
  NonDeterminismError,
  StepFailedError,
  type ApprovalAnswer,
  type ChildResult,
  type ChildTarget,
  type LlmAnswer,
  type LlmRequest,
  type Received,
  type StepInfo,
  type StepOptions
} from "../workflow/Context.ts"
import type { Definition } from "../workflow/Registry.ts"

/** Timers this short are waited out in the session instead of parking the run. */
export const SHORT_SLEEP_MS = 2_000

const DEFAULT_TIMEOUT_MS = 60_000
const DEFAULT_ATTEMPTS = 3

/** How a session ended, for the driver. */
export type Ended =
  | { readonly _tag: "Returned"; readonly output: unknown }
  | { readonly _tag: "Threw"; readonly code: string; readonly message: string }
  | { readonly _tag: "Parked"; readonly until: number }
  | { readonly _tag: "Canceled" }

/** What the session needs of the run's driver. */
export interface Driving {
  readonly tenant: string
  readonly runId: string
  readonly state: () => State
  /** Journals a command on the current state (the driver's exec: a refusal reloads). */
  readonly exec: (command: RunCommand) => Effect.Effect<unknown, unknown>
  /** A model call for the code's step `stepId` at `attempt`: reserved, made and settled, or refused. */
  readonly llm: (
    stepId: string,
    attempt: number,
    request: Omit<ModelRequest, "idempotencyKey" | "tenant">,
    timeoutMs: number
  ) => Effect.Effect<
    | { readonly _tag: "Performed"; readonly performed: Performed }
    | { readonly _tag: "Failed"; readonly failure: Failure },
    unknown
  >
  /** Starts (or finds) the child run `runId` of this run's step: its state now. */
  readonly startChild: (
    runId: string,
    target: ChildTarget,
    input: unknown,
    parent: { readonly stepId: string; readonly depth: number }
  ) => Effect.Effect<State, { readonly _tag: string; readonly message: string }>
  readonly cancelled: Deferred.Deferred<void>
}

/** How long a run waiting for its child sleeps at most before it looks again (the child's end wakes it first). */
const CHILD_POLL_MS = 60_000

/** Failures of a model call worth another attempt. */
const RETRYABLE = new Set(["rate_limited", "provider_unavailable", "timeout", "provider_error"])

/** A value as the journal keeps it: JSON, `undefined` as null. */
const normalize = (value: unknown): unknown => (value === undefined ? null : JSON.parse(JSON.stringify(value)))

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e))

const backoffMs = (attempt: number, options: StepOptions) => {
  const initial = options.retry?.initialBackoffMs ?? 200
  const max = options.retry?.maxBackoffMs ?? 5_000
  return Math.min(max, initial * 2 ** (attempt - 1))
}

export const drive = (definition: Definition, d: Driving): Effect.Effect<Ended, unknown> =>
  Effect.gen(function*() {
    const services = yield* Effect.context<never>()
    const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromiseWith(services)(effect)
    const initial = d.state()
    /** Steps of the journal in order (signals aside: the edge journals them, not the code), and which this replay asked for. */
    const isSignal = (s: Step) => s.request._tag === "code" && s.request.kind === "signal"
    const journaled: ReadonlyArray<Step> = initial.steps.filter((s) => !isSignal(s))
    const consumed = new Set<string>()
    const asked = new Set<string>()
    let pending = 0
    let drawn = 0
    let timers = 0

    // the session's end: the code's return or throw, a park, or a failure of the bus (fails the session)
    const ended = yield* Deferred.make<Ended, unknown>()
    const end = (e: Ended) => Deferred.doneUnsafe(ended, Effect.succeed(e))
    const abort = (cause: unknown) => Deferred.doneUnsafe(ended, Effect.fail(cause))
    /** A promise that never settles: the code waits on it while the session ends. */
    const never = <A>() => new Promise<A>(() => undefined)
    let stopped = false

    // one journal write at a time, in the order the code asked
    let queue: Promise<unknown> = Promise.resolve()
    const journal = (command: RunCommand, first: Effect.Effect<void> = Effect.void) => {
      const next = queue.then(() => run(Effect.andThen(first, d.exec(command))))
      queue = next.catch(() => undefined)
      return next
    }

    /**
     * Parks the run until `until` once the writes asked for are done: the session ends, and the promise the code
     * awaits never settles (the next session replays to here).
     */
    const park = async <A>(until: number): Promise<A> => {
      await queue
      end({ _tag: "Parked", until })
      stopped = true
      return never<A>()
    }

    /**
     * Journals a code step's value: `kind` names the request of a step journaled as this one event (never started
     * before), `used` what a child run spent.
     */
    const completeCode = (
      stepId: string,
      attempt: number,
      value: unknown,
      durationMs: number,
      kind?: "step" | "now" | "random" | "uuid" | "wait",
      used: { readonly tokensIn: number; readonly tokensOut: number; readonly costUsd: number } = {
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0
      }
    ) =>
      journal({
        _tag: "CompleteStep",
        stepId,
        attempt,
        ...(kind === undefined ? {} : { request: { _tag: "code", kind } as const }),
        result: { _tag: "code", value },
        tokensIn: used.tokensIn,
        tokensOut: used.tokensOut,
        costUsd: used.costUsd,
        durationMs
      })

    const replaying = () => journaled.some((s) => !consumed.has(s.stepId))

    /** Checks the id against the journal: the journaled step, null for a new one; throws on a divergence. */
    const claim = (id: string): Step | null => {
      if (asked.has(id)) throw new NonDeterminismError(`step id ${JSON.stringify(id)} is used twice in this run`)
      asked.add(id)
      const next = journaled.find((s) => !consumed.has(s.stepId))
      const found = journaled.find((s) => s.stepId === id)
      // code running one thing at a time (no operation in flight but this one) must ask for the journal's steps
      // in their order
      if (pending <= 1 && next !== undefined && next.stepId !== id) {
        throw new NonDeterminismError(
          `the code asked for step ${JSON.stringify(id)} where the journal has step ${
            JSON.stringify(next.stepId)
          }: the workflow's code changed under a run in flight`
        )
      }
      if (found !== undefined) consumed.add(id)
      return found ?? null
    }

    /** Runs an operation of the code: a divergence ends the run; a bus failure ends the session. */
    const operation = <A>(body: () => Promise<A>): Promise<A> => {
      if (stopped) return never()
      pending++
      return body().then(
        (a) => {
          pending--
          return stopped ? never<A>() : a
        },
        (e: unknown) => {
          pending--
          if (e instanceof NonDeterminismError) {
            end({ _tag: "Threw", code: "nondeterminism", message: e.message })
            stopped = true
            return never<A>()
          }
          if (e instanceof StepFailedError) throw e
          abort(e)
          stopped = true
          return never<A>()
        }
      )
    }

    // the session's clock read directly: a step reads it twice, and an effect run per read costs a fiber each
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()

    const performStep = async <A>(
      id: string,
      fn: (info: StepInfo) => A | Promise<A>,
      options: StepOptions,
      from: Step | null
    ) => {
      const maxAttempts = Math.max(1, options.retry?.maxAttempts ?? DEFAULT_ATTEMPTS)
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
      let attempt = from === null ? 1 : from.attempt + (from.status === "failed" ? 1 : 0)
      if (from?.status === "failed" && from.retryAt !== null) {
        const wait = from.retryAt - now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      }
      for (;;) {
        // a first attempt is journaled once, when it returns; a retry is started first, so its attempt is on record
        if (attempt > 1 && from?.status !== "started") {
          await journal({ _tag: "StartStep", stepId: id, request: { _tag: "code", kind: "step" } })
        }
        const started = now()
        const outcome = await new Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }>((resolve) => {
          const timer = setTimeout(
            () => resolve({ ok: false, error: new Error(`timed out after ${timeoutMs} ms`) }),
            timeoutMs
          )
          Promise.resolve()
            .then(() => fn({ stepId: id, attempt, key: `${d.runId}:${id}:${attempt}` }))
            .then((value) => resolve({ ok: true, value }), (error: unknown) => resolve({ ok: false, error }))
            .finally(() => clearTimeout(timer))
        })
        const finished = now()
        if (outcome.ok) {
          const value = normalize(outcome.value)
          await completeCode(
            id,
            attempt,
            value,
            finished - started,
            attempt === 1 && from === null ? "step" : undefined
          )
          return value as A
        }
        const last = attempt >= maxAttempts
        const retryAt = last ? undefined : finished + backoffMs(attempt, options)
        if (attempt === 1 && from === null) {
          await journal({ _tag: "StartStep", stepId: id, request: { _tag: "code", kind: "step" } })
        }
        await journal({
          _tag: "FailStep",
          stepId: id,
          attempt,
          error: { code: "step_failed", message: messageOf(outcome.error) },
          retryable: !last,
          ...(retryAt === undefined ? {} : { retryAt })
        })
        if (last) throw new StepFailedError(id, attempt, messageOf(outcome.error))
        await new Promise((r) => setTimeout(r, retryAt! - finished))
        attempt++
        from = null
      }
    }

    const step = <A>(id: string, fn: (info: StepInfo) => A | Promise<A>, options: StepOptions = {}): Promise<A> =>
      operation(async () => {
        if (typeof id !== "string" || id.length === 0 || id.length > 200) {
          throw new NonDeterminismError(`a step id must be a string of 1 to 200 characters, got ${JSON.stringify(id)}`)
        }
        const found = claim(id)
        if (found !== null && found.request._tag !== "code") {
          throw new NonDeterminismError(
            `step ${JSON.stringify(id)} is a ${found.request._tag} in the journal, not a step`
          )
        }
        if (found?.status === "completed") return (found.result?._tag === "code" ? found.result.value : null) as A
        if (found?.status === "failed" && !found.retryable) {
          throw new StepFailedError(id, found.attempt, found.error?.message ?? "failed")
        }
        return performStep(id, fn, options, found)
      })

    /** A value drawn once and journaled: the time, a random number, a UUID. */
    const draw = <A>(kind: "now" | "random" | "uuid", make: () => A | Promise<A>): Promise<A> =>
      operation(async () => {
        const id = `${kind}-${++drawn}`
        const found = claim(id)
        if (found?.status === "completed" && found.result?._tag === "code") return found.result.value as A
        const value = await make()
        await completeCode(id, 1, value, 0, kind)
        return value
      })

    const sleepUntil = (at: number | Date): Promise<void> =>
      operation(async () => {
        const id = `sleep-${++timers}`
        const found = claim(id)
        if (found !== null && found.request._tag !== "timer") {
          throw new NonDeterminismError(
            `step ${JSON.stringify(id)} is a ${found.request._tag} in the journal, not a timer`
          )
        }
        if (found?.status === "completed") return
        let wakeAt = found?.wakeAt ?? null
        if (found === null) {
          const t = at instanceof Date ? at.getTime() : at
          if (!Number.isFinite(t)) throw new NonDeterminismError(`sleep needs a finite time, got ${String(at)}`)
          const startedAt = now()
          wakeAt = Math.max(startedAt, t)
          await journal({
            _tag: "StartStep",
            stepId: id,
            request: { _tag: "timer", ms: wakeAt - startedAt },
            wakeAt
          })
        }
        const due = wakeAt ?? 0
        const left = due - now()
        if (left > SHORT_SLEEP_MS) {
          // not due: the run parks once its writes are done; this promise never settles, the next session
          // replays to here
          return park<void>(due)
        }
        if (left > 0) await new Promise((r) => setTimeout(r, left))
        const attempt = found?.attempt ?? 1
        await completeCode(id, attempt, null, Math.max(0, now() - due))
      })

    const answerOf = (a: ModelAnswer): LlmAnswer => ({
      content: a.content,
      toolCalls: a.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })),
      finishReason: a.finishReason,
      provider: a.provider,
      model: a.model
    })

    let models = 0
    const llm = (request: LlmRequest): Promise<LlmAnswer> =>
      operation(async () => {
        const id = `llm-${++models}`
        const found = claim(id)
        if (found !== null && found.request._tag !== "model") {
          throw new NonDeterminismError(
            `step ${JSON.stringify(id)} is a ${found.request._tag} in the journal, not a model call`
          )
        }
        if (found?.status === "completed" && found.result?._tag === "model") return answerOf(found.result.answer)
        if (found?.status === "failed" && !found.retryable) {
          throw new StepFailedError(id, found.attempt, found.error?.message ?? "failed")
        }
        const maxAttempts = Math.max(1, request.retry?.maxAttempts ?? DEFAULT_ATTEMPTS)
        const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS
        const model = request.model ?? "auto"
        for (;;) {
          const current = d.state().steps.find((s) => s.stepId === id)
          if (current?.status === "failed" && current.retryAt !== null) {
            const wait = current.retryAt - now()
            if (wait > 0) await new Promise((r) => setTimeout(r, wait))
          }
          const start = { _tag: "StartStep", stepId: id, request: { _tag: "model", model, turn: models } } as const
          const attemptOf = (state: State) => state.steps.find((s) => s.stepId === id)?.attempt ?? 1
          const call = (attempt: number) =>
            run(d.llm(id, attempt, {
              model,
              messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
              tools: (request.tools ?? []).map((t) => ({
                name: t.name,
                description: t.description ?? t.name,
                parameters: t.parameters ?? { type: "object", properties: {} }
              })) as ModelRequest["tools"],
              ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
              ...(request.temperature === undefined ? {} : { temperature: request.temperature })
            }, timeoutMs))
          // the call is made while its StepStarted is appended (ADR 0083), for the attempt that StepStarted will
          // journal (the run decider is pure); a start the journal did not make as foreseen is called again
          const foreseen = startedBy(d.state(), start)
          const started = now()
          const journaling = journal(start, Failpoints.hit("during-step-start", id))
          const calling = foreseen === null ? null : call(attemptOf(foreseen))
          try {
            await journaling
          } catch (e) {
            calling?.catch(() => undefined)
            throw e
          }
          const attempt = attemptOf(d.state())
          const asForeseen = calling !== null && attemptOf(foreseen!) === attempt
          if (!asForeseen) calling?.catch(() => undefined)
          const outcome = asForeseen ? await calling! : await call(attempt)
          const finished = now()
          if (outcome._tag === "Performed") {
            const p = outcome.performed
            await journal({ _tag: "CompleteStep", stepId: id, attempt, ...p, durationMs: finished - started })
            if (p.result._tag !== "model") throw new Error(`model step ${id} answered ${p.result._tag}`)
            return answerOf(p.result.answer)
          }
          const { error, route } = outcome.failure
          const last = attempt >= maxAttempts || !RETRYABLE.has(error.code)
          const retryAt = last ? undefined : finished + backoffMs(attempt, request)
          await journal({
            _tag: "FailStep",
            stepId: id,
            attempt,
            error,
            retryable: !last,
            ...(retryAt === undefined ? {} : { retryAt }),
            ...(route === undefined ? {} : { route })
          })
          if (last) throw new StepFailedError(id, attempt, `${error.code}: ${error.message}`)
        }
      })

    let approvals = 0
    const approval = (options: { readonly reason: string; readonly expiresInSeconds?: number }) =>
      operation(async (): Promise<ApprovalAnswer> => {
        const id = `approval-${++approvals}`
        const found = claim(id)
        if (found !== null && found.request._tag !== "approval") {
          throw new NonDeterminismError(
            `step ${JSON.stringify(id)} is a ${found.request._tag} in the journal, not an approval`
          )
        }
        const expired = { approved: false, by: "lantern", reason: "nobody decided in time", expired: true }
        if (found?.status === "completed" && found.result?._tag === "approval") {
          const r = found.result
          return { approved: r.approved, by: r.by, reason: r.reason, expired: false }
        }
        if (found?.status === "failed") return expired
        let wakeAt = found?.wakeAt ?? 0
        if (found === null) {
          wakeAt = now() + Math.max(1, options.expiresInSeconds ?? 86_400) * 1_000
          await journal({
            _tag: "StartStep",
            stepId: id,
            request: { _tag: "approval", call: { id, name: "approval", arguments: { reason: options.reason } } },
            wakeAt
          })
        }
        if (now() >= wakeAt) {
          const attempt = d.state().steps.find((s) => s.stepId === id)?.attempt ?? 1
          await journal({
            _tag: "FailStep",
            stepId: id,
            attempt,
            error: { code: "approval_expired", message: "nobody decided in time" },
            retryable: false
          })
          return expired
        }
        // POST /v1/runs/{id}/approvals/{stepId} decides it and wakes the run; the expiry wakes it otherwise
        return park<ApprovalAnswer>(wakeAt)
      })

    const waits = new Map<string, number>()
    const waitForEvent = (name: string, options: { readonly timeoutMs?: number } = {}) =>
      operation(async (): Promise<Received> => {
        const n = (waits.get(name) ?? 0) + 1
        waits.set(name, n)
        const id = `wait-${name}-${n}`
        const found = claim(id)
        if (found !== null && found.request._tag !== "timer" && found.request._tag !== "code") {
          throw new NonDeterminismError(
            `step ${JSON.stringify(id)} is a ${found.request._tag} in the journal, not a wait`
          )
        }
        if (found?.status === "completed" && found.result?._tag === "code") return found.result.value as Received
        // the n-th signal of this name, journaled by the edge whenever it came (before the wait, or while parked)
        const signal = d.state().steps.find((s) => s.stepId === `signal:${name}:${n}`)
        const complete = async (value: Received) => {
          await completeCode(id, found?.attempt ?? 1, value, 0, found === null ? "wait" : undefined)
          return value
        }
        if (signal?.result?._tag === "code") return complete({ received: true, value: signal.result.value })
        let wakeAt = found?.wakeAt ?? 0
        if (found === null) {
          const timeoutMs = Math.max(0, options.timeoutMs ?? 86_400_000)
          wakeAt = now() + timeoutMs
          await journal({ _tag: "StartStep", stepId: id, request: { _tag: "timer", ms: timeoutMs }, wakeAt })
        }
        if (now() >= wakeAt) return complete({ received: false, value: null })
        return park<Received>(wakeAt)
      })

    let children = 0
    const child = (target: ChildTarget, input: unknown) =>
      operation(async (): Promise<ChildResult> => {
        const id = `run-${++children}`
        const found = claim(id)
        if (found !== null && found.request._tag !== "agent") {
          throw new NonDeterminismError(
            `step ${JSON.stringify(id)} is a ${found.request._tag} in the journal, not a child run`
          )
        }
        if (found?.status === "completed" && found.result?._tag === "code") return found.result.value as ChildResult
        if (found?.status === "failed") {
          throw new StepFailedError(id, found.attempt, found.error?.message ?? "the child run could not start")
        }
        const workflow = "workflow" in target
        const name = workflow ? target.workflow : target.agent
        const childRunId = found?.request._tag === "agent" ? found.request.childRunId : Plan.childRunId(d.runId, id)
        if (found === null) {
          await journal({
            _tag: "StartStep",
            stepId: id,
            request: {
              _tag: "agent",
              call: { id, name: workflow ? "workflow" : "agent", arguments: { input: normalize(input) } },
              agentName: name,
              childRunId
            }
          })
        }
        const attempt = d.state().steps.find((s) => s.stepId === id)?.attempt ?? 1
        const depth = (d.state().parent?.depth ?? 0) + 1
        const failed = async (code: string, message: string): Promise<never> => {
          await journal({ _tag: "FailStep", stepId: id, attempt, error: { code, message }, retryable: false })
          throw new StepFailedError(id, attempt, `${code}: ${message}`)
        }
        if (depth > Plan.MAX_RUN_DEPTH) {
          return failed("too_deep", `child runs nest at most ${Plan.MAX_RUN_DEPTH} deep; ${name} was not started`)
        }
        const started = await run(
          Effect.result(d.startChild(childRunId, target, normalize(input), { stepId: id, depth }))
        )
        if (started._tag === "Failure") {
          const e = started.failure
          if (e._tag === "AgentNotFound" || e._tag === "AgentVersionNotFound" || e._tag === "WorkflowNotFound") {
            return failed("not_found", e.message)
          }
          if (e._tag === "BudgetExceeded") return failed("budget_exceeded", e.message)
          if (e._tag === "EventTooLarge") return failed("too_large", e.message)
          throw e
        }
        const c = started.success
        if (c.status === "succeeded" || c.status === "failed" || c.status === "canceled") {
          const value: ChildResult = {
            runId: childRunId,
            status: c.status,
            output: c.output ?? null,
            error: c.error === null ? null : { code: c.error.code, message: c.error.message }
          }
          await completeCode(id, attempt, value, 0, undefined, c)
          return value
        }
        // the child's end wakes this run; a slow poll in case that wake-up was lost
        return park<ChildResult>(now() + CHILD_POLL_MS)
      })

    const ctx: WorkflowContext = {
      runId: d.runId,
      tenant: d.tenant,
      workflow: definition.name,
      step,
      llm,
      approval,
      waitForEvent,
      run: child,
      sleep: (ms) => operation(async () => now()).then((t) => sleepUntil(t + Math.max(0, ms))),
      sleepUntil,
      now: () => draw("now", () => now()),
      random: () => draw("random", () => Math.random()),
      uuid: () => draw("uuid", () => randomUUID()),
      log: (message, fields) => {
        if (replaying()) return
        void run(Effect.logInfo(`workflow ${definition.name} run ${d.runId}: ${message}`, fields ?? {}))
      }
    }

    // the code runs from the top; its return or throw ends the run once every write it asked for is done
    Promise.resolve()
      .then(() => definition.run(ctx, initial.input))
      .then(
        async (output) => {
          await queue
          if (!stopped) end({ _tag: "Returned", output: normalize(output) })
        },
        async (e: unknown) => {
          await queue
          if (stopped) return
          end(
            e instanceof NonDeterminismError
              ? { _tag: "Threw", code: "nondeterminism", message: e.message }
              : { _tag: "Threw", code: "workflow_error", message: messageOf(e) }
          )
        }
      )
      .finally(() => {
        stopped = true
      })

    return yield* Deferred.await(ended).pipe(
      Effect.raceFirst(Effect.as(Deferred.await(d.cancelled), { _tag: "Canceled" } as Ended)),
      Effect.ensuring(Effect.sync(() => {
        stopped = true
      }))
    )
  })
