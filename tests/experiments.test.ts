// A/B experiments (ADR 0058) and eval traffic against a real stack. A 50/50 split chooses the version of every
// unpinned run by FNV-1a of its Idempotency-Key (each run's journaled RunStarted is checked against the hash), an
// explicit agentVersion bypasses it, bad experiments are 400 naming the field, feedback that puts the variant ahead
// by more than minLift over minRuns promotes it (the agent's current version switches, new runs use it, audited).
// Eval runs' cases are labelled on RunStarted and left out of the agent's usage unless includeEval=true.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Split from "../actors/agent/Split.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let dir: string
let stack: StackProcess
let call: ReturnType<typeof api>

beforeAll(async () => {
  nats = await startServer("lantern-experiments")
  dir = mkdtempSync(join(tmpdir(), "lantern-experiments-"))
  stack = await startStack({ natsUrl: nats.handle.url, home: join(dir, "home") })
  call = api(stack)
  // v1 and v2 differ; v2 is the latest, so promoting v1 (the variant) proves the current version switched
  expect((await call("POST", "/v1/agents", { name: "splitter", spec: { systemPrompt: "Answer briefly." } })).status)
    .toBe(201)
  expect((await call("PUT", "/v1/agents/splitter", { spec: { systemPrompt: "Answer at length." } })).status).toBe(200)
}, 300_000)

