// Hot reload of the cockpit under `lantern dev` (issue 18): ui/src watched, the cockpit rebuilt with Vite
// (scripts/build-ui.mjs) a moment after a change, and each page listening on `/__dev/reload` told to reload. Only a
// source checkout has the sources and the build script: anywhere else, and on `lantern serve`, there is none.
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, watch } from "node:fs"
import { dirname, join } from "node:path"
import { Effect, Option, PubSub } from "effect"

/** Changes closer together than this are one rebuild (an editor's save is often several writes). */
const SETTLE_MS = 150

export interface Reloader {
  /** One message per finished rebuild: its number, counted from 1. */
  readonly rebuilt: PubSub.PubSub<number>
}

/**
 * Watches the sources of the build in `distDir` (`<checkout>/ui/dist`) while the scope lasts; none when the checkout
 * has no `ui/src` or no `scripts/build-ui.mjs`.
 */
export const make = (distDir: string) =>
  Effect.gen(function*() {
    const root = dirname(dirname(distDir))
    const src = join(root, "ui", "src")
    const script = join(root, "scripts", "build-ui.mjs")
    if (!existsSync(src) || !existsSync(script)) return Option.none<Reloader>()
    const rebuilt = yield* PubSub.unbounded<number>()
    let builds = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    let child: ChildProcess | null = null
    let again = false
    const build = () => {
      timer = undefined
      if (child !== null) {
        again = true
        return
      }
      child = spawn(process.execPath, [script, "--force", "--quiet"], {
        cwd: root,
        stdio: ["ignore", "ignore", "inherit"]
      })
      child.on("exit", (code) => {
        child = null
        if (code === 0) PubSub.publishUnsafe(rebuilt, ++builds)
        else process.stderr.write(
            `lantern dev: rebuilding the cockpit failed (exit ${code}); the page keeps the last build\n`
          )
        if (again) {
          again = false
          build()
        }
      })
    }
    const watcher = yield* Effect.acquireRelease(
      Effect.sync(() =>
        watch(src, { recursive: true }, () => {
          clearTimeout(timer)
          timer = setTimeout(build, SETTLE_MS)
        })
      ),
      (w) =>
        Effect.sync(() => {
          clearTimeout(timer)
          w.close()
          child?.kill()
        })
    )
    watcher.on("error", (e) => process.stderr.write(`lantern dev: watching ${src} failed: ${e.message}\n`))
    return Option.some<Reloader>({ rebuilt })
  })
