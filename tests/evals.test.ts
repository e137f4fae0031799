// Eval gates (ADR 0047) against a real stack: suites are checked (400 naming the case and field) and upserted by
// agent + name; an eval run runs every case as a real run of the candidate version and scores it; a baseline pinned on
// main gates a lower-scoring candidate on a branch with 422 and the per-case differences, an equal one passes; a
// `grounded` case that claims an email was sent with no tool step fails; a judge's verdict and cost are recorded and a
// judge whose provider fails leaves its case errored. The model is a local server speaking OpenAI's Chat Completions:
// it repeats the user's message (in capitals when the system prompt says SHOUT, and refuses FAIL-RUN unless it does) and, as a judge, grades an answer
// 0.9 when it holds "hello" and 0.2 otherwise.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { freePort } from "../bus/NatsServer.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as Junit from "./support/Junit.ts"
import { api, eventually, spawnLantern, type StackProcess, startStack } from "./support/Stack.ts"

const PRICES = {
  version: "test",
  models: { "fake-1": { inputPerMTok: 1000, outputPerMTok: 1000, cachedInputPerMTok: 0 } }
}

/** Chat Completions as the tests need it; a rubric holding PROVIDER-DOWN gets a 400 (not retried). */
const startModel = async () => {
  const port = await freePort()
  const server: Server = createServer((req, res) => {
    let data = ""
    req.on("data", (c) => (data += c))
    req.on("end", () => {
      if (req.method !== "POST" || !(req.url ?? "").endsWith("/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "no" } }))
        return
      }
      const body = JSON.parse(data) as { model: string; messages: Array<{ role: string; content: string | null }> }
      const system = body.messages.find((m) => m.role === "system")?.content ?? ""
      const user = body.messages.find((m) => m.role === "user")?.content ?? ""
      let content: string
      if (system.startsWith("You are an evaluator")) {
        if (user.includes("PROVIDER-DOWN")) {
          res.writeHead(400, { "content-type": "application/json" }).end(
            JSON.stringify({ error: { message: "judge model refused the request" } })
          )
          return
        }
        const answer = user.slice(user.indexOf("Answer:"))
        content = JSON.stringify(
          answer.includes("hello")
            ? { score: 0.9, reasoning: "greets" }
            : { score: 0.2, reasoning: "does not greet" }
        )
      } else if (user.includes("FAIL-RUN") && !system.includes("SHOUT")) {
        // version 1 cannot answer it (a refusal, not retried): its run fails; version 2 can
        res.writeHead(400, { "content-type": "application/json" }).end(
          JSON.stringify({ error: { message: "cannot answer that" } })
        )
        return
      } else {
        content = system.includes("SHOUT") ? user.toUpperCase() : user
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 0,
        model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }
      }))
    })
  })
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return { url: `http://127.0.0.1:${port}/v1`, close: () => new Promise<void>((r) => server.close(() => r())) }
}

let nats: TestServer
let dir: string
let stack: StackProcess
let model: Awaited<ReturnType<typeof startModel>>
let call: ReturnType<typeof api>

beforeAll(async () => {
  nats = await startServer("lantern-evals")
  dir = mkdtempSync(join(tmpdir(), "lantern-evals-"))
  model = await startModel()
  const prices = join(dir, "prices.json")
  writeFileSync(prices, JSON.stringify(PRICES))
  stack = await startStack({
    natsUrl: nats.handle.url,
    home: join(dir, "home"),
    env: {
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: model.url,
      LANTERN_OPENAI_MODEL: "fake-1",
      LANTERN_PRICES_FILE: prices
    }
  })
  call = api(stack)
  // v1 repeats, v2 shouts
  expect((await call("POST", "/v1/agents", { name: "greeter", spec: { systemPrompt: "Repeat." } })).status).toBe(201)
  expect((await call("PUT", "/v1/agents/greeter", { spec: { systemPrompt: "Repeat. SHOUT" } })).status).toBe(200)
}, 300_000)

afterAll(async () => {
  await stack?.kill()
  await nats?.cleanup()
  await model?.close()
  rmSync(dir, { recursive: true, force: true })
})

