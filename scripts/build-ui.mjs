// Builds the cockpit (ui/) with Vite into ui/dist/ (gitignored) when a source is newer than the build, so a clean
// clone's `npm run dev` and `npm test` serve a current cockpit without a step of their own (ADR 0040). Plain Node ESM.
//
// Usage: node scripts/build-ui.mjs [--force] [--quiet]
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { mtime, withLock } from "./build.mjs"

export const ROOT = resolve(import.meta.dirname, "..")
export const UI = join(ROOT, "ui")
export const DIST = join(UI, "dist")
const STAMP = join(DIST, ".built.json")
const LOCK = join(ROOT, ".lantern-build", "ui-lock")

/**
 * The files a build reads: ui/ but its build and its tests, the schema/ modules it bundles (every one: the cockpit
 * imports many, and they import each other), the dependency set and this script.
 */
const inputs = () => {
  const out = ["package-lock.json", "scripts/build-ui.mjs"]
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      if (name === "dist" || name === "node_modules" || name.startsWith(".") || /\.test\.tsx?$/.test(name)) continue
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else out.push(relative(ROOT, path))
    }
  }
  walk(UI)
  walk(join(ROOT, "schema"))
  return out
}

/** Why the build cannot be used, or undefined when it is fresh. */
export const staleness = () => {
  let stamp
  try {
    stamp = JSON.parse(readFileSync(STAMP, "utf8"))
  } catch {
    return "no build yet"
  }
  if (mtime(join(DIST, "index.html")) === Infinity) return "ui/dist/index.html is missing"
  for (const file of inputs()) if (mtime(join(ROOT, file)) > stamp.startedAt) return `${file} changed`
  return undefined
}

/** Builds ui/dist when it is missing or older than a source (or always, with `force`); whether it built. */
export const ensureUiBuilt = async ({ force = false, log = (line) => process.stderr.write(`${line}\n`) } = {}) => {
  if (!force && staleness() === undefined) return { built: false }
  return withLock(async () => {
    if (!force && staleness() === undefined) return { built: false }
    const startedAt = Date.now()
    const vite = await import("vite")
    await vite.build({ configFile: join(UI, "vite.config.ts"), root: UI, logLevel: "error" }).catch((e) => {
      throw new Error(`building the cockpit (ui/) failed:\n${e instanceof Error ? e.message : String(e)}`)
    })
    writeFileSync(STAMP, JSON.stringify({ startedAt, builtMs: Date.now() - startedAt }))
    log(`lantern: built the cockpit into ui/dist in ${Date.now() - startedAt} ms`)
    return { built: true }
  }, LOCK)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2)
  const quiet = args.includes("--quiet")
  ensureUiBuilt({
    force: args.includes("--force"),
    log: quiet ? () => {} : (line) => process.stderr.write(`${line}\n`)
  })
    .then(({ built }) => {
      if (!quiet && !built) process.stderr.write("lantern: ui/dist is up to date\n")
    })
    .catch((e) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`)
      process.exit(1)
    })
}
