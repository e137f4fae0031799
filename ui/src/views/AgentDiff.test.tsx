// The line diff of two agent versions: the rows it aligns (same, changed, removed, added), stable lines of a spec
// whatever its key order, and the side-by-side view switching versions.
import { cleanup, fireEvent, render, screen } from "@solidjs/testing-library"
import { afterEach, describe, expect, it } from "vitest"
import type { AgentVersionView } from "../../../schema/Agent.ts"
import { diffLines, linesOf } from "../diff.ts"
import { AgentDiff } from "./AgentDiff.tsx"

afterEach(cleanup)

describe("diffLines", () => {
  it("keeps common lines and pairs a removed run with an added one", () => {
    expect(diffLines(["a", "b", "c"], ["a", "x", "c", "d"]).map((r) => r.kind)).toEqual([
      "same",
      "changed",
      "same",
      "added"
    ])
    expect(diffLines(["a", "b", "c"], ["c"])).toEqual([
      { kind: "removed", left: "a", l: 1 },
      { kind: "removed", left: "b", l: 2 },
      { kind: "same", left: "c", right: "c", l: 3, r: 1 }
    ])
    expect(diffLines([], [])).toEqual([])
    expect(diffLines(["x"], ["x"])).toEqual([{ kind: "same", left: "x", right: "x", l: 1, r: 1 }])
  })

  it("gives back both sides whole, in order, whatever the inputs", () => {
    const pick = (seed: number, n: number) => Array.from({ length: n }, (_, i) => "abcde"[(seed * 7 + i * i) % 5]!)
    for (let seed = 0; seed < 40; seed++) {
      const a = pick(seed, seed % 9)
      const b = pick(seed + 3, (seed * 5) % 11)
      const rows = diffLines(a, b)
      expect(rows.flatMap((r) => (r.kind === "added" ? [] : [r.left]))).toEqual(a)
      expect(rows.flatMap((r) => (r.kind === "removed" ? [] : [r.right]))).toEqual(b)
    }
  })

  it("reads a spec as lines with its keys sorted", () => {
    expect(linesOf({ b: 1, a: { d: 2, c: [3] } })).toEqual(linesOf({ a: { c: [3], d: 2 }, b: 1 }))
  })
})

const version = (n: number, systemPrompt: string): AgentVersionView =>
  ({
    name: "calc",
    version: n,
    digest: `sha256:${n}`,
    description: "",
    spec: { systemPrompt, maxTurns: 4 },
    createdAt: "2026-12-03T06:00:00.000Z"
  }) as unknown as AgentVersionView

describe("AgentDiff", () => {
  it("compares the last two versions, and none when the same is picked twice", () => {
    const { container } = render(() => (
      <AgentDiff name="calc" versions={[version(2, "Be brief."), version(1, "You compute.")]} />
    ))
    const changed = container.querySelector("tr[data-kind=\"changed\"]")!
    expect(changed.querySelector("td.del")!.textContent).toContain("You compute.")
    expect(changed.querySelector("td.ins")!.textContent).toContain("Be brief.")
    expect(container.querySelectorAll("tr[data-kind=\"same\"]").length).toBe(0)
    fireEvent.click(screen.getByLabelText("Changed lines only"))
    expect(container.querySelectorAll("tr[data-kind=\"same\"]").length).toBeGreaterThan(0)
    fireEvent.change(screen.getByLabelText("Compare calc from"), { target: { value: "2" } })
    expect(screen.getByText("no differences")).toBeTruthy()
  })
})
