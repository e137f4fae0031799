// Where the embedded PGlite runs (ADR 0078): in a worker thread of its own (PgliteWorker.ts; statements sent as
// messages, their rows or their failure back), or on the calling thread. The worker keeps the process alive only
// while a statement is in flight, so an idle database never holds a finished command open.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { access } from "node:fs/promises"
import { availableParallelism, homedir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
// types only: PGlite itself is loaded by the thread that opens the database, and the launcher loads this module
// (prestart) before anything else
import type { Failure, Options, Reply, Request, Statement } from "./PgliteWorker.ts"

/** `worker`: a thread of its own; `main`: the thread that opens it, between the other work of that thread. */
export type Placement = "worker" | "main"

/**
 * The placement for this machine: a worker thread when it has at least 2 cores, so Postgres' work (a projector's
 * transaction, 5-15 ms of WebAssembly) runs beside the thread that drives runs instead of between its steps; on a
 * single core the thread would only take turns with that thread and the nats-server (ADR 0078).
 */
export const defaultPlacement = (): Placement => (availableParallelism() >= 2 ? "worker" : "main")

/**
 * The niceness of the embedded PGlite's thread (ADR 0078): below the thread that drives runs and below the
 * nats-server child, so a busy host spends its cores on runs first and the read models catch up in the gaps.
 */
const PGLITE_NICE = 10

/** The embedded PGlite's shared buffers (ADR 0072): Postgres's default of 128 MB costs 0.4-0.5 s at every open. */
const PGLITE_SHARED_BUFFERS = "16MB"

let version: string | undefined

/** The installed PGlite's version (its package.json, found from the entry Node resolves): a template's key. */
export const pgliteVersion = (): string => (version ??= readPgliteVersion())

const readPgliteVersion = (): string => {
  let dir = dirname(fileURLToPath(import.meta.resolve("@electric-sql/pglite")))
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir)
  const read = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version?: unknown }).version
  if (typeof read !== "string" || !/^[\w.+-]+$/.test(read)) throw new Error("PGlite's version is unreadable")
  return read
}

/**
 * The template new embedded databases start from (ADR 0092; PgliteWorker.ts), one per PGlite version, under
 * LANTERN_PGLITE_TEMPLATES when set (`off`: none, every new database runs initdb where it is), otherwise under
 * `lantern` in the user's cache directory (XDG_CACHE_HOME or ~/.cache).
 */
export const templateOf = (env: NodeJS.ProcessEnv = process.env): string | null => {
  const configured = env["LANTERN_PGLITE_TEMPLATES"] ?? ""
  if (configured === "off") return null
  const cache = env["XDG_CACHE_HOME"] ?? ""
  const root = configured !== ""
    ? resolve(configured)
    : join(cache !== "" ? resolve(cache) : join(homedir(), ".cache"), "lantern")
  try {
    return join(root, `pglite-${pgliteVersion()}`)
  } catch {
    // an install laid out otherwise: new databases are made where they are
    return null
  }
}

/** How Lantern opens its embedded database: files in `dataDir` (null: in memory). */
export const optionsFor = (dataDir: string | null, env: NodeJS.ProcessEnv = process.env): Options => ({
  lanternPglite: true,
  dataDir,
  startParams: ["-c", `shared_buffers=${PGLITE_SHARED_BUFFERS}`],
  nice: PGLITE_NICE,
  template: dataDir === null ? null : templateOf(env)
})

/** Where the embedded database's files are under LANTERN_HOME `home`. */
export const dataDirOf = (home: string) => join(resolve(home), "pglite")

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

/**
 * Takes the lock of the database files in `dataDir`: PGlite is one process's embedded database, and a second
 * process opening the same files would corrupt them. A file holding the owner's pid refuses another live process
 * (thrown, naming it); a lock left by a process that died, or already this one's, is taken. Returns the lock file.
 */
export const lock = (dataDir: string): string => {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, "lantern.lock")
  try {
    writeFileSync(file, String(process.pid), { flag: "wx" })
  } catch {
    const owner = Number(readFileSync(file, "utf8").trim())
    if (Number.isInteger(owner) && owner !== process.pid && alive(owner)) {
      throw new Error(
        `${dataDir} is in use by process ${owner} (one process per embedded database; use DATABASE_URL to share one)`
      )
    }
    writeFileSync(file, String(process.pid))
  }
  return file
}

