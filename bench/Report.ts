// The benchmark's plain-text report: environment, raw JetStream figures, Lantern's step figures beside them
// as ratios (DESIGN §6), growth with load, and one BENCH_JSON line for machines.
import type { Summary } from "./Stats.ts"

export interface Environment {
  readonly natsServer: string
  readonly syncAlways: boolean
  readonly node: string
  readonly cpus: number
  readonly cpuModel: string
  readonly scale: number
  readonly stream: { readonly storage: string; readonly replicas: number | undefined }
  readonly rawPayloadBytes: number
  readonly envelopeBytes: { readonly startedBytes: number; readonly completedBytes: number }
}

export interface Level {
  readonly inFlight: number
  readonly raw: Summary
  readonly steps: Summary
}

/** Step median over the cost of two raw round trips: 1.00 is the physical limit, higher is worse. */
export const latencyRatio = (l: Level): number => l.steps.medianMs / (2 * l.raw.medianMs)
/** Steps/s over raw publishes/s halved (two events per step): 1.00 is the limit, lower is worse. */
export const throughputRatio = (l: Level): number => l.steps.perSecond / (l.raw.perSecond / 2)

const ms = (x: number) => x.toFixed(3)
const rate = (x: number) => Math.round(x).toLocaleString("en-US")
const ratio = (x: number) => `${x.toFixed(2)}x`

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

const growth = (
  label: string,
  unit: string,
  values: ReadonlyArray<number>,
  fmt: (x: number) => string
): ReadonlyArray<string> => {
  const base = values[0]!
  return [label, unit, ...values.map((v, i) => (i === 0 ? fmt(v) : `${fmt(v)} (${(v / base).toFixed(1)}x)`))]
}

export const render = (env: Environment, levels: ReadonlyArray<Level>, totalSeconds: number): string => {
  const out: Array<string> = []
  out.push("Lantern durable-step benchmark (bench/main.ts)")
  out.push(
    `nats-server ${env.natsServer}, sync every write: ${
      env.syncAlways ? "yes (sync_interval: always)" : "no (server default flush interval)"
    }`
  )
  out.push(`node ${env.node}, ${env.cpus} CPUs (${env.cpuModel}), BENCH_SCALE=${env.scale}`)
  out.push(
    `streams: ${env.stream.storage} storage, replicas ${
      env.stream.replicas ?? 1
    }; envelopes ${env.envelopeBytes.startedBytes} B (StepStarted) / ${env.envelopeBytes.completedBytes} B (StepCompleted), raw payload ${env.rawPayloadBytes} B`
  )
  out.push("")
  out.push(
    "1. Raw JetStream publish-with-ack (BENCH_RAW, configured as LANTERN_RUNS; each publisher awaits its own acks)"
  )
  out.push(table(
    ["publishers", "publishes", "median ms", "p99 ms", "max ms", "publishes/s"],
    levels.map((
      l
    ) => [
      String(l.inFlight),
      String(l.raw.count),
      ms(l.raw.medianMs),
      ms(l.raw.p99Ms),
      ms(l.raw.maxMs),
      rate(l.raw.perSecond)
    ])
  ))
  out.push("")
  out.push(
    "2. Lantern durable step (Journal.append StepStarted, then StepCompleted; OCC expectedSeq + idempotency key)"
  )
  out.push(table(
    [
      "runs in flight",
      "steps",
      "median ms",
      "p99 ms",
      "2x raw median ms",
      "median ratio",
      "steps/s",
      "raw pub/s / 2",
      "steps/s ratio"
    ],
    levels.map((l) => [
      String(l.inFlight),
      String(l.steps.count),
      ms(l.steps.medianMs),
      ms(l.steps.p99Ms),
      ms(2 * l.raw.medianMs),
      ratio(latencyRatio(l)),
      rate(l.steps.perSecond),
      rate(l.raw.perSecond / 2),
      ratio(throughputRatio(l))
    ])
  ))
  out.push("   median ratio = step median / (2 x raw median)   (1.00x = physical limit, higher is worse)")
  out.push("   steps/s ratio = steps/s / (raw publishes/s / 2)  (1.00x = physical limit, lower is worse)")
  out.push("")
  out.push(
    `3. Growth with load (${levels.map((l) => l.inFlight).join(" -> ")} in flight; (Nx) relative to ${
      levels[0]!.inFlight
    })`
  )
  out.push(table(
    ["figure", "unit", ...levels.map((l) => `${l.inFlight}`)],
    [
      growth("raw publish median", "ms", levels.map((l) => l.raw.medianMs), ms),
      growth("raw publish p99", "ms", levels.map((l) => l.raw.p99Ms), ms),
      growth("raw publishes/s", "1/s", levels.map((l) => l.raw.perSecond), rate),
      growth("step median", "ms", levels.map((l) => l.steps.medianMs), ms),
      growth("step p99", "ms", levels.map((l) => l.steps.p99Ms), ms),
      growth("steps/s", "1/s", levels.map((l) => l.steps.perSecond), rate),
      growth("median ratio", "x", levels.map(latencyRatio), (x) => x.toFixed(2)),
      growth("steps/s ratio", "x", levels.map(throughputRatio), (x) => x.toFixed(2))
    ]
  ))
  out.push("")
  out.push(`total ${totalSeconds.toFixed(1)} s`)
  return out.join("\n")
}

const round = (x: number, digits: number) => Number(x.toFixed(digits))
const summaryJson = (s: Summary) => ({
  count: s.count,
  medianMs: round(s.medianMs, 4),
  p99Ms: round(s.p99Ms, 4),
  maxMs: round(s.maxMs, 4),
  wallMs: round(s.wallMs, 1),
  perSecond: round(s.perSecond, 1)
})

/** The figures as one `BENCH_JSON {...}` line. */
export const json = (env: Environment, levels: ReadonlyArray<Level>, totalSeconds: number): string =>
  `BENCH_JSON ${
    JSON.stringify({
      env,
      levels: levels.map((l) => ({
        inFlight: l.inFlight,
        raw: summaryJson(l.raw),
        steps: summaryJson(l.steps),
        medianRatio: round(latencyRatio(l), 3),
        throughputRatio: round(throughputRatio(l), 3)
      })),
      totalSeconds: round(totalSeconds, 1)
    })
  }`
