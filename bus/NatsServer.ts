// Starts and stops a local `nats-server -js` child process: the embedded bus of `lantern dev` and the real
// broker every test and benchmark runs against (a fresh one on a free port, with its own store directory).
// The child dies with its parent, even a SIGKILLed one, and one store never has two servers (see `start`).
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { jetstreamManager } from "@nats-io/jetstream"
import { Context, Effect, Layer } from "effect"

export interface Options {
  /** JetStream store directory; created when missing. */
  readonly storeDir: string
  /** TCP port; a free one when absent. */
  readonly port?: number
  /** Extra configuration text appended to the generated config file (for example a cluster block). */
  readonly extraConfig?: string
  readonly serverName?: string
  /** `always` (the default): fsync every JetStream write before acknowledging it; `interval`: the server's own. */
  readonly sync?: "always" | "interval"
}

export interface Handle {
  readonly url: string
  readonly port: number
  readonly storeDir: string
  readonly version: string
  /** Whether this server flushes every JetStream write to disk before acknowledging it. */
  readonly syncAlways: boolean
  readonly process: ChildProcess
  /** Graceful stop (SIGTERM, then SIGKILL after 5 s). */
  readonly stop: () => Promise<void>
  /** Hard kill, as a crash would. */
  readonly kill: () => Promise<void>
}

export class NatsServerNotFound extends Error {
  override readonly name = "NatsServerNotFound"
}

const CANDIDATES = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]

/** The nats-server version this project pins and fetches (scripts/nats-server.mjs, ADR 0031). */
export const PINNED_VERSION = "2.15.1"
/** The oldest nats-server Lantern starts: per-message TTLs, `sync_interval: always`, the 2.12 stream API. */
export const MINIMUM_VERSION = "2.12.0"

const HOW_TO_GET = "Run `node scripts/ensure-deps.mjs` (npm run dev/test/bench do) to fetch nats-server " +
  PINNED_VERSION
  + " into .lantern-bin/, or set LANTERN_NATS_SERVER to a nats-server >= " + MINIMUM_VERSION
  + ", or NATS_URL to a running server."

/** The project's cached copy, found from this module up (it may run from the bundle in .lantern-build/). */
const projectBinary = (): string | undefined => {
  let dir = import.meta.dirname
  for (let i = 0; i < 6 && dir !== undefined; i++) {
    const candidate = join(dir, ".lantern-bin", `nats-server-${PINNED_VERSION}`, "nats-server")
    if (existsSync(candidate)) return candidate
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return undefined
}

/**
 * The nats-server binary: LANTERN_NATS_SERVER, then the project's cached copy (.lantern-bin/), then NATS_SERVER_BIN,
 * PATH and Debian's locations. `start` refuses one older than MINIMUM_VERSION.
 */
export const findBinary = (): string => {
  for (const variable of ["LANTERN_NATS_SERVER", "NATS_SERVER_BIN"]) {
    const fromEnv = process.env[variable]
    if (fromEnv === undefined || fromEnv === "") continue
    if (!existsSync(fromEnv)) throw new NatsServerNotFound(`${variable}=${fromEnv} does not exist. ${HOW_TO_GET}`)
    return fromEnv
  }
  const cached = projectBinary()
  if (cached !== undefined) return cached
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, "nats-server"))) return join(dir, "nats-server")
  }
  const found = CANDIDATES.find((p) => existsSync(p))
  if (found === undefined) throw new NatsServerNotFound(`nats-server was not found. ${HOW_TO_GET}`)
  return found
}

/** `nats-server --version` as [major, minor, patch]. */
export const serverVersion = (binary: string): string => {
  const out = execFileSync(binary, ["--version"], { encoding: "utf8" })
  return /v?(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? "0.0.0"
}

export const atLeast = (version: string, major: number, minor: number) => {
  const [a = 0, b = 0] = version.split(".").map(Number)
  return a > major || (a === major && b >= minor)
}

/** Whether nothing listens on `port` of 127.0.0.1 yet. */
const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const srv = createServer()
    srv.once("error", () => resolve(false))
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)))
  })

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      srv.close(() => resolve(port))
    })
  })

