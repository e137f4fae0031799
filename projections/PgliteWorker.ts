// The embedded PGlite in a worker thread of its own (ADR 0078): the projectors' folds and the edge's reads run their
// statements here, so Postgres' work (WASM, its file writes) no longer shares the thread that drives runs.
// `Sql.layerPglite` starts it and speaks to it with the messages below; it runs one statement at a time, in the order
// they arrive (the port already serialises statements and transactions). Loaded by Node itself, as TypeScript
// (type stripping) from the sources and as `pglite-worker.js` from the bundle: only erasable syntax, no project
// imports.
import { PGlite } from "@electric-sql/pglite"
import { setPriority } from "node:os"
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

/** Opens the database as `options` say, on the calling thread (the worker's, or the main one's: PgliteThread.ts). */
export const openDatabase = (options: Options): Promise<PGlite> => {
  const parsers = { [NUMERIC_TYPES.int8]: Number, [NUMERIC_TYPES.numeric]: Number }
  const startParams = [...PGlite.defaultStartParams, ...options.startParams]
  return options.dataDir === null
    ? PGlite.create({ parsers, startParams })
    : PGlite.create({ dataDir: options.dataDir, parsers, startParams })
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
