// Records the golden journals tests/replay.test.ts replays: drives scenarios against the real `lantern serve`
// process, then copies each actor's stored messages byte for byte out of JetStream next to their summary.
// The router and budget scenarios are in scripts/journals/.
//
//   node --import tsx scripts/record-journals.ts [--out <dir>]   (default: tests/fixtures/journals)
//
// Only to ADD scenarios: a journal whose files already exist in the output directory is kept as it is, never
// re-recorded (see tests/fixtures/journals/README.md).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import * as NatsServer from "../bus/NatsServer.ts"
import * as FakeOpenAi from "../tests/support/FakeOpenAi.ts"
import * as Replay from "../tests/support/Replay.ts"
import { api, eventually, ROOT, type StackProcess, startStack } from "../tests/support/Stack.ts"
import * as Budgets from "./journals/Budgets.ts"
import {
  agentSubject,
  eventsOf,
  must,
  readRaw,
  type Recording,
  runSubject,
  startRun,
  stepStarted,
  waitStatus
} from "./journals/Drive.ts"
import * as ScriptedProvider from "./journals/Provider.ts"
import * as Routed from "./journals/Routed.ts"

const outDir = (() => {
  const i = process.argv.indexOf("--out")
  return resolve(
    i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : join(ROOT, "tests/fixtures/journals")
  )
})()

const toolsAgent = {
  name: "toolsmith",
  description: "calls the built-in tools",
  spec: {
    systemPrompt: "Use the tools you are given.",
    maxTurns: 4,
    tools: [
      {
        name: "calculator",
        description: "arithmetic",
        parameters: { type: "object", properties: { expression: { type: "string" } } }
      },
      {
        name: "word_count",
        description: "counts words",
        parameters: { type: "object", properties: { text: { type: "string" } } }
      }
    ]
  }
}

/** Scenarios on the offline provider. */
const offlineScenarios = async (stack: StackProcess): Promise<ReadonlyArray<Recording>> => {
  const call = api(stack)
  await must(call, "POST", "/v1/agents", 201, {
    name: "greeter",
    description: "says hello",
    spec: { systemPrompt: "Greet the user." }
  })
  await must(call, "PUT", "/v1/agents/greeter", 200, {
    description: "says hello, briefly",
    spec: { systemPrompt: "Greet the user in one line.", maxTurns: 2 }
  })
  const plain = await startRun(call, "greeter", "hello, replay")
  await must(call, "POST", "/v1/agents", 201, toolsAgent)
  const tools = await startRun(
    call,
    "toolsmith",
    "Use the calculator on (2+3)*4 and the word_count of this very sentence"
  )
  await waitStatus(call, plain, "succeeded")
  await waitStatus(call, tools, "succeeded")
  const startedStep = (stepId: string) => (l: Replay.Line) => {
    const d = l.data as { type?: string; payload?: { stepId?: string } }
    return d.type === "StepStarted" && d.payload?.stepId === stepId
  }
  return [
    { name: "agent-created-then-updated", subject: agentSubject("greeter") },
    { name: "run-offline-plain", subject: runSubject(plain) },
    { name: "run-offline-tools", subject: runSubject(tools) },
    // since local steps (built-in tools) are journaled once: the same run, its tool steps one StepCompleted each
    { name: "run-offline-tools-journaled-once", subject: runSubject(tools) },
    // since local steps ready together are journaled as one event (ADR 0067): the same run, its two tool steps one
    // StepsCompleted
    { name: "run-offline-tools-journaled-together", subject: runSubject(tools) },
    // what a host death leaves: the last event is a StepStarted whose effect never completed
    {
      name: "run-crash-after-tool-step-started",
      subject: runSubject(tools),
      truncateAfter: startedStep("turn-1.tool-1")
    },
    { name: "run-crash-after-model-step-started", subject: runSubject(tools), truncateAfter: startedStep("turn-2") }
  ]
}

const tool = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  description: name,
  parameters: { type: "object", properties: {} },
  ...extra
})

const agentWith = (name: string, tools: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  spec: { systemPrompt: `You are ${name}.`, maxTurns: 4, tools, ...extra }
})

const APPROVAL = "turn-1.tool-0.approval"

