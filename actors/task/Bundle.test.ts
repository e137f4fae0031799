// An attempt's bundle: canonical JSON of what the adapter saw, hashed; the same inputs give the same hash in any key
// order, a changed description (or prompt, or spec) changes it, and secret-looking env values never enter it.
import { describe, expect, it } from "vitest"
import * as Bundle from "./Bundle.ts"

const inputs: Bundle.Inputs = {
  task: { kind: "report", subject: "Q3", description: "Sum the quarter", payload: { b: 2, a: [1, { y: 1, x: 2 }] } },
  adapter: { type: "agent-cli", driver: "codex", env: { MODE: "fast", OPENAI_API_KEY: "sk-live-123" } },
  seen: { prompt: "Task kind: report", command: ["codex", "exec"] }
}

describe("compile", () => {
  it("hashes the canonical JSON: same inputs, same hash, whatever the key order", () => {
    const a = Bundle.compile(inputs)
    const b = Bundle.compile({
      seen: { command: ["codex", "exec"], prompt: "Task kind: report" },
      adapter: { env: { OPENAI_API_KEY: "sk-live-123", MODE: "fast" }, driver: "codex", type: "agent-cli" },
      task: { payload: { a: [1, { x: 2, y: 1 }], b: 2 }, description: "Sum the quarter", subject: "Q3", kind: "report" }
    })
    expect(a.hash).toMatch(/^sha256:[0-9a-f]{64}$/u)
    expect(b).toEqual(a)
    expect(JSON.parse(a.canonical)).toMatchObject({ format: Bundle.FORMAT, task: { kind: "report" } })
  })

  it("changes with the description, the prompt and the spec", () => {
    const base = Bundle.compile(inputs).hash
    expect(Bundle.compile({ ...inputs, task: { ...inputs.task, description: "Sum the quarter." } }).hash).not.toBe(base)
    expect(Bundle.compile({ ...inputs, seen: { ...(inputs.seen as object), prompt: "other" } }).hash).not.toBe(base)
    expect(Bundle.compile({ ...inputs, adapter: { type: "agent-cli", driver: "claude-code" } }).hash).not.toBe(base)
    expect(Bundle.compile({ ...inputs, task: { ...inputs.task, payload: { b: 2 } } }).hash).not.toBe(base)
  })

  it("keeps secret values out", () => {
    const b = Bundle.compile(inputs)
    expect(b.canonical).not.toContain("sk-live-123")
    expect(b.canonical).toContain(Bundle.REDACTED)
    expect(b.canonical).toContain("\"MODE\":\"fast\"")
    // a changed secret value does not change the hash: it was never in the bundle
    const other = Bundle.compile({
      ...inputs,
      adapter: { type: "agent-cli", driver: "codex", env: { MODE: "fast", OPENAI_API_KEY: "sk-other" } }
    })
    expect(other.hash).toBe(b.hash)
  })

  it("encodes what JSON cannot as null rather than failing", () => {
    const b = Bundle.compile({ ...inputs, task: { ...inputs.task, payload: { n: Number.NaN, u: undefined } } })
    expect(JSON.parse(b.canonical).task.payload).toEqual({ n: null })
  })
})
