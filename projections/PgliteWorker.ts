// The embedded PGlite in a worker thread of its own (ADR 0078): the projectors' folds and the edge's reads run their
// statements here, so Postgres' work (WASM, its file writes) no longer shares the thread that drives runs.
// `Sql.layerPglite` starts it and speaks to it with the messages below; it runs one statement at a time, in the order
// they arrive (the port already serialises statements and transactions). Loaded by Node itself, as TypeScript
// (type stripping) from the sources and as `pglite-worker.js` from the bundle: only erasable syntax, no project
// imports.
import { PGlite } from "@electric-sql/pglite"
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { setPriority } from "node:os"
import { basename, dirname, join } from "node:path"
import { parentPort, workerData } from "node:worker_threads"

/** What the worker is started with. */
export interface Options {
  /** Marks the worker's data, so importing this module anywhere else starts nothing. */
  readonly lanternPglite: true
  /** The database's files; null keeps it in memory. */
  readonly dataDir: string | null
  /** Postgres' start parameters (`-c name=value` pairs). */
  readonly startParams: ReadonlyArray<string>
  /** The thread's niceness (0: the process's own); the read models trail the journal anyway. */
  readonly nice: number
  /**
   * Where new databases start from (ADR 0092): a database just made by this PGlite and closed, copied into a
   * `dataDir` that has none yet instead of making one there (Postgres' initdb, the slowest part of a first start);
   * made by the first process that needs it. Null: every new database is made where it is.
   */
  readonly template: string | null
}

