// Test support: extra `lantern worker` processes (run drivers and watchdog, no HTTP) joining a test bus, to
// kill, stop and watch in fault-injection tests. Spawned exactly as `lantern serve` is in Stack.ts.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { eventually, type LanternProcess, spawnLantern } from "./Stack.ts"

export interface WorkerOptions {
  /** NATS_URL: one server or the comma-separated nodes of a cluster. */
  readonly natsUrl: string
  /** LANTERN_HOME; a fresh temporary directory (removed by `cleanup`) when absent. */
  readonly home?: string
  /**
   * More environment: LANTERN_CLAIM_GRACE, LANTERN_WATCHDOG_INTERVAL, LANTERN_FAILPOINTS, LANTERN_REPLICAS,
   * OPENAI_API_KEY / OPENAI_BASE_URL / LANTERN_OPENAI_MODEL, …
   */
  readonly env?: Record<string, string>
}

export interface Worker {
  readonly home: string
  readonly process: LanternProcess
  readonly pid: number
  readonly output: () => string
  /** Whether the process has not exited yet. */
  readonly alive: () => boolean
  /** SIGKILL, as a crash: no finalizers run. Resolves once the process is gone. */
  readonly kill: () => Promise<void>
  /** SIGTERM and wait for the exit; the exit code, null when a signal ended it. */
  readonly stop: () => Promise<number | null>
  /**
   * Waits (up to `deadlineMs`) for the process to exit by itself, as after a failpoint: its exit code and
   * the signal that ended it. Fails with the process's output when it is still running at the deadline.
   */
  readonly waitForExit: (deadlineMs?: number) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Waits until the output matches `pattern` (a line the worker logs), failing with the output otherwise. */
  readonly waitForOutput: (pattern: RegExp, deadlineMs?: number) => Promise<RegExpMatchArray>
  /** Kills the process if it still runs and removes a temporary LANTERN_HOME. */
  readonly cleanup: () => Promise<void>
}

/** Starts `lantern worker` in the background; it begins driving queued runs as soon as it has connected. */
export const startWorker = (options: WorkerOptions): Worker => {
  const ownHome = options.home === undefined
  const home = options.home ?? mkdtempSync(join(tmpdir(), "lantern-worker-"))
  const lantern = spawnLantern(["worker"], {
    NATS_URL: options.natsUrl,
    LANTERN_HOME: home,
    LANTERN_DRIVE_ACK_WAIT: "2 seconds",
    LANTERN_CLAIM_GRACE: "2 seconds",
    ...options.env
  })
  const { child } = lantern
  const alive = () => child.exitCode === null && child.signalCode === null
  const waitForExit: Worker["waitForExit"] = async (deadlineMs = 30_000) => {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), deadlineMs)))
    const outcome = await Promise.race([lantern.exited, deadline])
    clearTimeout(timer)
    if (outcome === "timeout") {
      throw new Error(
        `worker ${child.pid} still running after ${deadlineMs} ms\n--- worker output ---\n${lantern.output()}`
      )
    }
    return { code: child.exitCode, signal: child.signalCode }
  }
  const waitForOutput: Worker["waitForOutput"] = async (pattern, deadlineMs = 30_000) => {
    try {
      return await eventually(
        async () => {
          const match = lantern.output().match(pattern)
          if (match === null && !alive()) throw new Error(`worker exited (${child.exitCode ?? child.signalCode})`)
          return match
        },
        deadlineMs,
        `worker output matching ${pattern}`
      )
    } catch (e) {
      throw new Error(`${String(e)}\n--- worker output ---\n${lantern.output()}`)
    }
  }
  return {
    home,
    process: lantern,
    pid: child.pid ?? -1,
    output: lantern.output,
    alive,
    kill: lantern.kill,
    stop: lantern.stop,
    waitForExit,
    waitForOutput,
    cleanup: async () => {
      await lantern.kill()
      if (ownHome) rmSync(home, { recursive: true, force: true })
    }
  }
}

/** A set of workers that a suite stops together in `afterAll` (or a `finally`), whatever state each is in. */
export const pool = () => {
  const workers: Array<Worker> = []
  return {
    workers,
    start: (options: WorkerOptions) => {
      const w = startWorker(options)
      workers.push(w)
      return w
    },
    cleanup: async () => {
      await Promise.all(workers.splice(0).map((w) => w.cleanup()))
    }
  }
}