/** Durable waits on the offline provider (the offline model calls every declared tool the input names). */
const durableScenarios = async (stack: StackProcess): Promise<ReadonlyArray<Recording>> => {
  const call = api(stack)
  for (
    const a of [
      agentWith("sleeper", [tool("sleep")]),
      agentWith("careful", [tool("echo", { approval: { expiresInSeconds: 600 } })]),
      agentWith("hasty", [tool("echo", { approval: { expiresInSeconds: 1 } })]),
      agentWith("researcher", [tool("word_count")]),
      agentWith("lead", [tool("research", { agent: "researcher" })])
    ]
  ) await must(call, "POST", "/v1/agents", 201, a)
  const sleeper = await startRun(call, "sleeper", "sleep 1 seconds")
  const approved = await startRun(call, "careful", "echo hello")
  const rejected = await startRun(call, "careful", "echo secrets")
  const expired = await startRun(call, "hasty", "echo now")
  const parent = await startRun(call, "lead", "research: the word_count of this sentence")
  await stepStarted(call, approved, APPROVAL)
  await must(call, "POST", `/v1/runs/${approved}/approvals/${APPROVAL}`, 200, {
    approved: true,
    by: "ops@example.com",
    reason: "looks fine"
  })
  await stepStarted(call, rejected, APPROVAL)
  await must(call, "POST", `/v1/runs/${rejected}/approvals/${APPROVAL}`, 200, {
    approved: false,
    by: "ops",
    reason: "no"
  })
  await waitStatus(call, sleeper, "succeeded")
  await waitStatus(call, approved, "succeeded")
  await waitStatus(call, rejected, "succeeded")
  await waitStatus(call, expired, "failed")
  await waitStatus(call, parent, "succeeded")
  const agentStep = (await eventsOf(call, parent)).find((e) =>
    e.type === "StepStarted" && e.payload.request?._tag === "agent"
  )
  if (agentStep === undefined) throw new Error(`run ${parent} started no child run`)
  const child: string = agentStep.payload.request.childRunId
  await waitStatus(call, child, "succeeded")
  const approvalStarted = (l: Replay.Line) => {
    const d = l.data as { type?: string; payload?: { stepId?: string } }
    return d.type === "StepStarted" && d.payload?.stepId === APPROVAL
  }
  return [
    { name: "run-sleep", subject: runSubject(sleeper) },
    { name: "run-approval-approved", subject: runSubject(approved) },
    { name: "run-approval-rejected", subject: runSubject(rejected) },
    { name: "run-approval-expired", subject: runSubject(expired) },
    // a run parked on a human: next is Wait on the approval step, nothing to execute
    { name: "run-approval-waiting", subject: runSubject(approved), truncateAfter: approvalStarted },
    { name: "run-child-parent", subject: runSubject(parent) },
    { name: "run-child-child", subject: runSubject(child) }
  ]
}

/** Scenarios on the scripted OpenAI-compatible provider. */
const providerScenarios = async (
  stack: StackProcess,
  provider: ScriptedProvider.Provider
): Promise<ReadonlyArray<Recording>> => {
  const call = api(stack)
  await must(call, "POST", "/v1/agents", 201, {
    name: "remote",
    spec: { systemPrompt: "Answer briefly.", maxTurns: 3 }
  })
  const held = await startRun(call, "remote", "[hold] think for a long time")
  await eventually(async () => provider.received.includes(`${held}:turn-1:1`), 30_000, "the held model call")
  const canceled = await must(call, "POST", `/v1/runs/${held}/cancel`, 200, { reason: "operator changed their mind" })
  if (canceled.status !== "canceled") throw new Error(`cancel answered ${JSON.stringify(canceled)}`)
  const retried = await startRun(call, "remote", { ticket: 42, text: "[fail-once] summarise the ticket" })
  const failed = await startRun(call, "remote", "[fail-hard] this request is refused")
  await waitStatus(call, retried, "succeeded")
  await waitStatus(call, failed, "failed")
  return [
    { name: "run-canceled-in-flight", subject: runSubject(held) },
    { name: "run-provider-retry-then-success", subject: runSubject(retried) },
    // a host death between a retryable failure and the retry: next is Execute of the failed step
    {
      name: "run-crash-after-retryable-step-failed",
      subject: runSubject(retried),
      truncateAfter: (l) => (l.data as { type?: string }).type === "StepFailed"
    },
    { name: "run-provider-fails-for-good", subject: runSubject(failed) }
  ]
}

const echo = {
  name: "echo",
  description: "echo",
  parameters: { type: "object", properties: { text: { type: "string" } } }
}

const fakeEnv = (model: FakeOpenAi.FakeOpenAi) => ({
  OPENAI_API_KEY: "test-key",
  OPENAI_BASE_URL: model.url,
  LANTERN_OPENAI_MODEL: "fake-1",
  LANTERN_WATCHDOG_INTERVAL: "200 millis"
})

/** The retry policy against tests/support/FakeOpenAi (one echo round, then a final answer). */
const retryScenarios = async (stack: StackProcess, model: FakeOpenAi.FakeOpenAi): Promise<ReadonlyArray<Recording>> => {
  const call = api(stack)
  await must(
    call,
    "POST",
    "/v1/agents",
    201,
    agentWith("patient", [echo], { retry: { maxAttempts: 3, initialBackoffMs: 100, jitter: 0 } })
  )
  await must(call, "POST", "/v1/agents", 201, agentWith("echoer", [echo]))
  model.failFirst("turn-1", 2, { status: 503 })
  const retried = await startRun(call, "patient", "go")
  await waitStatus(call, retried, "succeeded")
  return [{ name: "run-retry-policy", subject: runSubject(retried) }]
}

/**
 * A real host death: a `lantern serve` armed with the `after-step-start:turn-2` failpoint SIGKILLs itself once
 * turn-2's StepStarted is journaled; a second one takes the run over (expired lease) and restarts turn-2 under
 * the same attempt (same idempotency key).
 */
