// The spawner's sandbox backends behind one port (ADR 0046). A backend turns a workload into the command line the
// harness runs: the in-sandbox relay (harness/relay.ts) and the workload inside the backend's isolation. Placement
// picks the weakest configured backend that provides the workload's tier, never a weaker one; and each backend
// checks the tier again before it builds anything (fail closed, twice).
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Data, Effect } from "effect"
import { type Tier, tierRank, type WorkloadSpec } from "../../schema/Workload.ts"

/** Where a workload's harness keeps its sockets, and the relay to run inside the sandbox. */
export interface Paths {
  /** The host directory holding egress.sock and secrets.sock. */
  readonly sockDir: string
  /** The relay's entry (harness/relay.ts, or its bundle: HarnessBuild.ts); RELAY when absent. */
  readonly relay?: string
  /** The Kubernetes driver's entry (harness/kube.ts, or its bundle); KUBE when absent. */
  readonly kube?: string
  /** The microVM driver's entry (harness/vm.ts, or its bundle); VM when absent. */
  readonly vm?: string
  /** The workload's own folder (a backend may leave files for its driver there), its id, tenant and input. */
  readonly dir?: string
  readonly workloadId?: string
  readonly tenant?: string
  readonly input?: string | null
  /**
   * A host directory the workload starts in and may write (a task's artifact root): what it creates there is on
   * the host when it ends. Only backends with `sharesWorkDir` take one.
   */
  readonly workDir?: string
}

export interface Backend {
  readonly name: string
  /** The tiers this backend may run: every tier up to its strength, except that `process` runs only `trusted`. */
  readonly provides: (tier: Tier) => boolean
  /** Whether the backend can run here, or why not (a missing binary). */
  readonly probe: Effect.Effect<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>
  /** The harness's command line for `spec`, or a refusal when the tier is not this backend's. */
  readonly argv: (spec: WorkloadSpec, paths: Paths) => Effect.Effect<ReadonlyArray<string>, IsolationUnavailable>
  /** Whether the workload can start in a writable host directory (Paths.workDir) whose files the host then sees. */
  readonly sharesWorkDir?: boolean
  /**
   * Where the harness's sockets (Paths.sockDir on the host) are seen from inside the sandbox; absent for a backend
   * whose workloads cannot reach them (kubernetes, microvm).
   */
  readonly socketsInside?: (sockDir: string) => string
}

/** No configured backend provides the tier (the edge answers 412 `isolation_unavailable`). */
export class IsolationUnavailable extends Data.TaggedError("IsolationUnavailable")<{
  readonly tier: Tier
  readonly reason: string
}> {
  override get message() {
    return `isolation tier '${this.tier}' is unavailable: ${this.reason}`
  }
}

/** The repository's root, found from this module (a source file or a bundled chunk): the folder holding harness/. */
export const root = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "harness", "relay.ts"))) return dir
    dir = dirname(dir)
  }
  return process.cwd()
})()
export const HARNESS = join(root, "harness", "main.ts")
export const RELAY = join(root, "harness", "relay.ts")
export const KUBE = join(root, "harness", "kube.ts")
export const VM = join(root, "harness", "vm.ts")

const secretNames = (spec: WorkloadSpec) => (spec.spec.secrets ?? []).map((s) => s.envName).join(",")
const workloadArgv = (spec: WorkloadSpec) => [...spec.spec.command, ...(spec.spec.args ?? [])]

/**
 * The relay in front of the workload, or nothing when it would have nothing to relay: no egress rules (so every
 * connection would be refused anyway) and no secrets to fetch. The sockets stay where LANTERN_SECRETS_SOCKET says.
 */
const relayed = (spec: WorkloadSpec, paths: Paths, egressSock: string, secretsSock: string) =>
  spec.spec.network === "none" && (spec.spec.secrets ?? []).length === 0
    ? workloadArgv(spec)
    : [process.execPath, paths.relay ?? RELAY, egressSock, secretsSock, secretNames(spec), "--", ...workloadArgv(spec)]

const version = (binary: string, args: ReadonlyArray<string>) =>
  Effect.callback<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>((resume) => {
    execFile(binary, [...args], { timeout: 10_000 }, (error) => {
      resume(Effect.succeed(error === null ? { ok: true } : { ok: false, reason: `${binary}: ${error.message}` }))
    })
  })

const refuseUnless = (backend: Backend, spec: WorkloadSpec) =>
  backend.provides(spec.spec.isolation)
    ? Effect.void
    : Effect.fail(
      new IsolationUnavailable({
        tier: spec.spec.isolation,
        reason: `the ${backend.name} backend does not provide it`
      })
    )

