// Lantern's durable step as the runtime pays for it: StepStarted then StepCompleted appended through
// `Journal.append`, each expecting the previous append's sequence (OCC) and carrying its idempotency key.
import { Effect } from "effect"
import { Journal, type Service as JournalService } from "../bus/Journal.ts"
import * as Fixture from "./Fixture.ts"
import * as Stats from "./Stats.ts"

/** One run doing `steps` steps one after the other on its own journal; per-step latencies go to `samples`. */
const runSteps = (journal: JournalService, run: string, steps: number, samples: Array<number>) =>
  Effect.gen(function*() {
    const address = Fixture.address(run)
    let seq = 0
    let duplicates = 0
    for (let n = 0; n < steps; n++) {
      const t = performance.now()
      const started = Fixture.stepStarted(run, n)
      const a = yield* journal.append(address, [started], seq)
      const b = yield* journal.append(address, [Fixture.stepCompleted(run, n, started.eventId)], a.lastSeq)
      samples.push(performance.now() - t)
      seq = b.lastSeq
      duplicates += a.duplicates + b.duplicates
    }
    return duplicates
  })

/**
 * `total` steps spread over `inFlight` runs that all progress at once, each run stepping sequentially.
 * Afterwards the first run's journal is read back (every event decoded) to check what was measured.
 */
export const run = (inFlight: number, total: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const counts = Stats.split(total, inFlight)
    const runs = counts.map(() => Fixture.runId())
    const samples: Array<number> = []
    const started = performance.now()
    const duplicates = yield* Effect.forEach(runs, (r, i) => runSteps(journal, r, counts[i]!, samples), {
      concurrency: "unbounded"
    })
    const summary = Stats.summarize(samples, performance.now() - started)

    const dupes = duplicates.reduce((a, b) => a + b, 0)
    const stored = yield* journal.read(Fixture.address(runs[0]!))
    const tags = stored.map((s) => s.event._tag)
    const expected = Array.from({ length: counts[0]! }, () => ["StepStarted", "StepCompleted"]).flat()
    if (dupes !== 0 || tags.join(",") !== expected.join(",")) {
      return yield* Effect.die(
        new Error(
          `journal check failed: ${dupes} duplicates; read back ${tags.length} events, expected ${expected.length}`
        )
      )
    }
    return summary
  })
