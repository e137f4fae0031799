// The drivers' output contracts, read from what the stand-in CLIs (tests/fixtures/agent-cli) print, which follow
// `codex exec --json` and `claude -p --output-format stream-json`: the final message, usage, cost, the files the
// stream shows changing (made relative to the working directory), errors; and the older codex item shapes.
import { execFileSync } from "node:child_process"
import { mkdtempSync, realpathSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Normalize from "../Normalize.ts"
import * as ClaudeCode from "./ClaudeCode.ts"
import * as Codex from "./Codex.ts"

const fixtures = join(import.meta.dirname, "..", "..", "..", "tests", "fixtures", "agent-cli")
const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

const run = (cli: string, args: ReadonlyArray<string>, scenario: string) => {
  const cwd = realpathSync(mkdtempSync(join(tmpdir(), "lantern-driver-")))
  dirs.push(cwd)
  try {
    const stdout = execFileSync(join(fixtures, cli), [...args], {
      cwd,
      env: { PATH: "/usr/bin:/bin", STANDIN_SCENARIO: scenario },
      encoding: "utf8"
    })
    return { cwd, stdout }
  } catch (e) {
    return { cwd, stdout: String((e as { stdout?: string }).stdout ?? "") }
  }
}

describe("codex", () => {
  it("reads the final agent message, the file changes and the usage", () => {
    const { cwd, stdout } = run("codex", Codex.driver.args("Sum the quarter"), "clean")
    const p = Codex.parse(stdout, cwd)
    expect(p.errors).toEqual([])
    expect(p.sessionId).toBe("0199a213-81c0-7800-8aa1-bbab2a035a53")
    expect(p.usage).toEqual({ costUsd: 0, tokens: 1500 })
    expect(p.fileChanges).toEqual([{ path: "reports/totals.md", change: "created" }])
    expect(Normalize.fromText(p.finalMessage!, p.fileChanges)).toMatchObject({
      status: "completed",
      artifactPaths: ["reports/totals.md"]
    })
  })

  it("reports a failed turn's error, and reads the older item_type shape", () => {
    const { cwd, stdout } = run("codex", Codex.driver.args("x"), "ratelimit")
    const p = Codex.parse(stdout, cwd)
    expect(p.finalMessage).toBeNull()
    expect(p.errors[0]).toContain("Please try again in 20s")
    const old = Codex.parse(
      [
        "banner line",
        JSON.stringify({ type: "item.completed", item: { id: "0", item_type: "assistant_message", text: "hi" } }),
        JSON.stringify({ type: "error", message: "stream disconnected" })
      ].join("\n"),
      "/w"
    )
    expect(old).toMatchObject({ finalMessage: "hi", errors: ["stream disconnected"], ignoredLines: 1 })
  })
})

describe("claude-code", () => {
  it("reads the result, its cost and usage, and the Write tool's file", () => {
    const { cwd, stdout } = run("claude", ClaudeCode.driver.args("Plan it"), "clean")
    const p = ClaudeCode.parse(stdout, cwd)
    expect(p.errors).toEqual([])
    expect(p.sessionId).toBe("4f1c2a9e-7d3b-4c55-9a0e-2b8f6d1e3c70")
    expect(p.usage).toEqual({ costUsd: 0.0421, tokens: 3550 })
    expect(p.fileChanges).toEqual([{ path: "plans/migration-plan.md", change: "created" }])
    const o = Normalize.fromText(p.finalMessage!, p.fileChanges)
    expect(o).toMatchObject({ status: "completed", machineStatus: "done", artifactPaths: ["plans/migration-plan.md"] })
    expect(o.followUpTasks).toEqual([{ kind: "migrate", source: "planner", payload: { step: 1 } }])
  })

  it("reports an error result, and falls back to the last assistant text without a result", () => {
    const { cwd, stdout } = run("claude", ClaudeCode.driver.args("x"), "ratelimit")
    const p = ClaudeCode.parse(stdout, cwd)
    expect(p.errors[0]).toContain("429")
    expect(Normalize.retryAfterOf(p.errors[0]!)).toBe(45)
    const cut = ClaudeCode.parse(
      JSON.stringify({ type: "assistant", message: { content: [{ type: "text", text: "half way" }] } }),
      "/w"
    )
    expect(cut.finalMessage).toBe("half way")
  })
})
