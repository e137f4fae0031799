// Builds @lantern/sdk into dist/: one ESM bundle (esbuild; the shared pure modules of schema/ inlined, no runtime
// dependency) and its declarations (tsc), with dist/index.d.ts as the entry of both. Usage: npm run build -w sdk
import { spawnSync } from "node:child_process"
import { rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { build } from "esbuild"

const here = import.meta.dirname
const dist = join(here, "dist")
rmSync(dist, { recursive: true, force: true })

await build({
  entryPoints: [join(here, "src/index.ts")],
  outfile: join(dist, "index.js"),
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning"
})

const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin/tsc")
const r = spawnSync(process.execPath, [tsc, "-p", join(here, "tsconfig.json")], { stdio: "inherit" })
if (r.status !== 0) process.exit(r.status ?? 1)
writeFileSync(join(dist, "index.d.ts"), "export * from \"./types/sdk/src/index.js\"\n")
