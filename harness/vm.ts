// The microvm backend's driver (ADR 0046), run by the harness in place of a local sandbox: it boots the workload's
// microVM (QEMU `-M microvm`: its own kernel, no network device, no disk but its initramfs) with the workload's
// command on the kernel command line, passes the guest's console through to stdout without the kernel's own lines,
// and exits with the code the guest's init reports (`LANTERN_EXIT=<n>`); SIGTERM stops the VM.
//
// Secrets (ADR 0065): the guest has no way out to ask for them, so this driver asks the harness's secret vendor for
// each declared one with the workload's identity token (the same request, checks and audit as the in-sandbox relay's),
// and hands them to the guest as one more initramfs segment holding /lantern/env, appended to the guest image in a
// file only this user can read; the guest's init exports and deletes it before the command runs, and the file is
// deleted here as soon as the guest is running. A refusal stops the workload before the VM boots (exit 126).
// Usage: node harness/vm.ts [--secrets <secrets.sock> <ENV,...> <dir>] <qemu> <args…>
import { spawn } from "node:child_process"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { vendAll } from "./Vend.ts"

/** A newc cpio archive of regular files and folders, as the kernel unpacks an initramfs segment. */
const cpio = (entries: ReadonlyArray<{ name: string; mode: number; data?: Buffer }>): Buffer => {
  const chunks: Array<Buffer> = []
  let ino = 1
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4)
  const add = (name: string, mode: number, data: Buffer = Buffer.alloc(0)) => {
    const field = (v: number) => v.toString(16).padStart(8, "0")
    const header = "070701" + field(ino++) + field(mode) + field(0) + field(0) + field(1) + field(0) +
      field(data.length) + field(0) + field(0) + field(0) + field(0) + field(name.length + 1) + field(0)
    const head = Buffer.from(`${header}${name}\0`, "latin1")
    chunks.push(head, pad(head.length), data, pad(data.length))
  }
  for (const e of entries) add(e.name, e.mode, e.data)
  add("TRAILER!!!", 0)
  return Buffer.concat(chunks)
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** The guest image followed by a segment holding /lantern/env (the kernel unpacks concatenated segments in order). */
const withSecrets = (image: Buffer, secrets: ReadonlyArray<readonly [string, string]>): Buffer => {
  const env = secrets.map(([name, value]) => `export ${name}=${quote(value)}\n`).join("")
  // a segment starts on a 4-byte boundary; the zeros before it are skipped
  const align = Buffer.alloc((4 - (image.length % 4)) % 4)
  return Buffer.concat([
    image,
    align,
    cpio([{ name: "lantern", mode: 0o40700 }, { name: "lantern/env", mode: 0o100600, data: Buffer.from(env) }])
  ])
}

const main = async () => {
  let argv = process.argv.slice(2)
  let secretsFile: string | null = null
  if (argv[0] === "--secrets") {
    const [, socket, names, dir, ...rest] = argv
    if (socket === undefined || names === undefined || dir === undefined) throw new Error("--secrets needs 3 values")
    argv = rest
    const token = process.env["LANTERN_IDENTITY_TOKEN"] ?? ""
    const secrets = await vendAll(socket, names.split(",").filter((n) => n !== ""), token)
    const at = argv.indexOf("-initrd")
    if (at < 0 || argv[at + 1] === undefined) throw new Error("no -initrd to add the secrets to")
    secretsFile = join(dir, "initrd-secrets")
    writeFileSync(secretsFile, withSecrets(readFileSync(argv[at + 1]!), secrets), { mode: 0o600 })
    argv = [...argv.slice(0, at + 1), secretsFile, ...argv.slice(at + 2)]
  }
  const [qemu, ...args] = argv
  if (qemu === undefined) {
    process.stderr.write("usage: harness/vm.ts [--secrets <secrets.sock> <ENV,...> <dir>] <qemu> <args…>\n")
    process.exit(2)
  }
  const forget = () => {
    if (secretsFile !== null) rmSync(secretsFile, { force: true })
    secretsFile = null
  }

  const vm = spawn(qemu, args, { stdio: ["ignore", "pipe", "pipe"] })
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => vm.kill("SIGKILL"))

  let code: number | null = null
  let pending = ""
  /** The kernel's lines (`[    0.430320] …`) and QEMU's are the VM's, not the workload's. */
  const KERNEL = /^\[\s*\d+\.\d+\] /
  const line = (text: string) => {
    const clean = text.replace(/\r$/, "")
    const exit = /^LANTERN_EXIT=(\d+)$/.exec(clean)
    if (exit !== null) code = Number(exit[1])
    else if (!KERNEL.test(clean)) process.stdout.write(`${clean}\n`)
  }
  vm.stdout.on("data", (chunk: Buffer) => {
    // the guest writes to its console: QEMU has loaded the image, and the file with the secrets is not needed
    forget()
    pending += chunk.toString("utf8")
    let nl: number
    while ((nl = pending.indexOf("\n")) >= 0) {
      line(pending.slice(0, nl))
      pending = pending.slice(nl + 1)
    }
  })
  vm.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk))
  vm.on("error", (e) => {
    forget()
    process.stderr.write(`lantern microvm: cannot start ${qemu}: ${e.message}\n`)
    process.exit(125)
  })
  vm.on("close", (status, signal) => {
    forget()
    if (pending !== "") line(pending)
    // no exit line: the guest died or was stopped before its init could report
    process.exit(code ?? (signal === null && status === 0 ? 125 : 137))
  })
}

main().catch((e: unknown) => {
  process.stderr.write(`lantern microvm: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exit(126)
})
