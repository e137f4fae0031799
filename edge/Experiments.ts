// An A/B experiment's figures and its auto-promotion (ADR 0058). Figures per arm come from the runs projection (the
// runs the split assigned, eval traffic left out) and, for the score, from the agent's feedback (mean mapped to 0..1)
// or from the suite's latest eval run at the arm's version. A running experiment with autoPromote is reviewed
// whenever it is read, feedback is given on one of the agent's runs, or one of its eval runs is read finished:
// once both arms have minRuns and the variant leads by more than minLift, it is concluded and the variant promoted.
import { Effect } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import { Audit } from "../actors/audit/Audit.ts"
import { Evals } from "../actors/eval/Evals.ts"
import * as Queries from "../projections/Queries.ts"
import type { Arm, ArmResult, ExperimentView } from "../schema/Experiment.ts"

const detailOf = (e: ExperimentView) => ({
  agent: e.agentName,
  control: String(e.control),
  variant: String(e.variant),
  trafficPercent: String(e.trafficPercent)
})

/** Audits an experiment's start or conclusion. */
export const audited = (tenant: string, e: ExperimentView, by?: string) =>
  Audit.use((audit) =>
    audit.record({
      tenant,
      action: e.status === "running" ? "experiment.started" : "experiment.concluded",
      actor: by ?? e.concludedBy ?? "system",
      target: e.id,
      outcome: "allowed",
      detail: e.status === "running"
        ? { ...detailOf(e), metric: e.metric }
        : { ...detailOf(e), winner: e.winner ?? "", promoted: String(e.promoted) }
    })
  )

const round = (x: number) => Math.round(x * 1e9) / 1e9

/** The experiment with each arm's figures and the variant's lift over control. */
export const withResults = (tenant: string, experiment: ExperimentView) =>
  Effect.gen(function*() {
    const runs = yield* Queries.experimentRuns(tenant, experiment.id)
    const evals = yield* Evals
    const feedback = experiment.metric === "feedback" ? yield* evals.feedback(tenant, experiment.agentName) : []
    // a run's latest feedback is what it got
    const latest = new Map(feedback.map((f) => [f.runId, f.score]))
    const results: Array<ArmResult> = []
    for (const arm of ["control", "variant"] as const) {
      const version = arm === "control" ? experiment.control : experiment.variant
      const mine = runs.filter((r) => r.arm === arm)
      const succeeded = mine.filter((r) => r.status === "succeeded").length
      const failed = mine.filter((r) => r.status === "failed").length
      const ended = mine.filter((r) => r.status !== "running").length
      const scores = mine.flatMap((r) => latest.get(r.id) ?? [])
      const meanFeedback = scores.length === 0 ? null : scores.reduce((n, x) => n + x, 0) / scores.length
      const suite = experiment.metric === "evalSuite" && experiment.suiteId !== null
        ? yield* evals.latestScore(tenant, experiment.suiteId, version)
        : null
      results.push({
        arm,
        version,
        runs: mine.length,
        succeeded,
        failed,
        successRate: ended === 0 ? null : round(succeeded / ended),
        costUsd: round(mine.reduce((n, r) => n + r.costUsd, 0)),
        scored: experiment.metric === "feedback" ? scores.length : suite === null ? 0 : 1,
        score: experiment.metric === "feedback"
          ? (meanFeedback === null ? null : round((meanFeedback - 1) / 4))
          : suite?.score ?? null,
        meanFeedback: meanFeedback === null ? null : round(meanFeedback)
      })
    }
    const [control, variant] = results as [ArmResult, ArmResult]
    const lift = control.score === null || variant.score === null ? null : round(variant.score - control.score)
    return { ...experiment, results, lift }
  })

/** Whether an arm has enough runs to be judged: scored runs for feedback, runs for a suite's score. */
const enough = (experiment: ExperimentView, arm: ArmResult) =>
  (experiment.metric === "feedback" ? arm.scored : arm.runs) >= experiment.minRuns && arm.score !== null

/**
 * The experiment with its figures, concluded first when it runs, promotes automatically and its variant leads:
 * both arms have `minRuns` and the variant's score exceeds control's by more than `minLift`.
 */
export const review = (tenant: string, experiment: ExperimentView) =>
  Effect.gen(function*() {
    const figured = yield* withResults(tenant, experiment)
    if (experiment.status !== "running" || !experiment.autoPromote) return figured
    const [control, variant] = figured.results as [ArmResult, ArmResult]
    if (!enough(experiment, control) || !enough(experiment, variant)) return figured
    if (figured.lift === null || figured.lift <= experiment.minLift) return figured
    const winner: Arm = "variant"
    const reason =
      `auto-promotion: the variant's ${experiment.metric} score ${variant.score} beat control's ${control.score} ` +
      `by ${figured.lift} (> ${experiment.minLift}) over ${variant.runs} and ${control.runs} runs`
    const concluded = yield* (yield* Agents).concludeExperiment(tenant, experiment.id, winner, "auto-promotion", reason)
      .pipe(
        Effect.catchTags({ AgentNotFound: Effect.die, AgentVersionNotFound: Effect.die, ExperimentRefused: Effect.die })
      )
    if (concluded.concludedBy === "auto-promotion") yield* audited(tenant, concluded)
    return { ...concluded, results: figured.results, lift: figured.lift }
  })

/** Reviews the agent's running experiment, if any (after feedback on one of its runs, say). */
export const reviewAgent = (tenant: string, agentName: string) =>
  Effect.gen(function*() {
    const all = yield* (yield* Agents).experiments(tenant, agentName)
    const open = all.find((e) => e.status === "running")
    return open === undefined ? null : yield* review(tenant, open)
  })
