// The `lantern` entry point that bin/lantern, `npm run dev` and the tests' stack launcher run: makes sure the
// bundle of edge/main.ts is fresh (scripts/build.mjs), then runs it. Plain Node ESM, on the pinned Node 24.
import module from "node:module"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import { ensureBuilt, OUT } from "./build.mjs"

// V8's code cache on disk: the bundle is parsed and compiled once, not at every start
module.enableCompileCache?.(join(OUT, "compile-cache"))

// Source maps (readable stack traces) cost about half a second of CPU at every start, a quarter of `serve`'s: on
// for `lantern dev` only, where a developer reads the traces; LANTERN_SOURCE_MAPS=1 turns them on for any command,
// =0 off for dev (ADR 0070). Without them a trace names the bundle's chunk, line and column, which the .map beside
// the chunk resolves offline.
const command = process.argv.slice(2).find((a) => !a.startsWith("-"))
const maps = process.env.LANTERN_SOURCE_MAPS
if (maps === "1" || (command === "dev" && maps !== "0")) process.setSourceMapsEnabled(true)

let entry
try {
  entry = (await ensureBuilt()).entry
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`)
  process.exit(1)
}
// `serve` and `dev` open the embedded database: its thread begins now, beside the loading of the bundle below
// (ADR 0086); the stack takes it up, or opens the database itself when the configuration says otherwise
const help = process.argv.includes("--help") || process.argv.includes("-h")
if ((command === "serve" || command === "dev") && !help) {
  const thread = await import(pathToFileURL(join(dirname(entry), "pglite-thread.js")).href)
  thread.prestart()
}
await import(pathToFileURL(entry).href)
