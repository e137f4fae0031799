// Checks the binaries that `npm test`, `npm run dev` and `npm run bench` need before they start, and fetches
// what is missing when it can; then brings the bundle of edge/main.ts (scripts/build.mjs, ADR 0027) and the cockpit's
// static build (scripts/build-ui.mjs, ADR 0040) up to date.
// Plain Node ESM: runs on Node 20 and 24.
//
// Usage: node scripts/ensure-deps.mjs [--test]
//   nats-server >= 2.12: LANTERN_NATS_SERVER, else 2.15.1 fetched once into .lantern-bin/ (scripts/nats-server.mjs,
//   ADR 0031). Not needed when NATS_URL is set.
//   --test: tests need nothing more: the cockpit's browser tests use Debian's chromium when it is installed (.ci/run
//   installs it) and skip, saying why, when it is not; no browser is ever downloaded.
// Prints nothing (but a line when it rebuilds the bundle) and exits 0 when everything is present; exits 1 with
// instructions when it cannot fix it.
import { ensureServer, MINIMUM, VERSION } from "./nats-server.mjs"

const fail = (lines) => {
  process.stderr.write(lines.map((l) => `ensure-deps: ${l}`).join("\n") + "\n")
  process.exit(1)
}

const ensureNatsServer = () => {
  const natsUrl = process.env.NATS_URL
  if (natsUrl !== undefined && natsUrl !== "") return // an external server is used; no binary needed
  try {
    ensureServer()
  } catch (e) {
    fail([
      e instanceof Error ? e.message : String(e),
      `Lantern's tests, dev server and benchmarks start their own nats-server (>= ${MINIMUM.join(".")}, JetStream).`,
      `It is fetched once into .lantern-bin/ from Debian testing (nats-server ${VERSION}); where that cannot work:`,
      "  - point at a binary:       LANTERN_NATS_SERVER=/path/to/nats-server (>= 2.12)",
      "                             (releases: https://github.com/nats-io/nats-server/releases)",
      "  - or use a running server: NATS_URL=nats://127.0.0.1:4222 (JetStream enabled, >= 2.12)"
    ])
  }
}

// `--test` (npm test) needs exactly what the other entry points need. The flag is accepted so a later test-only
// check can be scoped to it; for now it changes nothing (Chromium is optional, see above).

ensureNatsServer()

// the bundle `lantern` runs: built here, once, so parallel test workers and the first start find it ready
const { ensureBuilt } = await import("./build.mjs")
await ensureBuilt().catch((e) => fail([e instanceof Error ? e.message : String(e)]))
// the cockpit the edge serves at `/`: built when a file of ui/ is newer than ui/dist
const { ensureUiBuilt } = await import("./build-ui.mjs")
await ensureUiBuilt().catch((e) => fail([e instanceof Error ? e.message : String(e)]))
