// Addresses no sandboxed or tool traffic may reach unless the deployment allows them: private, loopback, link-local,
// multicast, reserved and cloud metadata ranges. Pure, imported by the HTTP tools and by the harness (ADR 0043, 0046).
import { isIP } from "node:net"

/** IPv4 ranges no tool may reach unless the deployment allows the address (LANTERN_EGRESS_ALLOW_PRIVATE). */
export const PRIVATE_V4: ReadonlyArray<readonly [string, number]> = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4]
]

const v4 = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0)

/** Whether `ip` is private, loopback, link-local, multicast, reserved or a cloud metadata address. */
export const isPrivate = (ip: string): boolean => {
  if (isIP(ip) === 4) {
    const n = v4(ip)
    return PRIVATE_V4.some(([base, bits]) =>
      Math.floor(n / 2 ** (32 - bits)) === Math.floor(v4(base) / 2 ** (32 - bits))
    )
  }
  const a = ip.toLowerCase()
  if (a === "::" || a === "::1") return true
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (mapped !== null) return isPrivate(mapped[1]!)
  return /^f[cd]/.test(a) || /^fe[89ab]/.test(a) || /^ff/.test(a) || a.startsWith("64:ff9b:") ||
    a.startsWith("fd00:ec2")
}
