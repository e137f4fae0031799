// The cockpit's operator views (issue 18) end to end in a real headless Chromium against a real `lantern serve`: the
// queue (dispatch paused and resumed from the page, a task appearing live, canceled, retried and completed), a
// workload's output followed live to its exit and another terminated, a session's turns arriving live, an eval suite
// run from the page to its verdict and an experiment's figures, each
// view checked by axe-core and photographed under test-artifacts/cockpit/.
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, ROOT, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

/** Debian's chromium, or the one LANTERN_CHROMIUM names; browsers are never downloaded. */
const CHROMIUM = [process.env["LANTERN_CHROMIUM"], "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .find((p): p is string => p !== undefined && p !== "" && existsSync(p))
const SCREENSHOTS = join(ROOT, "test-artifacts", "cockpit")

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>

const outcome = (summary: string) =>
  JSON.stringify({
    status: "completed",
    operatorSummary: summary,
    machineStatus: "ok",
    fileChanges: [],
    artifactPaths: [],
    followUpTasks: [],
    externalMessages: []
  })

/** A task whose script adapter prints a completed outcome saying `summary`. */
const submitTask = async (summary: string, fields: Record<string, unknown> = {}) => {
  const r = await call("POST", "/v1/tasks", {
    kind: "cockpit",
    source: "e2e",
    payload: { summary },
    subject: summary,
    adapter: { type: "script", command: [process.execPath, "-e", `console.log(${JSON.stringify(outcome(summary))})`] },
    ...fields
  })
  expect(r.status, r.text).toBe(201)
  return r.json.id as string
}

const taskStatus = (id: string, status: string) =>
  eventually(
    async () => ((await call("GET", `/v1/tasks/${id}`)).json?.status === status ? true : null),
    60_000,
    `task ${id} to be ${status}`
  )

beforeAll(async () => {
  const built = spawnSync(join(ROOT, "node_modules/.bin/node"), [join(ROOT, "scripts/build-ui.mjs"), "--quiet"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"]
  })
  if (built.status !== 0) throw new Error(`building the cockpit failed (exit ${built.status ?? built.signal})`)
  nats = await startServer("lantern-cockpit-ops")
  stack = await startStack({ natsUrl: nats.handle.url, env: { LANTERN_TASK_WORKERS: "1" } })
  call = api(stack)
  const calc = {
    name: "calc",
    spec: {
      systemPrompt: "You compute.",
      maxTurns: 4,
      tools: [{ name: "calculator", description: "calculator", parameters: { type: "object", properties: {} } }]
    }
  }
  expect((await call("POST", "/v1/agents", calc)).status).toBe(201)
}, 240_000)

afterAll(() => stopStack(stack, nats))

describe("lantern serve", () => {
  it("has no hot reload: no reload stream named in the page, no such route", async () => {
    expect(await (await fetch(`${stack.url}/`)).text()).not.toContain("lantern-dev-reload")
    expect((await fetch(`${stack.url}/__dev/reload`)).status).toBe(404)
  })
})

describe.skipIf(CHROMIUM === undefined)(
  `the operator views in Chromium${
    CHROMIUM === undefined ? " (skipped: no chromium; apt-get install chromium, or set LANTERN_CHROMIUM)" : ""
  }`,
  () => {
    let browser: Browser
    let page: Page
    const problems: Array<string> = []

    const shot = async (name: string) => {
      mkdirSync(SCREENSHOTS, { recursive: true })
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
    }

    /** axe-core's serious and critical violations on the page as it stands. */
    const accessibility = async (view: string) => {
      await page.evaluate(readFileSync(join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8"))
      const violations = await page.evaluate(() =>
        (globalThis as any).axe.run((globalThis as any).document, { resultTypes: ["violations"] }).then((r: any) =>
          r.violations.map((v: any) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }))
        )
      ) as Array<{ id: string; impact: string | null }>
      expect(violations.filter((v) => v.impact === "serious" || v.impact === "critical"), view).toEqual([])
    }

    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] })
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
      page.on("console", (m) => {
        if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text())
      })
      page.on("pageerror", (e) => problems.push(e.message))
      await page.goto(`${stack.url}/`)
      await page.getByLabel("API key").fill(stack.token)
      await page.getByRole("button", { name: "Sign in" }).click()
      await page.getByRole("heading", { name: "Runs" }).waitFor()
    }, 60_000)

    afterAll(async () => {
      await browser?.close()
    })

    it("queue: pauses dispatch, shows a task arrive live, cancels it, retries it and sees it complete", async () => {
      const done = await submitTask("first one")
      await taskStatus(done, "completed")
      await page.getByRole("link", { name: "Queue" }).click()
      await page.getByRole("heading", { name: "Queue" }).waitFor()
      await page.locator(`tr[data-task-id="${done}"][data-status="completed"]`).waitFor()
      await page.locator(".live.open").waitFor()

      // paused from the page: the edge says so, and a task submitted now waits, listed live
      await page.getByLabel("Pause reason").fill("cockpit e2e")
      await page.getByRole("button", { name: "Pause dispatch" }).click()
      await page.getByRole("button", { name: "Resume dispatch" }).waitFor()
      expect(await page.locator("[data-dispatch-state]").textContent()).toContain("paused: cockpit e2e")
      expect((await call("GET", "/v1/dispatch")).json).toMatchObject({ paused: true, reason: "cockpit e2e" })
      const waiting = await submitTask("second one", { priority: 8 })
      const row = page.locator(`tr[data-task-id="${waiting}"]`)
      await row.waitFor({ timeout: 15_000 })
      expect(await row.getAttribute("data-status")).toBe("pending")
      await page.locator("[data-depth=\"8\"]", { hasText: "1" }).waitFor({ timeout: 10_000 })
      await shot("20-queue")
      await accessibility("queue")
      // dark when the system is, and narrow on a phone
      try {
        await page.emulateMedia({ colorScheme: "dark" })
        await shot("20-queue-dark")
        await accessibility("queue, dark")
        await page.emulateMedia({ colorScheme: "light" })
        await page.setViewportSize({ width: 390, height: 844 })
        await shot("20-queue-narrow")
        await accessibility("queue, narrow")
      } finally {
        await page.emulateMedia({ colorScheme: "light" })
        await page.setViewportSize({ width: 1280, height: 900 })
      }

      // the filters narrow the list
      await page.getByLabel("Status").selectOption("completed")
      await page.locator(`tr[data-task-id="${waiting}"]`).waitFor({ state: "detached" })
      expect(await page.locator(`tr[data-task-id="${done}"]`).count()).toBe(1)
      await page.getByLabel("Status").selectOption("")
      await page.getByLabel("Kind").fill("nothing-of-this-kind")
      await page.getByLabel("Kind").press("Enter")
      await page.getByText("No tasks match these filters.").waitFor()
      await page.getByLabel("Kind").fill("")
      await page.getByLabel("Kind").press("Enter")
      await row.waitFor()

      // canceled in its page after a confirmation; its status changes there and in the list
      await row.getByRole("link").click()
      await page.getByRole("heading", { name: "Task second one" }).waitFor()
      await page.getByRole("button", { name: "Cancel task" }).click()
      await page.getByLabel("Cancel reason").fill("not needed")
      await shot("21-task-confirm-cancel")
      await accessibility("task with a confirmation")
      await page.getByRole("button", { name: "Confirm cancel task" }).click()
      await page.locator("[data-task-status=\"canceled\"]").waitFor({ timeout: 10_000 })
      await page.locator("li[data-event=\"TaskCanceled\"]").waitFor({ timeout: 10_000 })
      await taskStatus(waiting, "canceled")

      // retried, then dispatch resumed from the queue: it completes, live
      await page.getByRole("button", { name: "Retry" }).click()
      await page.getByRole("button", { name: "Confirm retry" }).click()
      await page.locator("[data-task-status=\"pending\"]").waitFor({ timeout: 10_000 })
      await page.getByRole("link", { name: "← Queue" }).click()
      await page.getByRole("button", { name: "Resume dispatch" }).click()
      await page.getByRole("button", { name: "Pause dispatch" }).waitFor()
      await page.locator(`tr[data-task-id="${waiting}"][data-status="completed"]`).waitFor({ timeout: 60_000 })
      await row.getByRole("link").click()
      await page.locator("[data-outcome=\"completed\"]").waitFor()
      await page.locator("tr[data-attempt=\"1\"]").waitFor()
      await shot("22-task")
      await accessibility("task")
      expect(problems).toEqual([])
    }, 180_000)

    it("workloads: follows a workload's output live to its exit code, and terminates one that runs", async () => {
      const spec = (name: string, code: string, timeoutSeconds = 60) => ({
        apiVersion: "lantern.dev/v1",
        kind: "AgentSpec",
        metadata: { name },
        spec: {
          command: [process.execPath, "-e", code],
          isolation: "trusted",
          limits: { vcpu: 1, memoryMb: 256, timeoutSeconds },
          network: "none"
        }
      })
      // a line every 300 ms, then exit 3 after the twelfth
      const counted = await call(
        "POST",
        "/v1/workloads",
        spec(
          "cockpit-count",
          "let i = 0; const t = setInterval(() => { console.log('line ' + ++i); if (i === 12) { clearInterval(t); process.exit(3) } }, 300)"
        )
      )
      expect(counted.status, counted.text).toBe(201)
      await page.goto(`${stack.url}/#/workloads/${counted.json.id}`)
      await page.getByRole("heading", { name: "cockpit-count" }).waitFor()
      // lines arrive while it runs, before the end
      await page.locator("[data-output]").getByText("line 2").waitFor({ timeout: 30_000 })
      const seenWhileRunning = await page.locator("[data-logs]").getAttribute("data-logs")
      await page.locator("[data-logs=\"ended\"]").waitFor({ timeout: 30_000 })
      expect(seenWhileRunning === "open" || seenWhileRunning === "ended").toBe(true)
      expect(await page.locator("[data-output]").textContent()).toContain("line 12")
      expect(await page.locator("[data-exit-code]").textContent()).toBe("3")
      await page.locator("[data-workload-state=\"exited\"]").waitFor()
      await shot("23-workload-logs")
      await accessibility("workload with its logs")

      const long = await call(
        "POST",
        "/v1/workloads",
        spec("cockpit-forever", "setInterval(() => console.log('tick'), 400)", 120)
      )
      expect(long.status, long.text).toBe(201)
      await page.getByRole("link", { name: "← Workloads" }).click()
      await page.locator(`tr[data-workload-id="${long.json.id}"]`).waitFor()
      await shot("24-workloads")
      await accessibility("workloads")
      await page.getByRole("link", { name: "cockpit-forever" }).click()
      await page.locator("[data-output]").getByText("tick").first().waitFor({ timeout: 30_000 })
      await page.getByRole("button", { name: "Terminate" }).click()
      await page.locator("[data-workload-state=\"terminated\"]").waitFor({ timeout: 30_000 })
      await page.locator("[data-logs=\"ended\"]").waitFor({ timeout: 30_000 })
      expect(problems).toEqual([])
    }, 120_000)

    it("sessions: a conversation's turns arrive live, answered by the agent", async () => {
      const opened = await call("POST", "/v1/sessions", { agentName: "calc" })
      expect(opened.status, opened.text).toBe(201)
      await page.getByRole("link", { name: "Sessions" }).click()
      await page.getByRole("heading", { name: "Sessions" }).waitFor()
      await page.locator(`tr[data-session-id="${opened.json.id}"]`).waitFor({ timeout: 15_000 })
      await page.locator(`tr[data-session-id="${opened.json.id}"]`).getByRole("link").click()
      await page.getByText("No turns yet.").waitFor()
      await page.locator(".live.open").waitFor()
      const sent = await call("POST", `/v1/sessions/${opened.json.id}/messages`, { text: "calculator: 6*7" })
      expect(sent.status, sent.text).toBe(202)
      await page.locator("li[data-turn=\"1\"][data-turn-status=\"succeeded\"]").waitFor({ timeout: 30_000 })
      expect(await page.locator("li[data-turn=\"1\"]").textContent()).toContain("calculator: 6*7")
      await shot("25-session")
      await accessibility("session")
      await page.getByRole("link", { name: "← Sessions" }).click()
      await page.locator(`tr[data-session-id="${opened.json.id}"]`).waitFor()
      await shot("26-sessions")
      await accessibility("sessions")
    }, 90_000)

    it("evals: runs a suite from the page and follows it to its verdict; shows an experiment's figures", async () => {
      const suite = await call("POST", "/v1/eval-suites", {
        agentName: "calc",
        name: "arithmetic",
        cases: [
          { name: "product", input: "calculator: 6*7", assert: [{ stepsUnder: { n: 50 } }] },
          { name: "sum", input: "calculator: 2+2", assert: [{ stepsUnder: { n: 50 } }] }
        ]
      })
      expect(suite.status, suite.text).toBe(201)
      expect(
        (await call("PUT", "/v1/agents/calc", { spec: { systemPrompt: "You compute, briefly.", tools: [] } })).status
      )
        .toBe(200)
      const experiment = await call("POST", "/v1/experiments", {
        agentName: "calc",
        name: "brevity",
        control: 1,
        variant: 2,
        trafficPercent: 50,
        metric: "feedback",
        autoPromote: false,
        minRuns: 10,
        minLift: 0.1
      })
      expect(experiment.status, experiment.text).toBe(201)
      await page.getByRole("link", { name: "Evals" }).click()
      await page.getByRole("heading", { name: "Evals" }).waitFor()
      await page.locator("[data-experiment=\"brevity\"]").waitFor()
      await page.getByRole("button", { name: "Figures of brevity" }).click()
      await page.locator("[data-experiment=\"brevity\"] tr[data-arm=\"variant\"]").waitFor()
      await shot("27-evals")
      await accessibility("evals")
      await page.getByRole("button", { name: "Run the suite arithmetic" }).click()
      await page.waitForURL(/#\/evals\/evr_/)
      await page.locator("[data-eval-status=\"finished\"]").waitFor({ timeout: 60_000 })
      await page.locator("tr[data-case=\"product\"]").waitFor()
      await page.locator("tr[data-case=\"sum\"]").waitFor()
      const id = page.url().split("/").at(-1)!
      const view = (await call("GET", `/v1/eval-runs/${id}`)).json
      expect(await page.locator("[data-eval-verdict]").getAttribute("data-eval-verdict")).toBe(
        view.passed ? "passed" : "failed"
      )
      await shot("28-eval-run")
      await accessibility("eval run")
      expect(problems).toEqual([])
    }, 120_000)

    it("agents: compares two versions side by side and forecasts a run's cost before starting it", async () => {
      // calc has two versions by now (the evals test changed its prompt)
      const versions = await call("GET", "/v1/agents/calc/versions")
      // an experiment of calc is in its journal too: the versions are listed all the same (they answered 500 before)
      expect(versions.status, versions.text).toBe(200)
      expect(versions.json.items.map((v: { version: number }) => v.version)).toEqual([1, 2])
      await page.getByRole("link", { name: "Agents" }).click()
      await page.locator("[data-agent=\"calc\"]").getByRole("button", { name: "Versions" }).click()
      const diff = page.locator("[data-diff=\"calc\"]")
      await diff.waitFor()
      await diff.locator("tr[data-kind=\"changed\"] td.del", { hasText: "You compute." }).waitFor()
      await diff.locator("tr[data-kind=\"changed\"] td.ins", { hasText: "You compute, briefly." }).waitFor()
      await page.getByLabel("Input for calc").fill("calculator: 6*7")
      await page.locator("[data-agent=\"calc\"]").getByRole("button", { name: "Forecast cost" }).click()
      const forecast = page.locator("[data-agent=\"calc\"] [data-forecast]")
      await forecast.waitFor()
      expect(await forecast.textContent()).toMatch(/Forecast: \$/)
      await shot("29-agents-diff-forecast")
      await accessibility("agents with a diff and a forecast")
      await page.getByLabel("Compare calc from").selectOption("2")
      await diff.getByText("no differences").waitFor()
      expect(problems).toEqual([])
    }, 60_000)
  }
)