const waitReady = async (url: string, child: ChildProcess, deadlineMs: number, output: () => string) => {
  const deadline = Date.now() + deadlineMs
  let lastError: unknown
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}: ${output()}`)
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 1000 })
      try {
        await (await jetstreamManager(nc)).getAccountInfo()
        return
      } finally {
        await nc.close()
      }
    } catch (e) {
      lastError = e
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  throw new Error(`nats-server at ${url} not ready after ${deadlineMs} ms: ${String(lastError)}; output: ${output()}`)
}

/** The store's lock file: `<nats-server pid> <pid of the process that started it>`. */
export const LOCK_FILE = "nats-server.lock"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Command line and parent of a live process from /proc; undefined when it is gone, a zombie, or there is no /proc. */
const processInfo = (pid: number): { readonly argv: ReadonlyArray<string>; readonly ppid: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // `pid (comm) state ppid …`; comm may itself hold parentheses
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (state === undefined || state === "Z") return undefined
    return { argv: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"), ppid: Number(ppid) }
  } catch {
    return undefined
  }
}

/**
 * Makes sure no nats-server runs on `configFile`'s store before a new one starts there. The lock file names the
 * last server started on it and its parent. A server still running under that parent is in use: starting
 * fails, naming both. A server whose parent died without stopping it (a SIGKILL that also took its watchdog)
 * has been adopted by another process: it is stopped (SIGTERM, SIGKILL after 10 s) and the start goes on.
 */
const takeStore = async (storeDir: string, configFile: string) => {
  let lock: string
  try {
    lock = readFileSync(join(storeDir, LOCK_FILE), "utf8")
  } catch {
    return // never started here
  }
  const [pid = 0, owner = 0] = lock.trim().split(/\s+/).map(Number)
  const info = processInfo(pid)
  if (info === undefined || !info.argv.includes(configFile)) return // gone, or the pid is someone else's now
  if (info.ppid === owner) {
    throw new Error(
      `the JetStream store ${storeDir} is in use by nats-server (pid ${pid}) of process ${owner}, which is still running: stop it, or use another store (LANTERN_HOME)`
    )
  }
  process.kill(pid, "SIGTERM")
  for (let waited = 0; processInfo(pid)?.argv.includes(configFile) === true; waited += 50) {
    if (waited === 10_000) process.kill(pid, "SIGKILL")
    await sleep(50)
  }
}

/**
 * A shell that holds one end of a pipe from this process and stops nats-server `$1` (while it still runs on
 * the config file `$WATCHED_CONFIG`) once the pipe closes, which the kernel does when this process dies
 * however it dies: Node cannot ask for PR_SET_PDEATHSIG. It ignores SIGINT and SIGHUP, which a terminal sends to the whole process group.
 */
const WATCHDOG = [
  "trap '' INT HUP",
  "while read -r _; do :; done",
  "[ -d /proc/self ] || { kill -TERM \"$1\" 2>/dev/null; exit 0; }",
  "i=0",
  "while tr '\\0' '\\n' < \"/proc/$1/cmdline\" 2>/dev/null | grep -qxF -- \"$WATCHED_CONFIG\"; do",
  "  [ $i -eq 0 ] && kill -TERM \"$1\" 2>/dev/null",
  "  [ $i -eq 100 ] && kill -KILL \"$1\" 2>/dev/null",
  "  i=$((i + 1))",
  "  sleep 0.1",
  "done"
].join("\n")

const watch = (child: ChildProcess, configFile: string) => {
  if (child.pid === undefined) return
  // the config path goes in the environment: only the server itself has it on its command line
  const watchdog = spawn("/bin/sh", ["-c", WATCHDOG, "lantern-nats-watchdog", String(child.pid)], {
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", WATCHED_CONFIG: configFile },
    stdio: ["pipe", "ignore", "ignore"]
  })
  watchdog.on("error", () => {}) // no /bin/sh: the lock file still covers the next start
  // neither the watchdog nor its pipe keeps this process alive
  watchdog.unref()
  ;(watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  child.once("exit", () => watchdog.kill("SIGKILL"))
}

/**
 * Starts a nats-server with JetStream and waits until JetStream answers. The server dies with this process (a
 * watchdog stops it when this process is gone), and a server left running on the same store by a process that
 * died is stopped first (the store's lock file), so two servers never share a store.
 */
export const start = async (options: Options): Promise<Handle> => {
  const binary = findBinary()
  const version = serverVersion(binary)
  if (!atLeast(version, 2, 12)) {
    throw new NatsServerNotFound(
      `${binary} is nats-server ${version}; Lantern needs >= ${MINIMUM_VERSION}. ${HOW_TO_GET}`
    )
  }
  const port = options.port ?? (await freePort())
  if (options.port !== undefined && !(await portFree(options.port))) {
    throw new Error(`cannot start nats-server on 127.0.0.1:${options.port}: the port is already in use`)
  }
  mkdirSync(options.storeDir, { recursive: true })
  // durable by default: every JetStream write is on disk before it is acknowledged; `interval` (the server's own
  // default, a flush every 2 minutes) only when asked (LANTERN_NATS_SYNC=interval)
  const syncAlways = (options.sync ?? "always") === "always"
  const config = [
    `listen: "127.0.0.1:${port}"`,
    options.serverName === undefined ? "" : `server_name: "${options.serverName}"`,
    `jetstream {`,
    `  store_dir: "${options.storeDir}"`,
    syncAlways ? `  sync_interval: always` : "",
    `}`,
    options.extraConfig ?? ""
  ].join("\n")
  const configFile = join(options.storeDir, "nats-server.conf")
  await takeStore(options.storeDir, configFile)
  writeFileSync(configFile, config)
  const child = spawn(binary, ["-c", configFile], { stdio: ["ignore", "pipe", "pipe"] })
  if (child.pid !== undefined) writeFileSync(join(options.storeDir, LOCK_FILE), `${child.pid} ${process.pid}\n`)
  watch(child, configFile)
  let output = ""
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
  }
  child.stdout?.on("data", collect)
  child.stderr?.on("data", collect)
  const url = `nats://127.0.0.1:${port}`
  const exited = () =>
    new Promise<void>((
      r
    ) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
    await exited()
    clearTimeout(timer)
  }
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGKILL")
    await exited()
  }
  try {
    await waitReady(url, child, 15_000, () => output)
    // the answer must have come from our child, not from another server that already held the port
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nats-server exited with code ${child.exitCode}: ${output}`)
    }
  } catch (e) {
    await kill()
    throw e
  }
  return { url, port, storeDir: options.storeDir, version, syncAlways, process: child, stop, kill }
}

/** A running local nats-server as an Effect resource: started on acquire, stopped on release. */
export class NatsServer extends Context.Service<NatsServer, Handle>()("lantern/bus/NatsServer") {
  static readonly layer = (options: Options) =>
    Layer.effect(
      NatsServer,
      Effect.acquireRelease(
        Effect.promise(() => start(options)),
        (h) => Effect.promise(() => h.stop())
      )
    )
}
