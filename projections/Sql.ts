// The projections' small SQL port: parameterised statements and transactions over Postgres (`pg`) in
// production and PGlite (embedded Postgres) by default, returning identical rows from both drivers.
import { mkdirSync, rmSync } from "node:fs"
import pg from "pg"
import { Config, Context, Effect, Exit, Layer, Option, Redacted, Semaphore } from "effect"
import { DatabaseUnavailable } from "../schema/Errors.ts"
import * as PgliteThread from "./PgliteThread.ts"
import { NUMERIC_TYPES } from "./PgliteWorker.ts"

export type Dialect = "pg" | "pglite"

/** A statement and its parameters, for `queries`. */
export interface Statement {
  readonly text: string
  readonly params?: ReadonlyArray<unknown>
}

export interface SqlPort {
  readonly dialect: Dialect
  /**
   * Runs one statement (no `;`-separated scripts: PGlite's extended protocol takes one at a time). Pass JSON
   * for a `jsonb` parameter already stringified (`$1::jsonb`), so both drivers send the same text.
   */
  readonly query: <T = Record<string, unknown>>(
    text: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<T>, DatabaseUnavailable>
  /**
   * Runs `statements` in order, as that many `query` calls would, failing with the error of the first that fails
   * (nothing after it takes effect: the others are not run, or in a transaction Postgres refuses them): the rows of
   * each. PGlite's thread is handed them in one message, so this thread is not waited for between them: on a busy
   * host each such wait is a turn of its event loop, tens of milliseconds. `pg` gets each as the one before
   * completes, in one promise chain.
   */
  readonly queries: (
    statements: ReadonlyArray<Statement>
  ) => Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, DatabaseUnavailable>
  /**
   * Runs `f` in a transaction: committed when `f` succeeds, rolled back when it fails or is interrupted. Use
   * only `tx` inside `f` (on PGlite the outer port waits for the transaction to end). A statement that fails
   * inside aborts the whole transaction, as Postgres does, even when `f` catches the error: the commit is then
   * refused with DatabaseUnavailable. To survive an expected failure, wrap it in `tx.transaction`, which is a
   * savepoint.
   */
  readonly transaction: <A, E, R>(
    f: (tx: SqlPort) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | DatabaseUnavailable, R>
}

/** The role the edge reads as: not the tables' owner, bound by their row-level security policies (Rls.ts). */
export const EDGE_ROLE = "lantern_edge"
/** The role whose members (the connecting user) see and write every tenant's rows despite FORCE. */
export const SYSTEM_ROLE = "lantern_system"
/** The transaction-local setting naming the tenant the edge's role may see. */
export const TENANT_SETTING = "lantern.tenant"

/** A connection string with its password replaced, safe for logs and errors. */
export const redactUrl = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.password !== "") u.password = "***"
    return u.toString()
  } catch {
    return "(a DATABASE_URL that is not a valid URL)"
  }
}

/** Removes every trace of the connection string's password (raw or URL-decoded) from a text. */
const scrubberFor = (url: string | null) => {
  if (url === null) return (s: string) => s
  let secrets: Array<string> = [url]
  try {
    const password = new URL(url).password
    if (password !== "") secrets = [url, password, decodeURIComponent(password)]
  } catch {
    // not a URL: only the whole string is known to be secret
  }
  return (s: string) => secrets.reduce((acc, secret) => acc.split(secret).join("***"), s)
}

const statementOf = (text: string) => text.replace(/\s+/g, " ").trim().slice(0, 80)

const reasonOf = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e)
  const code = (e as { code?: unknown }).code
  return typeof code === "string" ? `${e.message} (SQLSTATE ${code})` : e.message
}

/** The SQLSTATE a failed statement's error names (both drivers put it in the reason), or null when it has none. */
export const sqlState = (e: DatabaseUnavailable): string | null =>
  /\(SQLSTATE ([0-9A-Z]{5})\)$/.exec(e.reason)?.[1] ?? null