afterAll(async () => {
  await stack?.kill()
  await nats?.cleanup()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const issueFor = (r: { status: number; json: any; text: string }, field: string) => {
  expect(r.status, r.text).toBe(400)
  const issue = (r.json.error.issues ?? []).find((i: { field: string }) => i.field === field)
  expect(issue, `no issue for '${field}' in ${r.text}`).toBeDefined()
  return issue as { field: string; message: string }
}

const EXPERIMENT = {
  agentName: "splitter",
  name: "brevity",
  control: 2,
  variant: 1,
  trafficPercent: 50,
  metric: "feedback",
  autoPromote: true,
  minRuns: 3,
  minLift: 0.2
}

const startRun = async (key: string | null, extra: Record<string, unknown> = {}) => {
  const r = await call(
    "POST",
    "/v1/runs",
    { agentName: "splitter", input: `question ${key ?? "unkeyed"}`, ...extra },
    key === null ? {} : { "idempotency-key": key }
  )
  expect([200, 201], r.text).toContain(r.status)
  return r.json as { id: string; agentVersion: number; experiment?: { id: string; arm: string } | null }
}

const runStartedOf = async (runId: string) => {
  const events = await call("GET", `/v1/runs/${runId}/events`)
  expect(events.status, events.text).toBe(200)
  const first = events.json.items[0]
  expect(first.type).toBe("RunStarted")
  return first.payload as { agentVersion: number; experiment?: { id: string; arm: string }; evalRunId?: string }
}

describe("A/B experiments", () => {
  let experimentId = ""
  const keys = Array.from({ length: 40 }, (_, i) => `split-key-${i}`)
  const runs = new Map<string, { id: string; arm: string; version: number }>()

  it("refuses a bad experiment with 400 naming the field, and changes nothing", async () => {
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, trafficPercent: 150 }), "trafficPercent")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, trafficPercent: -1 }), "trafficPercent")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, minLift: 2 }), "minLift")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, minRuns: 0 }), "minRuns")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, variant: 2 }), "variant")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, control: 9 }), "control")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, metric: "evalSuite" }), "suiteId")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, metric: "clicks" }), "metric")
    issueFor(await call("POST", "/v1/experiments", { ...EXPERIMENT, weights: [50, 50] }), "weights")
    const missing = await call("POST", "/v1/experiments", { ...EXPERIMENT, agentName: "nobody" })
    expect(missing.status, missing.text).toBe(404)
    const listed = await call("GET", "/v1/experiments?agentName=splitter")
    expect(listed.json.items).toEqual([])
    // nothing started: an unpinned run uses the latest version, with no arm
    const run = await startRun(null)
    expect(run.agentVersion).toBe(2)
    expect(run.experiment ?? null).toBeNull()
  })

  it("starts an experiment, and refuses a second one on the agent while it runs", async () => {
    const r = await call("POST", "/v1/experiments", EXPERIMENT)
    expect(r.status, r.text).toBe(201)
    experimentId = r.json.id
    expect(experimentId).toMatch(/^exp_/)
    expect(r.json).toMatchObject({ status: "running", control: 2, variant: 1, trafficPercent: 50, winner: null })
    const again = await call("POST", "/v1/experiments", { ...EXPERIMENT, name: "another" })
    expect(again.status, again.text).toBe(409)
    expect(again.json.error.code).toBe("experiment_refused")
  })

  it("chooses each unpinned run's version by the FNV-1a hash of its key, journaled on RunStarted", async () => {
    for (let i = 0; i < keys.length; i += 8) {
      await Promise.all(
        keys.slice(i, i + 8).map(async (key) => {
          const run = await startRun(key)
          const arm = Split.armOf(experimentId, 50, key)
          expect(run.experiment, key).toEqual({ id: experimentId, arm })
          expect(run.agentVersion, key).toBe(arm === "variant" ? 1 : 2)
          runs.set(key, { id: run.id, arm, version: run.agentVersion })
        })
      )
    }
    // both versions really ran: each run's journal says which
    const journaled = await Promise.all([...runs.values()].map((r) => runStartedOf(r.id)))
    const versions = journaled.map((e) => e.agentVersion)
    expect(versions.filter((v) => v === 1).length).toBeGreaterThan(5)
    expect(versions.filter((v) => v === 2).length).toBeGreaterThan(5)
    for (const [i, e] of journaled.entries()) {
      const expected = [...runs.values()][i]!
      expect(e.experiment).toEqual({ id: experimentId, arm: expected.arm })
      expect(e.agentVersion).toBe(expected.version)
    }
    // the same key again is the same run, at the same version
    const key = keys[0]!
    const again = await startRun(key)
    expect(again.id).toBe(runs.get(key)!.id)
    expect(again.agentVersion).toBe(runs.get(key)!.version)
    // and GET /v1/runs/{id} shows the arm, from the journal or the projection
    const read = await call("GET", `/v1/runs/${runs.get(key)!.id}`)
    expect(read.json.experiment).toEqual({ id: experimentId, arm: runs.get(key)!.arm })
  })

  it("a run with an explicit agentVersion bypasses the split", async () => {
    for (const key of keys.slice(0, 6)) {
      const run = await startRun(`${key}-pinned`, { agentVersion: 2 })
      expect(run.agentVersion).toBe(2)
      expect(run.experiment ?? null).toBeNull()
      const started = await runStartedOf(run.id)
      expect(started.agentVersion).toBe(2)
      expect(started.experiment).toBeUndefined()
    }
  })

  it("reports each arm's runs, success rate and cost once the runs are projected", async () => {
    const control = [...runs.values()].filter((r) => r.arm === "control").length
    const variant = runs.size - control
    const view = await eventually(
      async () => {
        const r = await call("GET", `/v1/experiments/${experimentId}`)
        expect(r.status, r.text).toBe(200)
        const arms = r.json.results as Array<{ arm: string; runs: number; succeeded: number }>
        return arms.every((a) => a.succeeded === (a.arm === "control" ? control : variant)) ? r.json : null
      },
      120_000,
      "every run of the experiment projected as succeeded"
    )
    expect(view.status).toBe("running")
    const byArm = Object.fromEntries((view.results as Array<any>).map((a) => [a.arm, a]))
    expect(byArm.control).toMatchObject({ version: 2, runs: control, successRate: 1, scored: 0, score: null })
    expect(byArm.variant).toMatchObject({ version: 1, runs: variant, successRate: 1, scored: 0, score: null })
    expect(view.lift).toBeNull()
  })

  it("promotes the variant once it leads by more than minLift over minRuns; new runs use it", async () => {
    const control = [...runs.values()].filter((r) => r.arm === "control")
    const variant = [...runs.values()].filter((r) => r.arm === "variant")
    // two scored runs each: not enough yet, whatever the lead
    for (const r of control.slice(0, 2))
      expect((await call("POST", `/v1/runs/${r.id}/feedback`, { score: 2 })).status).toBe(201)
    for (const r of variant.slice(0, 2))
      expect((await call("POST", `/v1/runs/${r.id}/feedback`, { score: 5 })).status).toBe(201)
    const early = await call("GET", `/v1/experiments/${experimentId}`)
    expect(early.json.status).toBe("running")
    expect(early.json.lift).toBeCloseTo(0.75)
    // the third control run: still running (the variant has two)
    expect((await call("POST", `/v1/runs/${control[2]!.id}/feedback`, { score: 2 })).status).toBe(201)
    expect((await call("GET", `/v1/experiments/${experimentId}`)).json.status).toBe("running")
    // the third variant run: both arms have 3, the variant leads by 0.75 > 0.2
    expect((await call("POST", `/v1/runs/${variant[2]!.id}/feedback`, { score: 5 })).status).toBe(201)
    const concluded = await call("GET", `/v1/experiments/${experimentId}`)
    expect(concluded.json).toMatchObject({
      status: "concluded",
      winner: "variant",
      promoted: true,
      concludedBy: "auto-promotion"
    })
    // the agent's current version is now the variant's (1, not the latest 2): new unpinned runs use it, with no arm
    for (const key of ["after-1", "after-2", "after-3", "after-4"]) {
      const run = await startRun(key)
      expect(run.agentVersion).toBe(1)
      expect(run.experiment ?? null).toBeNull()
    }
    // concluding again changes nothing
    const again = await call("POST", `/v1/experiments/${experimentId}/conclude`, { winner: "control" })
    expect(again.status, again.text).toBe(200)
    expect(again.json).toMatchObject({ status: "concluded", winner: "variant" })
    expect((await startRun("after-5")).agentVersion).toBe(1)
    // audited: started and concluded
    const audit = await eventually(
      async () => {
        const r = await call("GET", "/v1/audit?limit=200")
        const mine = (r.json.items as Array<any>).filter((e) => e.target === experimentId)
        return mine.length >= 2 ? mine : null
      },
      60_000,
      "the experiment's audit entries"
    )
    expect(audit.map((e: any) => e.action).sort()).toEqual(["experiment.concluded", "experiment.started"])
  })

  it("concludes by hand: the named winner's version becomes current; publishing a version makes it current", async () => {
    const r = await call("POST", "/v1/experiments", {
      ...EXPERIMENT,
      name: "second",
      control: 1,
      variant: 2,
      autoPromote: false
    })
    expect(r.status, r.text).toBe(201)
    const done = await call("POST", `/v1/experiments/${r.json.id}/conclude`, {
      winner: "variant",
      reason: "looks better"
    })
    expect(done.status, done.text).toBe(200)
    expect(done.json).toMatchObject({ status: "concluded", winner: "variant", promoted: true, reason: "looks better" })
    expect((await startRun("hand-1")).agentVersion).toBe(2)
    const missing = await call("POST", "/v1/experiments/exp_00000000000000000000000000/conclude", {})
    expect(missing.status, missing.text).toBe(404)
    const listed = await call("GET", "/v1/experiments?agentName=splitter")
    expect(listed.json.items.map((e: any) => e.name)).toEqual(["brevity", "second"])
  })
})

