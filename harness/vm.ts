// The microvm backend's driver (ADR 0046), run by the harness in place of a local sandbox: it boots the workload's
// microVM (QEMU `-M microvm`: its own kernel, no network device, no disk but its initramfs) with the workload's
// command on the kernel command line, passes the guest's console through to stdout without the kernel's own lines,
// and exits with the code the guest's init reports (`LANTERN_EXIT=<n>`); SIGTERM stops the VM.
// Usage: node harness/vm.ts <qemu> <args…>
import { spawn } from "node:child_process"

const [qemu, ...args] = process.argv.slice(2)
if (qemu === undefined) {
  process.stderr.write("usage: harness/vm.ts <qemu> <args…>\n")
  process.exit(2)
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
  pending += chunk.toString("utf8")
  let nl: number
  while ((nl = pending.indexOf("\n")) >= 0) {
    line(pending.slice(0, nl))
    pending = pending.slice(nl + 1)
  }
})
vm.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk))
vm.on("error", (e) => {
  process.stderr.write(`lantern microvm: cannot start ${qemu}: ${e.message}\n`)
  process.exit(125)
})
vm.on("close", (status, signal) => {
  if (pending !== "") line(pending)
  // no exit line: the guest died or was stopped before its init could report
  process.exit(code ?? (signal === null && status === 0 ? 125 : 137))
})