/**
 * SQLSTATE classes that the statement's data caused: 22 data exception (a NUL or lone surrogate in JSON text,
 * an out-of-range number), 23 integrity constraint violation, 54 program limit exceeded (a value too large).
 * The same statement with the same values fails again on every retry. Every other error (08 connection, 53
 * insufficient resources, 57 operator intervention, 58 system, XX internal, 40 rollback, none at all, such as
 * ECONNREFUSED) says nothing about the data and may pass on a retry. Class 42 (syntax, undefined table,
 * privilege) is not the data's fault either: the statements are fixed texts with typed parameters, so a 42
 * means the code or the schema is wrong, and it fails for every event alike.
 */
const DATA_CLASSES = new Set(["22", "23", "54"])

/** Whether the database refused the statement because of the values it was given, not because it is unavailable. */
export const isDataError = (e: DatabaseUnavailable): boolean => {
  const code = sqlState(e)
  return code !== null && DATA_CLASSES.has(code.slice(0, 2))
}

/** One connection's statements: one at a time, or several handed over at once (`SqlPort.queries`). */
interface Exec {
  readonly one: (
    text: string,
    params: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<unknown>, DatabaseUnavailable>
  readonly all: (
    statements: ReadonlyArray<Statement>
  ) => Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, DatabaseUnavailable>
}

/** Where in a pipeline a driver's error arose (`index`, set by PgliteThread); 0 when it says not. */
const indexOf = (e: unknown): number => {
  const index = (e as { index?: unknown } | null)?.index
  return typeof index === "number" ? index : 0
}

const execWith = (
  dialect: Dialect,
  scrub: (s: string) => string,
  run: (text: string, params: ReadonlyArray<unknown>) => Promise<ReadonlyArray<unknown>>,
  runAll: (statements: ReadonlyArray<Statement>) => Promise<ReadonlyArray<ReadonlyArray<unknown>>>
): Exec => ({
  one: (text, params) =>
    Effect.tryPromise({
      try: () => run(text, [...params]),
      catch: (e) => new DatabaseUnavailable({ operation: statementOf(text), reason: scrub(reasonOf(e)) })
    }).pipe(Effect.withSpan("Sql.query", {
      attributes: { "db.system": dialect, "db.statement": statementOf(text) }
    }, { captureStackTrace: false })),
  all: (statements) =>
    statements.length === 0 ? Effect.succeed([]) : Effect.tryPromise({
      try: () => runAll(statements),
      catch: (e) =>
        new DatabaseUnavailable({
          operation: statementOf(statements[Math.min(indexOf(e), statements.length - 1)]!.text),
          reason: scrub(reasonOf(e))
        })
    }).pipe(Effect.withSpan("Sql.queries", {
      attributes: {
        "db.system": dialect,
        "db.statement": statementOf(statements[0]!.text),
        "lantern.statements": statements.length
      }
    }, { captureStackTrace: false }))
})

interface TxState {
  /** A statement failed since the last healthy point: Postgres now refuses everything but a rollback. */
  failed: boolean
  savepoints: number
  /** The transaction ended with a commit or rollback that the server confirmed. */
  clean: boolean
  /** Its BEGIN went out (with its first statement). */
  begun: boolean
}

const aborted = () =>
  new DatabaseUnavailable({
    operation: "commit",
    reason: "a statement failed inside the transaction and was not rolled back to a savepoint; nothing was committed"
  })

/**
 * The port handed to a transaction's body: statements on its connection, nested transactions as savepoints. The
 * BEGIN goes out with the transaction's first statement (one round trip fewer).
 */
const txPort = (dialect: Dialect, exec: Exec, state: TxState): SqlPort => {
  const failing = <A>(effect: Effect.Effect<A, DatabaseUnavailable>) =>
    effect.pipe(Effect.tapError(() => Effect.sync(() => (state.failed = true))))
  const all = (statements: ReadonlyArray<Statement>) => {
    if (state.begun) return failing(exec.all(statements))
    state.begun = true
    return failing(Effect.map(exec.all([{ text: "begin" }, ...statements]), (results) => results.slice(1)))
  }
  const port: SqlPort = {
    dialect,
    query: <T>(text: string, params: ReadonlyArray<unknown> = []) =>
      (state.begun
        ? failing(exec.one(text, params))
        : Effect.map(all([{ text, params }]), (results) => results[0]!)) as Effect.Effect<
          ReadonlyArray<T>,
          DatabaseUnavailable
        >,
    queries: all,
    transaction: (f) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const name = `lantern_sp_${++state.savepoints}`
          yield* port.query(`savepoint ${name}`)
          const exit = yield* Effect.exit(restore(f(port)))
          if (Exit.isSuccess(exit) && !state.failed) {
            yield* port.query(`release savepoint ${name}`)
            return exit.value
          }
          yield* exec.one(`rollback to savepoint ${name}`, [])
          yield* exec.one(`release savepoint ${name}`, [])
          state.failed = false
          return yield* (Exit.isSuccess(exit) ? Effect.fail(aborted()) : exit)
        })
      )
  }
  return port
}

