// Vitest global setup: brings the bundle that `lantern` runs (scripts/build.mjs, ADR 0027) up to date once,
// before any worker spawns a stack, so parallel test files do not each wait for a build.
import { spawnSync } from "node:child_process"
import { join, resolve } from "node:path"

export default function setup() {
  const root = resolve(import.meta.dirname, "../..")
  const r = spawnSync(join(root, "node_modules/.bin/node"), [join(root, "scripts/build.mjs"), "--quiet"], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"]
  })
  if (r.status !== 0) throw new Error(`building the lantern bundle failed (exit ${r.status ?? r.signal}): see above`)
}
