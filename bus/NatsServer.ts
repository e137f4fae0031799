// Starts and stops a local `nats-server -js` child process: the embedded bus of `lantern dev` and the real
// broker every test and benchmark runs against (a fresh one on a free port, with its own store directory).
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
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

/** The nats-server binary: NATS_SERVER_BIN, then PATH, then Debian's locations. */
export const findBinary = (): string => {
  const fromEnv = process.env["NATS_SERVER_BIN"]
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!existsSync(fromEnv)) throw new NatsServerNotFound(`NATS_SERVER_BIN=${fromEnv} does not exist. Install nats-server (Debian: apt-get install -y nats-server) or set NATS_URL.`)
    return fromEnv
  }
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, "nats-server"))) return join(dir, "nats-server")
  }
  const found = CANDIDATES.find((p) => existsSync(p))
  if (found === undefined) {
    throw new NatsServerNotFound(
      "nats-server was not found. Install it (Debian: apt-get install -y nats-server) or set NATS_URL to an existing server."
    )
  }
  return found
}

/** `nats-server --version` as [major, minor, patch]. */
export const serverVersion = (binary: string): string => {
  const out = execFileSync(binary, ["--version"], { encoding: "utf8" })
  return /v?(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? "0.0.0"
}

const atLeast = (version: string, major: number, minor: number) => {
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

/** Starts a nats-server with JetStream and waits until JetStream answers. */
export const start = async (options: Options): Promise<Handle> => {
  const binary = findBinary()
  const version = serverVersion(binary)
  const port = options.port ?? (await freePort())
  if (options.port !== undefined && !(await portFree(options.port))) {
    throw new Error(`cannot start nats-server on 127.0.0.1:${options.port}: the port is already in use`)
  }
  mkdirSync(options.storeDir, { recursive: true })
  // Per-write fsync needs nats-server >= 2.10; on 2.9 the default (flush every 2 minutes) applies and the
  // README says so. The option is only written when the server understands it.
  const syncAlways = atLeast(version, 2, 10)
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
  writeFileSync(configFile, config)
  const child = spawn(binary, ["-c", configFile], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
  }
  child.stdout?.on("data", collect)
  child.stderr?.on("data", collect)
  const url = `nats://127.0.0.1:${port}`
  const exited = () => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())))
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