/** BEGIN … COMMIT around `f` on one connection; ROLLBACK on failure, interruption or an aborted transaction. */
const topLevel = <A, E, R>(
  dialect: Dialect,
  exec: Exec,
  state: TxState,
  f: (tx: SqlPort) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseUnavailable, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(restore(f(txPort(dialect, exec, state))))
      // no statement, so no BEGIN went out: nothing to end
      if (!state.begun) {
        state.clean = true
        return yield* exit
      }
      if (Exit.isSuccess(exit) && !state.failed) {
        const committed = yield* Effect.exit(exec.one("commit", []))
        if (Exit.isFailure(committed)) {
          // A failed COMMIT ends the transaction on the server; the rollback only makes sure of it.
          yield* exec.one("rollback", []).pipe(Effect.ignore)
          return yield* Effect.failCause(committed.cause)
        }
        state.clean = true
        return exit.value
      }
      const rolledBack = yield* Effect.exit(exec.one("rollback", []))
      state.clean = Exit.isSuccess(rolledBack)
      return yield* (Exit.isSuccess(exit) ? Effect.fail(aborted()) : exit)
    })
  ).pipe(Effect.withSpan("Sql.transaction", {
    attributes: { "db.system": dialect }
  }, { captureStackTrace: false }))

/** The lock of the embedded database's files (PgliteThread.lock), held until the database is closed. */
const lockDataDir = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => PgliteThread.lock(dataDir),
      catch: (e) => new DatabaseUnavailable({ operation: `lock PGlite ${dataDir}`, reason: reasonOf(e) })
    }),
    (file) => Effect.sync(() => rmSync(file, { force: true }))
  )

const runOn = (client: pg.PoolClient) => (text: string, params: ReadonlyArray<unknown>) =>
  client.query(text, [...params]).then((r) => r.rows as ReadonlyArray<unknown>)

const freshState = (): TxState => ({ failed: false, savepoints: 0, clean: false, begun: false })

