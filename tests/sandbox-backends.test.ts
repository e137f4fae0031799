// One contract for every sandbox backend of the spawner (actors/spawner/Backends.ts, ADR 0046), run against each that
// is installed here, for real: the command line a backend builds runs the workload behind the relay, passes its exit
// code and output back, gives it the proxy and the secret vendor (served here on the Unix sockets, as the harness
// does) and nothing else of the network, keeps the host's files out of its reach, dies with its process group, and
// refuses a tier that is not its own before anything runs.
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { createServer as createNetServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Backends from "../actors/spawner/Backends.ts"
import * as MicroVm from "../actors/spawner/MicroVm.ts"
import { freePort } from "../bus/NatsServer.ts"
import type { Tier, WorkloadSpec } from "../schema/Workload.ts"
import { eventually } from "./support/Stack.ts"

const installed = (binary: string) => {
  try {
    execFileSync(binary, ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

interface Case {
  readonly backend: Backends.Backend
  readonly tier: Tier
  /** Tiers stronger than the backend's: refused. */
  readonly beyond: Tier
  readonly isolated: boolean
}

const cases: ReadonlyArray<Case> = [
  { backend: Backends.processBackend, tier: "trusted", beyond: "standard", isolated: false },
  ...(installed("bwrap")
    ? [{ backend: Backends.bwrapBackend(), tier: "standard" as const, beyond: "untrusted" as const, isolated: true }]
    : []),
  ...(installed("runsc")
    ? [{ backend: Backends.gvisorBackend(), tier: "untrusted" as const, beyond: "hostile" as const, isolated: true }]
    : [])
]

let dir: string
let sockDir: string
let egress: Server
let secrets: Server
let hostPort: number
let hostServer: ReturnType<typeof createNetServer>
const egressSeen: Array<string> = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lantern-backends-"))
  sockDir = join(dir, "sock")
  mkdirSync(sockDir)
  // the harness's two sockets, as the relay inside the sandbox reaches them
  egress = createServer((req, res) => {
    egressSeen.push(req.url ?? "")
    res.writeHead(403).end("egress refused: test gate")
  })
  secrets = createServer((req, res) => {
    if (req.headers.authorization === "Bearer good-token" && req.url === "/v1/secrets/TOKEN") {
      res.writeHead(200).end("vended-value")
    } else if (req.headers.authorization === "Bearer good-token" && req.url === "/v1/secrets/QUOTED") {
      res.writeHead(200).end("it's a \"value\"\n$HOME and `two` lines")
    } else res.writeHead(403).end("refused")
  })
  await new Promise<void>((r) => egress.listen(join(sockDir, "egress.sock"), r))
  await new Promise<void>((r) => secrets.listen(join(sockDir, "secrets.sock"), r))
  hostPort = await freePort()
  hostServer = createNetServer((s) => {
    s.on("error", () => {})
    s.end("host")
  }).listen(hostPort, "127.0.0.1")
}, 30_000)

afterAll(async () => {
  egress.close()
  secrets.close()
  hostServer.close()
  rmSync(dir, { recursive: true, force: true })
})

const specOf = (tier: Tier, script: string, withSecret = false): WorkloadSpec => ({
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name: "contract" },
  spec: {
    command: [process.execPath, "-e", script],
    isolation: tier,
    limits: { vcpu: 1, memoryMb: 256, timeoutSeconds: 60 },
    network: "none",
    ...(withSecret ? { secrets: [{ envName: "TOKEN", secretRef: "lantern.secret://token" }] } : {})
  }
})

const run = async (c: Case, script: string, options: { token?: string; withSecret?: boolean } = {}) => {
  const argv = await Effect.runPromise(c.backend.argv(specOf(c.tier, script, options.withSecret), { sockDir }))
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { PATH: "/usr/bin:/bin", LANTERN_IDENTITY_TOKEN: options.token ?? "good-token" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)))
  return { code, stdout, stderr }
}

