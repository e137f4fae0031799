// `lantern test --junit` output against the JUnit schema CI reporters read (tests/fixtures/junit.xsd, checked by
// libxml2): passing, failing, errored and regressed runs, several runs in one document, and names holding what XML
// must escape. The validator is shown to refuse documents that break the schema, so a pass means something.
import { describe, expect, it } from "vitest"
import { junit } from "../edge/cli/Test.ts"
import type { CaseResult, EvalRunView } from "../schema/Eval.ts"
import { validate } from "./support/Junit.ts"

const caseOf = (name: string, fields: Partial<CaseResult> = {}): CaseResult => ({
  name,
  passed: true,
  errored: false,
  score: 1,
  weight: 1,
  runId: "run_01jd0000000000000000000001",
  actual: "hello",
  failures: [],
  costUsd: 0.0001,
  verdicts: [],
  ...fields
})

const runOf = (cases: ReadonlyArray<CaseResult>, fields: Partial<EvalRunView> = {}): EvalRunView => ({
  id: "evr_01jd0000000000000000000001",
  suiteId: "evs_0123456789abcdef0123456789",
  suiteVersion: 1,
  agentName: "support",
  agentVersion: 2,
  branch: "main",
  commitSha: null,
  status: "finished",
  score: 0.5,
  passed: false,
  casesTotal: cases.length,
  casesPassed: cases.filter((c) => c.passed).length,
  casesDone: cases.length,
  cases,
  baselineScore: 0.9,
  baselineRunId: "evr_01jd0000000000000000000000",
  regressed: false,
  costUsd: 0.001,
  createdAt: "2026-12-03T12:00:00.000Z",
  finishedAt: "2026-12-03T12:00:04.250Z",
  ...fields
})

const expectValid = async (xml: string) => {
  const verdict = await validate(xml)
  expect(verdict.errors, xml).toEqual([])
  expect(verdict.valid).toBe(true)
}

describe("JUnit XML of lantern test", () => {
  it("is valid for a passing run, a failing, errored and regressed one, and both in one document", async () => {
    const passing = runOf([caseOf("hello"), caseOf("exact")], { score: 1, passed: true, regressed: false })
    const failing = runOf([
      caseOf("hello"),
      caseOf("wrong", { passed: false, score: 0, failures: ["expected 'a' to equal 'b'", "second failure"] }),
      caseOf("judge down", { passed: false, errored: true, score: 0, failures: ["the judge's provider failed: 503"] })
    ], { regressed: true, score: null })
    await expectValid(junit([{ label: "suite", run: passing }]))
    await expectValid(junit([{ label: "suite", run: failing }]))
    const both = junit([{ label: "suite", run: passing }, { label: "rehearsal 7d", run: failing }])
    await expectValid(both)
    expect([...both.matchAll(/<testsuite /gu)]).toHaveLength(2)
    expect(both).toContain(`<testsuite name="support rehearsal 7d" tests="4" failures="2" errors="1"`)
  })

  it("stays valid when names and failures hold markup, quotes, ampersands and control characters", async () => {
    const nasty = `<case a="1"> & 'x' \u0001\u0008 \ud83d\ude00 ]]>`
    const run = runOf([
      caseOf(nasty, { passed: false, score: 0, failures: [nasty, "</failure><failure>"] })
    ], { agentName: "a&b", regressed: true })
    const xml = junit([{ label: `<label "q">`, run }])
    await expectValid(xml)
    expect(xml).not.toContain("\u0001")
  })

  it("is refused by the schema when a required attribute is missing or a count is not a number", async () => {
    const good = junit([{ label: "suite", run: runOf([caseOf("hello")]) }])
    await expectValid(good)
    const noTests = await validate(good.replace(/ tests="\d+"/u, ""))
    expect(noTests.valid).toBe(false)
    expect(noTests.errors.join("\n")).toContain("tests")
    const badCount = await validate(good.replace(/ failures="\d+"/u, ` failures="many"`))
    expect(badCount.valid).toBe(false)
    const unnamed = await validate(good.replace(/<testcase name="[^"]*"/u, "<testcase"))
    expect(unnamed.valid).toBe(false)
    const twoOutcomes = await validate(
      good.replace("</testcase>", `<failure message="a"/><error message="b"/></testcase>`)
    )
    expect(twoOutcomes.valid).toBe(false)
  })
})
