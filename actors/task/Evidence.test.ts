// Evidence over narration: the two dishonest outcomes of issue 16 (a file claimed that does not exist; being blocked
// narrated as done, or the task echoed back as its summary) are refused with their issues, a clean one passes, and
// no claimed path may leave the artifact root by '..', an absolute path or a symlink.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Outcome } from "../../schema/Task.ts"
import * as Evidence from "./Evidence.ts"

let dir: string
let root: string
const description = "Summarize the Q3 revenue figures into reports/q3.md for the finance team."

const outcome = (over: Partial<Outcome>): Outcome => ({
  status: "completed",
  operatorSummary: "Summed Q3 revenue (1,234) and wrote reports/q3.md.",
  machineStatus: "ok",
  fileChanges: [],
  artifactPaths: [],
  followUpTasks: [],
  externalMessages: [],
  ...over
})
const codes = (v: Evidence.Verdict) => (v.ok ? [] : v.issues.map((i) => i.code))

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lantern-evidence-"))
  root = join(dir, "root")
  mkdirSync(join(root, "reports"), { recursive: true })
  writeFileSync(join(root, "reports", "q3.md"), "# Q3\n")
  writeFileSync(join(dir, "outside.txt"), "secret\n")
  symlinkSync(join(dir, "outside.txt"), join(root, "reports", "link.md"))
  symlinkSync(dir, join(root, "up"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("verify", () => {
  it("passes a clean completed outcome whose files exist", () => {
    const v = Evidence.verify(
      outcome({ fileChanges: [{ path: "reports/q3.md", change: "created" }], artifactPaths: ["reports/q3.md"] }),
      { artifactRoot: root, description }
    )
    expect(v).toEqual({ ok: true })
  })

  it("refuses a claimed file that does not exist", () => {
    const v = Evidence.verify(
      outcome({ fileChanges: [{ path: "reports/q4.md", change: "created" }], artifactPaths: ["reports/q4.md"] }),
      { artifactRoot: root, description }
    )
    expect(v.ok).toBe(false)
    if (v.ok) return
    expect(v.reason).toBe("outcome_verification_failed")
    expect(v.issues.map((i) => [i.code, i.path])).toEqual([
      ["file_missing", "reports/q4.md"],
      ["file_missing", "reports/q4.md"]
    ])
  })

  it("refuses being blocked narrated as completed", () => {
    for (
      const text of [
        "I'm blocked on the missing API key.",
        "Cannot proceed without database credentials.",
        "I was unable to complete the export.",
        "Waiting for the reviewer to approve access.",
        "The job is blocked by a failing migration."
      ]
    ) {
      expect(codes(Evidence.verify(outcome({ operatorSummary: text }), { artifactRoot: root, description })), text)
        .toEqual(["blocked_language"])
    }
    expect(codes(Evidence.verify(outcome({ machineStatus: "blocked" }), { artifactRoot: root, description })))
      .toEqual(["blocked_language"])
  })

  it("refuses a summary that echoes the description or the prompt", () => {
    expect(codes(Evidence.verify(outcome({ operatorSummary: description }), { artifactRoot: root, description })))
      .toEqual(["summary_echoes_prompt"])
    expect(
      codes(Evidence.verify(outcome({ operatorSummary: `Task: ${description.toUpperCase()}` }), {
        artifactRoot: root,
        description
      }))
    ).toEqual(["summary_echoes_prompt"])
    const prompt = `You carry out one task.\nDescription:\n${description}\nPayload (JSON):\n{}`
    expect(
      codes(Evidence.verify(outcome({ operatorSummary: "Summarize the Q3 revenue figures" }), {
        artifactRoot: root,
        prompt,
        description: null
      }))
    ).toEqual(["summary_echoes_prompt"])
    expect(codes(Evidence.verify(outcome({ operatorSummary: "  " }), { artifactRoot: root, description })))
      .toEqual(["summary_empty"])
  })

  it("keeps every claimed path inside the artifact root", () => {
    const v = Evidence.verify(
      outcome({
        fileChanges: [
          { path: "../outside.txt", change: "modified" },
          { path: join(dir, "outside.txt"), change: "modified" },
          { path: "reports/link.md", change: "created" },
          { path: "up/outside.txt", change: "created" }
        ]
      }),
      { artifactRoot: root, description }
    )
    expect(codes(v)).toEqual(["path_escapes_root", "path_absolute", "path_escapes_root", "path_escapes_root"])
  })

  it("checks a claimed deletion, counts stored artifacts as present, and leaves other statuses alone", () => {
    expect(
      codes(Evidence.verify(outcome({ fileChanges: [{ path: "reports/q3.md", change: "deleted" }] }), {
        artifactRoot: root,
        description
      }))
    ).toEqual(["file_still_exists"])
    expect(
      Evidence.verify(outcome({ artifactPaths: ["reports/stored.md"] }), {
        artifactRoot: root,
        description,
        storedArtifacts: ["reports/stored.md"]
      })
    ).toEqual({ ok: true })
    expect(
      Evidence.verify(outcome({ status: "blocked", operatorSummary: "I'm blocked", artifactPaths: ["nope.md"] }), {
        artifactRoot: root,
        description
      })
    ).toEqual({ ok: true })
  })
})