const crashRestart = async (
  natsUrl: string,
  home: string,
  model: FakeOpenAi.FakeOpenAi,
  stacks: Array<StackProcess>
): Promise<ReadonlyArray<Recording>> => {
  const armed = await startStack({
    natsUrl,
    home,
    env: { ...fakeEnv(model), LANTERN_FAILPOINTS: "after-step-start:turn-2" }
  })
  stacks.push(armed)
  const runId = await startRun(api(armed), "echoer", "go, and survive a crash")
  await eventually(async () => armed.child.signalCode === "SIGKILL", 30_000, "the armed host to kill itself")
  const rescuer = await startStack({ natsUrl, home, env: fakeEnv(model) })
  stacks.push(rescuer)
  await waitStatus(api(rescuer), runId, "succeeded")
  await rescuer.stop()
  return [{ name: "run-crash-restart-same-attempt", subject: runSubject(runId) }]
}

const write = (recording: Recording, all: ReadonlyArray<Replay.Line>) => {
  const journal = join(outDir, `${recording.name}.jsonl`)
  const expected = join(outDir, `${recording.name}.expected.json`)
  if (existsSync(journal) || existsSync(expected)) {
    console.log(`${recording.name}: kept (already recorded)`)
    return
  }
  const cut = recording.truncateAfter === undefined ? all.length : all.findIndex(recording.truncateAfter) + 1
  if (cut === 0) throw new Error(`${recording.name}: the truncation point is not in the journal`)
  const lines = all.slice(0, cut)
  const summary = Replay.summarize(lines)
  writeFileSync(journal, Replay.toJsonl(lines))
  writeFileSync(expected, JSON.stringify(summary, null, 2) + "\n")
  const s = summary as { status?: string; next?: { _tag: string; stepId?: string } }
  console.log(
    `${recording.name}: ${lines.length} events${
      s.status === undefined ? "" : `, ${s.status}, next ${s.next?._tag} ${s.next?.stepId ?? ""}`
    }`
  )
}

const main = async () => {
  const began = Date.now()
  const dir = mkdtempSync(join(tmpdir(), "lantern-record-"))
  const nats = await NatsServer.start({ storeDir: join(dir, "js") })
  const provider = await ScriptedProvider.start()
  const fake = await FakeOpenAi.start(1)
  const budgeted = await FakeOpenAi.start(2)
  const home = join(dir, "home")
  const stacks: Array<StackProcess> = []
  let phaseBegan = Date.now()
  const phase = (name: string) => {
    console.log(`${name}: ${((Date.now() - phaseBegan) / 1000).toFixed(1)} s`)
    phaseBegan = Date.now()
  }
  try {
    // one host at a time: both would consume the same work queue, and the provider is chosen per process
    const offline = await startStack({ natsUrl: nats.url, home, env: { LANTERN_WATCHDOG_INTERVAL: "200 millis" } })
    stacks.push(offline)
    const recordings = [...(await offlineScenarios(offline))]
    phase("offline scenarios")
    recordings.push(...(await durableScenarios(offline)))
    phase("durable waits (sleep, approvals, child run)")
    await offline.stop()
    const remote = await startStack({
      natsUrl: nats.url,
      home,
      env: { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: provider.url, LANTERN_OPENAI_MODEL: "gpt-4o-mini" }
    })
    stacks.push(remote)
    recordings.push(...(await providerScenarios(remote, provider)))
    await remote.stop()
    phase("scripted-provider scenarios")
    const retrying = await startStack({ natsUrl: nats.url, home, env: fakeEnv(fake) })
    stacks.push(retrying)
    recordings.push(...(await retryScenarios(retrying, fake)))
    await retrying.stop()
    phase("retry policy")
    recordings.push(...(await crashRestart(nats.url, home, fake, stacks)))
    phase("crash and restart")
    recordings.push(...(await Routed.record(nats.url, home, dir, provider, stacks)))
    phase("router failover")
    const budgetEnv = Budgets.env(budgeted, dir)
    recordings.push(...(await Budgets.record(nats.url, home, budgetEnv, stacks)))
    phase("budgets")
    recordings.push(...(await Budgets.recordExpiry(nats.url, home, budgetEnv, budgeted, stacks)))
    phase("budget reservation expiry")
    recordings.push(...(await Budgets.recordTenantRefusal(nats.url, home, budgetEnv, stacks)))
    phase("tenant budget refusal")
    mkdirSync(outDir, { recursive: true })
    for (const r of recordings) write(r, await readRaw(nats.url, r.subject))
    console.log(
      `${recordings.length} scenarios driven in ${((Date.now() - began) / 1000).toFixed(1)} s; journals in ${outDir}`
    )
  } catch (e) {
    for (const s of stacks) console.error(`--- lantern output ---\n${s.output()}`)
    throw e
  } finally {
    for (const s of stacks) await s.kill()
    await provider.close()
    await fake.close()
    await budgeted.close()
    await nats.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