describe.each(cases.map((c) => [c.backend.name, c] as const))("the %s backend", (_name, c) => {
  it("runs the workload and passes its output and exit code back", async () => {
    const r = await run(c, "console.log('out'); console.error('err'); process.exit(3)")
    expect(r.stdout, r.stderr).toContain("out")
    expect(r.stderr).toContain("err")
    expect(r.code).toBe(3)
  }, 60_000)

  it(
    "gives the workload the proxy and its vended secrets, and a refused secret stops it before it starts",
    async () => {
      const script =
        "const u = new URL(process.env.HTTP_PROXY); require('node:http').get({ host: u.hostname, port: u.port, path: 'http://example.test/x' }, (m) => { console.log('proxy ' + m.statusCode + ' secret ' + process.env.TOKEN); process.exit(0) })"
      const r = await run(c, script, { withSecret: true })
      expect(r.stdout, r.stderr).toContain("proxy 403 secret vended-value")
      expect(egressSeen).toContain("http://example.test/x")
      const refused = await run(c, "console.log('started')", { withSecret: true, token: "bad-token" })
      expect(refused.stdout).not.toContain("started")
      expect(refused.stderr).toContain("secret TOKEN was not vended (403)")
      expect(refused.code).toBe(126)
    },
    60_000
  )

  it(
    c.isolated
      ? "has no network but loopback: the host's ports are out of reach"
      : "(trusted) shares the host's network",
    async () => {
      const script =
        `require('node:net').connect(${hostPort}, '127.0.0.1').on('connect', () => { console.log('reached'); process.exit(0) }).on('error', (e) => { console.log('unreachable ' + e.code); process.exit(0) })`
      const r = await run(c, script)
      expect(r.stdout, r.stderr).toContain(c.isolated ? "unreachable" : "reached")
    },
    60_000
  )

  it.runIf(c.isolated)("keeps the host's files out of the workload's reach", async () => {
    const marker = join(dir, "escaped")
    const script = `try { require('node:fs').writeFileSync(${
      JSON.stringify(marker)
    }, 'x'); console.log('wrote') } catch (e) { console.log('refused ' + e.code) }`
    const r = await run(c, script)
    expect(r.code, r.stderr).toBe(0)
    // bubblewrap binds the host read-only and /tmp is its own; gVisor writes to an overlay that is thrown away
    expect(existsSync(marker)).toBe(false)
  }, 60_000)

  it("dies with its process group", async () => {
    const argv = await Effect.runPromise(
      c.backend.argv(specOf(c.tier, "setInterval(() => console.log('tick'), 100)"), { sockDir })
    )
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: "/usr/bin:/bin" },
      stdio: ["ignore", "pipe", "ignore"],
      detached: true
    })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    await eventually(async () => out.includes("tick"), 30_000, "the first tick")
    const closed = new Promise<void>((r) => child.on("close", () => r()))
    process.kill(-child.pid!, "SIGKILL")
    await closed
    // stdout closed: no process holds the pipe any more; and no process is left in the workload's group
    const gone = () => {
      try {
        process.kill(-child.pid!, 0)
        return false
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === "ESRCH"
      }
    }
    await eventually(async () => gone(), 30_000, "the workload's process group gone")
  }, 60_000)

  it("refuses a stronger tier than its own before anything runs", async () => {
    const exit = await Effect.runPromiseExit(c.backend.argv(specOf(c.beyond, "console.log('x')"), { sockDir }))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(exit)).toContain("IsolationUnavailable")
  })
})

// The microVM runs its own kernel and busybox, not this host's Node: the same contract, in shell.
const microvm = (() => {
  if (!installed("qemu-system-x86_64")) return null
  try {
    execFileSync("sh", ["-c", "command -v busybox && command -v apt-get && command -v dpkg-deb"], { stdio: "ignore" })
    return true
  } catch {
    return null
  }
})()

