// Harness processes for the spawner (ADR 0046, ADR 0069): started detached (they outlive this host), their modules
// loaded and their bus connection dialled ahead of need. Preparing one hands it its workload's config (it sets up what
// starts nothing); `go` hands it the identity token once the start is durable and reads its first line (its pid and
// the limits it could enforce); `abort` ends its stdin, so it starts nothing. The pool refills once a start has gone.
import { type ChildProcessByStdio, spawn } from "node:child_process"
import { mkdirSync, rmdirSync } from "node:fs"
import { join } from "node:path"
import type { Readable, Writable } from "node:stream"
import { Data, Effect } from "effect"

export class SpawnFailed extends Data.TaggedError("SpawnFailed")<{ readonly reason: string }> {
  override get message() {
    return `the workload could not be started: ${this.reason}`
  }
}

export interface Launched {
  readonly pid: number
  readonly enforced: ReadonlyArray<string>
}

/** A harness holding its workload's config: it has started nothing yet. */
export interface Prepared {
  /** Starts the workload with its identity token; the harness's pid and the limits it could enforce. */
  readonly go: (token: string) => Effect.Effect<Launched, SpawnFailed>
  /** Calls the start off: the harness starts nothing and exits. */
  readonly abort: Effect.Effect<void>
}

const READY = JSON.stringify({ ready: true })
/** How long after a harness is handed out the pool starts its replacement. */
const REFILL_AFTER_MS = 250

export const pool = (
  main: string,
  workDir: string,
  size: number,
  natsUrl: string,
  /** When to start filling the pool (a start taken before that starts its own harness). */
  fillAfter: Effect.Effect<void> = Effect.void
) =>
  Effect.gen(function*() {
    /**
     * A harness process, detached (it outlives this host), waiting on stdin for its config. It says `{"ready":true}`
     * on stdout once loaded and connected; every line after that goes to `onLine` (its first line after `go`).
     */
    interface Pooled {
      readonly child: ChildProcessByStdio<Writable, Readable, Readable>
      ready: boolean
      onLine: ((line: string) => void) | null
    }
    const startHarness = (): Pooled => {
      const child = spawn(process.execPath, [main, "--pool"], {
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
        cwd: workDir,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LANTERN_HARNESS_NATS_URL: natsUrl }
      })
      const pooled: Pooled = { child, ready: false, onLine: null }
      let out = ""
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8")
        for (let nl = out.indexOf("\n"); nl >= 0; nl = out.indexOf("\n")) {
          const line = out.slice(0, nl)
          out = out.slice(nl + 1)
          if (!pooled.ready && line === READY) pooled.ready = true
          else pooled.onLine?.(line)
        }
      })
      child.on("error", () => {})
      child.stdin.on("error", () => {})
      return pooled
    }
    mkdirSync(workDir, { recursive: true })
    /** Harnesses started ahead of need (LANTERN_HARNESS_POOL): a workload does not wait for Node to start one. */
    const pool: Array<Pooled> = []
    let closed = false
    const refill = () => {
      while (!closed && pool.length < size) {
        const pooled = startHarness()
        pooled.child.on("exit", () => {
          const i = pool.indexOf(pooled)
          if (i >= 0) pool.splice(i, 1)
        })
        pool.push(pooled)
      }
    }
    yield* Effect.forkScoped(Effect.andThen(fillAfter, Effect.sync(refill)))
    /**
     * Refills REFILL_AFTER_MS after a harness was handed out, not at once: forking a process blocks this event loop
     * for as long as copying this large process's page tables takes (15-20 ms at 300 MB), and a new harness's Node
     * start takes a core for ~200 ms, both just when the started workload's Spawned, first output and exit are
     * journaled here (or its sandbox boots).
     */
    const refillSoon = () => {
      const t = setTimeout(refill, REFILL_AFTER_MS)
      t.unref()
    }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        // idle harnesses see their stdin end and exit; assigned ones are not in the pool
        for (const pooled of pool.splice(0)) pooled.child.stdin.end()
      })
    )
    /** A ready harness first; else the oldest (the nearest to ready); a new one only when the pool is empty. */
    const take = (): Pooled => {
      const ready = pool.findIndex((p) => p.ready)
      const taken = ready >= 0 ? pool.splice(ready, 1)[0] : pool.shift()
      return taken ?? startHarness()
    }

    /** Hands a harness its config: it prepares what starts nothing and waits for `go` (or `abort`). */
    const prepare = (configPath: string) =>
      Effect.sync((): Prepared => {
        const pooled = take()
        const child = pooled.child
        child.stdin.write(`${configPath}\n`)
        let err = ""
        let outcome: SpawnFailed | Launched | null = null
        let waiting: ((result: SpawnFailed | Launched) => void) | null = null
        let timer: ReturnType<typeof setTimeout> | null = null
        const done = (result: SpawnFailed | Launched) => {
          if (outcome !== null) return
          outcome = result
          if (timer !== null) clearTimeout(timer)
          child.removeAllListeners("exit")
          child.stdout.removeAllListeners("data")
          child.stdout.destroy()
          child.stderr.destroy()
          child.unref()
          waiting?.(result)
        }
        pooled.onLine = (line) => {
          try {
            const first = JSON.parse(line) as Launched
            done({ pid: first.pid, enforced: first.enforced })
          } catch {
            done(new SpawnFailed({ reason: `the harness said: ${line.slice(0, 200)}` }))
          }
        }
        child.stderr.on("data", (c: Buffer) => (err = (err + c.toString("utf8")).slice(0, 2000)))
        child.on("error", (e) => done(new SpawnFailed({ reason: e.message })))
        child.on(
          "exit",
          (code) => done(new SpawnFailed({ reason: `the harness exited with ${code}: ${err.slice(0, 500)}` }))
        )
        return {
          go: (token) =>
            Effect.callback<Launched, SpawnFailed>((resume) => {
              const settle = (result: SpawnFailed | Launched) =>
                resume(result instanceof SpawnFailed ? Effect.fail(result) : Effect.succeed(result))
              if (outcome !== null) return settle(outcome)
              waiting = settle
              timer = setTimeout(
                () => done(new SpawnFailed({ reason: "the harness did not start within 30 s" })),
                30_000
              )
              child.stdin.end(`${JSON.stringify({ token })}\n`)
              refillSoon()
            }),
          abort: Effect.sync(() => {
            child.stdin.end()
            refillSoon()
            done(new SpawnFailed({ reason: "the start was called off" }))
          })
        }
      })

    return { prepare }
  })

/**
 * Removes the cgroups a harness made for `workloadId` (harness/main.ts) when they are empty: a harness removes its
 * own, but one that was killed cannot, so the spawner does once the workload has ended. A busy group stays.
 */
export const reapCgroups = (workloadId: string) =>
  Effect.sync(() => {
    for (const controller of ["memory", "cpu,cpuacct", "cpu", "cpuacct", "pids"]) {
      try {
        rmdirSync(join("/sys/fs/cgroup", controller, `lantern-${workloadId}`))
      } catch {
        // absent, not empty, or not a cgroup host
      }
    }
  })
