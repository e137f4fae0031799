// `POST /v1/runs/forecast`: what a run would probably cost, asked with the body that would start it. Reads the
// version from its journal, its completed runs from the projection, prices the prior through the provider's quote.
import { Effect, Option } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import * as Forecast from "../actors/forecast/Forecast.ts"
import { ModelProvider } from "../actors/model/ModelProvider.ts"
import * as Prices from "../actors/model/Prices.ts"
import * as Decider from "../actors/run/Decider.ts"
import * as Plan from "../actors/run/Plan.ts"
import * as Queries from "../projections/Queries.ts"
import type { ForecastResponse } from "../schema/Forecast.ts"
import { handlers, reply } from "./Serve.ts"

/** Token counts of past runs' inputs by run id: an input never changes, and counting 200 of them each time would. */
const counted = new Map<string, number>()
const COUNTED_MAX = 50_000

const inputTokensOf = (tenant: string, run: Queries.CostSample) => {
  const key = `${tenant}/${run.id}`
  const known = counted.get(key)
  if (known !== undefined) return known
  const n = Forecast.inputTokens(run.input)
  if (counted.size >= COUNTED_MAX) counted.delete(counted.keys().next().value!)
  counted.set(key, n)
  return n
}

/** Six significant digits: a forecast is not more precise than that. */
const usd = (x: number) => Number(x.toPrecision(6))

const describe = (f: Forecast.Forecast, p: Forecast.PriorInput, version: number, models: ReadonlyArray<string>) => {
  const priced = models.length === 0 ? "the provider's prices" : models.join(", ")
  switch (f.method) {
    case "prior": {
      const turns = p.hasTools ? Math.min(Forecast.TYPICAL_TURNS, p.maxTurns) : 1
      const typical = Math.round(Math.min(p.maxTokens / 2, Forecast.TYPICAL_OUTPUT))
      return `No completed run of version ${version} yet, so the spec and the prices alone: p10 is one call answering in `
        + `${Math.min(p.maxTokens, Forecast.SMALL_OUTPUT)} tokens, p50 ${turns} turn${
          turns === 1 ? "" : "s"
        } answering ${typical} tokens each, `
        + `p90 the worst case the spec allows (${p.hasTools ? p.maxTurns : 1} turn${
          p.hasTools && p.maxTurns !== 1 ? "s" : ""
        } answering maxTokens ${p.maxTokens}, `
        + `tool results as long), at the prices of ${priced}.`
    }
    case "blend":
      return `${f.runs} completed run${
        f.runs === 1 ? "" : "s"
      } of version ${version}, blended with the spec's prior: under `
        + `${Forecast.MIN_HISTORY} runs the median leans on the runs, the interval's ends stay near the prior's bounds.`
    case "history":
      return `The ${f.runs} latest succeeded runs of version ${version}: log cost against log prompt tokens `
        + `(cost ∝ prompt^${
          (f.exponent ?? 1).toFixed(2)
        }), this input's ${p.baseline}-token prompt read off that line, `
        + `the 80% interval from the runs' scatter around it.`
  }
}

export const forecastHandlers = handlers({
  forecastRun: ({ tenant, body: request }) =>
    Effect.gen(function*() {
      const { version, spec } = yield* (yield* Agents).version(tenant, request.agentName, request.agentVersion)
      // the quote of the run's first model call, as the run itself would ask for it
      const first = {
        ...Decider.initialState,
        status: "running" as const,
        agentName: request.agentName,
        agentVersion: version,
        spec,
        input: request.input
      }
      const [quote, table, history] = yield* Effect.all([
        (yield* ModelProvider).quote(
          Plan.modelRequest(first, { model: spec.model }, `forecast:${request.agentName}`, tenant)
        ),
        Effect.map(Effect.serviceOption(Prices.Prices), Option.getOrElse(() => Prices.defaults)),
        Queries.succeededRuns(tenant, request.agentName, version, Forecast.MAX_HISTORY)
      ], { concurrency: "unbounded" })
      // the version's system prompt and tools are the same for every run: count them once, the inputs apart
      const fixed = Forecast.baselineOf(spec, "")
      const samples = history.map((r): Forecast.Sample => ({
        baseline: fixed + inputTokensOf(tenant, r),
        tokensIn: r.tokensIn,
        tokensOut: r.tokensOut,
        costUsd: r.costUsd
      }))
      const priorInput: Forecast.PriorInput = {
        baseline: quote.promptTokens,
        maxTurns: spec.maxTurns,
        maxTokens: quote.maxTokens,
        hasTools: spec.tools.length > 0,
        rates: Forecast.ratesOf(table, quote.models)
      }
      const forecast = Forecast.make(priorInput, samples)
      const e = forecast.estimate
      const refusal = yield* Forecast.budgetCheck(tenant, request.agentName, e.costUsd.p90, Math.round(e.tokens.p90))
      const answer: ForecastResponse = {
        estimatedTokensIn: Math.round(e.tokensIn.p50),
        estimatedTokensOut: Math.round(e.tokensOut.p50),
        estimatedCostUsd: usd(e.costUsd.p50),
        p10: usd(e.costUsd.p10),
        p50: usd(e.costUsd.p50),
        p90: usd(e.costUsd.p90),
        confidence: Number(forecast.confidence.toFixed(3)),
        confidenceLabel: forecast.confidenceLabel,
        basis: {
          method: forecast.method,
          runs: forecast.runs,
          agentVersion: version,
          promptTokens: quote.promptTokens,
          exponent: forecast.exponent === null ? null : Number(forecast.exponent.toFixed(3)),
          models: quote.models,
          pricesVersion: table.version,
          description: describe(forecast, priorInput, version, quote.models)
        },
        wouldExceedBudget: refusal !== null,
        ...(refusal === null ? {} : { budget: refusal })
      }
      return reply(refusal === null ? 200 : 402, answer)
    }).pipe(Effect.withSpan("Forecast.route"))
})