describe("eval traffic", () => {
  it("labels an eval run's cases on RunStarted and leaves them out of usage unless includeEval=true", async () => {
    const before = await call("GET", "/v1/agents/splitter/usage?days=1")
    expect(before.status, before.text).toBe(200)
    const production = before.json.days.reduce((n: number, d: any) => n + d.runs, 0)
    const suite = await call("POST", "/v1/eval-suites", {
      agentName: "splitter",
      name: "smoke",
      cases: [
        { name: "one", input: "one", assert: [] },
        { name: "two", input: "two", assert: [] },
        { name: "three", input: "three", assert: [] }
      ]
    })
    expect(suite.status, suite.text).toBe(201)
    const started = await call("POST", "/v1/eval-runs", { suiteId: suite.json.id })
    expect(started.status, started.text).toBe(202)
    const evalRun = await eventually(
      async () => {
        const r = await call("GET", `/v1/eval-runs/${started.json.id}`)
        return r.json.status === "finished" ? r.json : null
      },
      120_000,
      "the eval run to finish"
    )
    for (const c of evalRun.cases) {
      expect((await runStartedOf(c.runId)).evalRunId).toBe(started.json.id)
      expect((await call("GET", `/v1/runs/${c.runId}`)).json.evalRunId).toBe(started.json.id)
    }
    const withEval = await eventually(
      async () => {
        const r = await call("GET", "/v1/agents/splitter/usage?days=1&includeEval=true")
        const n = r.json.days.reduce((s: number, d: any) => s + d.runs, 0)
        return n >= production + 3 ? r.json : null
      },
      60_000,
      "the eval's runs in the usage with includeEval"
    )
    const total = withEval.days.reduce((n: number, d: any) => n + d.runs, 0)
    const without = await call("GET", "/v1/agents/splitter/usage?days=1")
    expect(without.json.days.reduce((n: number, d: any) => n + d.runs, 0)).toBe(total - 3)
    expect(withEval.totalCostUsd).toBeGreaterThanOrEqual(without.json.totalCostUsd)
    issueFor(await call("GET", "/v1/agents/splitter/usage?includeEval=yes"), "includeEval")
  })
})
