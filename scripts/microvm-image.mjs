// The guest image of the microvm sandbox backend (ADR 0046): Debian's cloud kernel (fetched once with `apt-get
// download` from the machine's own mirror and unpacked with dpkg-deb) and an initramfs holding a static busybox and
// an /init that runs the command given on the kernel command line (`lantern.cmd=<base64>`, under `sh -c`), reports
// `LANTERN_EXIT=<code>` and powers the VM off. The workload's vended secrets, when it declares any, come as one more
// initramfs segment (harness/vm.ts appends it) holding /lantern/env: the init exports them and deletes the file
// before the command runs. Written into .lantern-bin/microvm/ (vmlinuz, initrd.gz, initrd.version); the kernel is
// kept once there, the initramfs rebuilt when its /init changes. Plain Node ESM: `node scripts/microvm-image.mjs` prints the two paths.
// Needs: apt-get and dpkg-deb (Debian), busybox-static (/bin/busybox, statically linked).
import { spawnSync } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { createHash } from "node:crypto"
import { join, resolve } from "node:path"
import { gzipSync } from "node:zlib"

const ROOT = resolve(import.meta.dirname, "..")
export const DIR = join(ROOT, ".lantern-bin", "microvm")
export const KERNEL = join(DIR, "vmlinuz")
export const INITRD = join(DIR, "initrd.gz")
/** Which /init the initramfs holds: an image built with another is rebuilt. */
const STAMP = join(DIR, "initrd.version")
const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"]

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
if [ -f /lantern/env ]; then . /lantern/env; rm -f /lantern/env; fi
cmd=$(sed -n 's/.*lantern\\.cmd=\\([^ ]*\\).*/\\1/p' /proc/cmdline | base64 -d)
cd /tmp
sh -c "$cmd"
echo "LANTERN_EXIT=$?"
poweroff -f
`

/** A newc cpio archive of `entries` ({name, mode, data?}), as the kernel unpacks an initramfs. */
const cpio = (entries) => {
  const chunks = []
  let ino = 1
  const pad = (n) => Buffer.alloc((4 - (n % 4)) % 4)
  const add = (name, mode, data = Buffer.alloc(0)) => {
    const field = (v) => v.toString(16).padStart(8, "0")
    const header = "070701" + field(ino++) + field(mode) + field(0) + field(0) + field(1) + field(0) +
      field(data.length) + field(0) + field(0) + field(0) + field(0) + field(name.length + 1) + field(0)
    const head = Buffer.from(`${header}${name}\0`, "latin1")
    chunks.push(head, pad(head.length), data, pad(data.length))
  }
  for (const e of entries) add(e.name, e.mode, e.data)
  add("TRAILER!!!", 0)
  return Buffer.concat(chunks)
}

const run = (cmd, args, cwd) => {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${(r.stderr || r.error?.message || "").trim()}`)
  return r.stdout
}

const INIT_VERSION = createHash("sha256").update(INIT).digest("hex").slice(0, 16)

const buildInitrd = () => {
  const busybox = BUSYBOX.find((b) => existsSync(b))
  if (busybox === undefined) throw new Error("busybox is missing: apt-get install busybox-static")
  const initrd = gzipSync(cpio([
    { name: "bin", mode: 0o40755 },
    { name: "proc", mode: 0o40755 },
    { name: "sys", mode: 0o40755 },
    { name: "dev", mode: 0o40755 },
    { name: "tmp", mode: 0o41777 },
    { name: "lantern", mode: 0o40700 },
    { name: "bin/busybox", mode: 0o100755, data: readFileSync(busybox) },
    { name: "init", mode: 0o100755, data: Buffer.from(INIT) }
  ]))
  mkdirSync(DIR, { recursive: true })
  writeFileSync(`${INITRD}.tmp`, initrd)
  renameSync(`${INITRD}.tmp`, INITRD)
  writeFileSync(STAMP, INIT_VERSION)
}

const buildKernel = () => {
  const work = mkdtempSync(join(tmpdir(), "lantern-microvm-"))
  try {
    // the cloud kernel's versioned package, from the machine's own apt sources
    const depends = run("apt-cache", ["depends", "linux-image-cloud-amd64"])
    const pkg = /Depends: (linux-image-\S+)/.exec(depends)?.[1]
    if (pkg === undefined) throw new Error("apt-cache knows no linux-image-cloud-amd64")
    run("apt-get", ["download", pkg], work)
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"))
    run("dpkg-deb", ["-x", join(work, deb), join(work, "x")])
    const boot = join(work, "x", "boot")
    const vmlinuz = readdirSync(boot).find((f) => f.startsWith("vmlinuz-"))
    mkdirSync(DIR, { recursive: true })
    writeFileSync(`${KERNEL}.tmp`, readFileSync(join(boot, vmlinuz)))
    renameSync(`${KERNEL}.tmp`, KERNEL)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

export const ensureImage = () => {
  const current = existsSync(INITRD) && existsSync(STAMP) && readFileSync(STAMP, "utf8").trim() === INIT_VERSION
  if (!current) buildInitrd()
  if (!existsSync(KERNEL)) buildKernel()
  return { kernel: KERNEL, initrd: INITRD }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const image = ensureImage()
  console.log(`kernel ${image.kernel}\ninitrd ${image.initrd}`)
}
