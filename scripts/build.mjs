// Bundles edge/main.ts with esbuild into .lantern-build/<id>/ and keeps it fresh, so `lantern` starts from
// plain JavaScript instead of compiling TypeScript at every start (ADR 0027). Plain Node ESM.
//
// Usage: node scripts/build.mjs [--force] [--quiet]   (builds only when a source is newer than the bundle)
//        LANTERN_NO_REBUILD=1 makes a start use the existing build even when a source is newer.
//
// Layout: .lantern-build/current.json names the live build directory and the files it was built from; each
// build goes into a fresh directory and current.json is replaced atomically, so a process that started from
// an older build still finds its chunks while a newer one is written. Concurrent starts build once (a lock).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { pathToFileURL } from "node:url"

export const ROOT = resolve(import.meta.dirname, "..")
export const OUT = join(ROOT, ".lantern-build")
const MANIFEST = join(OUT, "current.json")
const LOCK = join(OUT, "lock")
/** Build directories other than the current one are removed once they are this old. */
const KEEP_OLD_MS = 10 * 60_000
/** A lock older than this belongs to a build that died. */
const STALE_LOCK_MS = 120_000

/**
 * Packages left to node_modules: they load files of their own (WebAssembly, encoder tables) or optional
 * native addons at run time (esbuild: its native binary, for bundling workflow code). Everything else, effect included, is bundled: resolving and compiling a few
 * thousand ESM files of node_modules at every start is most of what made the CLI slow.
 */
export const EXTERNAL = ["@electric-sql/pglite", "pg", "pg-native", "libsodium-wrappers", "js-tiktoken", "esbuild"]

/** Files whose change invalidates every build: the dependency set and this script. */
const ALWAYS_WATCHED = ["package.json", "package-lock.json", "node_modules/.package-lock.json", "scripts/build.mjs"]

/** A file's modification time; Infinity when it is missing (treated as changed). */
export const mtime = (path) => {
  try {
    return statSync(path).mtimeMs
  } catch {
    return Infinity // missing: treat as changed
  }
}

const readManifest = () => {
  try {
    return JSON.parse(readFileSync(MANIFEST, "utf8"))
  } catch {
    return undefined
  }
}

/** Why the current build cannot be used, or undefined when it is fresh. */
export const staleness = (manifest = readManifest()) => {
  if (manifest === undefined) return "no build yet"
  if (mtime(join(OUT, manifest.entry)) === Infinity) return "the build directory is missing"
  for (const file of [...ALWAYS_WATCHED, ...manifest.inputs]) {
    if (mtime(join(ROOT, file)) > manifest.startedAt) return `${file} changed`
  }
  return undefined
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Runs `f` holding the lock directory `lock` (a mkdir is atomic): concurrent starts wait their turn, and a lock left
 * by a process that died is taken over after STALE_LOCK_MS. Shared with scripts/build-ui.mjs.
 */
export const withLock = async (f, lock = LOCK) => {
  mkdirSync(OUT, { recursive: true })
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch (e) {
      if (e.code !== "EEXIST") throw e
      if (Date.now() - mtime(lock) > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true })
      else await sleep(50)
    }
  }
  try {
    return await f()
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

const prune = (keep) => {
  // V8's code for older builds would only accumulate; the next start of each command writes it afresh
  rmSync(join(OUT, "compile-cache"), { recursive: true, force: true })
  for (const name of readdirSync(OUT)) {
    if (!name.startsWith("b-") || name === keep) continue
    const dir = join(OUT, name)
    if (Date.now() - mtime(dir) > KEEP_OLD_MS) rmSync(dir, { recursive: true, force: true })
  }
}

/** The esbuild options of the production bundle, written to `outdir`. */
export const options = (outdir) => ({
  absWorkingDir: ROOT,
  // the embedded PGlite runs in a worker thread started from its own file (projections/PgliteThread.ts, ADR 0078)
  entryPoints: {
    main: "edge/main.ts",
    "pglite-worker": "projections/PgliteWorker.ts",
    // loaded by scripts/lantern.mjs before main, to begin opening the embedded database (ADR 0086)
    "pglite-thread": "projections/PgliteThread.ts"
  },
  outdir,
  bundle: true,
  // edge/main.ts imports the stack lazily: the CLI's own commands never load its chunk
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  external: EXTERNAL,
  sourcemap: "linked",
  // bundled CommonJS packages call require() for Node built-ins
  banner: {
    js:
      "import { createRequire as __lanternRequire } from \"node:module\"; const require = __lanternRequire(import.meta.url);"
  },
  metafile: true,
  logLevel: "silent"
})

const build = async (log) => {
  const esbuild = await import("esbuild")
  const startedAt = Date.now()
  const id = `b-${startedAt.toString(36)}-${process.pid}`
  const dir = join(OUT, id)
  const result = await esbuild.build(options(dir)).catch((e) => {
    rmSync(dir, { recursive: true, force: true })
    const errors = e.errors?.map((m) =>
      `${m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : ""}${m.text}`
    )
    throw new Error(`building the lantern bundle failed:\n${errors?.join("\n") ?? String(e)}`)
  }).finally(() => esbuild.stop()) // its service process would otherwise live as long as a `lantern serve`
  const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.startsWith("node_modules/"))
  const manifest = { entry: `${id}/main.js`, startedAt, builtMs: Date.now() - startedAt, inputs }
  const tmp = `${MANIFEST}.${process.pid}`
  writeFileSync(tmp, JSON.stringify(manifest, null, 2))
  renameSync(tmp, MANIFEST)
  prune(id)
  log(`lantern: built ${relative(ROOT, join(OUT, manifest.entry))} in ${manifest.builtMs} ms`)
  return manifest
}

/**
 * The bundle's entry file, built first when missing or older than a source. `force` rebuilds regardless.
 * Returns the absolute path of the entry and whether this call built it.
 */
export const ensureBuilt = async ({ force = false, log = (line) => process.stderr.write(`${line}\n`) } = {}) => {
  const fresh = readManifest()
  if (!force && staleness(fresh) === undefined) return { entry: join(OUT, fresh.entry), built: false }
  // LANTERN_NO_REBUILD=1 runs the build there is, even when a source is newer (benchmarks of the start itself)
  if (
    !force && process.env.LANTERN_NO_REBUILD === "1" && fresh !== undefined &&
    mtime(join(OUT, fresh.entry)) !== Infinity
  ) {
    return { entry: join(OUT, fresh.entry), built: false }
  }
  return withLock(async () => {
    // another process may have built it while this one waited for the lock
    const now = readManifest()
    if (!force && staleness(now) === undefined) return { entry: join(OUT, now.entry), built: false }
    const made = await build(log)
    return { entry: join(OUT, made.entry), built: true }
  })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2)
  const quiet = args.includes("--quiet")
  ensureBuilt({ force: args.includes("--force"), log: quiet ? () => {} : (line) => process.stderr.write(`${line}\n`) })
    .then(({ entry, built }) => {
      if (!quiet && !built) process.stderr.write(`lantern: ${relative(ROOT, entry)} is up to date\n`)
    })
    .catch((e) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`)
      process.exit(1)
    })
}
