// How good the cost forecast is: replays the recorded runs (bench/fixtures/forecast-runs.jsonl, made by
// ForecastRecord.ts) in order, forecasts each from the same version's earlier runs only, and scores the forecasts.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import * as Forecast from "../actors/forecast/Forecast.ts"
import * as Prices from "../actors/model/Prices.ts"
import * as Quote from "../actors/model/Quote.ts"
import { DEFAULT_MAX_TOKENS, type ResolvedSpec } from "../schema/AgentSpec.ts"
import { table } from "./Report.ts"

export const FIXTURE = join(import.meta.dirname, "fixtures/forecast-runs.jsonl")

interface RunLine {
  readonly type: "run"
  readonly id: string
  readonly agentName: string
  readonly agentVersion: number
  readonly status: string
  readonly input: unknown
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

interface AgentLine {
  readonly type: "agent"
  readonly name: string
  readonly version: number
  readonly spec: ResolvedSpec
}

/** One forecast beside the run it forecast. */
export interface Scored {
  /** Completed runs of the same version before this one. */
  readonly history: number
  readonly forecast: Forecast.Forecast
  readonly actualUsd: number
}

export interface Group {
  readonly label: string
  readonly forecasts: number
  /** Share of actual costs within [p10, p90]. */
  readonly inside: number
  /** Mean of the forecasts' numeric confidence: what they claimed `inside` would be. */
  readonly meanConfidence: number
  readonly medianAbsErrorUsd: number
  /** Median of |p50 - actual| / actual. */
  readonly medianAbsErrorPct: number
  /** Median of p90 / p10. */
  readonly medianSpread: number
  readonly confidence: Readonly<Record<Forecast.Confidence, number>>
}

export interface Result {
  readonly runs: number
  readonly agents: number
  /** The chosen method first, then the alternatives it was compared with. */
  readonly methods: ReadonlyArray<{ readonly scaling: Forecast.Scaling; readonly low: Group; readonly rest: Group }>
  /** Per confidence level of the chosen method: how often it held. */
  readonly byConfidence: ReadonlyArray<Group>
  readonly forecastMs: number
  readonly seconds: number
}

export const load = (file = FIXTURE) => {
  const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l) as { type: string }
  )
  const specs = new Map(
    (lines.filter((l) => l.type === "agent") as Array<AgentLine>).map((a) => [`${a.name}@${a.version}`, a.spec])
  )
  const runs = lines.filter((l) => l.type === "run") as Array<RunLine>
  return { specs, runs }
}

/** The candidates the recording's OpenAI-compatible provider quoted: the spec's model itself. */
const quoteOf = (spec: ResolvedSpec, input: unknown) =>
  Quote.of(Prices.defaults, {
    model: spec.model,
    messages: [{ role: "system", content: spec.systemPrompt }, {
      role: "user",
      content: typeof input === "string" ? input : JSON.stringify(input)
    }],
    tools: spec.tools,
    idempotencyKey: "forecast",
    maxTokens: spec.maxTokens ?? DEFAULT_MAX_TOKENS
  }, [{ provider: "openai", model: spec.model }])

/** Forecasts every run from the succeeded runs of its version before it, in recording order. */
export const replay = (data: ReturnType<typeof load>, options: Forecast.Options): ReadonlyArray<Scored> => {
  const seen = new Map<string, Array<Forecast.Sample>>()
  const out: Array<Scored> = []
  for (const run of data.runs) {
    const key = `${run.agentName}@${run.agentVersion}`
    const spec = data.specs.get(key)!
    const quote = quoteOf(spec, run.input)
    const history = seen.get(key) ?? []
    const forecast = Forecast.make(
      {
        baseline: quote.promptTokens,
        maxTurns: spec.maxTurns,
        maxTokens: quote.maxTokens,
        hasTools: spec.tools.length > 0,
        rates: Forecast.ratesOf(Prices.defaults, quote.models)
      },
      history.slice(-Forecast.MAX_HISTORY),
      options
    )
    out.push({ history: history.length, forecast, actualUsd: run.costUsd })
    if (run.status === "succeeded") {
      history.push({
        baseline: Forecast.baselineOf(spec, run.input),
        tokensIn: run.tokensIn,
        tokensOut: run.tokensOut,
        costUsd: run.costUsd
      })
      seen.set(key, history)
    }
  }
  return out
}

