// The eval routes (ADR 0047): suites, eval runs with their gate and progress stream, and baselines. The gate compares
// a finished run with the baseline run it was started against, case by case by name.
import { Clock, Effect, Stream } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import * as Assertions from "../actors/eval/Assertions.ts"
import { Runs } from "../actors/run/Runs.ts"
import { Evals } from "../actors/eval/Evals.ts"
import type { Assertion, Case, EvalEvent, EvalRunView, Kind, SuiteRequestLoose } from "../schema/Eval.ts"
import { EvalRegressed, KINDS, members } from "../schema/Eval.ts"
import * as Sse from "../schema/Sse.ts"
import { sseComment, sseResponse } from "./Events.ts"
import { BadRequest, decode } from "./Http.ts"
import * as Experiments from "./Experiments.ts"
import * as Rehearsals from "./Rehearsals.ts"
import { handlers, reply } from "./Serve.ts"

const encoder = new TextEncoder()

/** Each case of `run` beside the same case of `baseline`, the ones that did worse first. */
export const differences = (run: EvalRunView, baseline: EvalRunView | null) =>
  run.cases.map((c) => {
    const before = baseline?.cases.find((b) => b.name === c.name)
    return {
      name: c.name,
      score: c.score,
      baselineScore: before?.score ?? null,
      passed: c.passed,
      baselinePassed: before?.passed ?? null,
      failures: c.failures
    }
  }).sort((a, b) => (a.score - (a.baselineScore ?? a.score)) - (b.score - (b.baselineScore ?? b.score)))

const frameOf = (e: EvalEvent, casesTotal: { n: number }, done: { n: number }, seq: number): Uint8Array => {
  const data = (() => {
    switch (e._tag) {
      case "EvalRunStarted":
        casesTotal.n = e.cases.length
        return ["started", { id: e.evalRunId, casesTotal: e.cases.length, agentVersion: e.agentVersion }] as const
      case "EvalCaseFinished":
        done.n++
        return ["case", { index: e.index, casesDone: done.n, casesTotal: casesTotal.n, result: e.result }] as const
      case "EvalRunFinished":
        return ["finished", e] as const
      default:
        return ["other", {}] as const
    }
  })()
  return encoder.encode(Sse.encode({ id: String(seq), event: data[0], data: JSON.stringify(data[1]) }))
}

/** Decodes each assertion of a suite by its one key: an object of another shape is one issue naming it and its case. */
const typed = (loose: typeof SuiteRequestLoose.Type) =>
  Effect.gen(function*() {
    const issues: Array<{ field: string; message: string }> = []
    const cases: Array<Case> = []
    for (const [i, c] of loose.cases.entries()) {
      const assert: Array<Assertion> = []
      for (const [k, a] of c.assert.entries()) {
        const field = `cases[${i}].assert[${k}]`
        const keys = Object.keys(a)
        const kind = keys[0] as Kind
        if (keys.length !== 1 || !KINDS.includes(kind)) {
          issues.push({
            field,
            message: `case '${c.name}': an assertion is an object with exactly one of ${KINDS.join(", ")}; got ${
              keys.length === 0 ? "none" : keys.map((x) => `'${x}'`).join(", ")
            }`
          })
          continue
        }
        const decoded = yield* Effect.result(decode(members[kind], a, field))
        if (decoded._tag === "Failure") {
          issues.push(...decoded.failure.issues.map((x) => ({ ...x, message: `case '${c.name}': ${x.message}` })))
        } else assert.push(decoded.success as Assertion)
      }
      cases.push({ ...c, assert })
    }
    if (issues.length > 0) return yield* new BadRequest({ issues })
    return { ...loose, cases }
  })

