// Test support: `lantern dev` as users start it (only LANTERN_HOME, bin/lantern as `npm run dev` runs it), and the
// processes found in /proc by their command line, to tell whether an embedded nats-server outlived its parent.
import { type ChildProcess, spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { BIN, ROOT } from "./Stack.ts"

export interface DevProcess {
  readonly child: ChildProcess
  /** The last 20,000 characters it wrote to stdout and stderr. */
  readonly output: () => string
  readonly exited: Promise<number | null>
}

/** `lantern dev` on `home` and `port`, with no NATS_URL, DATABASE_URL or token in its environment. */
export const spawnDev = (home: string, port: number): DevProcess => {
  const child = spawn(BIN, ["dev", "--port", String(port)], {
    cwd: ROOT,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "/root",
      LANTERN_HOME: home,
      LANTERN_CHECK_RESPONSES: "true"
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)))
  child.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)))
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
  return { child, output: () => output, exited }
}

/** Pids of live (not zombie) processes whose command line holds `arg`, read from /proc. */
export const processesWith = (arg: string): Array<number> =>
  readdirSync("/proc").filter((p) => /^\d+$/.test(p)).flatMap((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(arg) && state !== "Z"
        ? [Number(pid)]
        : []
    } catch {
      return [] // gone while we looked
    }
  })

/** nats-servers running on `home`'s embedded store. */
export const serversOn = (home: string) => processesWith(join(home, "nats", "nats-server.conf"))
