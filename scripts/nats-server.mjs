// The nats-server Lantern runs (>= 2.12, durable by default): LANTERN_NATS_SERVER when set, else the project's
// cached copy of Debian's 2.15.1 in .lantern-bin/, fetched on first need from the machine's own Debian mirror
// (suite forky) through a private apt source list, without touching the system's apt configuration (ADR 0031).
// Plain Node ESM, used by scripts/ensure-deps.mjs; bus/NatsServer.ts looks in the same place.
import { spawnSync } from "node:child_process"
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { join, resolve } from "node:path"

export const VERSION = "2.15.1"
export const DEBIAN_VERSION = `${VERSION}-1`
export const MINIMUM = [2, 12]
const ROOT = resolve(import.meta.dirname, "..")
export const CACHE_DIR = join(ROOT, ".lantern-bin")
/** Where the fetched binary lives: one directory per version, so a newer pin never reuses an old copy. */
export const cachedBinary = join(CACHE_DIR, `nats-server-${VERSION}`, "nats-server")

const isExecutable = (path) => {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** `nats-server --version` as "x.y.z", or null when it does not run. */
export const versionOf = (binary) => {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8" })
  if (r.status !== 0) return null
  return /v?(\d+\.\d+\.\d+)/.exec(r.stdout ?? "")?.[1] ?? null
}

export const isRecent = (version) => {
  const [a = 0, b = 0] = version.split(".").map(Number)
  return a > MINIMUM[0] || (a === MINIMUM[0] && b >= MINIMUM[1])
}

/** The machine's own Debian mirror, as its apt sources name it (deb822 or one-line); deb.debian.org otherwise. */
const mirror = () => {
  const files = ["/etc/apt/sources.list"]
  try {
    for (const f of readdirSync("/etc/apt/sources.list.d")) files.push(join("/etc/apt/sources.list.d", f))
  } catch {}
  for (const f of files) {
    let text = ""
    try {
      text = readFileSync(f, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n")) {
      const uri = /^URIs:\s*(\S+)/.exec(line)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s/.exec(line)?.[1]
      if (uri !== undefined && /\/debian\/?$/.test(uri)) return uri.replace(/\/$/, "")
    }
  }
  return "http://deb.debian.org/debian"
}

/**
 * Downloads nats-server DEBIAN_VERSION from Debian testing and unpacks its binary into the cache; returns the
 * binary, or throws with what failed.
 */
export const fetchServer = (log = (line) => process.stderr.write(`${line}\n`)) => {
  for (const tool of ["apt-get", "dpkg-deb"]) {
    if (spawnSync(tool, ["--version"], { stdio: "ignore" }).status !== 0) {
      throw new Error(`${tool} is not available to fetch nats-server ${VERSION}`)
    }
  }
  const work = join(CACHE_DIR, "apt")
  rmSync(work, { recursive: true, force: true })
  mkdirSync(join(work, "lists", "partial"), { recursive: true })
  mkdirSync(join(work, "cache", "archives", "partial"), { recursive: true })
  const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
  const signed = existsSync(keyring) ? `[signed-by=${keyring}] ` : ""
  writeFileSync(join(work, "sources.list"), `deb ${signed}${mirror()} forky main\n`)
  const options = [
    "-q",
    "-o",
    `Dir::Etc::sourcelist=${join(work, "sources.list")}`,
    "-o",
    "Dir::Etc::sourceparts=/dev/null",
    "-o",
    `Dir::State::Lists=${join(work, "lists")}`,
    "-o",
    `Dir::Cache=${join(work, "cache")}`,
    "-o",
    "APT::Sandbox::User=root"
  ]
  const apt = (args) => {
    const r = spawnSync("apt-get", [...options, ...args], { cwd: work, encoding: "utf8" })
    if (r.status !== 0)
      throw new Error(`apt-get ${args.join(" ")} failed: ${(r.stderr || r.stdout || "").trim().slice(-600)}`)
  }
  log(`ensure-deps: fetching nats-server ${VERSION} (Debian testing) into ${CACHE_DIR}`)
  apt(["update"])
  apt(["download", `nats-server=${DEBIAN_VERSION}`])
  const deb = readdirSync(work).find((f) => f.startsWith("nats-server_") && f.endsWith(".deb"))
  if (deb === undefined) throw new Error("apt-get download left no .deb")
  const unpacked = join(work, "root")
  const x = spawnSync("dpkg-deb", ["-x", join(work, deb), unpacked], { encoding: "utf8" })
  if (x.status !== 0) throw new Error(`dpkg-deb -x failed: ${x.stderr}`)
  const inside = ["usr/bin/nats-server", "usr/sbin/nats-server"].map((p) => join(unpacked, p)).find(isExecutable)
  if (inside === undefined) throw new Error("the package holds no nats-server binary")
  const got = versionOf(inside)
  if (got !== VERSION) throw new Error(`the fetched binary reports version ${got}, not ${VERSION}`)
  mkdirSync(join(CACHE_DIR, `nats-server-${VERSION}`), { recursive: true })
  renameSync(inside, cachedBinary)
  rmSync(work, { recursive: true, force: true })
  return cachedBinary
}

/**
 * The binary to run and its version: LANTERN_NATS_SERVER (checked, never replaced), else the cached copy,
 * fetched when missing or not the pinned version. Throws with instructions when neither works.
 */
export const ensureServer = (log) => {
  const named = process.env.LANTERN_NATS_SERVER
  if (named !== undefined && named !== "") {
    if (!isExecutable(named)) throw new Error(`LANTERN_NATS_SERVER=${named} is not an executable file`)
    const version = versionOf(named)
    if (version === null || !isRecent(version)) {
      throw new Error(
        `LANTERN_NATS_SERVER=${named} is nats-server ${version ?? "(unknown version)"}; Lantern needs >= ${
          MINIMUM.join(".")
        }`
      )
    }
    return { binary: named, version }
  }
  if (isExecutable(cachedBinary) && versionOf(cachedBinary) === VERSION)
    return { binary: cachedBinary, version: VERSION }
  return { binary: fetchServer(log), version: VERSION }
}