export const evalHandlers = handlers({
  saveEvalSuite: ({ tenant, body: loose }) =>
    Effect.gen(function*() {
      const body = yield* typed(loose)
      const problems = Assertions.problems(body.cases)
      if (problems.length > 0) return yield* new BadRequest({ issues: problems })
      const saved = yield* (yield* Evals).saveSuite(tenant, body)
      return reply(saved.version === 1 && saved.created ? 201 : 200, { id: saved.id, version: saved.version }, {
        location: `/v1/eval-suites/${saved.id}`
      })
    }),
  listEvalSuites: ({ tenant, query }) =>
    Effect.map(Evals.use((e) => e.listSuites(tenant, query.agentName)), (items) => ({ items })),
  getEvalSuite: ({ tenant, params }) => Evals.use((e) => e.getSuite(tenant, params.id)),
  deleteEvalSuite: ({ tenant, params }) => Effect.as(Evals.use((e) => e.deleteSuite(tenant, params.id)), null),
  startEvalRun: ({ tenant, body }) =>
    Effect.gen(function*() {
      const cases = body.rehearsal === undefined
        ? undefined
        : Rehearsals.casesOf(yield* Rehearsals.find(tenant, { ...body.rehearsal }))
      if (cases !== undefined && cases.length === 0) {
        return yield* new BadRequest({
          issues: [{ field: "rehearsal", message: "the window holds no failed or low-scored run of the agent" }]
        })
      }
      const id = yield* (yield* Evals).start(tenant, body, cases)
      return reply(202, { id }, { location: `/v1/eval-runs/${id}` })
    }),
  getEvalRun: ({ tenant, params, query }) =>
    Effect.gen(function*() {
      const evals = yield* Evals
      const { view, tolerance } = yield* evals.get(tenant, params.id)
      // a finished eval run may settle an experiment scored by its suite (ADR 0058)
      if (view.status === "finished") {
        yield* Experiments.reviewAgent(tenant, view.agentName).pipe(
          Effect.tapCause((cause) => Effect.logWarning("experiment review after an eval run failed", cause)),
          Effect.ignore
        )
      }
      if (query.gate !== "true" || !view.regressed) return view
      const baseline = view.baselineRunId === null
        ? null
        : yield* evals.get(tenant, view.baselineRunId).pipe(
          Effect.map((b) => b.view),
          Effect.catchTag("EvalRunNotFound", () => Effect.succeed(null))
        )
      return yield* new EvalRegressed({
        id: view.id,
        score: view.score ?? 0,
        baselineScore: view.baselineScore,
        baselineRunId: view.baselineRunId,
        tolerance,
        differences: differences(view, baseline)
      })
    }),
  evalRunStream: ({ tenant, params }) =>
    Effect.gen(function*() {
      const evals = yield* Evals
      yield* evals.get(tenant, params.id)
      const total = { n: 0 }
      const done = { n: 0 }
      const events = evals.follow(tenant, params.id).pipe(
        Stream.map((s) => frameOf(s.event as EvalEvent, total, done, s.seq))
      )
      return sseResponse(sseComment("lantern eval run stream"), events)
    }),
  giveRunFeedback: ({ tenant, params, body }) =>
    Effect.gen(function*() {
      const run = yield* (yield* Runs).get(tenant, params.id)
      const given = yield* (yield* Evals).giveFeedback(tenant, run.agentName, run.id, body)
      // feedback may settle the agent's experiment (auto-promotion, ADR 0058); the feedback stands either way
      yield* Experiments.reviewAgent(tenant, run.agentName).pipe(
        Effect.tapCause((cause) => Effect.logWarning("experiment review after feedback failed", cause)),
        Effect.ignore
      )
      return reply(201, given)
    }),
  runFeedback: ({ tenant, params }) =>
    Effect.gen(function*() {
      const run = yield* (yield* Runs).get(tenant, params.id)
      const all = yield* (yield* Evals).feedback(tenant, run.agentName)
      return { items: all.filter((f) => f.runId === run.id) }
    }),
  agentFeedback: ({ tenant, params }) =>
    Effect.gen(function*() {
      yield* (yield* Agents).get(tenant, params.name)
      const all = yield* (yield* Evals).feedback(tenant, params.name)
      const since = (yield* Clock.currentTimeMillis) - 7 * 86_400_000
      const mean = (xs: ReadonlyArray<{ score: number }>) =>
        xs.length === 0 ? null : xs.reduce((n, x) => n + x.score, 0) / xs.length
      return {
        agentName: params.name,
        count: all.length,
        mean: mean(all),
        thumbsUp: all.filter((f) => f.score >= 4).length,
        thumbsDown: all.filter((f) => f.score <= 2).length,
        last7DaysMean: mean(all.filter((f) => Date.parse(f.at) >= since))
      }
    }),
  rehearseRuns: ({ tenant, body }) =>
    Effect.gen(function*() {
      yield* (yield* Agents).get(tenant, body.agentName)
      return { items: yield* Rehearsals.find(tenant, body) }
    }),
  setEvalBaseline: ({ tenant, body }) =>
    Effect.map(Evals.use((e) => e.setBaseline(tenant, body)), (b) => reply(201, b)),
  listEvalBaselines: ({ tenant, query }) =>
    Effect.map(Evals.use((e) => e.baselines(tenant, query.agentName, query.branch)), (items) => ({ items }))
})
