// The harness pool's two-step start (ADR 0069), with real harness processes: a prepared harness starts nothing until
// `go`, which brings the identity token (never written to the config file); `abort` ends it with nothing started.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { eventually } from "../../tests/support/Poll.ts"
import { HARNESS } from "./Backends.ts"
import * as Harnesses from "./Harnesses.ts"

const dir = mkdtempSync(join(tmpdir(), "lantern-harnesses-"))
const scope = Effect.runSync(Scope.make())
// no bus answers at this address: reports wait for it, which is all the workloads here need
const NOWHERE = "nats://127.0.0.1:1"
const { prepare } = Effect.runSync(Scope.provide(Harnesses.pool(HARNESS, join(dir, "pool"), 1, NOWHERE), scope))
const started: Array<number> = []

afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone
    }
  }
  Effect.runSync(Scope.close(scope, Exit.void))
  rmSync(dir, { recursive: true, force: true })
})

/** A workload's folder and config: its command writes its identity token to `marker`. */
const configFor = (name: string) => {
  const workload = join(dir, name)
  mkdirSync(join(workload, "sock"), { recursive: true })
  const marker = join(workload, "ran")
  const configPath = join(workload, "harness.json")
  writeFileSync(
    configPath,
    JSON.stringify({
      tenant: "t",
      workloadId: name,
      natsUrl: NOWHERE,
      argv: ["/bin/sh", "-c", `printf %s "$LANTERN_IDENTITY_TOKEN" > ${marker}`],
      env: { PATH: "/usr/bin:/bin" },
      dir: workload,
      egress: { rules: [], allowPrivate: [] },
      timeoutMs: 60_000,
      heartbeatMs: 60_000,
      giveUpMs: 1,
      limits: null
    }),
    { mode: 0o600 }
  )
  return { workload, marker, configPath, text: readFileSync(configPath, "utf8") }
}

describe("a prepared harness", () => {
  it("starts its workload only on go, with the token it brings", async () => {
    const c = configFor("wl_go")
    const prepared = Effect.runSync(prepare(c.configPath))
    // prepared: the config is read (and removed) and the sockets listen, but nothing has run
    await eventually(async () => existsSync(join(c.workload, "sock", "models.sock")), 60_000, "the sockets")
    expect(existsSync(c.configPath)).toBe(false)
    expect(existsSync(c.marker)).toBe(false)
    expect(c.text).not.toContain("LANTERN_IDENTITY_TOKEN\":")
    const launched = await Effect.runPromise(prepared.go("tok.en"))
    started.push(launched.pid)
    expect(launched.enforced).toContain("timeout")
    await eventually(
      async () => existsSync(c.marker) && readFileSync(c.marker, "utf8") === "tok.en",
      60_000,
      "the workload"
    )
  }, 90_000)

  it("starts nothing when the start is called off, and goes away", async () => {
    const c = configFor("wl_abort")
    const prepared = Effect.runSync(prepare(c.configPath))
    await eventually(async () => existsSync(join(c.workload, "sock", "models.sock")), 60_000, "the sockets")
    Effect.runSync(prepared.abort)
    // the harness removes what it prepared and exits
    await eventually(async () => !existsSync(join(c.workload, "sock")), 60_000, "the harness to clean up")
    expect(existsSync(c.marker)).toBe(false)
    const exit = await Effect.runPromiseExit(prepared.go("late"))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(existsSync(c.marker)).toBe(false)
  }, 90_000)
})
