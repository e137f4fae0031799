// From a final message to an Outcome: the last outcome JSON block wins; a block that does not decode is a failed
// outcome naming its issues; free text is completed and marked unstructured; rate-limit texts give seconds to wait.
import { describe, expect, it } from "vitest"
import * as Normalize from "./Normalize.ts"

describe("fromText", () => {
  it("reads the last fenced outcome block, filling in the lists it leaves out", () => {
    const text = [
      "First try:",
      "```json",
      "{\"status\":\"failed\",\"operatorSummary\":\"old\",\"machineStatus\":\"x\"}",
      "```",
      "Then:",
      "```json",
      "{\"status\":\"completed\",\"operatorSummary\":\"Wrote a.md {with braces}\",\"artifactPaths\":[\"a.md\"]}",
      "```"
    ].join("\n")
    expect(Normalize.fromText(text)).toEqual({
      status: "completed",
      operatorSummary: "Wrote a.md {with braces}",
      machineStatus: "completed",
      fileChanges: [],
      artifactPaths: ["a.md"],
      followUpTasks: [],
      externalMessages: []
    })
  })

  it("reads a bare JSON answer and an object at the end of prose, and takes `summary` for operatorSummary", () => {
    expect(Normalize.fromText("{\"status\":\"blocked\",\"summary\":\"needs a key\",\"machineStatus\":\"no_key\"}"))
      .toMatchObject({ status: "blocked", operatorSummary: "needs a key", machineStatus: "no_key" })
    expect(Normalize.fromText("Done. {\"status\":\"needs_retry\",\"operatorSummary\":\"flaky\"} "))
      .toMatchObject({ status: "needs_retry", operatorSummary: "flaky" })
  })

  it("makes a block that does not decode a failed outcome naming the field", () => {
    const o = Normalize.fromText("```json\n{\"status\":\"done\",\"operatorSummary\":\"x\",\"extra\":1}\n```")
    expect(o.status).toBe("failed")
    expect(o.machineStatus).toBe(Normalize.INVALID)
    expect(o.operatorSummary).toContain("status")
    const bad = Normalize.fromText(
      "{\"status\":\"completed\",\"operatorSummary\":\"x\",\"followUpTasks\":[{\"kind\":\"k\"}]}"
    )
    expect(bad.status).toBe("failed")
    expect(bad.operatorSummary).toContain("followUpTasks[0]")
  })

  it("takes free text as a completed, unstructured summary, with the changes the driver observed", () => {
    const o = Normalize.fromText("  Drafted the notes.  ", [{ path: "notes.md", change: "created" }])
    expect(o).toEqual({
      status: "completed",
      operatorSummary: "Drafted the notes.",
      machineStatus: Normalize.UNSTRUCTURED,
      fileChanges: [{ path: "notes.md", change: "created" }],
      artifactPaths: [],
      followUpTasks: [],
      externalMessages: []
    })
    // JSON that is not an outcome (no status) is just text
    expect(Normalize.fromText("{\"a\":1}").machineStatus).toBe(Normalize.UNSTRUCTURED)
  })
})

describe("retryAfterOf", () => {
  it("reads the time a rate limit names", () => {
    expect(Normalize.retryAfterOf("Rate limit reached for gpt-5. Please try again in 20s.")).toBe(20)
    expect(Normalize.retryAfterOf("429 Too Many Requests: try again in 45 seconds")).toBe(45)
    expect(Normalize.retryAfterOf("rate limited; retry after 1m30s")).toBe(90)
    expect(Normalize.retryAfterOf("Rate limit: please try again in 350ms")).toBe(1)
    expect(Normalize.retryAfterOf("usage limit reached, try again in 2 hours (rate limit)")).toBe(3600)
  })

  it("gives the default for a bare 429 and nothing for other errors", () => {
    expect(Normalize.retryAfterOf("HTTP 429")).toBe(Normalize.DEFAULT_RATE_LIMIT_SECONDS)
    expect(Normalize.retryAfterOf("Too Many Requests")).toBe(Normalize.DEFAULT_RATE_LIMIT_SECONDS)
    expect(Normalize.retryAfterOf("segmentation fault")).toBeUndefined()
    expect(Normalize.retryAfterOf("listening on port 4290")).toBeUndefined()
  })
})
