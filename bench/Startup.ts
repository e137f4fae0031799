// Start-up time of `lantern` as shipped (bin/lantern: scripts/lantern.mjs running the esbuild bundle, ADR 0027)
// beside the same entry point compiled by tsx at every start: a CLI command from spawn to exit, and `serve` to
// /healthz.
// Standalone: `node --import tsx bench/Startup.ts` (starts its own nats-server).
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect } from "effect"
import * as NatsServer from "../bus/NatsServer.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

const ROOT = resolve(import.meta.dirname, "..")
const BIN = join(ROOT, "bin/lantern")
const NODE = join(ROOT, "node_modules/.bin/node")
const TSX = `file://${join(ROOT, "node_modules/tsx/dist/loader.mjs")}`

export type Way = "bundle" | "tsx"
const WAYS: ReadonlyArray<Way> = ["bundle", "tsx"]

/** The command and its arguments: bin/lantern as shipped, or the pinned Node on tsx with the V8 flag of ADR 0090. */
const commandOf = (way: Way, args: ReadonlyArray<string>): readonly [string, ReadonlyArray<string>] =>
  way === "bundle"
    ? [BIN, args]
    : [NODE, ["--liftoff-only", "--import", TSX, join(ROOT, "edge/main.ts"), ...args]]

export interface Result {
  /** Spawn to exit of `lantern --help`, ms. */
  readonly help: Record<Way, ReadonlyArray<number>>
  /** Spawn to exit of `lantern runs list` against a port nothing listens on (exit 1, connection refused), ms. */
  readonly unreachable: Record<Way, ReadonlyArray<number>>
  /** Spawn to the first 200 from /healthz of `lantern serve` on a new LANTERN_HOME (PGlite created), ms. */
  readonly serveFirst: Record<Way, ReadonlyArray<number>>
  /** The same on the home of the previous start (the usual restart), ms. */
  readonly serveAgain: Record<Way, ReadonlyArray<number>>
}

/** The bundle built by the warm-up is used throughout, even if a source changes meanwhile: starts, not builds, are timed. */
const env = (extra: Record<string, string>) => ({
  PATH: process.env["PATH"] ?? "",
  HOME: process.env["HOME"] ?? "/root",
  LANTERN_NO_REBUILD: "1",
  ...extra
})

const closedPort = () =>
  new Promise<number>((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const address = s.address()
      s.close(() => ok(typeof address === "object" && address !== null ? address.port : 1))
    })
  })

/** Spawn to exit, in ms. */
const timeCommand = (way: Way, args: ReadonlyArray<string>, extra: Record<string, string>) =>
  new Promise<number>((ok, fail) => {
    const began = performance.now()
    const [command, argv] = commandOf(way, args)
    const child = spawn(command, argv, { cwd: ROOT, env: env(extra), stdio: "ignore" })
    child.once("error", fail)
    child.once("exit", () => ok(performance.now() - began))
  })

/** Spawn to the first 200 from /healthz, in ms; the process is stopped (SIGTERM) before this resolves. */
const timeServe = async (way: Way, natsUrl: string, home: string): Promise<number> => {
  const port = await NatsServer.freePort()
  const began = performance.now()
  const [command, argv] = commandOf(way, ["serve", "--port", String(port)])
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: env({ NATS_URL: natsUrl, LANTERN_HOME: home, LANTERN_API_TOKEN: "lt_bench_startup_token" }),
    stdio: ["ignore", "ignore", "pipe"]
  })
  let stderr = ""
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
  const exited = new Promise<void>((r) => child.once("exit", () => r()))
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`lantern serve (${way}) exited with ${child.exitCode}: ${stderr}`)
      if (performance.now() - began > 300_000)
        throw new Error(`lantern serve (${way}) not healthy after 300 s: ${stderr}`)
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false)
      if (ok) return performance.now() - began
      await new Promise((r) => setTimeout(r, 20))
    }
  } finally {
    child.kill("SIGTERM")
    await exited
  }
}

const progress = (text: string) => process.stderr.write(`bench: ${text}\n`)

