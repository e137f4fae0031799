import { describe, expect, it } from "vitest"
import * as Templates from "./Templates.ts"

const script = { type: "script", command: ["true"] }

describe("workflow requests checked before anything is written", () => {
  it("needs a way to run every phase, one per phase", () => {
    expect(Templates.requestProblems({ template: "goal-loop", task: { adapter: script } })).toEqual([])
    expect(Templates.requestProblems({ template: "goal-loop" })).toEqual([
      { field: "task", message: "the plan task has no adapter: give task.adapter or task.agentName (or phases.plan)" }
    ])
    // a phase's own way to run replaces the workflow's
    expect(Templates.requestProblems({
      template: "goal-loop",
      task: { agentName: "coder" },
      phases: { verify: { adapter: script } }
    })).toEqual([])
    expect(Templates.runnerOf({ agentName: "coder", priority: 7 } as any, { adapter: script } as any)).toEqual({
      priority: 7,
      adapter: script
    })
    expect(
      Templates.requestProblems(
        { template: "goal-loop", task: { agentName: "a", adapter: script } },
        "proposedWorkflow."
      )
    ).toContainEqual(expect.objectContaining({ field: "proposedWorkflow.task.agentName" }))
  })

  it("refuses a phase the template does not have, and an unknown template", () => {
    expect(Templates.requestProblems({ template: "pr-lifecycle", task: { adapter: script }, phases: { plan: {} } }))
      .toEqual([{
        field: "phases.plan",
        message: "pr-lifecycle has no phase 'plan' (its phases: open, review, revise, merge)"
      }])
    expect(Templates.requestProblems({ template: "nope" })[0]!.field).toBe("template")
  })

  it("checks a task's scheduling fields as the queue does", () => {
    expect(Templates.submissionProblems({ adapter: script }, "proposedTask.")).toEqual([])
    expect(Templates.submissionProblems({}, "proposedTask.").map((p) => p.field)).toEqual(["proposedTask.adapter"])
    expect(
      Templates.submissionProblems({ adapter: script, availableAt: "tomorrow", delayMinutes: 1 }, "").map((p) =>
        p.field
      )
    ).toEqual(["delayMinutes", "availableAt"])
    expect(Templates.submissionProblems({ adapter: script, availableAt: "2026-12-03T10:05:00Z" }, "")).toEqual([])
  })
})