/** A plain child process: no isolation at all, so only for `trusted` code (the development default). */
export const processBackend: Backend = {
  name: "process",
  provides: (tier) => tier === "trusted",
  probe: Effect.succeed({ ok: true }),
  sharesWorkDir: true,
  socketsInside: (sockDir) => sockDir,
  argv(spec, paths) {
    return Effect.as(
      refuseUnless(this, spec),
      relayed(spec, paths, join(paths.sockDir, "egress.sock"), join(paths.sockDir, "secrets.sock"))
    )
  }
}

/**
 * bubblewrap: new user, pid, network, mount, ipc and uts namespaces; the host's file system read-only, a private
 * /tmp, no network but loopback; the harness's socket folder bound in at /run/lantern, the only way out. Up to
 * `standard`.
 */
export const bwrapBackend = (binary = "bwrap"): Backend => ({
  name: "bwrap",
  provides: (tier) => tierRank(tier) <= tierRank("standard"),
  probe: version(binary, ["--version"]),
  sharesWorkDir: true,
  socketsInside: () => "/run/lantern",
  argv(spec, paths) {
    // --tmpfs /tmp hides whatever lives under /tmp: Node and the repository are bound back where they are
    const keep = [...new Set([dirname(process.execPath), root])].flatMap((p) => ["--ro-bind", p, p])
    // a shared working directory is the one host path the workload may write
    const work = paths.workDir === undefined ? [] : ["--bind", paths.workDir, paths.workDir]
    return Effect.as(refuseUnless(this, spec), [
      binary,
      "--ro-bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--tmpfs",
      "/tmp",
      "--tmpfs",
      "/run",
      ...keep,
      ...work,
      "--bind",
      paths.sockDir,
      "/run/lantern",
      "--unshare-all",
      "--die-with-parent",
      "--new-session",
      "--uid",
      "65534",
      "--gid",
      "65534",
      "--hostname",
      "sandbox",
      "--chdir",
      paths.workDir ?? "/tmp",
      ...relayed(spec, paths, "/run/lantern/egress.sock", "/run/lantern/secrets.sock")
    ])
  }
})

/**
 * gVisor (`runsc do`): the workload talks to gVisor's user-space kernel, not the host's; no network (`--network=none`)
 * but loopback, and host Unix sockets opened by path (the harness's two). Up to `untrusted`.
 */
export const gvisorBackend = (
  binary = "runsc",
  stateDir = join(process.env["TMPDIR"] ?? "/tmp", "lantern-runsc")
): Backend => ({
  name: "gvisor",
  provides: (tier) => tierRank(tier) <= tierRank("untrusted"),
  probe: version(binary, ["--version"]),
  // --host-uds=open: host sockets are opened by their host path
  socketsInside: (sockDir) => sockDir,
  argv(spec, paths) {
    return Effect.as(refuseUnless(this, spec), [
      binary,
      "--root",
      stateDir,
      "--network=none",
      "--host-uds=open",
      ...(process.getuid?.() === 0 ? [] : ["--rootless"]),
      "do",
      ...relayed(spec, paths, join(paths.sockDir, "egress.sock"), join(paths.sockDir, "secrets.sock"))
    ])
  }
})

export const KNOWN = ["process", "bwrap", "gvisor", "kubernetes", "microvm"] as const

export const byName = (name: string): Backend | null =>
  name === "process" ? processBackend : name === "bwrap" ? bwrapBackend() : name === "gvisor" ? gvisorBackend() : null

/**
 * The backend for `tier`: the first of `backends` (weakest first) that provides it (and, when the workload needs a
 * shared working directory, can give it one), or a refusal naming the tier.
 */
export const place = (
  backends: ReadonlyArray<Backend>,
  tier: Tier,
  options: { readonly workDir?: boolean } = {}
): Effect.Effect<Backend, IsolationUnavailable> => {
  const found = backends.find((b) => b.provides(tier) && (options.workDir !== true || b.sharesWorkDir === true))
  return found === undefined
    ? Effect.fail(
      new IsolationUnavailable({
        tier,
        reason: backends.length === 0
          ? "no sandbox backend is configured"
          : options.workDir === true && backends.some((b) => b.provides(tier))
          ? `no configured backend that provides it can share a working directory (configured: ${
            backends.map((b) => b.name).join(", ")
          }; process and bwrap can)`
          : `no configured backend provides it (configured: ${backends.map((b) => b.name).join(", ")})`
      })
    )
    : Effect.succeed(found)
}
