// The eval actor's shell (ADR 0047): suites and baselines in each agent's eval book, and eval runs that start every
// case as a real run of the candidate version (bounded concurrency), score it from its journal, and journal the
// result. An eval run not finished when its host stopped is taken up again at the next start.
import { createHash } from "node:crypto"
import { Clock, Context, Effect, FiberSet, Layer, Option, Schema, Semaphore, Stream } from "effect"
import { Journal } from "../../bus/Journal.ts"
import * as Kv from "../../bus/Kv.ts"
import * as Canonical from "../../schema/Canonical.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import {
  type BaselineView,
  type Case,
  type CaseResult,
  DEFAULT_TOLERANCE,
  EvalBaselineRefused,
  type EvalEvent,
  type EvalRunRequest,
  EvalRunNotFound,
  type EvalRunView,
  EvalSuiteNotFound,
  type FeedbackRequest,
  type FeedbackView,
  type SuiteRequest,
  type SuiteView
} from "../../schema/Eval.ts"
import type { AgentNotFound, AgentVersionNotFound, BusUnavailable } from "../../schema/Errors.ts"
import { isTerminal } from "../../schema/Events.ts"
import { Agents } from "../agent/Agents.ts"
import { Budgets } from "../budget/Budgets.ts"
import { NO_USAGE } from "../budget/Caps.ts"
import * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import { ModelProvider, type Request } from "../model/ModelProvider.ts"
import { Runs } from "../run/Runs.ts"
import * as View from "../run/View.ts"
import * as Assertions from "./Assertions.ts"
import * as Decider from "./Decider.ts"

const books = Actor.make(Decider.book)
const evalRuns = Actor.make(Decider.run)

export const bookOf = (tenant: string, agentName: string): ActorAddress => ({
  type: "eval",
  tenant,
  id: `book-${agentName}`
})
export const evalRunOf = (tenant: string, id: string): ActorAddress => ({ type: "eval", tenant, id })

/** A suite's id: fixed by its tenant, agent and name, so saving it again upserts the same suite. */
export const suiteIdOf = (tenant: string, agentName: string, name: string) =>
  `evs_${createHash("sha256").update(`${tenant}\n${agentName}\n${name}`).digest("hex").slice(0, 26)}`

/**
 * `suite.<tenant>.<suiteId>` → the suite's agent (whose book holds it); `open.<tenant>.<evalRunId>` → the eval runs
 * started and not yet finished, taken up again when a host starts; `case.<tenant>.<runId>` → the eval run a run is a
 * case of (eval traffic).
 */
// an eval run's `open.` key is purged when it ends, its marker expiring (ADR 0091): each start lists those keys, and
// kept markers, one per eval run ever finished, made the listing longer
const indexBucket = Kv.bucket({
  name: "lantern-eval-index",
  value: Schema.String,
  what: "the eval index",
  markerTtl: "1 minute"
})

/** How long a case's run may take before the case is recorded as errored. */
const CASE_TIMEOUT = "10 minutes"

const digestOf = (s: { description: string; tolerance: number; cases: ReadonlyArray<Case> }) =>
  `sha256:${createHash("sha256").update(Canonical.stringify(s)).digest("hex")}`

const suiteView = (agentName: string, stored: ReadonlyArray<Stored>, suiteId: string): SuiteView | null => {
  let view = null as SuiteView | null
  for (const s of stored) {
    const e = s.event as EvalEvent
    if (e._tag === "EvalSuiteSaved" && e.suiteId === suiteId) {
      view = {
        id: suiteId,
        agentName,
        name: e.name,
        version: e.version,
        description: e.description,
        tolerance: e.tolerance,
        cases: e.cases,
        digest: e.digest,
        createdAt: view === null ? s.envelope.at : view.createdAt,
        updatedAt: s.envelope.at
      }
    }
    if (e._tag === "EvalSuiteDeleted" && e.suiteId === suiteId) view = null
  }
  return view
}

/** Feedback as the book journaled it; null for another event. */
const feedbackOf = (agentName: string, s: Stored): FeedbackView | null => {
  const e = s.event as EvalEvent
  if (e._tag !== "RunFeedbackGiven") return null
  return {
    runId: e.runId,
    agentName,
    score: e.score,
    comment: e.comment,
    ...(e.preferredOutput === undefined ? {} : { preferredOutput: e.preferredOutput }),
    source: e.source,
    at: s.envelope.at
  }
}