export interface Handle {
  /** Runs one statement: its rows, or an error carrying Postgres' message and SQLSTATE (`code`). */
  readonly query: (text: string, params: ReadonlyArray<unknown>) => Promise<ReadonlyArray<unknown>>
  /**
   * Runs `statements` in order, stopping at the first that fails: the rows of each, or that statement's error (its
   * position in `index`). In the worker, one message each way for them all.
   */
  readonly queries: (statements: ReadonlyArray<Statement>) => Promise<ReadonlyArray<ReadonlyArray<unknown>>>
  /** Closes the database (its files are consistent afterwards) and ends the thread. */
  readonly close: () => Promise<void>
}

/** How long `close` waits for PGlite to shut down before the thread is terminated. */
const CLOSE_TIMEOUT_MS = 15_000

/**
 * The worker's file: the TypeScript source beside this one when running from the sources (Node strips the types),
 * the bundle's `pglite-worker.js` entry when running from it (scripts/build.mjs).
 */
const workerUrl = () =>
  import.meta.url.endsWith(".ts")
    ? new URL("./PgliteWorker.ts", import.meta.url)
    : new URL("./pglite-worker.js", import.meta.url)

const errorOf = (failure: Failure) =>
  Object.assign(
    new Error(failure.message),
    failure.code === undefined ? {} : { code: failure.code },
    failure.index === undefined ? {} : { index: failure.index }
  )

/**
 * Statements through `run` one after another, each awaited, in one promise chain: the rows of each, or the error of
 * the first that fails with its position in `index` (the later ones are not run).
 */
export const inOrder =
  (run: (text: string, params: ReadonlyArray<unknown>) => Promise<ReadonlyArray<unknown>>) =>
  async (statements: ReadonlyArray<{ readonly text: string; readonly params?: ReadonlyArray<unknown> }>) => {
    const results: Array<ReadonlyArray<unknown>> = []
    for (const { text, params } of statements) {
      try {
        results.push(await run(text, params ?? []))
      } catch (e) {
        throw Object.assign(e instanceof Error ? e : new Error(String(e)), { index: results.length })
      }
    }
    return results
  }

/** A database whose opening began before anything asked for it (`prestart`), with the options it was begun with. */
let early: { readonly key: string; readonly handle: Promise<Handle> } | null = null

/**
 * Begins opening the embedded database the environment configures (as Sql.layerConfig reads it), in its worker
 * thread, for the stack's `open` to take up (ADR 0086); the opening begun, or null. The launcher calls it for
 * `lantern serve` and `lantern dev` before it loads anything else, so PGlite's start (its modules, its WebAssembly,
 * Postgres' own start: about a second) runs beside the loading of the stack instead of after it.
 *
 * Nothing begins when DATABASE_URL is set, the database belongs on the main thread, it does not exist yet and there
 * is no template to copy it from (a first start then makes it, which a process that exits, on a bad flag say, must
 * not cut short; ADR 0092) or its files are locked by another process: the stack's own open then does what it
 * always did, and reports what is wrong. An opening nothing takes up gives its lock back when the process exits.
 */
export const prestart = (env: NodeJS.ProcessEnv = process.env): Promise<Handle> | null => {
  if (early !== null || (env["DATABASE_URL"] ?? "") !== "") return null
  if ((env["LANTERN_PGLITE_THREAD"] ?? defaultPlacement()) !== "worker") return null
  const dataDir = dataDirOf(env["LANTERN_HOME"] ?? ".lantern")
  const options = optionsFor(dataDir, env)
  // a new database begins too when its template is there: a copy cut short is copied again (PgliteWorker.ts)
  const template = options.template
  if (!existsSync(join(dataDir, "PG_VERSION")) && (template === null || !existsSync(join(template, "PG_VERSION")))) {
    return null
  }
  let file: string
  try {
    file = lock(dataDir)
  } catch {
    return null
  }
  const handle = openInWorker(options)
  // a failure is the stack's to report, when its open takes this one up
  handle.catch(() => undefined)
  const begun = { key: JSON.stringify(options), handle }
  early = begun
  process.once("exit", () => {
    if (early === begun) rmSync(file, { force: true })
  })
  return handle
}

