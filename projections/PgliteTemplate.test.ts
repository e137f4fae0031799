// A new embedded database is copied from a template made once per PGlite version (ADR 0092) instead of running
// Postgres' initdb where it is: the template is whole or absent, a copy cut short is copied again, a directory with
// files of its own is left to PGlite, and the copy is a database like one made in place.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as PgliteThread from "./PgliteThread.ts"
import { fillFromTemplate } from "./PgliteWorker.ts"

const root = mkdtempSync(join(tmpdir(), "lantern-template-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const env = { LANTERN_PGLITE_TEMPLATES: join(root, "templates") }
const template = PgliteThread.templateOf(env)!
const newDataDir = (name: string) => PgliteThread.dataDirOf(join(root, name))

/** Opens `dataDir` on a worker as serve would, with this file's templates; `use` gets the open database. */
const withDatabase = async (dataDir: string, use: (db: PgliteThread.Handle) => Promise<void>) => {
  PgliteThread.lock(dataDir)
  const db = await PgliteThread.open(PgliteThread.optionsFor(dataDir, env), "worker")
  try {
    await use(db)
  } finally {
    await db.close()
  }
}

describe("templates of new embedded databases", () => {
  it("are found per PGlite version under LANTERN_PGLITE_TEMPLATES, the cache directory, or not at all", () => {
    const version = PgliteThread.pgliteVersion()
    expect(version).toMatch(/^\d+\.\d+\.\d+/)
    expect(template).toBe(join(root, "templates", `pglite-${version}`))
    expect(PgliteThread.templateOf({ XDG_CACHE_HOME: "/var/cache/x" })).toBe(`/var/cache/x/lantern/pglite-${version}`)
    expect(PgliteThread.templateOf({ LANTERN_PGLITE_TEMPLATES: "off" })).toBeNull()
    expect(PgliteThread.optionsFor(null, env).template).toBeNull()
  })

  it("is made by the first new database, which is then a copy of it; the next copies it without making it again", async () => {
    const first = newDataDir("first")
    await withDatabase(first, async (db) => {
      await db.query("create table t (n int)", [])
      await db.query("insert into t values (1)", [])
    })
    expect(existsSync(join(template, "PG_VERSION"))).toBe(true)
    // nothing of the first database's own went back into the template
    expect(existsSync(join(template, "lantern.lock"))).toBe(false)
    const made = statSync(join(template, "PG_VERSION")).mtimeMs
    const leftovers = readdirSync(join(root, "templates")).filter((f) => f.includes(".new-"))
    expect(leftovers).toEqual([])

    const second = newDataDir("second")
    await withDatabase(second, async (db) => {
      // a database of its own: the first one's table is not here, and tables can be made
      expect(await db.query("select count(*)::int as n from pg_tables where tablename = 't'", [])).toEqual([{ n: 0 }])
      await db.query("create table t (n int)", [])
      expect(await db.query("select count(*)::int as n from t", [])).toEqual([{ n: 0 }])
    })
    expect(statSync(join(template, "PG_VERSION")).mtimeMs).toBe(made)
    expect(readdirSync(second).sort()).toEqual([...readdirSync(template), "lantern.lock"].sort())

    // each keeps its own rows across a reopen
    await withDatabase(first, async (db) => {
      expect(await db.query("select count(*)::int as n from t", [])).toEqual([{ n: 1 }])
    })
  })

  it("copies again over a copy cut short, leaves a directory with files of its own to PGlite, and undoes a copy that fails", async () => {
    const cut = newDataDir("cut")
    mkdirSync(cut, { recursive: true })
    // as a process killed during the copy leaves it: the marker, some of the files, no PG_VERSION
    writeFileSync(join(cut, "lantern.filling"), "")
    writeFileSync(join(cut, "postgresql.conf"), "# cut short\n")
    await withDatabase(cut, async (db) => {
      expect(await db.query("select 1 as one", [])).toEqual([{ one: 1 }])
    })
    expect(existsSync(join(cut, "lantern.filling"))).toBe(false)

    const foreign = newDataDir("foreign")
    mkdirSync(foreign, { recursive: true })
    writeFileSync(join(foreign, "something"), "not ours")
    expect(fillFromTemplate(foreign, template)).toBe(false)
    expect(readdirSync(foreign)).toEqual(["something"])
    // a database is never copied over
    expect(fillFromTemplate(newDataDir("second"), template)).toBe(false)

    // a copy that fails removes what it wrote, so the database can be made where it is
    const failing = newDataDir("failing")
    mkdirSync(failing, { recursive: true })
    writeFileSync(join(failing, "lantern.lock"), String(process.pid))
    writeFileSync(join(failing, "lantern.filling"), "")
    writeFileSync(join(failing, "base"), "a file where the template has a directory")
    expect(() => fillFromTemplate(failing, template)).toThrow()
    expect(readdirSync(failing)).toEqual(["lantern.lock"])
    await withDatabase(failing, async (db) => {
      expect(await db.query("select 1 as one", [])).toEqual([{ one: 1 }])
    })
  })

  it("removes a template a killed process left half-made long ago, and keeps one being made now", async () => {
    const templates = join(root, "abandoned")
    const name = `pglite-${PgliteThread.pgliteVersion()}`
    mkdirSync(join(templates, `${name}.new-old`), { recursive: true })
    mkdirSync(join(templates, `${name}.new-now`), { recursive: true })
    const longAgo = new Date(Date.now() - 3_600_000)
    utimesSync(join(templates, `${name}.new-old`), longAgo, longAgo)
    const dataDir = newDataDir("after-abandoned")
    PgliteThread.lock(dataDir)
    const db = await PgliteThread.open(
      PgliteThread.optionsFor(dataDir, { LANTERN_PGLITE_TEMPLATES: templates }),
      "worker"
    )
    await db.close()
    expect(readdirSync(templates).sort()).toEqual([name, `${name}.new-now`])
  })

  it("is made once when two threads' first databases need it at the same time, and serves both", async () => {
    const raceEnv = { LANTERN_PGLITE_TEMPLATES: join(root, "race") }
    const dirs = [newDataDir("race-a"), newDataDir("race-b")]
    const dbs = await Promise.all(dirs.map((dataDir) => {
      PgliteThread.lock(dataDir)
      return PgliteThread.open(PgliteThread.optionsFor(dataDir, raceEnv), "worker")
    }))
    for (const db of dbs) {
      expect(await db.query("select 1 as one", [])).toEqual([{ one: 1 }])
      await db.close()
    }
    // one template, nothing half-made beside it
    expect(readdirSync(join(root, "race"))).toEqual([`pglite-${PgliteThread.pgliteVersion()}`])
    for (const dataDir of dirs) expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true)
  })

  it("lets an opening begin before the stack loads for a new home once it is there", () => {
    const home = join(root, "prestarted")
    const begun = PgliteThread.prestart({ ...env, LANTERN_HOME: home, LANTERN_PGLITE_THREAD: "worker" })
    expect(begun).not.toBeNull()
    return begun!.then(async (db) => {
      expect(await db.query("select 1 as one", [])).toEqual([{ one: 1 }])
      await db.close()
      expect(existsSync(join(PgliteThread.dataDirOf(home), "PG_VERSION"))).toBe(true)
    })
  })
})
