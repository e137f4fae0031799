// The `microvm` sandbox backend (ADR 0046): each workload in its own QEMU microVM (`-M microvm`: a kernel of its own,
// no network device, no disk but the guest image's initramfs), the only backend strong enough for `hostile`. The guest
// image (scripts/microvm-image.mjs: Debian's cloud kernel and a busybox initramfs) runs the command given on the kernel
// command line and reports its exit code; harness/vm.ts drives QEMU. KVM where it works (LANTERN_MICROVM_ACCEL=kvm);
// this machine kind's nested KVM hangs Linux guests, so the default is TCG, software emulation, ~4 s a boot. Declared
// secrets are vended by the driver and put in the guest's initramfs (ADR 0065); the guest has no network at all.
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { Config, Effect } from "effect"
import type { WorkloadSpec } from "../../schema/Workload.ts"
import { type Backend, IsolationUnavailable, type Paths, root, VM } from "./Backends.ts"

export interface Settings {
  readonly qemu: string
  readonly kernel: string
  readonly initrd: string
  readonly accel: "kvm" | "tcg"
}

const IMAGE = join(root, ".lantern-bin", "microvm")

export const settingsConfig = Config.all({
  qemu: Config.String("LANTERN_MICROVM_QEMU").pipe(Config.withDefault("qemu-system-x86_64")),
  kernel: Config.String("LANTERN_MICROVM_KERNEL").pipe(Config.withDefault(join(IMAGE, "vmlinuz"))),
  initrd: Config.String("LANTERN_MICROVM_INITRD").pipe(Config.withDefault(join(IMAGE, "initrd.gz"))),
  accel: Config.Literals(["kvm", "tcg"], "LANTERN_MICROVM_ACCEL").pipe(Config.withDefault("tcg" as const))
})

/** The settings when nothing is configured (the image where scripts/microvm-image.mjs puts it, TCG). */
export const settingsDefaults: Settings = {
  qemu: "qemu-system-x86_64",
  kernel: join(IMAGE, "vmlinuz"),
  initrd: join(IMAGE, "initrd.gz"),
  accel: "tcg"
}

/** Most of the kernel command line the workload's command may take (x86 allows 2048 bytes in all). */
const MAX_COMMAND = 1536

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** The shell line the guest's init runs: the environment exported, then the command exec'd. */
export const shellOf = (spec: WorkloadSpec, env: Readonly<Record<string, string>>): string =>
  [
    ...Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}`),
    `exec ${[...spec.spec.command, ...(spec.spec.args ?? [])].map(quote).join(" ")}`
  ].join("; ")

/** QEMU's arguments for the workload: no NIC, no disk, the guest's console on stdout; its memory and vCPUs. */
export const qemuArgs = (settings: Settings, spec: WorkloadSpec, command: string): ReadonlyArray<string> => [
  "-M",
  "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on",
  "-accel",
  settings.accel,
  "-cpu",
  settings.accel === "kvm" ? "host" : "max",
  "-m",
  String(Math.max(128, spec.spec.limits.memoryMb)),
  "-smp",
  String(Math.max(1, Math.ceil(spec.spec.limits.vcpu))),
  "-nodefaults",
  "-no-user-config",
  "-nographic",
  "-no-reboot",
  "-serial",
  "stdio",
  "-kernel",
  settings.kernel,
  "-initrd",
  settings.initrd,
  "-append",
  // the timer settings spare the guest a calibration that can spin for ever under emulation on a busy host
  `console=ttyS0 quiet panic=-1 reboot=t tsc_early_khz=2000000 lpj=4000000 no_timer_check lantern.cmd=${
    Buffer.from(command).toString("base64")
  }`
]

export const microvmBackend = (settings: Settings): Backend => ({
  name: "microvm",
  provides: () => true,
  probe: Effect.gen(function*() {
    for (const [what, path] of [["kernel", settings.kernel], ["initrd", settings.initrd]] as const) {
      if (!existsSync(path)) {
        return { ok: false as const, reason: `no guest ${what} at ${path} (node scripts/microvm-image.mjs builds one)` }
      }
    }
    const version = yield* Effect.callback<boolean>((resume) => {
      execFile(settings.qemu, ["--version"], { timeout: 10_000 }, (e) => resume(Effect.succeed(e === null)))
    })
    return version ? { ok: true as const } : { ok: false as const, reason: `${settings.qemu} does not run` }
  }),
  argv(spec, paths: Paths) {
    const tier = spec.spec.isolation
    if (spec.spec.network !== "none") {
      return Effect.fail(
        new IsolationUnavailable({ tier, reason: "the microvm backend has no network: use network: none" })
      )
    }
    const command = shellOf(spec, {
      ...spec.spec.env,
      ...(paths.workloadId === undefined ? {} : { LANTERN_WORKLOAD_ID: paths.workloadId }),
      ...(paths.input === undefined || paths.input === null ? {} : { LANTERN_INPUT: paths.input })
    })
    if (Buffer.byteLength(Buffer.from(command).toString("base64")) > MAX_COMMAND) {
      return Effect.fail(
        new IsolationUnavailable({
          tier,
          reason: "the command and environment are too long for the microVM's kernel command line"
        })
      )
    }
    // declared secrets are vended by the driver before the boot and reach the guest in its initramfs (ADR 0065)
    const names = (spec.spec.secrets ?? []).map((s) => s.envName)
    const secrets = names.length === 0
      ? []
      : ["--secrets", join(paths.sockDir, "secrets.sock"), names.join(","), paths.dir ?? paths.sockDir]
    return Effect.succeed([
      process.execPath,
      paths.vm ?? VM,
      ...secrets,
      settings.qemu,
      ...qemuArgs(settings, spec, command)
    ])
  }
})