/** A statement and its parameters. */
export interface Statement {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

/**
 * A statement to run; statements to run in order, stopping at the first that fails (one message for a whole
 * pipeline, so its caller's thread is not waited on between them); or the request to close the database.
 */
export type Request =
  | { readonly id: number; readonly text: string; readonly params: ReadonlyArray<unknown> }
  | { readonly id: number; readonly statements: ReadonlyArray<Statement> }
  | { readonly id: number; readonly close: true }

/**
 * A statement's failure as Postgres reported it: the message and, when it has one, the SQLSTATE; in a pipeline,
 * the position of the statement that failed.
 */
export interface Failure {
  readonly message: string
  readonly code?: string
  readonly index?: number
}

/** The answer to request `id` (0: the database opened, or failed to). */
export type Reply =
  | { readonly id: number; readonly rows: ReadonlyArray<unknown> }
  | { readonly id: number; readonly results: ReadonlyArray<ReadonlyArray<unknown>> }
  | { readonly id: number; readonly failure: Failure }
  | { readonly id: number; readonly done: true }

/** Postgres' int8 and numeric type ids: returned as JS numbers here and by the `pg` driver (Sql.ts) alike. */
export const NUMERIC_TYPES = { int8: 20, numeric: 1700 } as const

const failureOf = (e: unknown): Failure => {
  if (!(e instanceof Error)) return { message: String(e) }
  const code = (e as { code?: unknown }).code
  return typeof code === "string" ? { message: e.message, code } : { message: e.message }
}

/** The lock file Lantern keeps in a data directory (PgliteThread.lock): not part of the database. */
const LOCK = "lantern.lock"
/** Marks a data directory being filled from a template: a fill cut short is done again from the start. */
const FILLING = "lantern.filling"
/** How old a template being made must be to count as abandoned by a killed process (a make takes seconds). */
const ABANDONED_AFTER_MS = 10 * 60_000
/** The file whose presence tells Postgres (and PGlite) that a directory holds a database; copied last. */
const PG_VERSION = "PG_VERSION"

/**
 * Makes the template `template` when it is not there: a database made in a directory of its own beside it, closed,
 * then renamed into place, so a template is whole or absent. When another process renamed its own first, that one is
 * used and this one's removed.
 */
export const ensureTemplate = async (template: string, startParams: ReadonlyArray<string>): Promise<void> => {
  if (existsSync(join(template, PG_VERSION))) return
  mkdirSync(dirname(template), { recursive: true })
  // one a killed process left half-made (about 40 MB), old enough that no live process is still making it
  const prefix = `${basename(template)}.new-`
  for (const name of readdirSync(dirname(template))) {
    const path = join(dirname(template), name)
    if (name.startsWith(prefix) && Date.now() - statSync(path).mtimeMs > ABANDONED_AFTER_MS) {
      rmSync(path, { recursive: true, force: true })
    }
  }
  const made = mkdtempSync(`${template}.new-`)
  try {
    const db = await PGlite.create({ dataDir: made, startParams: [...startParams] })
    await db.close()
    try {
      renameSync(made, template)
    } catch (e) {
      if (!existsSync(join(template, PG_VERSION))) throw e
    }
  } finally {
    rmSync(made, { recursive: true, force: true })
  }
}

/**
 * Whether `dataDir` may be filled from a template: it holds no database and nothing else but Lantern's lock, or a
 * fill cut short. A directory with files of its own (an initdb of PGlite's cut short, say) is left to PGlite, as
 * before templates.
 */
const fillable = (dataDir: string): boolean => {
  if (!existsSync(dataDir)) return true
  if (existsSync(join(dataDir, PG_VERSION))) return false
  const present = readdirSync(dataDir).filter((f) => f !== LOCK)
  return present.length === 0 || present.includes(FILLING)
}

/**
 * Copies the template into `dataDir` when it is `fillable`: true when it did. `PG_VERSION` goes last, so a copy cut
 * short is not taken for a database, and the marker makes the next start copy again over what is there. A copy that
 * fails (a full disk) removes what it wrote, so the database can still be made where it is.
 */
export const fillFromTemplate = (dataDir: string, template: string): boolean => {
  if (!fillable(dataDir) || !existsSync(join(template, PG_VERSION))) return false
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(join(dataDir, FILLING), "")
  try {
    cpSync(template, dataDir, {
      recursive: true,
      force: true,
      filter: (source) => source !== join(template, PG_VERSION) && source !== join(template, LOCK)
    })
    copyFileSync(join(template, PG_VERSION), join(dataDir, PG_VERSION))
  } catch (e) {
    for (const f of readdirSync(dataDir)) if (f !== LOCK) rmSync(join(dataDir, f), { recursive: true, force: true })
    throw e
  }
  rmSync(join(dataDir, FILLING))
  return true
}

/** Opens the database as `options` say, on the calling thread (the worker's, or the main one's: PgliteThread.ts). */
export const openDatabase = async (options: Options): Promise<PGlite> => {
  const parsers = { [NUMERIC_TYPES.int8]: Number, [NUMERIC_TYPES.numeric]: Number }
  const startParams = [...PGlite.defaultStartParams, ...options.startParams]
  if (options.dataDir === null) return PGlite.create({ parsers, startParams })
  if (options.template !== null && fillable(options.dataDir)) {
    // a template that cannot be made or copied (a read-only cache, a full disk) leaves the database to be made here
    try {
      await ensureTemplate(options.template, startParams)
      fillFromTemplate(options.dataDir, options.template)
    } catch {
      // made where it is, as without a template
    }
  }
  return PGlite.create({ dataDir: options.dataDir, parsers, startParams })
}

const main = async (port: NonNullable<typeof parentPort>, options: Options) => {
  if (options.nice > 0) {
    try {
      // on Linux this thread alone: the driving thread and the bus keep the cores they need when work queues up
      setPriority(options.nice)
    } catch {
      // not permitted here: run at the process's priority
    }
  }
  let db: PGlite
  try {
    db = await openDatabase(options)
  } catch (e) {
    port.postMessage({ id: 0, failure: failureOf(e) } satisfies Reply)
    return
  }
  // statements run in arrival order, one at a time
  let queue: Promise<void> = Promise.resolve()
  port.on("message", (request: Request) => {
    queue = queue.then(async () => {
      if ("close" in request) {
        await db.close().catch(() => undefined)
        port.postMessage({ id: request.id, done: true } satisfies Reply)
        port.close()
        return
      }
      if ("statements" in request) {
        const results: Array<ReadonlyArray<unknown>> = []
        for (const statement of request.statements) {
          try {
            results.push((await db.query(statement.text, [...statement.params])).rows)
          } catch (e) {
            port.postMessage({ id: request.id, failure: { ...failureOf(e), index: results.length } } satisfies Reply)
            return
          }
        }
        port.postMessage({ id: request.id, results } satisfies Reply)
        return
      }
      try {
        const result = await db.query(request.text, [...request.params])
        port.postMessage({ id: request.id, rows: result.rows } satisfies Reply)
      } catch (e) {
        port.postMessage({ id: request.id, failure: failureOf(e) } satisfies Reply)
      }
    })
  })
  port.postMessage({ id: 0, done: true } satisfies Reply)
}

if (parentPort !== null && (workerData as Partial<Options> | null)?.lanternPglite === true) {
  void main(parentPort, workerData as Options)
}
