// A process projecting into PGlite on disk is SIGKILLed in the middle of its batches, again and again: each time,
// the checkpoint the database holds and its rows agree (exactly the rows of folding the journal up to that
// checkpoint, the refused event a dead letter once passed), and a new process goes on from there to the end.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, ManagedRuntime } from "effect"
import { RUNS } from "../bus/Topology.ts"
import type * as Envelope from "../schema/Envelope.ts"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import * as ApplyBatches from "../tests/support/ApplyBatches.ts"
import * as Fold from "./Fold.ts"
import * as Migrations from "./Migrations.ts"
import * as Projector from "./Projector.ts"
import { Sql } from "./Sql.ts"

const SCRIPT = fileURLToPath(new URL("../tests/support/ApplyBatches.ts", import.meta.url))

const rows = Effect.gen(function*() {
  const sql = yield* Sql
  return {
    runs: yield* sql.query(`select * from runs order by tenant_id, id`),
    steps: yield* sql.query(`select * from steps order by tenant_id, run_id, step_id, attempt`)
  }
})

/** Starts the applying process; resolves with it once it printed `checkpoints` commits, or when it exits. */
const start = (dataDir: string, checkpoints: number) => {
  const child = spawn(process.execPath, ["--import", "tsx", SCRIPT], {
    env: { ...process.env, LANTERN_APPLY_BATCHES_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  let stderr = ""
  child.stderr!.on("data", (d) => (stderr += String(d)))
  const committed = new Promise<void>((resolve) => {
    let seen = 0
    child.stdout!.on("data", (d) => {
      seen += String(d).split("\n").filter((l) => l.startsWith("checkpoint ")).length
      if (seen >= checkpoints) resolve()
    })
    void exited.then(() => resolve())
  })
  return { child, exited, committed, stderr: () => stderr }
}

const kill = async (p: { child: ChildProcess; exited: Promise<number | null> }) => {
  p.child.kill("SIGKILL")
  await p.exited
}

describe("projector batches killed mid-transaction (PGlite on disk)", () => {
  const home = mkdtempSync(join(tmpdir(), "lantern-batch-crash-"))
  const dataDir = join(home, "pglite")
  const stored = ApplyBatches.journal()
  const poison = stored.find((s) =>
    s.event._tag === "StepsCompleted" && JSON.stringify(s.event.steps).includes("\\u0000")
  )!
  let reference: ManagedRuntime.ManagedRuntime<Sql, DatabaseUnavailable>

  beforeAll(async () => {
    reference = ManagedRuntime.make(Sql.layerPglite(null))
    await reference.runPromise(Migrations.migrate)
  })
  afterAll(async () => {
    await reference?.dispose()
    rmSync(home, { recursive: true, force: true })
  })

  /** The rows of folding `events` one by one on an empty database. */
  const expectedRows = (events: ReadonlyArray<Envelope.Stored>) =>
    reference.runPromise(Effect.gen(function*() {
      const sql = yield* Sql
      yield* sql.query(`delete from steps`)
      yield* sql.query(`delete from runs`)
      yield* sql.transaction((tx) => Effect.forEach(events, (s) => Fold.event(tx, s), { discard: true }))
      return yield* rows
    }))

  /** Opens the killed process's database: its checkpoint, its rows, and its dead letters agree. */
  const agree = async () => {
    const rt = ManagedRuntime.make(Sql.layerPglite(dataDir))
    try {
      const found = await rt.runPromise(Effect.gen(function*() {
        const checkpoint = yield* Projector.checkpoint("projector-runs", RUNS)
        const letters = yield* (yield* Sql).query<{ seq: number }>(`select seq from projector_dead_letters`)
        return { checkpoint, letters: letters.map((l) => l.seq), rows: yield* rows }
      }))
      const upTo = stored.slice(0, found.checkpoint)
      expect(found.letters).toEqual(found.checkpoint >= poison.seq ? [poison.seq] : [])
      expect(found.rows).toEqual(await expectedRows(upTo.filter((s) => s !== poison)))
      return found.checkpoint
    } finally {
      await rt.dispose()
    }
  }

  it("keeps checkpoint and rows in agreement through kills, and finishes from the checkpoint", async () => {
    const reached: Array<number> = []
    for (let round = 0; round < 3; round++) {
      const p = start(dataDir, Math.min(2 + 2 * round, 6))
      await p.committed
      // a few milliseconds into the next batch's transaction (a batch takes several)
      await new Promise((r) => setTimeout(r, round * 2))
      await kill(p)
      reached.push(await agree())
    }
    const last = start(dataDir, Number.MAX_SAFE_INTEGER)
    expect(await last.exited, last.stderr()).toBe(0)
    expect(await agree()).toBe(stored.length)
    // every round got somewhere and none finished before its kill; the refused event was passed in between
    expect(reached.every((c) => c > 0 && c < stored.length), `checkpoints at the kills: ${reached}`).toBe(true)
    expect(reached[0]!, `checkpoints at the kills: ${reached}`).toBeLessThan(poison.seq)
    expect(reached[reached.length - 1]!, `checkpoints at the kills: ${reached}`).toBeGreaterThan(poison.seq)
  }, 180_000)
})