/**
 * Opens the database where `placement` says; rejects with the reason when it cannot open. An opening `prestart`
 * began with the same options is taken up; one begun otherwise is closed before this one opens the files.
 */
export const open = (options: Options, placement: Placement): Promise<Handle> => {
  const begun = early
  early = null
  if (begun !== null && placement === "worker" && begun.key === JSON.stringify(options)) return begun.handle
  const opening = () => placement === "worker" ? openInWorker(options) : openHere(options)
  return begun === null ? opening() : begun.handle.then((h) => h.close(), () => undefined).then(opening)
}

/**
 * PGlite runs a statement synchronously and answers it through promises alone, so on the calling thread a chain
 * of statements (a projector's transaction: about ten, 0.5-3 ms each) would hold the thread to its end, with the
 * acknowledgement of a run's append waiting in the socket behind it. Each statement first lets the event loop
 * poll its I/O (setImmediate), so a run waits for at most the statement under way.
 */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve))

const openHere = async (options: Options): Promise<Handle> => {
  const { openDatabase } = await import("./PgliteWorker.ts")
  const db = await openDatabase(options)
  const query: Handle["query"] = async (text, params) => {
    await yieldToIo()
    return (await db.query(text, [...params])).rows
  }
  return {
    query,
    queries: inOrder(query),
    close: () => db.close().catch(() => undefined)
  }
}

const openInWorker = (options: Options): Promise<Handle> => {
  const url = workerUrl()
  // Asked at once, so libuv's thread pool starts here if it has not yet: its threads take the priority of the thread
  // that starts them, and the worker lowers its own (PgliteWorker.ts). Not awaited before the worker starts: a
  // prestart runs while this thread is loading the bundle, which would hold the answer back until it is loaded.
  const present = access(url).then(() => true, () => false)
  return start(url, options).catch(async (e: unknown) => {
    if (await present) throw e
    throw new Error(`the PGlite worker's file ${fileURLToPath(url)} is missing (rebuild: node scripts/build.mjs)`)
  })
}

const start = (url: URL, options: Options): Promise<Handle> =>
  new Promise((resolveOpen, rejectOpen) => {
    const worker = new Worker(url, { workerData: options, name: "lantern-pglite" })
    const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (e: Error) => void }>()
    let next = 0
    let opened = false
    let ended: Error | null = null

    const settleAll = (e: Error) => {
      ended = e
      if (!opened) rejectOpen(e)
      for (const waiter of pending.values()) waiter.reject(e)
      pending.clear()
    }
    worker.on("error", (e) => settleAll(new Error(`the PGlite thread failed: ${e.message}`)))
    worker.on("exit", (code) => settleAll(new Error(`the PGlite thread ended (exit code ${code})`)))

    const send = (request: Request): Promise<Reply> => {
      if (ended !== null) return Promise.reject(ended)
      return new Promise<Reply>((resolve, reject) => {
        if (pending.size === 0) worker.ref()
        pending.set(request.id, { resolve, reject })
        worker.postMessage(request)
      })
    }

    worker.on("message", (reply: Reply) => {
      if (reply.id === 0) {
        if ("failure" in reply) {
          ended = errorOf(reply.failure)
          rejectOpen(ended)
          void worker.terminate()
          return
        }
        opened = true
        worker.unref()
        resolveOpen({ query, queries, close })
        return
      }
      const waiter = pending.get(reply.id)
      if (waiter === undefined) return
      pending.delete(reply.id)
      if (pending.size === 0) worker.unref()
      waiter.resolve(reply)
    })

    const query: Handle["query"] = async (text, params) => {
      const reply = await send({ id: ++next, text, params })
      if ("failure" in reply) throw errorOf(reply.failure)
      return "rows" in reply ? reply.rows : []
    }

    const queries: Handle["queries"] = async (statements) => {
      const reply = await send({ id: ++next, statements })
      if ("failure" in reply) throw errorOf(reply.failure)
      return "results" in reply ? reply.results : []
    }

    const close: Handle["close"] = async () => {
      if (ended !== null) return
      const timeout = setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT_MS)
      try {
        await send({ id: ++next, close: true })
      } catch {
        // the thread ended on its own: nothing left to close
      } finally {
        clearTimeout(timeout)
        await worker.terminate()
      }
    }
  })
