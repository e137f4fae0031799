// A process that projects a fixed journal of ten-step runs into PGlite on disk, batch after batch, resuming from
// the database's checkpoint as a projector does, and prints each checkpoint it commits: the kill test of
// projections/BatchCrash.test.ts SIGKILLs it mid-batch. Run as `LANTERN_APPLY_BATCHES_DIR=<dataDir> node --import
// tsx ApplyBatches.ts`; imported, it only lends the journal.
import { Effect } from "effect"
import { RUNS } from "../../bus/Topology.ts"
import * as Fixtures from "../../projections/Fixtures.ts"
import * as Migrations from "../../projections/Migrations.ts"
import * as Projector from "../../projections/Projector.ts"
import { Sql } from "../../projections/Sql.ts"

export const TENANT = "crash"
/** 80 runs of 5 events: 400 events, the refused one at seq 162, as the kill test's timed points expect. */
export const RUN_COUNT = 80
export const BATCH = 24

/** The journal every process of the test applies, as stored; the same on every call. */
export const journal = () => Fixtures.storedOf(Fixtures.tenStepRuns(TENANT, RUN_COUNT))

const main = (dataDir: string) =>
  Effect.gen(function*() {
    yield* Migrations.migrate
    const stored = journal()
    let committed = yield* Projector.checkpoint("projector-runs", RUNS)
    while (committed < stored.length) {
      const applied = yield* Projector.apply(
        "projector-runs",
        RUNS,
        stored.slice(committed, committed + BATCH),
        committed
      )
      committed = applied.checkpoint
      process.stdout.write(`checkpoint ${committed}\n`)
    }
    process.stdout.write("done\n")
  }).pipe(Effect.provide(Sql.layerPglite(dataDir)))

const dataDir = process.env.LANTERN_APPLY_BATCHES_DIR
if (dataDir !== undefined) {
  Effect.runPromise(main(dataDir)).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${String(e)}\n`)
      process.exit(1)
    }
  )
}