describe.runIf(microvm !== null)("the microvm backend (QEMU microvm, TCG, real boots)", () => {
  let backend: Backends.Backend
  beforeAll(async () => {
    // the guest image: Debian's cloud kernel and a busybox initramfs, built once into .lantern-bin/microvm/
    const built = execFileSync(process.execPath, [join(import.meta.dirname, "../scripts/microvm-image.mjs")], {
      encoding: "utf8"
    })
    const kernel = /^kernel (.+)$/m.exec(built)![1]!
    const initrd = /^initrd (.+)$/m.exec(built)![1]!
    backend = MicroVm.microvmBackend({ qemu: "qemu-system-x86_64", kernel, initrd, accel: "tcg" })
    expect(await Effect.runPromise(backend.probe)).toEqual({ ok: true })
  }, 300_000)

  const shell = (script: string, over: Partial<WorkloadSpec["spec"]> = {}): WorkloadSpec => ({
    ...specOf("hostile", ""),
    spec: { ...specOf("hostile", "").spec, command: ["sh", "-c", script], ...over }
  })
  const boot = async (spec: WorkloadSpec) => {
    const argv = await Effect.runPromise(backend.argv(spec, { sockDir, workloadId: "wl_microvm", input: "it's input" }))
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], detached: true })
    let stdout = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", () => {})
    const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)))
    return { code, stdout }
  }

  it(
    "boots the workload in its own kernel, passing its output (no kernel lines), environment and exit code back",
    async () => {
      const r = await boot(
        shell("echo out; echo \"input=$LANTERN_INPUT\"; uname -r; exit 3", { env: { GREETING: "a 'quoted' value" } })
      )
      expect(r.code, r.stdout).toBe(3)
      expect(r.stdout).toContain("out\ninput=it's input\n")
      expect(r.stdout).toMatch(/cloud-amd64/)
      expect(r.stdout).not.toMatch(/^\[\s*\d+\.\d+\]/m)
    },
    120_000
  )

  it("has no network device and none of the host's files", async () => {
    const r = await boot(
      shell(`ls /sys/class/net; test -e ${JSON.stringify(sockDir)} && echo host-visible || echo host-hidden`)
    )
    expect(r.code, r.stdout).toBe(0)
    expect(r.stdout.trim().split("\n")).toEqual(["lo", "host-hidden"])
  }, 120_000)

  it("stops when killed", async () => {
    const argv = await Effect.runPromise(backend.argv(shell("while true; do echo tick; sleep 1; done"), { sockDir }))
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "ignore"], detached: true })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    await eventually(async () => out.includes("tick"), 90_000, "the first tick")
    const closed = new Promise<void>((r) => child.on("close", () => r()))
    child.kill("SIGTERM")
    await closed
  }, 120_000)

  it("refuses what it cannot guard: egress rules (it has no network)", async () => {
    const over = { network: "allowlist" as const, egressRules: [{ host: "203.0.113.1" }] }
    const exit = await Effect.runPromiseExit(backend.argv(shell("true", over), { sockDir }))
    expect(Exit.isFailure(exit)).toBe(true)
  })

  const withToken = async (spec: WorkloadSpec, token: string) => {
    const vmDir = mkdtempSync(join(dir, "vm-"))
    const argv = await Effect.runPromise(backend.argv(spec, { sockDir, dir: vmDir, workloadId: "wl_microvm" }))
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      env: { ...process.env, LANTERN_IDENTITY_TOKEN: token }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    // a guest that hangs (TCG on a very busy host) is stopped, so the assertion shows what it printed
    const deadline = setTimeout(() => child.kill("SIGTERM"), 120_000)
    const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)))
    clearTimeout(deadline)
    return { code, stdout, stderr, left: existsSync(join(vmDir, "initrd-secrets")) }
  }

  it(
    "gives the guest its declared secrets, vended with its identity token before the boot, and leaves no copy",
    async () => {
      const declared = {
        secrets: [
          { envName: "TOKEN", secretRef: "lantern.secret://token" },
          { envName: "QUOTED", secretRef: "lantern.secret://quoted" }
        ]
      }
      const r = await withToken(
        shell(
          `echo "token=$TOKEN"; printf '%s|' "$QUOTED"; echo; test -e /lantern/env && echo env-file-left || echo env-file-gone`,
          declared
        ),
        "good-token"
      )
      expect(r.code, r.stdout + r.stderr).toBe(0)
      expect(r.stdout).toContain("token=vended-value\n")
      expect(r.stdout).toContain("it's a \"value\"\n$HOME and `two` lines|")
      expect(r.stdout).toContain("env-file-gone")
      expect(r.left).toBe(false)
      // a refusal stops it before any VM boots
      const refused = await withToken(shell("echo booted", declared), "wrong-token")
      expect(refused.code).toBe(126)
      expect(refused.stdout).not.toContain("booted")
      expect(refused.stderr).toContain("secret TOKEN was not vended (403)")
      expect(refused.left).toBe(false)
    },
    240_000
  )
})

describe("placement", () => {
  it("picks the weakest backend that provides the tier, and refuses a tier none provides", async () => {
    const all = [Backends.processBackend, Backends.bwrapBackend(), Backends.gvisorBackend()]
    const name = (tier: Tier) => Effect.runPromise(Effect.map(Backends.place(all, tier), (b) => b.name))
    expect(await name("trusted")).toBe("process")
    expect(await name("standard")).toBe("bwrap")
    expect(await name("untrusted")).toBe("gvisor")
    const hostile = await Effect.runPromiseExit(Backends.place(all, "hostile"))
    expect(Exit.isFailure(hostile)).toBe(true)
    // a deployment without a stronger backend never downgrades
    const onlyProcess = await Effect.runPromiseExit(Backends.place([Backends.processBackend], "standard"))
    expect(Exit.isFailure(onlyProcess)).toBe(true)
    expect(await Effect.runPromise(Effect.map(Backends.place([Backends.gvisorBackend()], "trusted"), (b) => b.name)))
      .toBe("gvisor")
  })
})