/** An eval run as its journal has it. */
export const toView = (id: string, stored: ReadonlyArray<Stored>): EvalRunView | null => {
  const state = evalRuns.fromStored(evalRunOf("", id), stored).state
  const started = state.started
  if (started === null) return null
  const cases: Array<CaseResult> = Object.keys(state.cases).map(Number).sort((a, b) => a - b).map((i) =>
    state.cases[i]!
  )
  const finished = state.finished
  const finishedAt = stored.find((s) => s.event._tag === "EvalRunFinished")?.envelope.at ?? null
  return {
    id,
    suiteId: started.suiteId,
    suiteVersion: started.suiteVersion,
    agentName: started.agentName,
    agentVersion: started.agentVersion,
    branch: started.branch,
    commitSha: started.commitSha,
    status: finished === null ? "running" : "finished",
    score: finished?.score ?? null,
    passed: finished?.passed ?? null,
    casesTotal: started.cases.length,
    casesPassed: cases.filter((c) => c.passed).length,
    casesDone: cases.length,
    cases,
    baselineScore: started.baseline?.score ?? null,
    baselineRunId: started.baseline?.evalRunId ?? null,
    regressed: finished?.regressed ?? false,
    costUsd: finished?.costUsd ?? cases.reduce((n, c) => n + c.costUsd, 0),
    createdAt: stored[0]!.envelope.at,
    finishedAt
  }
}

export const tolerationOf = (stored: ReadonlyArray<Stored>): number => {
  const started = stored.find((s) => s.event._tag === "EvalRunStarted")?.event as
    | Extract<EvalEvent, { _tag: "EvalRunStarted" }>
    | undefined
  return started?.tolerance ?? DEFAULT_TOLERANCE
}

const JUDGE_SYSTEM = [
  "You are an evaluator. Grade the assistant's answer against the rubric.",
  "Reply with JSON only: {\"score\": <number from 0 to 1>, \"reasoning\": \"<one or two sentences>\"}."
].join(" ")

type NotFound = EvalSuiteNotFound | BusUnavailable | Actor.ReadError
type Write = Actor.ExecuteError<Decider.BookError>