export class Sql extends Context.Service<Sql, SqlPort>()("lantern/projections/Sql") {
  /** A `pg` pool on `url`. Checks the connection at start; errors never contain the password. */
  static readonly layerPg = (url: string | Redacted.Redacted<string>) =>
    Layer.effect(
      Sql,
      Effect.gen(function*() {
        const connectionString = Redacted.isRedacted(url) ? Redacted.value(url) : url
        const scrub = scrubberFor(connectionString)
        const types = new pg.TypeOverrides()
        types.setTypeParser(NUMERIC_TYPES.int8, (v: string) => Number(v))
        types.setTypeParser(NUMERIC_TYPES.numeric, (v: string) => Number(v))
        const pool = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const p = new pg.Pool({
              connectionString,
              types,
              max: 10,
              connectionTimeoutMillis: 10_000,
              application_name: "lantern"
            })
            // An idle client that loses its server emits here; unhandled it would crash the process.
            p.on("error", (e) => Effect.runFork(Effect.logWarning(`postgres idle client error: ${scrub(reasonOf(e))}`)))
            return p
          }),
          (p) => Effect.promise(() => p.end().catch(() => undefined))
        )
        const run = (text: string, params: ReadonlyArray<unknown>) =>
          pool.query(text, [...params]).then((r) => r.rows as ReadonlyArray<unknown>)
        // the pool's statements may go out on different connections: each after the one before completed (`pg`
        // refuses a second query on a client while one is under way: deprecated, and gone in pg 9)
        const exec = execWith("pg", scrub, run, PgliteThread.inOrder(run))
        yield* exec.one("select 1", []).pipe(
          Effect.mapError((e) =>
            new DatabaseUnavailable({ operation: `connect to ${redactUrl(connectionString)}`, reason: e.reason })
          )
        )
        const transaction: SqlPort["transaction"] = (f) =>
          Effect.suspend(() => {
            const state = freshState()
            // A checked-out client that loses its server emits `error` on itself, not on the pool; unhandled, that
            // would crash the process. The statement in flight fails on its own; the client is then discarded.
            const onError = (e: unknown) => {
              state.clean = false
              Effect.runFork(Effect.logWarning(`postgres connection lost in a transaction: ${scrub(reasonOf(e))}`))
            }
            return Effect.acquireUseRelease(
              Effect.tryPromise({
                try: async () => {
                  const client = await pool.connect()
                  client.on("error", onError)
                  return client
                },
                catch: (e) => new DatabaseUnavailable({ operation: "begin", reason: scrub(reasonOf(e)) })
              }),
              (client) =>
                topLevel(
                  "pg",
                  execWith("pg", scrub, runOn(client), PgliteThread.inOrder(runOn(client))),
                  state,
                  f
                ),
              // A connection whose transaction did not end cleanly is closed rather than reused.
              (client) =>
                Effect.sync(() => {
                  client.removeListener("error", onError)
                  client.release(state.clean ? undefined : true)
                })
            )
          })
        return Sql.of({
          dialect: "pg",
          query: <T>(text: string, params: ReadonlyArray<unknown> = []) =>
            exec.one(text, params) as Effect.Effect<ReadonlyArray<T>, DatabaseUnavailable>,
          queries: exec.all,
          transaction
        })
      })
    )

  /**
   * An embedded PGlite database with its files in `dataDir`, or in memory when null, in a worker thread of its own
   * or on this one (`placement`, by default as the machine's cores say: PgliteThread.ts, ADR 0078). PGlite is one
   * connection, so statements and transactions take turns.
   */
  static readonly layerPglite = (
    dataDir: string | null,
    placement: PgliteThread.Placement = PgliteThread.defaultPlacement()
  ) =>
    Layer.effect(
      Sql,
      Effect.gen(function*() {
        if (dataDir !== null) yield* lockDataDir(dataDir)
        const db = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () => {
              if (dataDir !== null) mkdirSync(dataDir, { recursive: true })
              return PgliteThread.open(PgliteThread.optionsFor(dataDir), placement)
            },
            catch: (e) =>
              new DatabaseUnavailable({ operation: `open PGlite ${dataDir ?? "(in memory)"}`, reason: reasonOf(e) })
          }),
          (d) => Effect.promise(() => d.close())
        )
        const turn = yield* Semaphore.make(1)
        const exec = execWith(
          "pglite",
          (s) => s,
          db.query,
          (statements) => db.queries(statements.map(({ text, params }) => ({ text, params: params ?? [] })))
        )
        return Sql.of({
          dialect: "pglite",
          query: <T>(text: string, params: ReadonlyArray<unknown> = []) =>
            turn.withPermits(1)(exec.one(text, params)) as Effect.Effect<ReadonlyArray<T>, DatabaseUnavailable>,
          queries: (statements) => turn.withPermits(1)(exec.all(statements)),
          transaction: (f) => turn.withPermits(1)(topLevel("pglite", exec, freshState(), f))
        })
      })
    )

  /**
   * Postgres at DATABASE_URL when it is set, otherwise PGlite with its files in `$LANTERN_HOME/pglite`, in a worker
   * thread or on the main one as LANTERN_PGLITE_THREAD (`worker` or `main`) says, by default as the machine's cores do.
   */
  static readonly layerConfig = Layer.unwrap(
    Effect.gen(function*() {
      const url = yield* Config.option(Config.NonEmptyString("DATABASE_URL"))
      const home = yield* Config.String("LANTERN_HOME").pipe(Config.withDefault(".lantern"))
      const placement = yield* Config.Literals(["worker", "main"], "LANTERN_PGLITE_THREAD").pipe(
        Config.withDefault(PgliteThread.defaultPlacement())
      )
      return Option.isSome(url)
        ? Sql.layerPg(Redacted.make(url.value))
        : Sql.layerPglite(PgliteThread.dataDirOf(home), placement)
    })
  )
}

