// A `lantern serve` of a bench section's own (PGlite, a fresh LANTERN_HOME; or a fresh database on the Postgres that
// BENCH_DATABASE_URL names) on a nats-server of its own with its monitoring endpoint, and the HTTP client the section
// drives it with (RunPath.ts, Workflows.ts).
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import pg from "pg"
import { Nats } from "../bus/Nats.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import { type LanternProcess, spawnLantern } from "../tests/support/Stack.ts"

/** The owner token every bench serve is started with (LANTERN_API_TOKEN). */
export const TOKEN = "lt_bench_serve_token"

const tempDir = (name: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), `lantern-bench-${name}-`))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** `f` with a client connected to the Postgres at `url`, closed after. */
const withClient = async <A>(url: string, f: (c: pg.Client) => Promise<A>) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/**
 * A database of the section's own on the Postgres that `url` reaches (BENCH_DATABASE_URL: a role that may create
 * databases), dropped when the scope closes: its URL and the server's version. Each section's serve needs an empty
 * one, since its projectors' checkpoints count the sequences of its own fresh nats-server.
 */
const freshDatabase = (url: string, name: string) => {
  const database = `lantern_bench_${name}_${process.pid}_${Date.now().toString(36)}`.replace(/[^a-z0-9_]/g, "_")
  return Effect.acquireRelease(
    Effect.promise(() =>
      withClient(url, async (c) => {
        await c.query(`create database ${database}`)
        const version = String((await c.query("show server_version")).rows[0]?.server_version ?? "").split(" ")[0]
        const u = new URL(url)
        u.pathname = `/${database}`
        return { url: u.toString(), version }
      })
    ),
    () => Effect.promise(() => withClient(url, (c) => c.query(`drop database if exists ${database} with (force)`)))
  )
}

/** A nats-server with its monitoring endpoint (/varz) on `monitorPort`. */
const server = (storeDir: string, monitorPort: number) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => NatsServer.start({ storeDir, extraConfig: `http: "127.0.0.1:${monitorPort}"` }),
      catch: (e) => e
    }),
    (h) => Effect.promise(() => h.stop())
  )

/** `lantern serve` as shipped (scripts/lantern.mjs), on `port`, until the scope closes; ready when it returns. */
const serve = (natsUrl: string, home: string, port: number, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawnLantern(["serve", "--port", String(port)], {
        NATS_URL: natsUrl,
        LANTERN_HOME: home,
        LANTERN_API_TOKEN: TOKEN,
        LANTERN_CHECK_RESPONSES: "false",
        ...env,
        // BENCH_SERVE_NODE_OPTIONS=--cpu-prof profiles the engine under this load
        ...(process.env["BENCH_SERVE_NODE_OPTIONS"] === undefined
          ? {}
          : { NODE_OPTIONS: process.env["BENCH_SERVE_NODE_OPTIONS"] })
      })
    ),
    (p) => Effect.promise(() => p.stop())
  ).pipe(Effect.tap((p) => Effect.promise(() => awaitReady(p, `http://127.0.0.1:${port}`))))

const awaitReady = async (p: LanternProcess, url: string) => {
  const deadline = Date.now() + 300_000
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`lantern serve exited before it was ready:\n${p.output()}`)
    if (Date.now() > deadline) throw new Error(`lantern serve not ready after 300 s:\n${p.output()}`)
    const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) }).then(
      (r) => r.status === 200,
      () => false
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** One authenticated JSON call to the API; its parsed answer, or an error naming the call and the status. */
export type Call = (method: string, path: string, body?: unknown) => Promise<any>

export const callOf = (url: string): Call => async (method, path, body) => {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? authorization : { ...authorization, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await r.text()
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return JSON.parse(text)
}

/** The header every request of the bench carries. */
export const authorization = { authorization: `Bearer ${TOKEN}` } as const

export interface Stack {
  readonly nats: NatsServer.Handle
  /** nats-server's monitoring port (/varz). */
  readonly monitorPort: number
  /** The `lantern serve` process. */
  readonly enginePid: number
  /** Where serve's read models are: "PGlite", or "Postgres <version>" with BENCH_DATABASE_URL. */
  readonly database: string
  readonly url: string
  readonly call: Call
}

/**
 * `measure` against a nats-server and a `lantern serve` (with `env`) started for it in a temporary directory, and
 * a connection of this process (`Nats`) to that server; all of it is stopped and removed when `measure` ends.
 */
export const withStack = <A, E, R>(
  name: string,
  env: Record<string, string>,
  progress: (text: string) => Effect.Effect<void>,
  measure: (stack: Stack) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const dir = yield* tempDir(name)
    const monitorPort = yield* Effect.promise(() => NatsServer.freePort())
    const nats = yield* server(join(dir, "js"), monitorPort)
    const port = yield* Effect.promise(() => NatsServer.freePort())
    yield* progress(`nats-server ${nats.version} at ${nats.url} (monitor ${monitorPort}); starting lantern serve`)
    const postgres = process.env["BENCH_DATABASE_URL"] ?? ""
    const fresh = postgres === "" ? null : yield* freshDatabase(postgres, name)
    const database = fresh === null ? "PGlite" : `Postgres ${fresh.version}`
    const lantern = yield* serve(
      nats.url,
      join(dir, "home"),
      port,
      fresh === null ? env : { ...env, DATABASE_URL: fresh.url }
    )
    const url = `http://127.0.0.1:${port}`
    const stack: Stack = { nats, monitorPort, enginePid: lantern.child.pid ?? -1, database, url, call: callOf(url) }
    return yield* measure(stack).pipe(Effect.provide(Nats.layerUrl(nats.url, `lantern-bench-${name}`)))
  }).pipe(Effect.scoped)
