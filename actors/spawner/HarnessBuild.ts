// The harness as plain JavaScript (ADR 0046): harness/main.ts and harness/relay.ts bundled once per source version
// with esbuild into .lantern-build/harness-<digest>/, because Node's type stripping costs about 150 ms a start and
// both run once per workload (the relay inside the sandbox, where gVisor makes every start dearer). Written to a
// temporary folder and renamed, so hosts starting together never see half a build; the .ts files are the fallback.
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { HARNESS, KUBE, RELAY, root, VM } from "./Backends.ts"

export interface Harness {
  /** The harness's entry, run by `node` beside the sandbox. */
  readonly main: string
  /** The relay's entry, run by `node` inside the sandbox. */
  readonly relay: string
  /** The Kubernetes backend's driver (it loads @kubernetes/client-node from node_modules). */
  readonly kube: string
  /** The microVM backend's driver. */
  readonly vm: string
}

const SOURCES = [
  "harness/main.ts",
  "harness/relay.ts",
  "harness/kube.ts",
  "harness/vm.ts",
  "harness/Egress.ts",
  "harness/Vend.ts",
  "schema/Addresses.ts"
]

export const build: Effect.Effect<Harness> = Effect.tryPromise(async () => {
  const digest = createHash("sha256")
  for (const file of SOURCES) digest.update(readFileSync(join(root, file)))
  const out = join(root, ".lantern-build", `harness-${digest.digest("hex").slice(0, 16)}`)
  const built = {
    main: join(out, "main.mjs"),
    relay: join(out, "relay.mjs"),
    kube: join(out, "kube.mjs"),
    vm: join(out, "vm.mjs")
  }
  if (Object.values(built).every((f) => existsSync(f))) return built
  const esbuild = await import("esbuild")
  const tmp = `${out}.${process.pid}.tmp`
  mkdirSync(tmp, { recursive: true })
  await esbuild.build({
    entryPoints: { main: HARNESS, relay: RELAY, kube: KUBE, vm: VM },
    // 60 MB of client with files of its own: loaded from the repository's node_modules, not bundled
    external: ["@kubernetes/client-node"],
    outdir: tmp,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "silent",
    banner: {
      js:
        "import { createRequire as __lanternRequire } from 'node:module'; const require = __lanternRequire(import.meta.url);"
    }
  })
  try {
    renameSync(tmp, out)
  } catch {
    // another host renamed its identical build first
    rmSync(tmp, { recursive: true, force: true })
  }
  return built
}).pipe(
  Effect.catchCause((cause) =>
    Effect.as(
      Effect.logWarning("the harness could not be bundled; running its TypeScript sources (slower starts)", cause),
      { main: HARNESS, relay: RELAY, kube: KUBE, vm: VM }
    )
  )
)
