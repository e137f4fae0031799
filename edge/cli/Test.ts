// `lantern test`, the eval gate for CI (ADR 0047): publishes the candidate when a spec file is given, runs the agent's
// suite server-side (and a rehearsal of its recent failures), shows progress, prints a table, writes JUnit XML, and
// exits 0 when every run passed without regressing, 1 when one failed or regressed, 2 on bad input.
import { Console, Data, Duration, Effect, FileSystem, Option, Runtime } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import type { EvalRunView } from "../../schema/Eval.ts"
import { endpoints } from "../Api.ts"
import * as Client from "./Client.ts"
import * as Input from "./Input.ts"

/** The gate said no: a case failed or the score regressed. Exit 1. */
export class GateFailed extends Data.TaggedError("GateFailed")<{ readonly message: string }> {
  override readonly [Runtime.errorExitCode] = 1
}

const bad = (message: string) => new CliError.ValidationError({ message })

const escape = (s: string) =>
  s.replace(/&/gu, "&amp;").replace(/</gu, "&lt;").replace(/>/gu, "&gt;").replace(/"/gu, "&quot;")
    // characters XML 1.0 cannot hold at all
    .replace(/[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, "?")

/** JUnit XML (the schema Jenkins and GitHub's test reporters read): one testsuite per eval run, a testcase per case. */
export const junit = (runs: ReadonlyArray<{ readonly label: string; readonly run: EvalRunView }>): string => {
  const seconds = (r: EvalRunView) =>
    r.finishedAt === null ? 0 : Math.max(0, (Date.parse(r.finishedAt) - Date.parse(r.createdAt)) / 1000)
  const suites = runs.map(({ label, run }) => {
    const failures = run.cases.filter((c) => !c.passed && !c.errored).length
    const errors = run.cases.filter((c) => c.errored).length
    const cases = run.cases.map((c) => {
      const open = `    <testcase name="${escape(c.name)}" classname="${escape(`${run.agentName}.${label}`)}" time="0">`
      if (c.passed) return `${open}</testcase>`
      const tag = c.errored ? "error" : "failure"
      const message = c.failures[0] ?? "failed"
      return `${open}\n      <${tag} message="${escape(message)}" type="${tag}">${
        escape(c.failures.join("\n"))
      }</${tag}>\n    </testcase>`
    })
    const regressed = run.regressed
      ? [
        `    <testcase name="regression gate" classname="${escape(`${run.agentName}.${label}`)}" time="0">`,
        `      <failure message="${
          escape(`score ${run.score} below baseline ${run.baselineScore ?? "(rehearsal)"}`)
        }" type="regression"/>`,
        `    </testcase>`
      ]
      : []
    return [
      `  <testsuite name="${escape(`${run.agentName} ${label}`)}" tests="${
        run.cases.length + (run.regressed ? 1 : 0)
      }" failures="${failures + (run.regressed ? 1 : 0)}" errors="${errors}" skipped="0" time="${
        seconds(run)
      }" timestamp="${run.createdAt.slice(0, 19)}">`,
      `    <properties><property name="evalRunId" value="${run.id}"/><property name="score" value="${run.score}"/></properties>`,
      ...cases,
      ...regressed,
      `  </testsuite>`
    ].join("\n")
  })
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suites.join("\n")}\n</testsuites>\n`
}

const table = (run: EvalRunView): string => {
  const rows = run.cases.map((c) => [
    c.name,
    c.errored ? "ERROR" : c.passed ? "pass" : "FAIL",
    c.score.toFixed(2),
    `$${c.costUsd.toFixed(4)}`,
    c.failures[0] ?? ""
  ])
  const head = ["case", "passed", "score", "cost", "first failure"]
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: ReadonlyArray<string>) => r.map((x, i) => x.padEnd(width[i]!)).join("  ").trimEnd()
  return [line(head), ...rows.map(line)].join("\n")
}

/** Polls an eval run to its end, drawing a progress bar on stderr. */
const await_ = (id: string) =>
  Effect.gen(function*() {
    for (;;) {
      const { value: run } = yield* Client.call(endpoints.getEvalRun, { params: { id }, query: {} })
      const filled = run.casesTotal === 0 ? 20 : Math.round((20 * run.casesDone) / run.casesTotal)
      process.stderr.write(
        `\r[${"#".repeat(filled)}${" ".repeat(20 - filled)}] ${run.casesDone}/${run.casesTotal} ${id}`
      )
      if (run.status === "finished") {
        process.stderr.write("\n")
        return run
      }
      yield* Effect.sleep(Duration.millis(300))
    }
  })

const agentFlag = Input.agentNameFlag("agent", "The agent under test")
const suiteFlag = Flag.String("suite").pipe(Flag.withDescription("The suite's name"), Flag.withMetavar("NAME"))
const versionFlag = Flag.Int("version").pipe(
  Flag.withDescription("The candidate version (default: the agent's latest)"),
  Flag.withMetavar("N"),
  Flag.optional
)
const branchFlag = Flag.String("branch").pipe(
  Flag.withDescription("The git branch: its baseline gates the run (main's when it has none)"),
  Flag.optional
)
const againstFlag = Flag.ChoiceWithValue("against", [["last-green", "last-green"], ["main", "main"]] as const).pipe(
  Flag.withDescription("Compare with the branch's last green baseline (default), or with main's"),
  Flag.withDefault("last-green" as const)
)
const rehearseFlag = Flag.String("rehearse").pipe(
  Flag.withDescription("Also replay the agent's failed and low-scored runs of this window (7d, 24h)"),
  Flag.optional
)
const setBaselineFlag = Flag.Boolean("set-baseline").pipe(
  Flag.withDescription("When the gate passes, pin this run as the branch's baseline"),
  Flag.withDefault(false)
)
const junitFlag = Flag.String("junit").pipe(Flag.withDescription("Write JUnit XML here"), Flag.optional)
const commitFlag = Flag.String("commit").pipe(Flag.withDescription("The commit SHA under test"), Flag.optional)

export const test = Command.make(
  "test",
  {
    agent: agentFlag,
    suite: suiteFlag,
    version: versionFlag,
    specFile: Input.specFile,
    branch: branchFlag,
    against: againstFlag,
    rehearse: rehearseFlag,
    setBaseline: setBaselineFlag,
    junit: junitFlag,
    commit: commitFlag
  },
  Effect.fn(function*(i) {
    if (Option.isSome(i.version) && Option.isSome(i.specFile)) {
      return yield* bad("--version, --spec-file: give one of them, not both")
    }
    if (Option.isSome(i.rehearse) && !/^[1-9]\d{0,3}[dhm]$/u.test(i.rehearse.value)) {
      return yield* bad(`--rehearse: expected a window like 7d or 24h, not '${i.rehearse.value}'`)
    }
    let version = Option.getOrUndefined(i.version)
    if (Option.isSome(i.specFile)) {
      const { value } = yield* Client.call(endpoints.updateAgent, {
        params: { name: i.agent },
        body: { spec: i.specFile.value }
      })
      version = value.latestVersion
      yield* Console.log(`candidate: ${i.agent} v${version}`)
    }
    const suites = (yield* Client.call(endpoints.listEvalSuites, { query: { agentName: i.agent } })).value.items
    const suite = suites.find((s) => s.name === i.suite)
    if (suite === undefined) return yield* bad(`--suite: ${i.agent} has no suite '${i.suite}'`)
    const branch = Option.getOrUndefined(i.branch)
    const common = {
      ...(version === undefined ? {} : { agentVersion: version }),
      ...Option.match(i.commit, { onNone: () => ({}), onSome: (commitSha) => ({ commitSha }) })
    }
    const started = yield* Client.call(endpoints.startEvalRun, {
      body: {
        suiteId: suite.id,
        ...common,
        // against main: no branch, so main's baseline applies
        ...(branch === undefined || i.against === "main" ? {} : { branch })
      }
    })
    const runs: Array<{ label: string; run: EvalRunView }> = [{
      label: suite.name,
      run: yield* await_(started.value.id)
    }]
    if (Option.isSome(i.rehearse)) {
      const rehearsal = yield* Client.call(endpoints.startEvalRun, {
        body: { rehearsal: { agentName: i.agent, window: i.rehearse.value }, ...common }
      }).pipe(
        Effect.map((r) => r.value.id),
        Effect.catchTag("ApiError", (e) => e.status === 400 ? Effect.succeed(null) : Effect.fail(e))
      )
      if (rehearsal === null) yield* Console.log(`rehearsal: no failed or low-scored run in ${i.rehearse.value}`)
      else runs.push({ label: `rehearsal ${i.rehearse.value}`, run: yield* await_(rehearsal) })
    }
    for (const { label, run } of runs) {
      yield* Console.log(
        `\n${label}: ${run.agentName} v${run.agentVersion} score ${run.score?.toFixed(3)}${
          run.baselineScore === null ? "" : ` (baseline ${run.baselineScore.toFixed(3)})`
        } ${run.casesPassed}/${run.casesTotal} passed, $${run.costUsd.toFixed(4)}${run.regressed ? " REGRESSED" : ""}`
      )
      yield* Console.log(table(run))
    }
    if (Option.isSome(i.junit)) {
      const fs = yield* FileSystem.FileSystem
      yield* fs.writeFileString(i.junit.value, junit(runs)).pipe(
        Effect.mapError((e) => bad(`--junit: cannot write: ${e.message}`))
      )
    }
    const failed = runs.filter(({ run }) => run.regressed || run.passed !== true)
    if (failed.length > 0) {
      return yield* new GateFailed({
        message: failed.map(({ label, run }) => `${label}: ${run.regressed ? "regressed" : "failed"}`).join("; ")
      })
    }
    if (i.setBaseline) {
      const pinned = yield* Client.call(endpoints.setEvalBaseline, {
        body: { agentName: i.agent, suiteId: suite.id, branch: branch ?? "main", evalRunId: runs[0]!.run.id }
      })
      yield* Console.log(`baseline of ${pinned.value.branch} is now ${pinned.value.evalRunId}`)
    }
  })
).pipe(
  Command.withDescription(
    "Gate a candidate agent version on its eval suite, run server-side; exits 0 pass, 1 failed or regressed, 2 bad input"
  ),
  Command.withExamples([
    {
      command:
        "lantern test --agent support --suite smoke --spec-file support.json --branch $GITHUB_HEAD_REF --junit evals.xml",
      description: "In CI"
    },
    { command: "lantern test --agent support --suite smoke --branch main --set-baseline", description: "On main" }
  ])
)
