// Test support: the real `lantern serve` process, spawned against a test nats-server and a private
// LANTERN_HOME (PGlite), so end-to-end and crash tests exercise exactly what users run.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { connect as tcpConnect } from "node:net"
import { join, resolve } from "node:path"
import { freePort } from "../../bus/NatsServer.ts"
import { eventually } from "./Poll.ts"

export { eventually }

export const ROOT = resolve(import.meta.dirname, "../..")
/** What `bin/lantern` runs: the bundle of edge/main.ts, rebuilt first when a source is newer (ADR 0027). */
export const LAUNCHER = join(ROOT, "scripts/lantern.mjs")
/**
 * `lantern` as users start it: the pinned Node with the V8 flags of ADR 0090, running LAUNCHER. It `exec`s, so
 * the child's pid is the Lantern process's own (signals and kills reach it).
 */
export const BIN = join(ROOT, "bin/lantern")

export interface StackProcess {
  readonly url: string
  readonly token: string
  readonly home: string
  readonly child: ChildProcess
  readonly output: () => string
  /** SIGKILL, as a crash: no finalizers run. */
  readonly kill: () => Promise<void>
  /** SIGTERM and wait for a clean exit. */
  readonly stop: () => Promise<number | null>
}

export interface StackOptions {
  readonly natsUrl: string
  readonly home?: string
  readonly port?: number
  readonly token?: string
  readonly env?: Record<string, string>
  readonly command?: string
}

/** How much of a process's output is kept (its access log alone fills a lot while a test polls). */
const OUTPUT_LIMIT = 400_000

export interface LanternProcess {
  readonly child: ChildProcess
  /** The last OUTPUT_LIMIT characters the process wrote to stdout and stderr. */
  readonly output: () => string
  /** Resolves with the exit code (null when a signal ended it) once the process has exited. */
  readonly exited: Promise<number | null>
  /** SIGKILL, as a crash: no finalizers run. */
  readonly kill: () => Promise<void>
  /** SIGTERM and wait for a clean exit. */
  readonly stop: () => Promise<number | null>
}

/**
 * Spawns `lantern <args>` (the bundle of edge/main.ts, as `bin/lantern` runs it) with only PATH and HOME from
 * this process's environment plus `env`, capturing its output.
 */
export const spawnLantern = (args: ReadonlyArray<string>, env: Record<string, string>): LanternProcess => {
  const child = spawn(BIN, args, {
    cwd: ROOT,
    // every JSON answer the tests see is checked against its documented schema (edge/Serve.ts): a mismatch is a 500
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "/root",
      LANTERN_CHECK_RESPONSES: "true",
      ...env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-OUTPUT_LIMIT)))
  child.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-OUTPUT_LIMIT)))
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
  const running = () => child.exitCode === null && child.signalCode === null
  return {
    child,
    output: () => output,
    exited,
    kill: async () => {
      if (running()) child.kill("SIGKILL")
      await exited
    },
    stop: async () => {
      if (running()) child.kill("SIGTERM")
      return exited
    }
  }
}

/** The port a stack was given was taken by another process before lantern listened on it. */
class PortTaken extends Error {}

/**
 * Starts `lantern serve` (or `options.command`) and waits until it is ready. Without `options.port` it gets a free
 * port; one taken by another process in the moment before lantern listens on it (test files run in parallel) is
 * replaced by another, up to three tries.
 */
export const startStack = async (options: StackOptions): Promise<StackProcess> => {
  const home = options.home ?? mkdtempSync(join(tmpdir(), "lantern-home-"))
  for (let attempt = 1;; attempt++) {
    try {
      return await startOn(options, home, options.port ?? (await freePort()))
    } catch (e) {
      if (e instanceof PortTaken && options.port === undefined && attempt < 3) continue
      throw e
    }
  }
}

const startOn = async (options: StackOptions, home: string, port: number): Promise<StackProcess> => {
  const token = options.token ?? "lt_test_owner_token"
  const lantern = spawnLantern([options.command ?? "serve", "--port", String(port)], {
    NATS_URL: options.natsUrl,
    LANTERN_HOME: home,
    LANTERN_API_TOKEN: token,
    LANTERN_DRIVE_ACK_WAIT: "2 seconds",
    LANTERN_CLAIM_GRACE: "2 seconds",
    ...options.env
  })
  const { child } = lantern
  const url = `http://127.0.0.1:${port}`
  const stack: StackProcess = {
    url,
    token,
    home,
    child,
    output: lantern.output,
    kill: lantern.kill,
    stop: lantern.stop
  }
  try {
    // a process that exits before it is ready fails the start at once, not at the deadline
    const outcome = await eventually(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) return "exited" as const
        // a request the server never answers (one that reached it mid-start, or another process on a raced port) must
        // not hold the poll for ever
        const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })
        return r.status === 200 ? "ready" as const : null
      },
      150_000,
      "lantern to become ready"
    )
    if (outcome === "exited")
      throw new Error(`lantern exited with ${child.exitCode ?? child.signalCode} before it was ready`)
  } catch (e) {
    await stack.kill()
    // its last words may still be on their way when it has exited
    await Promise.all(
      [child.stdout, child.stderr].map((s) =>
        s === null || s.closed ? undefined : new Promise((r) => s.once("close", r))
      )
    )
    const message = `${String(e)}\n--- lantern output ---\n${lantern.output()}`
    throw /cannot listen on .*EADDRINUSE|: port \d+ on \S+ is in use/.test(lantern.output())
      ? new PortTaken(message)
      : new Error(message)
  }
  return stack
}

/** A fetch against the stack with the owner token. */
export const api =
  (stack: { url: string; token: string }) =>
  async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${stack.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${stack.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers
      },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
    })
    return { ...(await readReply(r)), headers: r.headers }
  }

/** A response's status, text and JSON body (null when the body is not JSON). */
export const readReply = async (r: Response): Promise<{ status: number; json: any; text: string }> => {
  const text = await r.text()
  let json: any = null
  try {
    json = JSON.parse(text)
  } catch {
    json = null
  }
  return { status: r.status, json, text }
}

/** Whether a new TCP connection to 127.0.0.1:`port` is accepted. */
export const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** Stops a test file's stack, then its nats-server, whether or not the stack stops cleanly. */
export const stopStack = async (
  stack: StackProcess | undefined,
  nats: { readonly cleanup: () => Promise<unknown> } | undefined
) => {
  try {
    await stack?.stop()
  } finally {
    await nats?.cleanup()
  }
}
