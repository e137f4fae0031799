// PGlite on the calling thread (ADR 0078) lets that thread's I/O in between statements: a run's append
// acknowledgement must not wait for a whole projector transaction. An opening begun before the stack loads (ADR 0086)
// is taken up by the stack's open, and never begins where it could do harm.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as PgliteThread from "./PgliteThread.ts"

describe("PGlite on the main thread", () => {
  it("polls the event loop's I/O between statements, not only after a chain of them", async () => {
    const db = await PgliteThread.open(
      { lanternPglite: true, dataDir: null, startParams: [], nice: 0, template: null },
      "main"
    )
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

describe("an embedded database opened before the stack loads (ADR 0086)", () => {
  /** A LANTERN_HOME whose database exists (opened once and closed), and where its files are. */
  const existingHome = async () => {
    const home = mkdtempSync(join(tmpdir(), "lantern-prestart-"))
    const dataDir = PgliteThread.dataDirOf(home)
    const db = await PgliteThread.open(PgliteThread.optionsFor(dataDir), "worker")
    await db.query("create table t (n int)", [])
    await db.close()
    return { home, dataDir }
  }

  it("is taken up by the stack's open of the same database, which then holds its lock", async () => {
    const { home, dataDir } = await existingHome()
    try {
      const begun = PgliteThread.prestart({ LANTERN_HOME: home, LANTERN_PGLITE_THREAD: "worker" })
      expect(begun).not.toBeNull()
      // the files are this process's from the start of the opening
      expect(readFileSync(join(dataDir, "lantern.lock"), "utf8")).toBe(String(process.pid))
      const opened = PgliteThread.open(PgliteThread.optionsFor(dataDir), "worker")
      expect(opened).toBe(begun)
      const db = await opened
      expect(await db.query("select count(*)::int as n from t", [])).toEqual([{ n: 0 }])
      await db.close()
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  it("begins nothing for Postgres, the main thread, a database not created yet or one another process holds", async () => {
    const { home, dataDir } = await existingHome()
    const fresh = mkdtempSync(join(tmpdir(), "lantern-prestart-"))
    try {
      const env = { LANTERN_HOME: home, LANTERN_PGLITE_THREAD: "worker" }
      expect(PgliteThread.prestart({ ...env, DATABASE_URL: "postgres://127.0.0.1:1/x" })).toBeNull()
      expect(PgliteThread.prestart({ ...env, LANTERN_PGLITE_THREAD: "main" })).toBeNull()
      // a first start with no template to copy makes the database in the stack, never in an opening that a bad
      // flag's exit could cut short (ADR 0092)
      expect(
        PgliteThread.prestart({
          LANTERN_HOME: fresh,
          LANTERN_PGLITE_THREAD: "worker",
          LANTERN_PGLITE_TEMPLATES: join(fresh, "no-templates")
        })
      ).toBeNull()
      expect(
        PgliteThread.prestart({ LANTERN_HOME: fresh, LANTERN_PGLITE_THREAD: "worker", LANTERN_PGLITE_TEMPLATES: "off" })
      ).toBeNull()
      expect(existsSync(PgliteThread.dataDirOf(fresh))).toBe(false)
      // held by a live process (this one's parent): left alone, for the stack's open to refuse
      writeFileSync(join(dataDir, "lantern.lock"), String(process.ppid))
      expect(PgliteThread.prestart(env)).toBeNull()
      expect(readFileSync(join(dataDir, "lantern.lock"), "utf8")).toBe(String(process.ppid))
      expect(() => PgliteThread.lock(dataDir)).toThrow(`in use by process ${process.ppid}`)
    } finally {
      rmSync(home, { recursive: true, force: true })
      rmSync(fresh, { recursive: true, force: true })
    }
  })

  it("is closed before an open with other options opens the files itself", async () => {
    const { home, dataDir } = await existingHome()
    try {
      const begun = PgliteThread.prestart({ LANTERN_HOME: home, LANTERN_PGLITE_THREAD: "worker" })
      expect(begun).not.toBeNull()
      const opened = PgliteThread.open({ ...PgliteThread.optionsFor(dataDir), nice: 0 }, "worker")
      expect(opened).not.toBe(begun)
      const db = await opened
      // the early thread ended before this one opened the files
      await expect((await begun!).query("select 1", [])).rejects.toThrow("the PGlite thread ended")
      await db.query("insert into t values (1)", [])
      expect(await db.query("select count(*)::int as n from t", [])).toEqual([{ n: 1 }])
      await db.close()
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })
})