const median = (values: ReadonlyArray<number>) => {
  const s = [...values].sort((a, b) => a - b)
  return s.length === 0
    ? Number.NaN
    : s.length % 2 === 1
    ? s[(s.length - 1) / 2]!
    : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

export const score = (label: string, scored: ReadonlyArray<Scored>): Group => {
  const cost = (s: Scored) => s.forecast.estimate.costUsd
  const count = (c: Forecast.Confidence) => scored.filter((s) => s.forecast.confidenceLabel === c).length
  return {
    label,
    forecasts: scored.length,
    inside: scored.filter((s) => cost(s).p10 <= s.actualUsd && s.actualUsd <= cost(s).p90).length / scored.length,
    meanConfidence: scored.reduce((sum, s) => sum + s.forecast.confidence, 0) / scored.length,
    medianAbsErrorUsd: median(scored.map((s) => Math.abs(cost(s).p50 - s.actualUsd))),
    medianAbsErrorPct: median(scored.map((s) => (100 * Math.abs(cost(s).p50 - s.actualUsd)) / s.actualUsd)),
    medianSpread: median(scored.map((s) => cost(s).p90 / cost(s).p10)),
    confidence: { low: count("low"), medium: count("medium"), high: count("high") }
  }
}

const SCALINGS: ReadonlyArray<Forecast.Scaling> = ["fitted", "ratio", "absolute"]

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: ${text}\n`))

export const run = Effect.gen(function*() {
  const began = performance.now()
  const data = load()
  yield* progress(`forecast: replaying ${data.runs.length} recorded runs`)
  const chosen = Forecast.defaults.scaling
  const methods = [chosen, ...SCALINGS.filter((s) => s !== chosen)].map((scaling) => {
    const scored = replay(data, { ...Forecast.defaults, scaling })
    return {
      scaling,
      scored,
      low: score(`history < ${Forecast.MIN_HISTORY}`, scored.filter((s) => s.history < Forecast.MIN_HISTORY)),
      rest: score(`history >= ${Forecast.MIN_HISTORY}`, scored.filter((s) => s.history >= Forecast.MIN_HISTORY))
    }
  })
  const best = methods[0]!.scored
  const byConfidence = (["low", "medium", "high"] as const).map((c) =>
    score(c, best.filter((s) => s.forecast.confidenceLabel === c))
  )
  // one forecast's own work: the quote's token count and the arithmetic (the route adds a query and the history's counts)
  const t0 = performance.now()
  const full = replay(data, Forecast.defaults).length
  const forecastMs = (performance.now() - t0) / full
  return {
    runs: data.runs.length,
    agents: data.specs.size,
    methods: methods.map(({ scaling, low, rest }) => ({ scaling, low, rest })),
    byConfidence,
    forecastMs,
    seconds: (performance.now() - began) / 1000
  } satisfies Result
})

const usd = (x: number) => (Number.isFinite(x) ? `$${x.toFixed(6)}` : "-")
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : "-")
const row = (method: string, g: Group) => [
  method,
  g.label,
  String(g.forecasts),
  pct(g.inside),
  usd(g.medianAbsErrorUsd),
  Number.isFinite(g.medianAbsErrorPct) ? `${g.medianAbsErrorPct.toFixed(1)}%` : "-",
  Number.isFinite(g.medianSpread) ? `${g.medianSpread.toFixed(1)}x` : "-",
  `${g.confidence.low}/${g.confidence.medium}/${g.confidence.high}`
]

export const render = (r: Result): string => {
  const chosen = r.methods[0]!
  return [
    `7. Cost forecast (POST /v1/runs/forecast): ${r.runs} recorded runs of ${r.agents} agent versions, each forecast from its version's earlier runs only`,
    table(
      [
        "method",
        "history",
        "forecasts",
        "in p10-p90",
        "median |err|",
        "median |err| %",
        "median p90/p10",
        "low/med/high"
      ],
      r.methods.flatMap((
        m
      ) => [
        row(m.scaling === chosen.scaling ? `${m.scaling} (used)` : m.scaling, m.low),
        row(m.scaling === chosen.scaling ? `${m.scaling} (used)` : m.scaling, m.rest)
      ])
    ),
    "",
    table(
      ["confidence", "forecasts", "in p10-p90", "claimed", "median |err| %", "median p90/p10"],
      r.byConfidence.map((
        g
      ) => [
        g.label,
        String(g.forecasts),
        pct(g.inside),
        pct(g.meanConfidence),
        Number.isFinite(g.medianAbsErrorPct) ? `${g.medianAbsErrorPct.toFixed(1)}%` : "-",
        Number.isFinite(g.medianSpread) ? `${g.medianSpread.toFixed(1)}x` : "-"
      ])
    ),
    `   fitted = log cost regressed on log prompt tokens (slope pulled towards 1); ratio = cost per prompt token;`,
    `   absolute = the version's cost distribution, ignoring the input. |err| is |p50 - actual|; an honest 80% interval`,
    `   holds ~80% of actual costs. Under ${Forecast.MIN_HISTORY} runs the prior (spec bounds x prices) is blended in.`,
    `   ${
      r.forecastMs.toFixed(3)
    } ms per replayed forecast (prompt count, quote, arithmetic over up to ${Forecast.MAX_HISTORY} runs); ${
      r.seconds.toFixed(1)
    } s in all.`
  ].join("\n")
}

const round = (x: number, digits: number) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null)
const groupJson = (g: Group) => ({
  forecasts: g.forecasts,
  inside: round(g.inside, 3),
  meanConfidence: round(g.meanConfidence, 3),
  medianAbsErrorUsd: round(g.medianAbsErrorUsd, 8),
  medianAbsErrorPct: round(g.medianAbsErrorPct, 1),
  medianSpread: round(g.medianSpread, 2)
})

/** The figures as one `BENCH_FORECAST_JSON {...}` line. */
export const json = (r: Result): string =>
  `BENCH_FORECAST_JSON ${
    JSON.stringify({
      runs: r.runs,
      methods: r.methods.map((m) => ({ scaling: m.scaling, low: groupJson(m.low), rest: groupJson(m.rest) })),
      byConfidence: Object.fromEntries(r.byConfidence.map((g) => [g.label, groupJson(g)])),
      forecastMs: round(r.forecastMs, 3)
    })
  }`

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = Effect.runSync(run)
  console.log(render(r))
  console.log(json(r))
}