/** `cli` samples per CLI figure and way, `serves` starts per way (the first on a new home). */
export const measure = async (natsUrl: string, cli: number, serves: number): Promise<Result> => {
  // the bundle is built and each way has run once (tsx fills its transform cache, node its compile cache)
  await new Promise<void>((ok, fail) =>
    spawn(NODE, [join(ROOT, "scripts/build.mjs"), "--quiet"], { cwd: ROOT, stdio: "inherit" })
      .once("error", fail)
      .once("exit", (code) => (code === 0 ? ok() : fail(new Error(`scripts/build.mjs exited with ${code}`))))
  )
  for (const way of WAYS) await timeCommand(way, ["--help"], {})
  const port = await closedPort()
  const result: Result = {
    help: { bundle: [], tsx: [] },
    unreachable: { bundle: [], tsx: [] },
    serveFirst: { bundle: [], tsx: [] },
    serveAgain: { bundle: [], tsx: [] }
  }
  const push = (xs: ReadonlyArray<number>, x: number) => (xs as Array<number>).push(x)
  progress(`startup: ${cli} x lantern --help and lantern runs list (unreachable), bundle and tsx`)
  for (let i = 0; i < cli; i++) {
    for (const way of WAYS) {
      push(result.help[way], await timeCommand(way, ["--help"], {}))
      push(
        result.unreachable[way],
        await timeCommand(way, ["runs", "list"], { LANTERN_URL: `http://127.0.0.1:${port}`, LANTERN_API_TOKEN: "lt_x" })
      )
    }
  }
  progress(`startup: ${serves} x lantern serve to /healthz, bundle and tsx`)
  for (const way of WAYS) {
    const home = mkdtempSync(join(tmpdir(), `lantern-bench-startup-${way}-`))
    try {
      for (let i = 0; i < serves; i++)
        push(i === 0 ? result.serveFirst[way] : result.serveAgain[way], await timeServe(way, natsUrl, home))
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  }
  return result
}

export const run = (natsUrl: string, scale: number) =>
  Effect.promise(() =>
    measure(natsUrl, Math.max(3, Math.round(5 * Math.min(scale, 1))), Math.max(2, Math.round(3 * Math.min(scale, 1))))
  )

const fig = (xs: ReadonlyArray<number>) => Stats.summarize(xs, 0)
const ms = (x: number) => x.toFixed(0)

export const render = (r: Result): string => {
  const row = (label: string, f: Record<Way, ReadonlyArray<number>>) => {
    const b = fig(f.bundle)
    const t = fig(f.tsx)
    return [
      label,
      String(f.bundle.length),
      ms(b.medianMs),
      ms(b.maxMs),
      ms(t.medianMs),
      ms(t.maxMs),
      `${(t.medianMs / b.medianMs).toFixed(1)}x`
    ]
  }
  return [
    "Start-up (bench/Startup.ts): `lantern` as shipped (scripts/lantern.mjs, the esbuild bundle) beside edge/main.ts compiled by tsx at every start",
    table(
      ["figure", "runs", "bundle median ms", "bundle max ms", "tsx median ms", "tsx max ms", "tsx / bundle"],
      [
        row("lantern --help, spawn -> exit", r.help),
        row("lantern runs list (refused), spawn -> exit", r.unreachable),
        row("lantern serve, new home, spawn -> /healthz", r.serveFirst),
        row("lantern serve, same home, spawn -> /healthz", r.serveAgain)
      ]
    ),
    "   serve runs against the bench's nats-server with PGlite in LANTERN_HOME; a new home creates the database.",
    "   Wall-clock times: on a loaded machine they grow with the load; the ratio is the figure to compare."
  ].join("\n")
}

/** The figures as one `BENCH_STARTUP_JSON {...}` line. */
export const json = (r: Result): string => {
  const figs = (f: Record<Way, ReadonlyArray<number>>) =>
    Object.fromEntries(
      WAYS.map((w) => [w, { medianMs: Math.round(fig(f[w]).medianMs), maxMs: Math.round(fig(f[w]).maxMs) }])
    )
  return `BENCH_STARTUP_JSON ${
    JSON.stringify({
      help: figs(r.help),
      unreachable: figs(r.unreachable),
      serveFirst: figs(r.serveFirst),
      serveAgain: figs(r.serveAgain)
    })
  }`
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const dir = mkdtempSync(join(tmpdir(), "lantern-bench-startup-"))
  const server = await NatsServer.start({ storeDir: join(dir, "js") })
  try {
    const r = await measure(
      server.url,
      Number(process.env["STARTUP_CLI_RUNS"] ?? 5),
      Number(process.env["STARTUP_SERVE_RUNS"] ?? 3)
    )
    console.log(render(r))
    console.log(json(r))
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
