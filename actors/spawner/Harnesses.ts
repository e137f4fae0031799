// Harness processes for the spawner (ADR 0046): started detached (they outlive this host), their modules loaded
// ahead of need, each waiting on stdin for the path of its workload's config; launching one hands it that path and
// reads its first line (its pid and the limits it could enforce). The pool refills as it is used.
import { spawn } from "node:child_process"
import { mkdirSync, rmdirSync } from "node:fs"
import { join } from "node:path"
import { Data, Effect } from "effect"

export class SpawnFailed extends Data.TaggedError("SpawnFailed")<{ readonly reason: string }> {
  override get message() {
    return `the workload could not be started: ${this.reason}`
  }
}

export const pool = (main: string, workDir: string, size: number) =>
  Effect.gen(function*() {
    /** A harness process, detached (it outlives this host), its modules loaded, waiting on stdin for its config. */
    const startHarness = () =>
      spawn(process.execPath, [main, "--pool"], {
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
        cwd: workDir,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" }
      })
    mkdirSync(workDir, { recursive: true })
    /** Harnesses started ahead of need (LANTERN_HARNESS_POOL): a workload does not wait for Node to start one. */
    const pool: Array<ReturnType<typeof startHarness>> = []
    const refill = () => {
      while (pool.length < size) {
        const child = startHarness()
        child.on("error", () => {})
        child.on("exit", () => {
          const i = pool.indexOf(child)
          if (i >= 0) pool.splice(i, 1)
        })
        pool.push(child)
      }
    }
    refill()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        // idle harnesses see their stdin end and exit; assigned ones are not in the pool
        for (const child of pool.splice(0)) child.stdin?.end()
      })
    )

    /** Hands the harness its config and reads its first line: its pid and the limits it could enforce. */
    const launch = (configPath: string) =>
      Effect.callback<{ pid: number; enforced: ReadonlyArray<string> }, SpawnFailed>((resume) => {
        const child = pool.shift() ?? startHarness()
        refill()
        child.stdin!.on("error", () => {})
        child.stdin!.end(`${configPath}\n`)
        let out = ""
        let err = ""
        const timer = setTimeout(
          () => done(new SpawnFailed({ reason: "the harness did not start within 30 s" })),
          30_000
        )
        const done = (result: SpawnFailed | { pid: number; enforced: ReadonlyArray<string> }) => {
          clearTimeout(timer)
          child.removeAllListeners("exit")
          child.stdout?.removeAllListeners("data")
          child.stdout?.destroy()
          child.stderr?.destroy()
          child.unref()
          resume(result instanceof SpawnFailed ? Effect.fail(result) : Effect.succeed(result))
        }
        child.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString("utf8")
          const nl = out.indexOf("\n")
          if (nl < 0) return
          try {
            const first = JSON.parse(out.slice(0, nl)) as { pid: number; enforced: ReadonlyArray<string> }
            done({ pid: first.pid, enforced: first.enforced })
          } catch {
            done(new SpawnFailed({ reason: `the harness said: ${out.slice(0, 200)}` }))
          }
        })
        child.stderr!.on("data", (c: Buffer) => (err = (err + c.toString("utf8")).slice(0, 2000)))
        child.on("error", (e) => done(new SpawnFailed({ reason: e.message })))
        child.on(
          "exit",
          (code) => done(new SpawnFailed({ reason: `the harness exited with ${code}: ${err.slice(0, 500)}` }))
        )
      })

    return { launch }
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