const issueFor = (r: { status: number; json: any; text: string }, field: string) => {
  expect(r.status, r.text).toBe(400)
  const issue = (r.json.error.issues ?? []).find((i: { field: string }) => i.field === field)
  expect(issue, `no issue for '${field}' in ${r.text}`).toBeDefined()
  return issue as { field: string; message: string }
}

const SUITE = {
  agentName: "greeter",
  name: "greetings",
  cases: [
    { name: "hello", input: "hello world", assert: [{ contains: "hello" }, { notContains: "HELLO" }] },
    { name: "exact", input: "hello there", assert: [{ equals: "hello there" }, { regex: "^hello" }] },
    { name: "cheap", input: "hi", assert: [{ costUnder: { usd: 1 } }, { stepsUnder: { n: 5 } }], weight: 0.5 }
  ]
}

const finished = async (id: string) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/eval-runs/${id}`)
      return r.status === 200 && r.json.status === "finished" ? r.json : null
    },
    60_000,
    `eval run ${id} to finish`
  )

const evalRun = async (body: Record<string, unknown>) => {
  const r = await call("POST", "/v1/eval-runs", body)
  expect(r.status, r.text).toBe(202)
  expect(r.json.id).toMatch(/^evr_/)
  return finished(r.json.id as string)
}

describe("suites", () => {
  it("refuses a bad suite with a 400 naming the case and the field, unknown fields included", async () => {
    const base = { agentName: "greeter", name: "bad" }
    const one = (c: Record<string, unknown>) => ({ ...base, cases: [{ name: "a", input: "x", assert: [] }, c] })
    const unknown = await call("POST", "/v1/eval-suites", one({ name: "b", input: "x", assert: [{ sounds: "good" }] }))
    expect(issueFor(unknown, "cases[1].assert[0]").message).toContain("case 'b'")
    expect(unknown.json.error.issues).toHaveLength(1)
    issueFor(
      await call("POST", "/v1/eval-suites", one({ name: "b", input: "x", assert: [{ contains: "a", regex: "b" }] })),
      "cases[1].assert[0]"
    )
    expect(
      issueFor(
        await call("POST", "/v1/eval-suites", one({ name: "b", input: "x", assert: [], colour: "red" })),
        "cases[1].colour"
      )
        .message
    ).toContain("unknown field")
    const regex = issueFor(
      await call("POST", "/v1/eval-suites", one({ name: "b", input: "x", assert: [{ regex: "(" }] })),
      "cases[1].assert[0].regex"
    )
    expect(regex.message).toContain("case 'b'")
    issueFor(await call("POST", "/v1/eval-suites", one({ name: "a", input: "x", assert: [] })), "cases[1].name")
    issueFor(
      await call(
        "POST",
        "/v1/eval-suites",
        one({ name: "b", input: "x", assert: [{ judge: { rubric: "r", model: "auto", passScore: 2 } }] })
      ),
      "cases[1].assert[0].judge.passScore"
    )
    issueFor(await call("POST", "/v1/eval-suites", { ...base, cases: [] }), "cases")
    expect(
      (await call("POST", "/v1/eval-suites", {
        ...base,
        agentName: "nobody",
        cases: [{ name: "a", input: 1, assert: [] }]
      })).status
    )
      .toBe(404)
  })

  it("upserts by agent and name: unchanged keeps the version, a change makes the next one; get, list, delete", async () => {
    const first = await call("POST", "/v1/eval-suites", { ...SUITE, name: "scratch" })
    expect(first.status, first.text).toBe(201)
    expect(first.json).toEqual({ id: expect.stringMatching(/^evs_/), version: 1 })
    const again = await call("POST", "/v1/eval-suites", { ...SUITE, name: "scratch" })
    expect(again.status).toBe(200)
    expect(again.json).toEqual(first.json)
    const changed = await call("POST", "/v1/eval-suites", { ...SUITE, name: "scratch", description: "now described" })
    expect(changed.json).toEqual({ id: first.json.id, version: 2 })
    const got = await call("GET", `/v1/eval-suites/${first.json.id}`)
    expect(got.json).toMatchObject({ agentName: "greeter", name: "scratch", version: 2, description: "now described" })
    expect(got.json.cases).toHaveLength(3)
    const listed = await call("GET", "/v1/eval-suites?agentName=greeter")
    expect(listed.json.items.map((s: { name: string }) => s.name)).toContain("scratch")
    expect((await call("DELETE", `/v1/eval-suites/${first.json.id}`)).status).toBe(204)
    expect((await call("GET", `/v1/eval-suites/${first.json.id}`)).status).toBe(404)
    expect((await call("GET", "/v1/eval-suites?agentName=greeter")).json.items.map((s: { name: string }) => s.name))
      .not.toContain("scratch")
  })
})

describe("eval runs and the gate", () => {
  it("scores real runs, pins main's baseline, and gates a worse candidate on a branch with 422; an equal one passes", async () => {
    onTestFailed(() => console.error(stack.output().slice(-5000)))
    const suite = (await call("POST", "/v1/eval-suites", SUITE)).json as { id: string }

    const onMain = await evalRun({ suiteId: suite.id, agentVersion: 1, branch: "main", concurrency: 3 })
    expect(onMain).toMatchObject({
      status: "finished",
      score: 1,
      passed: true,
      casesTotal: 3,
      casesPassed: 3,
      agentVersion: 1,
      regressed: false,
      baselineScore: null
    })
    // each case is a real run of version 1, its answer what the model said
    for (const c of onMain.cases) {
      const run = await call("GET", `/v1/runs/${c.runId}`)
      expect(run.json).toMatchObject({ status: "succeeded", agentName: "greeter", agentVersion: 1 })
      expect(c.actual).toBe(run.json.output)
    }
    expect(onMain.costUsd).toBeGreaterThan(0)

    const pinned = await call("POST", "/v1/eval-baselines", {
      agentName: "greeter",
      suiteId: suite.id,
      branch: "main",
      evalRunId: onMain.id
    })
    expect(pinned.status, pinned.text).toBe(201)
    expect(pinned.json).toMatchObject({ branch: "main", evalRunId: onMain.id, score: 1 })
    expect((await call("GET", "/v1/eval-baselines?agentName=greeter&branch=main")).json.items).toEqual([
      expect.objectContaining({ suiteId: suite.id, evalRunId: onMain.id, score: 1 })
    ])

    // version 2 shouts: "hello" and "exact" fail; the branch has no baseline, so main's applies
    const candidate = await evalRun({ suiteId: suite.id, agentVersion: 2, branch: "feature-x", commitSha: "abc1234" })
    expect(candidate).toMatchObject({
      agentVersion: 2,
      passed: false,
      regressed: true,
      baselineScore: 1,
      casesPassed: 1
    })
    // hello and exact score 0, cheap (weight 0.5) still 1
    expect(candidate.score).toBeCloseTo(0.5 / 2.5, 5)
    const hello = candidate.cases.find((c: { name: string }) => c.name === "hello")
    expect(hello).toMatchObject({ passed: false, actual: "HELLO WORLD" })
    expect(hello.failures).toEqual([`contains: no "hello"`, `notContains: found "HELLO"`])
    expect((await call("GET", `/v1/eval-runs/${candidate.id}`)).status).toBe(200)
    const gate = await call("GET", `/v1/eval-runs/${candidate.id}?gate=true`)
    expect(gate.status, gate.text).toBe(422)
    expect(gate.json.error).toMatchObject({
      code: "eval_regressed",
      baselineScore: 1,
      baselineRunId: onMain.id,
      tolerance: 0.01
    })
    expect(gate.json.error.differences[0]).toMatchObject({
      score: 0,
      baselineScore: 1,
      passed: false,
      baselinePassed: true
    })
    expect(gate.json.error.differences.map((d: { name: string }) => d.name).slice(0, 2).sort()).toEqual([
      "exact",
      "hello"
    ])

    // the same version as the baseline on another branch: equal, so the gate passes
    const equal = await evalRun({ suiteId: suite.id, agentVersion: 1, branch: "feature-y" })
    expect(equal).toMatchObject({ score: 1, regressed: false, baselineScore: 1 })
    expect((await call("GET", `/v1/eval-runs/${equal.id}?gate=true`)).status).toBe(200)

    // a branch's own baseline wins over main's
    expect(
      (await call("POST", "/v1/eval-baselines", {
        agentName: "greeter",
        suiteId: suite.id,
        branch: "feature-x",
        evalRunId: candidate.id
      })).status
    ).toBe(201)
    const onBranch = await evalRun({ suiteId: suite.id, agentVersion: 2, branch: "feature-x" })
    expect(onBranch).toMatchObject({ regressed: false, baselineRunId: candidate.id })
  })

  it("streams an eval run's progress as Server-Sent Events until it finishes", async () => {
    const suite = (await call("POST", "/v1/eval-suites", { ...SUITE, name: "streamed" })).json as { id: string }
    const started = await call("POST", "/v1/eval-runs", { suiteId: suite.id, concurrency: 1 })
    const r = await fetch(`${stack.url}/v1/eval-runs/${started.json.id}/stream`, {
      headers: { authorization: `Bearer ${stack.token}` }
    })
    expect(r.status).toBe(200)
    expect(r.headers.get("content-type")).toContain("text/event-stream")
    const text = await r.text()
    const events = [...text.matchAll(/^event: (\w+)$/gmu)].map((m) => m[1])
    expect(events).toEqual(["started", "case", "case", "case", "finished"])
    const last = JSON.parse(/event: case\ndata: (.*)\n/u.exec(text.slice(text.lastIndexOf("event: case")))![1]!)
    expect(last).toMatchObject({ casesDone: 3, casesTotal: 3 })
    expect((await call("GET", "/v1/eval-runs/evr_00000000000000000000000000")).status).toBe(404)
  })

  it("a grounded case fails an answer claiming an email was sent with no tool step", async () => {
    const suite = (await call("POST", "/v1/eval-suites", {
      agentName: "greeter",
      name: "grounded",
      cases: [
        { name: "claims", input: "I sent the email to Bob.", assert: [{ grounded: true }] },
        { name: "plain", input: "The weather is mild.", assert: [{ grounded: true }] }
      ]
    })).json as { id: string }
    const run = await evalRun({ suiteId: suite.id, agentVersion: 1 })
    const [claims, plain] = run.cases
    expect(claims).toMatchObject({ name: "claims", passed: false, score: 0 })
    expect(claims.failures[0]).toContain("'sent'")
    expect(plain).toMatchObject({ name: "plain", passed: true, score: 1 })
    expect(run.score).toBe(0.5)
  })

  it("a judge's verdict and cost are recorded; a judge whose provider fails leaves its case errored, not passed", async () => {
    const judge = (rubric: string) => ({ judge: { rubric, model: "auto", passScore: 0.5 } })
    const suite = (await call("POST", "/v1/eval-suites", {
      agentName: "greeter",
      name: "judged",
      cases: [
        { name: "greets", input: "hello you", assert: [judge("Does it greet?")] },
        { name: "silent", input: "goodbye", assert: [judge("Does it greet?")] },
        { name: "down", input: "hello again", assert: [judge("PROVIDER-DOWN")] }
      ]
    })).json as { id: string }
    const run = await evalRun({ suiteId: suite.id, agentVersion: 1 })
    const [greets, silent, down] = run.cases
    expect(greets).toMatchObject({ passed: true, errored: false, score: 0.9 })
    expect(greets.verdicts).toEqual([{ score: 0.9, reasoning: "greets", costUsd: expect.any(Number) }])
    // the judge's tokens are priced: the case costs its run and its judge
    expect(greets.verdicts[0].costUsd).toBeGreaterThan(0)
    const runCost = (await call("GET", `/v1/runs/${greets.runId}`)).json.costUsd as number
    expect(greets.costUsd).toBeCloseTo(runCost + greets.verdicts[0].costUsd, 9)
    expect(silent).toMatchObject({ passed: false, errored: false, score: 0.2 })
    expect(silent.failures[0]).toContain("does not greet")
    expect(down).toMatchObject({ passed: false, errored: true, score: 0 })
    expect(down.failures[0]).toContain("provider failed")
    expect(run.score).toBeCloseTo((0.9 + 0.2 + 0) / 3, 5)
  })
})

describe("feedback and rehearsals", () => {
  const runOf = async (input: string) => {
    const r = await call("POST", "/v1/runs", { agentName: "greeter", agentVersion: 1, input })
    expect(r.status, r.text).toBe(201)
    return eventually(
      async () => {
        const got = await call("GET", `/v1/runs/${r.json.id}`)
        return got.json.status === "running" ? null : got.json
      },
      30_000,
      `run ${r.json.id} to end`
    )
  }

  it("records feedback, sums it per agent, rehearses exactly the failed and low-scored runs, and gates a replay", async () => {
    onTestFailed(() => console.error(stack.output().slice(-5000)))
    const failed = await runOf("FAIL-RUN please")
    expect(failed.status).toBe("failed")
    const [low, happy, meh] = [await runOf("hello a"), await runOf("hello b"), await runOf("hey c")]
    const give = (id: string, body: unknown) => call("POST", `/v1/runs/${id}/feedback`, body)
    const given = await give(low.id, { score: 1, comment: "should shout", preferredOutput: "HELLO A", source: "slack" })
    expect(given.status, given.text).toBe(201)
    expect(given.json).toMatchObject({ runId: low.id, agentName: "greeter", score: 1, source: "slack" })
    expect((await give(happy.id, { score: 5 })).status).toBe(201)
    expect((await give(meh.id, { score: 2, preferredOutput: "HEY C" })).status).toBe(201)
    issueFor(await give(meh.id, { score: 6 }), "score")
    issueFor(await give(meh.id, { score: 3, stars: 4 }), "stars")
    expect((await give("run_00000000000000000000000000", { score: 3 })).status).toBe(404)

    const mine = await call("GET", `/v1/runs/${low.id}/feedback`)
    expect(mine.json.items).toEqual([
      expect.objectContaining({ score: 1, comment: "should shout", preferredOutput: "HELLO A" })
    ])
    const summary = await call("GET", "/v1/agents/greeter/feedback")
    expect(summary.json).toMatchObject({ count: 3, thumbsUp: 1, thumbsDown: 2 })
    expect(summary.json.mean).toBeCloseTo(8 / 3, 9)
    expect(summary.json.last7DaysMean).toBeCloseTo(8 / 3, 9)

    // the failed run shows once the runs projection has it
    const rehearsal = await eventually(
      async () => {
        const r = await call("POST", "/v1/runs/rehearse", { agentName: "greeter", window: "7d" })
        return r.json.items?.length === 3 ? r.json.items : null
      },
      20_000,
      "three runs to rehearse"
    )
    const byId = Object.fromEntries(rehearsal.map((i: { runId: string }) => [i.runId, i]))
    expect(Object.keys(byId).sort()).toEqual([failed.id, low.id, meh.id].sort())
    expect(byId[failed.id]).toMatchObject({ reason: "failed", input: "FAIL-RUN please", agentVersion: 1 })
    expect(byId[low.id]).toMatchObject({
      reason: "lowScore",
      input: "hello a",
      feedbackScore: 1,
      preferredOutput: "HELLO A"
    })
    expect(byId[meh.id]).toMatchObject({ reason: "lowScore", feedbackScore: 2, preferredOutput: "HEY C" })
    const onlyFailed = await call("POST", "/v1/runs/rehearse", {
      agentName: "greeter",
      window: "7d",
      includeLowScore: false
    })
    expect(onlyFailed.json.items.map((i: { runId: string }) => i.runId)).toEqual([failed.id])
    issueFor(await call("POST", "/v1/runs/rehearse", { agentName: "greeter", window: "a week" }), "window")

    // version 1 replayed fails them all again: the gate says no; version 2 answers all three as preferred
    const same = await evalRun({ rehearsal: { agentName: "greeter", window: "7d" }, agentVersion: 1 })
    expect(same).toMatchObject({ casesTotal: 3, casesPassed: 0, regressed: true, passed: false })
    const refused = await call("GET", `/v1/eval-runs/${same.id}?gate=true`)
    expect(refused.status).toBe(422)
    expect(refused.json.error.baselineScore).toBeNull()
    const fixed = await evalRun({ rehearsal: { agentName: "greeter", window: "7d" }, agentVersion: 2 })
    expect(fixed).toMatchObject({ casesTotal: 3, casesPassed: 3, regressed: false, passed: true, score: 1 })
    expect((await call("GET", `/v1/eval-runs/${fixed.id}?gate=true`)).status).toBe(200)
    issueFor(await call("POST", "/v1/eval-runs", { agentVersion: 2 }), "suiteId")
  })
})

describe("lantern test", () => {
  const lantern = async (...args: Array<string>) => {
    const p = spawnLantern(["test", ...args], {
      LANTERN_URL: stack.url,
      LANTERN_API_TOKEN: stack.token,
      LANTERN_HOME: join(dir, "cli")
    })
    return { code: await p.exited, output: p.output() }
  }
  /** The JUnit document's suites and cases, valid against the JUnit schema CI reporters read (tests/fixtures/junit.xsd). */
  const readJunit = async (path: string) => {
    const xml = readFileSync(path, "utf8")
    const verdict = await Junit.validate(xml)
    expect(verdict.errors, xml).toEqual([])
    expect(verdict.valid).toBe(true)
    expect(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>`)).toBe(true)
    const suites = [...xml.matchAll(/<testsuite name="([^"]*)" tests="(\d+)" failures="(\d+)" errors="(\d+)"/gu)]
    const cases = [...xml.matchAll(/<testcase name="([^"]*)" classname="[^"]+" time="[\d.]+">/gu)]
    const failures = [...xml.matchAll(/<failure message="[^"]*" type="[a-z]+"/gu)]
    expect(xml.trimEnd().endsWith("</testsuites>")).toBe(true)
    return { suites, cases: cases.map((c) => c[1]), failures: failures.length }
  }

  it("exits 0 on a pass (and pins the baseline), 1 on a regression, 2 on bad input, writing JUnit XML", async () => {
    const bad = await lantern("--agent", "greeter", "--suite", "nope")
    expect(bad.code, bad.output).toBe(2)
    expect(bad.output).toContain("no suite 'nope'")

    const passXml = join(dir, "pass.xml")
    const pass = await lantern(
      "--agent",
      "greeter",
      "--suite",
      "greetings",
      "--version",
      "1",
      "--branch",
      "release",
      "--set-baseline",
      "--junit",
      passXml
    )
    expect(pass.code, pass.output).toBe(0)
    expect(pass.output).toMatch(/case\s+passed\s+score\s+cost\s+first failure/u)
    expect(pass.output).toContain("baseline of release is now evr_")
    const passed = await readJunit(passXml)
    expect(passed.suites).toHaveLength(1)
    expect(passed.suites[0]!.slice(2)).toEqual(["3", "0", "0"])
    expect(passed.cases.sort()).toEqual(["cheap", "exact", "hello"])
    expect((await call("GET", "/v1/eval-baselines?agentName=greeter&branch=release")).json.items).toHaveLength(1)

    const failXml = join(dir, "fail.xml")
    const fail = await lantern(
      "--agent",
      "greeter",
      "--suite",
      "greetings",
      "--version",
      "2",
      "--branch",
      "release",
      "--junit",
      failXml
    )
    expect(fail.code, fail.output).toBe(1)
    expect(fail.output).toContain("REGRESSED")
    const failed = await readJunit(failXml)
    // two cases fail, and the regression gate is a case of its own
    expect(failed.suites[0]!.slice(2)).toEqual(["4", "3", "0"])
    expect(failed.failures).toBe(3)
    expect(failed.cases).toContain("regression gate")
  }, 120_000)
})
