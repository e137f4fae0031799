// The `lantern` entry point that bin/lantern, `npm run dev` and the tests' stack launcher run: makes sure the
// bundle of edge/main.ts is fresh (scripts/build.mjs), then runs it. Plain Node ESM, on the pinned Node 24.
import module from "node:module"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { ensureBuilt, OUT } from "./build.mjs"

// V8's code cache on disk: the bundle is parsed and compiled once, not at every start
module.enableCompileCache?.(join(OUT, "compile-cache"))

/** Commands that keep running: they pay the source maps' load time for readable stack traces in their logs. */
const LONG_RUNNING = new Set(["dev", "serve", "worker"])

const command = process.argv.slice(2).find((a) => !a.startsWith("-"))
if (LONG_RUNNING.has(command) || process.env.LANTERN_SOURCE_MAPS === "1") process.setSourceMapsEnabled(true)

let entry
try {
  entry = (await ensureBuilt()).entry
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`)
  process.exit(1)
}
await import(pathToFileURL(entry).href)
