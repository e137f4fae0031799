// PGlite on the calling thread (ADR 0078) lets that thread's I/O in between statements: a run's append
// acknowledgement must not wait for a whole projector transaction.
import { describe, expect, it } from "vitest"
import * as PgliteThread from "./PgliteThread.ts"

describe("PGlite on the main thread", () => {
  it("polls the event loop's I/O between statements, not only after a chain of them", async () => {
    const db = await PgliteThread.open({ lanternPglite: true, dataDir: null, startParams: [], nice: 0 }, "main")
    try {
      await db.query("create table t (n int)", [])
      const statements = 20
      let done = 0
      // a callback of the event loop's next check phase, as an I/O callback (a socket's data) would be let in
      let doneWhenPolled = -1
      setImmediate(() => (doneWhenPolled = done))
      for (let i = 0; i < statements; i++) {
        await db.query("insert into t values ($1)", [i])
        done++
      }
      expect(doneWhenPolled).toBeGreaterThanOrEqual(0)
      expect(doneWhenPolled).toBeLessThanOrEqual(1)
      expect(await db.query("select count(*)::int as n from t", [])).toEqual([{ n: statements }])
    } finally {
      await db.close()
    }
  })
})
