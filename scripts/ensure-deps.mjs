// Checks the system binaries that `npm test`, `npm run dev` and `npm run bench` need before they start, and
// installs what is missing when it safely can (root on Debian); then brings the bundle of edge/main.ts up to
// date (scripts/build.mjs, ADR 0027). Plain Node ESM: runs on Node 20 and 24.
//
// Usage: node scripts/ensure-deps.mjs [--test]
//   nats-server: NATS_SERVER_BIN, then PATH, then /usr/sbin/nats-server. Not needed when NATS_URL is set.
//   --test: tests need nothing beyond nats-server today (a browser, if one is ever needed, is not checked).
// Prints nothing (but a line when it rebuilds the bundle) and exits 0 when everything is present; exits 1 with
// instructions when it cannot fix it.
import { spawnSync } from "node:child_process"
import { accessSync, constants, existsSync, statSync } from "node:fs"
import { delimiter, join } from "node:path"

const DEBIAN_LOCATIONS = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]

const isExecutable = (path) => {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

const onPath = (name) => {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && isExecutable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/** The nats-server binary, searched the same way as bus/NatsServer.ts; undefined when absent. */
const findNatsServer = () => {
  const fromEnv = process.env.NATS_SERVER_BIN
  if (fromEnv !== undefined && fromEnv !== "") return isExecutable(fromEnv) ? fromEnv : undefined
  return onPath("nats-server") ?? DEBIAN_LOCATIONS.find(isExecutable)
}

const canApt = () =>
  typeof process.getuid === "function" &&
  process.getuid() === 0 &&
  existsSync("/etc/debian_version") &&
  onPath("apt-get") !== undefined

let aptUpdated = false

/** Runs apt-get with its output streamed to our stderr (stdout stays free for the command that follows). */
const aptGet = (args) => {
  process.stderr.write(`ensure-deps: apt-get ${args.join(" ")}\n`)
  const result = spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
    stdio: ["ignore", process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  })
  if (result.error !== undefined) process.stderr.write(`ensure-deps: ${result.error.message}\n`)
  return result.status === 0
}

const aptInstall = (pkg) => {
  if (!aptUpdated) {
    aptUpdated = true
    if (!aptGet(["update"])) return false
  }
  return aptGet(["install", "-y", "--no-install-recommends", pkg])
}

const fail = (lines) => {
  process.stderr.write(lines.map((l) => `ensure-deps: ${l}`).join("\n") + "\n")
  process.exit(1)
}

const ensureNatsServer = () => {
  const natsUrl = process.env.NATS_URL
  if (natsUrl !== undefined && natsUrl !== "") return // an external server is used; no binary needed
  if (findNatsServer() !== undefined) return

  const fromEnv = process.env.NATS_SERVER_BIN
  if (fromEnv !== undefined && fromEnv !== "") {
    fail([
      `NATS_SERVER_BIN is set to ${fromEnv}, which is not an executable file.`,
      "Point it at a nats-server binary, unset it to search PATH and /usr/sbin, or set NATS_URL to an existing server."
    ])
  }

  if (canApt()) {
    process.stderr.write("ensure-deps: nats-server not found; installing the Debian package\n")
    if (!aptInstall("nats-server")) fail(["installing nats-server with apt-get failed (see the output above)."])
    if (findNatsServer() !== undefined) return
    fail(["apt-get installed nats-server, but no executable was found at /usr/sbin/nats-server or on PATH."])
  }

  fail([
    "nats-server was not found (looked at NATS_SERVER_BIN, PATH and /usr/sbin/nats-server).",
    "Lantern's tests, dev server and benchmarks start their own nats-server (>= 2.9) with JetStream. Either:",
    "  - install it:  Debian/Ubuntu: sudo apt-get install -y nats-server   macOS: brew install nats-server",
    "                 Nix: nix develop   other: https://github.com/nats-io/nats-server/releases",
    "  - or point at a binary:      NATS_SERVER_BIN=/path/to/nats-server",
    "  - or use a running server:   NATS_URL=nats://127.0.0.1:4222 (JetStream enabled)"
  ])
}

// `--test` (npm test) needs exactly what the other entry points need today. The flag is accepted so a later
// test-only check (a browser for cockpit tests, for example) can be scoped to it; for now it changes nothing.

ensureNatsServer()

// the bundle `lantern` runs: built here, once, so parallel test workers and the first start find it ready
const { ensureBuilt } = await import("./build.mjs")
await ensureBuilt().catch((e) => fail([e instanceof Error ? e.message : String(e)]))