/**
 * `tx` with `first` sent ahead of the first statement given to it, in the same pipeline (its answer dropped); a body
 * that runs no statement sends nothing, `first` included.
 */
const prefixed = (tx: SqlPort, first: Statement): SqlPort => {
  let sent = false
  const queries = (statements: ReadonlyArray<Statement>) => {
    if (sent) return tx.queries(statements)
    sent = true
    return Effect.map(tx.queries([first, ...statements]), (results) => results.slice(1))
  }
  return {
    dialect: tx.dialect,
    query: <T>(text: string, params: ReadonlyArray<unknown> = []) =>
      (sent
        ? tx.query<T>(text, params)
        : Effect.map(queries([{ text, params }]), (results) => results[0]!)) as Effect.Effect<
          ReadonlyArray<T>,
          DatabaseUnavailable
        >,
    queries,
    // a savepoint's statements are the transaction's: the settings go first
    transaction: (g) => sent ? tx.transaction(g) : Effect.andThen(queries([]), tx.transaction(g))
  }
}

/**
 * Runs `f` in a transaction as the edge's role with `tenant` set, both local to the transaction: row-level
 * security then shows and accepts only that tenant's rows, whatever the statements' own filters say. Every
 * read the edge serves goes through here; the projectors, migrations and the token lookup that precedes
 * knowing the tenant use the port directly, as the connecting user (a member of the system role).
 */
export const forTenant = <A, E, R>(
  tenant: string,
  f: (tx: SqlPort) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseUnavailable, R | Sql> =>
  Effect.gen(function*() {
    const sql = yield* Sql
    // `set_config('role', …)` is `SET LOCAL ROLE`; both settings go out with the body's first statement (and the
    // BEGIN), so a read is two round trips, itself and the COMMIT: under load each one waits a turn of the loop
    const settings: Statement = {
      text: `select set_config('role', $1, true) as role, set_config($2, $3, true) as tenant`,
      params: [EDGE_ROLE, TENANT_SETTING, tenant]
    }
    return yield* sql.transaction((tx) => f(prefixed(tx, settings)))
  }).pipe(Effect.withSpan("Sql.forTenant", {
    attributes: { "lantern.tenant": tenant }
  }, { captureStackTrace: false }))

/** One statement through `forTenant`. */
export const queryAs = <T = Record<string, unknown>>(
  tenant: string,
  text: string,
  params: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<T>, DatabaseUnavailable, Sql> => forTenant(tenant, (tx) => tx.query<T>(text, params))