export class Evals extends Context.Service<Evals, {
  readonly saveSuite: (
    tenant: string,
    request: SuiteRequest
  ) => Effect.Effect<
    { readonly id: string; readonly version: number; readonly created: boolean },
    AgentNotFound | Write | BusUnavailable
  >
  readonly listSuites: (
    tenant: string,
    agentName?: string
  ) => Effect.Effect<ReadonlyArray<SuiteView>, BusUnavailable | Actor.ReadError>
  readonly getSuite: (tenant: string, id: string) => Effect.Effect<SuiteView, NotFound>
  readonly deleteSuite: (tenant: string, id: string) => Effect.Effect<void, NotFound | Write>
  /**
   * Journals an eval run's start and runs its cases in the background; answers its id at once. A rehearsal
   * (`request.rehearsal`) runs the given cases.
   */
  readonly start: (
    tenant: string,
    request: EvalRunRequest,
    rehearsal?: ReadonlyArray<Case>
  ) => Effect.Effect<string, NotFound | AgentNotFound | AgentVersionNotFound | Actor.ExecuteError<never>>
  readonly get: (tenant: string, id: string) => Effect.Effect<
    { readonly view: EvalRunView; readonly tolerance: number },
    EvalRunNotFound | Actor.ReadError
  >
  /** The eval run's events from the first, live, ending with its finish. */
  readonly follow: (tenant: string, id: string) => Stream.Stream<Stored, Actor.ReadError>
  readonly setBaseline: (
    tenant: string,
    request: { agentName: string; suiteId: string; branch: string; evalRunId: string }
  ) => Effect.Effect<BaselineView, NotFound | EvalRunNotFound | EvalBaselineRefused | Write>
  readonly giveFeedback: (
    tenant: string,
    agentName: string,
    runId: string,
    request: FeedbackRequest
  ) => Effect.Effect<FeedbackView, Actor.ExecuteError<never>>
  /** Every feedback on the agent's runs, oldest first. */
  readonly feedback: (tenant: string, agentName: string) => Effect.Effect<ReadonlyArray<FeedbackView>, Actor.ReadError>
  /** The latest finished eval run of a suite at an agent version, and its score; null when none finished. */
  readonly latestScore: (
    tenant: string,
    suiteId: string,
    version: number
  ) => Effect.Effect<{ readonly evalRunId: string; readonly score: number } | null, BusUnavailable>
  /** Whether a run is one of an eval run's cases (eval traffic), not production traffic. */
  readonly isEvalTraffic: (tenant: string, runId: string) => Effect.Effect<boolean, BusUnavailable>
  readonly baselines: (
    tenant: string,
    agentName: string,
    branch?: string
  ) => Effect.Effect<ReadonlyArray<BaselineView>, Actor.ReadError>
}>()("lantern/actors/eval/Evals") {
  static readonly layer = Layer.effect(
    Evals,
    Effect.gen(function*() {
      const journal = yield* Journal
      const ids = yield* Ids
      const agents = yield* Agents
      const runs = yield* Runs
      const provider = yield* ModelProvider
      const budgets = yield* Budgets
      const index = yield* Kv.open(indexBucket)
      const provide = yield* Actor.provider
      const fork = yield* FiberSet.makeRuntime<never>()

      const readBook = (tenant: string, agentName: string) => journal.read(bookOf(tenant, agentName))

      const agentOfSuite = (tenant: string, id: string) =>
        index.get(`suite.${tenant}.${id}`).pipe(
          Effect.catchTag("CorruptValue", Effect.die),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new EvalSuiteNotFound({ id })),
            onSome: (e) => Effect.succeed(e.value)
          }))
        )

      const getSuite = (tenant: string, id: string) =>
        Effect.gen(function*() {
          const agentName = yield* agentOfSuite(tenant, id)
          const view = suiteView(agentName, yield* readBook(tenant, agentName), id)
          if (view === null) return yield* new EvalSuiteNotFound({ id })
          return view
        })

      const readRun = (tenant: string, id: string) =>
        Effect.flatMap(journal.read(evalRunOf(tenant, id)), (stored) => {
          const view = toView(id, stored)
          return view === null
            ? Effect.fail(new EvalRunNotFound({ id }))
            : Effect.succeed({ view, tolerance: tolerationOf(stored), stored })
        })

      /** What a case's run did, once it ended (or why it never started). */
      const runCase = (tenant: string, evalRunId: string, at: number, agentName: string, version: number, c: Case) =>
        Effect.gen(function*() {
          const started = yield* runs.start(
            tenant,
            { agentName, agentVersion: version, input: c.input },
            `eval:${evalRunId}:${at}`,
            { evalRunId }
          )
            .pipe(Effect.result)
          if (started._tag === "Failure") {
            return {
              runId: null,
              status: "not started",
              output: null,
              error: started.failure.message,
              costUsd: 0,
              latencyMs: 0,
              steps: 0,
              toolCalls: []
            } satisfies Assertions.RunFacts
          }
          const runId = started.success.run.id
          // labelled as eval traffic: rehearsals never replay an eval's own runs
          yield* index.put(`case.${tenant}.${runId}`, evalRunId)
          yield* journal.follow({ type: "run", tenant, id: runId }, 0).pipe(
            Stream.takeUntil((s) => isTerminal(s.event)),
            Stream.runDrain,
            Effect.timeout(CASE_TIMEOUT)
          )
          const stored = yield* runs.events(tenant, runId)
          const view = View.fromStored(stored)!
          const end = view.finishedAt === null ? Date.now() : Date.parse(view.finishedAt)
          return {
            runId,
            status: view.status === "running" ? "failed" : view.status,
            output: view.output,
            error: view.error === null ? null : `${view.error.code}: ${view.error.message}`,
            costUsd: view.costUsd,
            latencyMs: end - Date.parse(view.createdAt),
            steps: view.steps,
            toolCalls: Assertions.toolCallsOf(stored)
          } satisfies Assertions.RunFacts
        })

      /** A judge's verdict through the router, held against the agent's budgets like any model call. */
      const judge = (
        tenant: string,
        agentName: string,
        evalRunId: string,
        key: string,
        c: Case,
        facts: Assertions.RunFacts,
        j: { rubric: string; model: string; passScore: number }
      ) =>
        Effect.gen(function*() {
          const request: Request = {
            model: j.model,
            tenant,
            idempotencyKey: key,
            temperature: 0,
            maxTokens: 400,
            tools: [],
            messages: [
              { role: "system", content: JUDGE_SYSTEM },
              {
                role: "user",
                content: [
                  `Rubric: ${j.rubric}`,
                  `Input: ${Assertions.textOf(c.input)}`,
                  ...(c.expected === undefined ? [] : [`Expected: ${Assertions.textOf(c.expected)}`]),
                  `Answer: ${Assertions.textOf(facts.output)}`
                ].join("\n")
              }
            ]
          }
          const now = yield* Clock.currentTimeMillis
          const hold = yield* budgets.reserve({
            tenant,
            agentName,
            runId: evalRunId,
            reservationId: key,
            quote: provider.quote(request),
            run: NO_USAGE,
            expiresAt: now + 10 * 60_000
          }).pipe(Effect.result)
          if (hold._tag === "Failure") {
            return {
              _tag: "NoVerdict",
              reason: `the budget refused the judge: ${hold.failure.message}`,
              costUsd: 0
            } as const
          }
          const answered = yield* provider.complete(request).pipe(Effect.result)
          const costUsd = answered._tag === "Success" ? answered.success.costUsd : 0
          yield* budgets.settle(hold.success, {
            costUsd,
            tokens: answered._tag === "Success" ? answered.success.tokensIn + answered.success.tokensOut : 0
          }).pipe(Effect.ignore)
          if (answered._tag === "Failure") {
            return {
              _tag: "NoVerdict",
              reason: `the judge's provider failed: ${answered.failure.message}`,
              costUsd
            } as const
          }
          const verdict = Assertions.parseVerdict(answered.success.answer.content ?? "")
          if (verdict === null) {
            return { _tag: "NoVerdict", reason: "the judge's answer was not a verdict", costUsd } as const
          }
          return { _tag: "Verdict", ...verdict, costUsd } as const
        })

      /** Runs the cases not yet recorded, then journals the finish. Safe to run again on a run taken up. */
      const drive = (tenant: string, evalRunId: string) =>
        Effect.gen(function*() {
          const address = evalRunOf(tenant, evalRunId)
          const loaded = evalRuns.fromStored(address, yield* journal.read(address))
          const started = loaded.state.started
          if (started === null || loaded.state.finished !== null) return
          const todo = started.cases.map((c, i) => [c, i] as const).filter(([, i]) =>
            loaded.state.cases[i] === undefined
          )
          // one writer of the eval run's journal at a time: cases finishing together would otherwise race for its
          // next sequence, and past the actor's conflict retries the whole drive stopped (a 100-case suite at
          // concurrency 16 did, every time)
          const writer = Semaphore.makeUnsafe(1)
          yield* Effect.forEach(todo, ([c, i]) =>
            Effect.gen(function*() {
              const facts = yield* runCase(tenant, evalRunId, i, started.agentName, started.agentVersion, c).pipe(
                Effect.catch((e) =>
                  Effect.succeed({
                    runId: null,
                    status: "not started" as const,
                    output: null,
                    error: e._tag === "TimeoutError" ? "the run did not finish in time" : e.message,
                    costUsd: 0,
                    latencyMs: 0,
                    steps: 0,
                    toolCalls: []
                  })
                )
              )
              const verdicts: Array<Assertions.Verdict> = []
              if (facts.status === "succeeded") {
                let j = 0
                for (const a of c.assert) {
                  if (!("judge" in a)) continue
                  verdicts.push(
                    yield* judge(
                      tenant,
                      started.agentName,
                      evalRunId,
                      `${evalRunId}:case-${i}:judge-${j++}`,
                      c,
                      facts,
                      a.judge
                    )
                  )
                }
              }
              const result = Assertions.score(c, facts, verdicts)
              yield* provide(evalRuns.execute(address, { _tag: "RecordCase", index: i, result }, {
                idempotencyKey: `${evalRunId}:case:${i}`,
                correlationId: evalRunId
              })).pipe(Semaphore.withPermits(writer, 1))
            }), { concurrency: started.concurrency, discard: true })
          const all = toView(evalRunId, yield* journal.read(address))!
          const score = Assertions.suiteScore(all.cases)
          yield* provide(evalRuns.execute(address, {
            _tag: "FinishEvalRun",
            event: {
              score,
              passed: all.cases.every((c) => c.passed),
              // a rehearsal has no baseline: a replayed failure that still fails fails the gate
              regressed: started.rehearsal === undefined
                ? Assertions.regressed(score, started.baseline?.score ?? null, started.tolerance)
                : !all.cases.every((c) => c.passed),
              costUsd: all.cases.reduce((n, c) => n + c.costUsd, 0)
            }
          }, { idempotencyKey: `${evalRunId}:finish`, correlationId: evalRunId }))
          // the suite's latest score at this version: what an experiment scored by the suite reads (ADR 0058)
          if (started.rehearsal === undefined) {
            yield* index.put(`score.${tenant}.${started.suiteId}.${started.agentVersion}`, `${evalRunId} ${score}`)
          }
          yield* index.purge(`open.${tenant}.${evalRunId}`)
        }).pipe(
          Effect.withSpan("Evals.drive", { attributes: { tenant_id: tenant, eval_run_id: evalRunId } }),
          Effect.tapCause((cause) =>
            Effect.logWarning(`eval run ${evalRunId} stopped; taken up at the next start`, cause)
          ),
          Effect.ignore
        )

      // eval runs left unfinished by a host that stopped are driven again (their cases' runs are idempotent)
      // (in the background: the edge's routes must not wait on the bus to be installed)
      fork(Effect.gen(function*() {
        for (const key of yield* index.keys("open.>").pipe(Effect.orElseSucceed(() => []))) {
          const [, tenant = "", id = ""] = key.split(".")
          fork(drive(tenant, id))
        }
      }))

      return Evals.of({
        saveSuite: (tenant, request) =>
          Effect.gen(function*() {
            yield* agents.get(tenant, request.agentName)
            const suiteId = suiteIdOf(tenant, request.agentName, request.name)
            const body = {
              description: request.description ?? "",
              tolerance: request.tolerance ?? DEFAULT_TOLERANCE,
              cases: request.cases
            }
            yield* index.put(`suite.${tenant}.${suiteId}`, request.agentName)
            const outcome = yield* provide(books.execute(bookOf(tenant, request.agentName), {
              _tag: "SaveSuite",
              suiteId,
              agentName: request.agentName,
              name: request.name,
              ...body,
              digest: digestOf(body)
            }, { idempotencyKey: (seq) => `evalbook:${tenant}:${request.agentName}@${seq}`, correlationId: suiteId }))
            const suite = outcome.loaded.state.suites[suiteId]!
            return { id: suiteId, version: suite.version, created: outcome.appended.length > 0 }
          }),
        listSuites: (tenant, agentName) =>
          Effect.gen(function*() {
            const names = agentName !== undefined ? [agentName] : [
              ...new Set(
                yield* Effect.forEach(yield* index.keys(`suite.${tenant}.*`), (k) =>
                  agentOfSuite(tenant, k.split(".")[2]!).pipe(Effect.orElseSucceed(() => "")))
              )
            ].filter((n) =>
              n !== ""
            ).sort()
            const out: Array<SuiteView> = []
            for (const name of names) {
              const stored = yield* readBook(tenant, name)
              const state = books.fromStored(bookOf(tenant, name), stored).state
              for (const s of Object.values(state.suites).filter((s) => !s.deleted)) {
                out.push(suiteView(name, stored, s.suiteId)!)
              }
            }
            return out.sort((a, b) => a.agentName.localeCompare(b.agentName) || a.name.localeCompare(b.name))
          }),
        getSuite,
        deleteSuite: (tenant, id) =>
          Effect.gen(function*() {
            const agentName = yield* agentOfSuite(tenant, id)
            yield* provide(books.execute(bookOf(tenant, agentName), { _tag: "DeleteSuite", suiteId: id }, {
              idempotencyKey: (seq) => `evalbook:${tenant}:${agentName}@${seq}`,
              correlationId: id
            }))
          }),
        start: (tenant, request, rehearsal) =>
          Effect.gen(function*() {
            const suite = rehearsal === undefined || request.rehearsal === undefined
              ? yield* getSuite(tenant, request.suiteId ?? "")
              : {
                id: "rehearsal",
                version: 0,
                agentName: request.rehearsal.agentName,
                tolerance: 0,
                cases: rehearsal
              }
            const version = yield* agents.version(tenant, suite.agentName, request.agentVersion)
            const book = books.fromStored(bookOf(tenant, suite.agentName), yield* readBook(tenant, suite.agentName))
              .state
            const branch = request.branch ?? null
            const baseline = request.rehearsal === undefined ? Decider.baselineFor(book, suite.id, branch) : null
            const evalRunId = yield* ids.next("evr")
            yield* index.put(`open.${tenant}.${evalRunId}`, "1")
            yield* provide(evalRuns.execute(evalRunOf(tenant, evalRunId), {
              _tag: "StartEvalRun",
              event: {
                evalRunId,
                suiteId: suite.id,
                suiteVersion: suite.version,
                agentName: suite.agentName,
                agentVersion: version.version,
                branch,
                commitSha: request.commitSha ?? null,
                concurrency: request.concurrency ?? 4,
                tolerance: suite.tolerance,
                cases: suite.cases,
                ...(request.rehearsal === undefined ? {} : { rehearsal: request.rehearsal }),
                baseline: baseline === null
                  ? null
                  : { evalRunId: baseline.evalRunId, score: baseline.score, branch: baseline.branch }
              }
            }, { idempotencyKey: `${evalRunId}:start`, correlationId: evalRunId }))
            fork(drive(tenant, evalRunId))
            return evalRunId
          }),
        giveFeedback: (tenant, agentName, runId, request) =>
          Effect.gen(function*() {
            // feedback is never refused: the book decides it without failing
            const outcome = yield* provide(books.execute(bookOf(tenant, agentName), {
              _tag: "GiveFeedback",
              runId,
              score: request.score,
              comment: request.comment ?? null,
              ...(request.preferredOutput === undefined ? {} : { preferredOutput: request.preferredOutput }),
              source: request.source ?? "api"
            }, { idempotencyKey: (seq) => `evalbook:${tenant}:${agentName}@${seq}`, correlationId: runId })).pipe(
              Effect.catchTag("EvalSuiteNotFound", Effect.die)
            )
            const stored = outcome.stored[0]!
            return feedbackOf(agentName, stored)!
          }),
        latestScore: (tenant, suiteId, version) =>
          index.get(`score.${tenant}.${suiteId}.${version}`).pipe(
            Effect.map(Option.match({
              onNone: () => null,
              onSome: (e) => {
                const [evalRunId = "", score = ""] = e.value.split(" ")
                return Number.isFinite(Number(score)) ? { evalRunId, score: Number(score) } : null
              }
            })),
            Effect.catchTag("CorruptValue", () => Effect.succeed(null))
          ),
        isEvalTraffic: (tenant, runId) =>
          index.get(`case.${tenant}.${runId}`).pipe(
            Effect.map(Option.isSome),
            Effect.catchTag("CorruptValue", () => Effect.succeed(true))
          ),
        feedback: (tenant, agentName) =>
          Effect.map(readBook(tenant, agentName), (stored) => stored.flatMap((s) => feedbackOf(agentName, s) ?? [])),
        get: (tenant, id) => Effect.map(readRun(tenant, id), ({ view, tolerance }) => ({ view, tolerance })),
        follow: (tenant, id) =>
          journal.follow(evalRunOf(tenant, id), 0).pipe(Stream.takeUntil((s) => s.event._tag === "EvalRunFinished")),
        setBaseline: (tenant, request) =>
          Effect.gen(function*() {
            const suite = yield* getSuite(tenant, request.suiteId)
            if (suite.agentName !== request.agentName) {
              return yield* new EvalBaselineRefused({
                reason: `suite ${request.suiteId} is ${suite.agentName}'s, not ${request.agentName}'s`
              })
            }
            const { view } = yield* readRun(tenant, request.evalRunId)
            if (view.suiteId !== request.suiteId) {
              return yield* new EvalBaselineRefused({ reason: `eval run ${view.id} ran another suite` })
            }
            if (view.status !== "finished" || view.score === null) {
              return yield* new EvalBaselineRefused({ reason: `eval run ${view.id} has not finished` })
            }
            yield* provide(books.execute(bookOf(tenant, request.agentName), {
              _tag: "SetBaseline",
              suiteId: request.suiteId,
              branch: request.branch,
              evalRunId: view.id,
              score: view.score
            }, {
              idempotencyKey: (seq) => `evalbook:${tenant}:${request.agentName}@${seq}`,
              correlationId: view.id
            }))
            const at = new Date(yield* Clock.currentTimeMillis).toISOString()
            return { ...request, evalRunId: view.id, score: view.score, setAt: at }
          }),
        baselines: (tenant, agentName, branch) =>
          Effect.gen(function*() {
            const stored = yield* readBook(tenant, agentName)
            const out: Array<BaselineView> = []
            for (const s of stored) {
              const e = s.event as EvalEvent
              if (e._tag !== "EvalBaselineSet" || (branch !== undefined && e.branch !== branch)) continue
              const i = out.findIndex((b) => b.suiteId === e.suiteId && b.branch === e.branch)
              const row = {
                agentName,
                suiteId: e.suiteId,
                branch: e.branch,
                evalRunId: e.evalRunId,
                score: e.score,
                setAt: s.envelope.at
              }
              if (i >= 0) out[i] = row
              else out.push(row)
            }
            return out
          })
      })
    })
  )
}
