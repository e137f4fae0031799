// Where the embedded PGlite runs (ADR 0078): in a worker thread of its own (PgliteWorker.ts; statements sent as
// messages, their rows or their failure back), or on the calling thread. The worker keeps the process alive only
// while a statement is in flight, so an idle database never holds a finished command open.
import { access } from "node:fs/promises"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { type Failure, openDatabase, type Options, type Reply, type Request, type Statement } from "./PgliteWorker.ts"

/** `worker`: a thread of its own; `main`: the thread that opens it, between the other work of that thread. */
export type Placement = "worker" | "main"

/**
 * The placement for this machine: a worker thread when it has at least 2 cores, so Postgres' work (a projector's
 * transaction, 5-15 ms of WebAssembly) runs beside the thread that drives runs instead of between its steps; on a
 * single core the thread would only take turns with that thread and the nats-server (ADR 0078).
 */
export const defaultPlacement = (): Placement => (availableParallelism() >= 2 ? "worker" : "main")

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

/** Opens the database where `placement` says; rejects with the reason when it cannot open. */
export const open = (options: Options, placement: Placement): Promise<Handle> =>
  placement === "worker" ? openInWorker(options) : openHere(options)

/**
 * PGlite runs a statement synchronously and answers it through promises alone, so on the calling thread a chain
 * of statements (a projector's transaction: about ten, 0.5-3 ms each) would hold the thread to its end, with the
 * acknowledgement of a run's append waiting in the socket behind it. Each statement first lets the event loop
 * poll its I/O (setImmediate), so a run waits for at most the statement under way.
 */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve))

const openHere = async (options: Options): Promise<Handle> => {
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

const openInWorker = async (options: Options): Promise<Handle> => {
  const url = workerUrl()
  // Asked asynchronously, so libuv's thread pool starts here if it has not yet: its threads take the priority of
  // the thread that starts them, and the worker lowers its own (PgliteWorker.ts).
  await access(url).catch(() => {
    throw new Error(`the PGlite worker's file ${fileURLToPath(url)} is missing (rebuild: node scripts/build.mjs)`)
  })
  return start(url, options)
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
