// Fault injection on Lantern's own processes: the host driving a run SIGKILLed at each step boundary
// (failpoints) and another host finishing the run; hosts racing for one run and sharing many; every process,
// nats-server included, killed while timers and approvals wait. Each run must end as if nothing happened: no
// event lost or duplicated, every model step's effect performed exactly once at the provider.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import * as Completions from "../schema/Completions.ts"
import type { Point } from "../actors/kernel/Failpoints.ts"
import { workSubject } from "../actors/run/Runs.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Topology from "../bus/Topology.ts"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import * as LeaseWatch from "./support/LeaseWatch.ts"
import { deferrals, echoer, MODEL_STEPS, modelEnv, STEPS, TOKENS_IN, TOKENS_OUT } from "./support/Scripted.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"
import { startWorker, type Worker } from "./support/Workers.ts"

const defer = deferrals()

/** The tenant `lantern serve` bootstraps; work subjects and lease keys carry it. */
const TENANT = "dev"

const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), `${prefix}-`))

/** Lantern's output without the access log. */
const quiet = (output: string) => output.split("\n").filter((l) => !l.includes("Sent HTTP response")).join("\n")

/** `lantern serve`, killed after the test and its output printed when the test fails. */
const serve = async (options: Parameters<typeof startStack>[0], role: string): Promise<StackProcess> => {
  const stack = await startStack(options)
  defer(() => stack.kill())
  onTestFailed(() =>
    console.error(
      `--- ${role}: lantern serve (pid ${stack.child.pid}, exit ${
        stack.child.exitCode ?? stack.child.signalCode
      }) ---\n${quiet(stack.output())}`
    )
  )
  return stack
}

/** `lantern worker`, killed after the test and its output printed when the test fails. */
const worker = (options: Parameters<typeof startWorker>[0], role: string): Worker => {
  const w = startWorker(options)
  defer(() => w.cleanup())
  onTestFailed(() =>
    console.error(`--- ${role}: lantern worker (pid ${w.pid}, alive ${w.alive()}) ---\n${quiet(w.output())}`)
  )
  return w
}

/** Resolves once the process has exited, with the signal that ended it. */
const exitOf = (stack: StackProcess, deadlineMs = 30_000) =>
  eventually(
    async () =>
      (stack.child.exitCode !== null || stack.child.signalCode !== null) && { signal: stack.child.signalCode },
    deadlineMs,
    `pid ${stack.child.pid} to exit`
  )

type Call = ReturnType<typeof api>

interface EventItem {
  readonly seq: number
  readonly eventId: string
  readonly type: string
  readonly at: string
  readonly payload: Record<string, any>
}

/** A run's journal through the API (read from the bus, never from the database). */
const journalOf = async (call: Call, runId: string): Promise<Array<EventItem>> => {
  const r = await call("GET", `/v1/runs/${runId}/events`)
  if (r.status !== 200) throw new Error(`GET events of ${runId}: ${r.status} ${r.text}`)
  return r.json.items as Array<EventItem>
}

const isTerminal = (type: string | undefined) =>
  type === "RunSucceeded" || type === "RunFailed" || type === "RunCanceled"

/** Waits until the run's journal ends with a terminal event; returns the journal. */
const finished = (call: Call, runId: string, deadlineMs = 30_000) =>
  eventually(
    async () => {
      const events = await journalOf(call, runId)
      return isTerminal(events[events.length - 1]?.type) ? events : null
    },
    deadlineMs,
    `run ${runId} to finish`
  )

/** Waits until the run has journaled a StepStarted for `stepId`; returns that event. */
const stepStarted = (call: Call, runId: string, stepId: string, deadlineMs = 20_000) =>
  eventually(
    async () => (await journalOf(call, runId)).find((e) => e.type === "StepStarted" && e.payload.stepId === stepId),
    deadlineMs,
    `${stepId} of ${runId} to start`
  )

const startRun = async (call: Call, agentName: string, input: string): Promise<string> => {
  const started = await call("POST", "/v1/runs", { agentName, input })
  expect(started.status, started.text).toBe(201)
  return started.json.id as string
}

interface Expected {
  /** The steps completed, each exactly once, in this order. */
  readonly completed?: ReadonlyArray<string>
  /** The steps that failed, in this order. */
  readonly failed?: ReadonlyArray<string>
  readonly terminal?: "RunSucceeded" | "RunFailed"
}

/**
 * No event lost or duplicated: one RunStarted first, exactly one terminal event last, distinct event ids and
 * increasing sequences, each step completed exactly once and in order (by default a whole `echoer` run).
 */
const expectWholeJournal = (events: ReadonlyArray<EventItem>, expected: Expected = {}) => {
  const { completed = STEPS, failed = [], terminal = "RunSucceeded" } = expected
  const types = events.map((e) => e.type)
  expect(types[0]).toBe("RunStarted")
  expect(types.filter((t) => t === "RunStarted")).toHaveLength(1)
  expect(types.filter(isTerminal)).toEqual([terminal])
  expect(types[types.length - 1]).toBe(terminal)
  expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length)
  const seqs = events.map((e) => e.seq)
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
  expect(new Set(seqs).size).toBe(seqs.length)
  // a StepsCompleted as the step completions it stands for (ADR 0067, 0075)
  const steps = events.flatMap(Completions.expand)
  expect(steps.filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId)).toEqual(completed)
  expect(steps.filter((e) => e.type === "StepFailed").map((e) => e.payload.stepId)).toEqual(failed)
}

/**
 * The starts of a run's steps as `stepId#attempt`, in journal order: each StepStarted, and each local step (a
 * built-in tool) journaled once as a StepCompleted carrying its request.
 */
const startsOf = (events: ReadonlyArray<EventItem>) =>
  events.flatMap(Completions.expand).filter((e) =>
    e.type === "StepStarted" || (e.type === "StepCompleted" && e.payload.request !== undefined)
  )
    .map((e) => `${e.payload.stepId}#${e.payload.attempt}`)

/** Requests and performed effects at the provider per idempotency key of one run. */
const providerView = (model: FakeOpenAi.FakeOpenAi, runId: string) => {
  const mine = (key: string) => key.startsWith(`${runId}:`)
  const requests: Record<string, number> = {}
  for (const r of model.received.filter((r) => mine(r.key))) requests[r.key] = (requests[r.key] ?? 0) + 1
  return { requests, effects: Object.fromEntries([...model.effects].filter(([k]) => mine(k))) }
}

/** Each model step of the run reached the provider's effect exactly once, under its first attempt's key. */
const onceEach = (runId: string) => Object.fromEntries(MODEL_STEPS.map((s) => [`${runId}:${s}:1`, 1]))

const expectSucceeded = async (call: Call, runId: string) => {
  const run = (await call("GET", `/v1/runs/${runId}`)).json
  expect(run).toMatchObject({
    status: "succeeded",
    output: "done after 2 tool calls",
    steps: STEPS.length,
    tokensIn: TOKENS_IN,
    tokensOut: TOKENS_OUT
  })
}

// ---------------------------------------------------------------------------------------------------------
// One bus, one home (its PGlite migrated once, so later `lantern serve` processes start in a few seconds) and
// one scripted provider for the crash and race tests.

let nats: TestServer
let model: FakeOpenAi.FakeOpenAi
let home: string
let leases: LeaseWatch.LeaseWatch

beforeAll(async () => {
  nats = await startServer("lantern-faults-process")
  model = await FakeOpenAi.start(2)
  home = tempDir("lantern-faults-process-home")
  const first = await startStack({ natsUrl: nats.handle.url, home, env: modelEnv(model) })
  try {
    const created = await api(first)("POST", "/v1/agents", echoer)
    expect(created.status, created.text).toBe(201)
  } finally {
    await first.stop()
  }
  leases = await LeaseWatch.start(nats.handle.url, TENANT)
}, 240_000)

afterAll(async () => {
  await leases?.close()
  await model?.close()
  await nats?.cleanup()
  if (home !== undefined) rmSync(home, { recursive: true, force: true })
})

/** Whether each point journals turn-2's StepStarted before the host dies, so the next host starts it again. */
const RESTARTS_STEP: Record<Exclude<Point, "before-run-queued">, boolean> = {
  "before-step-start": false,
  "during-step-start": false,
  "after-step-start": true,
  "after-effect": true,
  "after-step-complete": false
}

describe("the host driving a run SIGKILLed at a step boundary (failpoints on turn-2)", () => {
  // Which host drives a run is up to the work queue: any host with a pull pending may get it, and `lantern
  // serve` drives runs too. So the armed process is the edge itself, alone on the bus when it starts the run:
  // nobody else can take it. A worker joins only once the armed host holds the run's lease (and its work
  // message): it has nothing to take until that host dies, then it is the only host left to finish the run.
  // Only after the run ended does an unarmed edge start, to read the run back. The four points run one after
  // another for the same reason (a shared queue cannot route a run to a chosen host).
  it.each(Object.keys(RESTARTS_STEP) as Array<keyof typeof RESTARTS_STEP>)(
    "%s: another host finishes the run, each step once",
    async (point) => {
      const armed = await serve({
        natsUrl: nats.handle.url,
        home,
        env: { ...modelEnv(model), LANTERN_FAILPOINTS: `${point}:turn-2` }
      }, `armed (${point}:turn-2)`)
      const runId = await startRun(api(armed), "echoer", `crash at ${point}`)
      const armedPid = armed.child.pid!
      await eventually(
        async () => leases.holders(runId).includes(armedPid),
        10_000,
        `the armed host to take run ${runId}`
      )
      const rescuer = worker({ natsUrl: nats.handle.url, env: modelEnv(model) }, "rescuer")

      expect(await exitOf(armed)).toEqual({ signal: "SIGKILL" })
      expect(armed.output()).toContain(`failpoint ${point}:turn-2 hit: killing process ${armedPid}`)
      await eventually(async () => leases.released(runId), 30_000, `run ${runId} to end on the rescuer`)
      // the armed host took the run first, the worker took it over, nobody else held it
      expect(leases.holders(runId)).toEqual([armedPid, rescuer.pid])
      expect(rescuer.alive()).toBe(true)

      const reader = await serve({ natsUrl: nats.handle.url, home, env: modelEnv(model) }, "reader")
      const call = api(reader)
      const events = await finished(call, runId, 10_000)
      expectWholeJournal(events)
      const restarted = RESTARTS_STEP[point]
      expect(startsOf(events)).toEqual([
        "turn-1#1",
        "turn-1.tool-0#1",
        "turn-2#1",
        ...(restarted ? ["turn-2#1"] : []), // a host's death is no new attempt: same idempotency key
        "turn-2.tool-0#1",
        "turn-3#1"
      ])
      // the provider: every effect once. A host dying between the answer and its journaling asked twice; one dying
      // while turn-2's StepStarted was appended, or once it was, may have asked already, since the call is made while
      // it is appended (ADR 0083); the next host asks again under the same key
      const { requests, effects } = providerView(model, runId)
      expect(effects).toEqual(onceEach(runId))
      const asked = point === "after-effect"
        ? [2]
        : point === "during-step-start" || point === "after-step-start"
        ? [1, 2]
        : [1]
      expect(requests).toEqual({ ...onceEach(runId), [`${runId}:turn-2:1`]: expect.toBeOneOf(asked) })
      await expectSucceeded(call, runId)
    },
    60_000
  )
})

/**
 * A run of a host whose turn-2 StepStarted append is held 5 s after its call was made (ADR 0083), once that call
 * has reached the provider.
 */
const heldAtTurn2 = async (input: string) => {
  const host = await serve({
    natsUrl: nats.handle.url,
    home,
    env: { ...modelEnv(model), LANTERN_FAILPOINTS: "during-step-start:turn-2=stall" }
  }, `stalled (during-step-start:turn-2): ${input}`)
  const call = api(host)
  const runId = await startRun(call, "echoer", input)
  await eventually(
    async () => model.received.some((r) => r.key === `${runId}:turn-2:1`),
    20_000,
    `turn-2 of ${runId} to reach the provider`
  )
  return { host, call, runId }
}

describe("a step's call made while its StepStarted is appended (ADR 0083)", () => {
  it("reaches the provider before the StepStarted is journaled; the run ends with each step once", async () => {
    // a call made only once its StepStarted was journaled would reach the provider after the hold, with the
    // StepStarted already in the journal
    const { host, call, runId } = await heldAtTurn2("a call made while its start is appended")
    const journaled = await journalOf(call, runId)
    expect(journaled.filter((e) => e.type === "StepStarted").map((e) => e.payload.stepId)).toEqual(["turn-1"])
    expect(host.output()).toContain("failpoint during-step-start:turn-2 hit: stalling")

    const events = await finished(call, runId, 30_000)
    expectWholeJournal(events)
    expect(startsOf(events)).toEqual(["turn-1#1", "turn-1.tool-0#1", "turn-2#1", "turn-2.tool-0#1", "turn-3#1"])
    const { requests, effects } = providerView(model, runId)
    expect(effects).toEqual(onceEach(runId))
    expect(requests).toEqual(onceEach(runId))
    await expectSucceeded(call, runId)
  }, 60_000)
})

describe("a run cancelled while its step's call is made and its StepStarted appended (ADR 0083)", () => {
  it("journals nothing of the step: the run ends cancelled, the drive stops", async () => {
    const { call, runId } = await heldAtTurn2("cancelled while its call is made")
    const cancelled = await call("POST", `/v1/runs/${runId}/cancel`, { reason: "while its call is made" })
    expect(cancelled.status, cancelled.text).toBe(200)
    // the held append is refused once the hold ends (the run has ended): the drive reads the journal again and stops
    await eventually(async () => leases.released(runId), 30_000, `the drive of ${runId} to stop`)
    const events = await journalOf(call, runId)
    expect(events.map((e) => e.type).filter(isTerminal)).toEqual(["RunCanceled"])
    expect(events[events.length - 1]!.type).toBe("RunCanceled")
    expect(startsOf(events)).toEqual(["turn-1#1", "turn-1.tool-0#1"])
    expect(providerView(model, runId).requests).toEqual({ [`${runId}:turn-1:1`]: 1, [`${runId}:turn-2:1`]: 1 })
    expect((await call("GET", `/v1/runs/${runId}`)).json.status).toBe("canceled")
  }, 60_000)
})

describe("the host starting a run SIGKILLed after journaling it, before queueing it", () => {
  it("the watchdog finds the run by its lease entry and another host finishes it", async () => {
    const armed = await serve({
      natsUrl: nats.handle.url,
      home,
      env: { ...modelEnv(model), LANTERN_FAILPOINTS: "before-run-queued" }
    }, "armed (before-run-queued)")
    const input = `never queued ${Date.now()}`
    // the request is never answered: its host dies inside it, after RunStarted, before the work message
    const reply = api(armed)("POST", "/v1/runs", { agentName: "echoer", input }).then(
      () => "answered",
      () => "connection lost"
    )
    expect(await exitOf(armed)).toEqual({ signal: "SIGKILL" })
    expect(await reply).toBe("connection lost")
    expect(armed.output()).toMatch(/failpoint before-run-queued:run_\w+ hit/)

    // nobody retries the request: the run must still be driven, found through the entry registered before it
    const rescuer = await serve({ natsUrl: nats.handle.url, home, env: modelEnv(model) }, "rescuer")
    const call = api(rescuer)
    const runId = await eventually(
      async () => {
        const listed = (await call("GET", "/v1/runs?agentName=echoer&limit=200")).json?.items as
          | Array<{ id: string; input: unknown }>
          | undefined
        return listed?.find((r) => r.input === input)?.id
      },
      20_000,
      "the journaled run to be projected"
    )
    const events = await finished(call, runId, 30_000)
    expectWholeJournal(events)
    expect(providerView(model, runId).effects).toEqual(onceEach(runId))
    await expectSucceeded(call, runId)
  }, 60_000)
})

describe("a client that drops its POST /v1/runs after the run is journaled", () => {
  it("does not strand the run: the start completes, and the host drives it", async () => {
    const stalled = await serve({
      natsUrl: nats.handle.url,
      home,
      env: { ...modelEnv(model), LANTERN_FAILPOINTS: "before-run-queued=stall" }
    }, "stalled (before-run-queued=stall)")
    const call = api(stalled)
    const input = `dropped ${Date.now()}`
    const abort = new AbortController()
    const reply = fetch(`${stalled.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${stalled.token}`, "content-type": "application/json" },
      body: JSON.stringify({ agentName: "echoer", input }),
      signal: abort.signal
    }).then(() => "answered", () => "aborted")
    // the request is inside the start, after RunStarted, when its client goes away
    await eventually(
      async () => /failpoint before-run-queued:run_\w+ hit: stalling/.test(stalled.output()) || null,
      30_000,
      "the start to reach the stalled failpoint"
    )
    abort.abort()
    expect(await reply).toBe("aborted")
    const runId = await eventually(
      async () => {
        const listed = (await call("GET", "/v1/runs?agentName=echoer&limit=200")).json?.items as
          | Array<{ id: string; input: unknown }>
          | undefined
        return listed?.find((r) => r.input === input)?.id
      },
      20_000,
      "the journaled run to be projected"
    )
    const events = await finished(call, runId, 30_000)
    expectWholeJournal(events)
    await expectSucceeded(call, runId)
  }, 90_000)
})

describe("hosts sharing the work queue", () => {
  let edge: StackProcess
  let workers: ReadonlyArray<Worker>
  let nc: NatsConnection

  /** Queues work for `runId` under a fresh message id (the work stream dedupes equal ids). */
  const queue = (runId: string, msgID: string) =>
    jetstream(nc).publish(workSubject(TENANT, runId), JSON.stringify({ tenant: TENANT, runId }), { msgID })

  const hostsOutput = () =>
    [
      `--- edge: lantern serve (pid ${edge.child.pid}) ---\n${quiet(edge.output())}`,
      ...workers.map((w) => `--- lantern worker (pid ${w.pid}, alive ${w.alive()}) ---\n${quiet(w.output())}`)
    ].join("\n")
  /** Prints the hosts' output if the calling test fails. */
  const showHostsOnFailure = () => onTestFailed(() => console.error(hostsOutput()))

  beforeAll(async () => {
    const env = modelEnv(model)
    nc = await connect({ servers: nats.handle.url, name: "faults-process-queue" })
    // the edge queues every run it starts, so the work queue spreads them over all three hosts
    edge = await startStack({ natsUrl: nats.handle.url, home, env: { ...env, LANTERN_DRIVE_LOCAL: "false" } })
    workers = [startWorker({ natsUrl: nats.handle.url, env }), startWorker({ natsUrl: nats.handle.url, env })]
    // A worker says nothing when it is ready, so probe: work for a run id that was never started is taken like
    // any other (the taker holds its lease for a moment, finds no run and releases it). Probe until each worker
    // has taken some, so both are pulling before the tests below queue anything.
    try {
      await eventually(
        async () => {
          const id = `run_probe${Math.random().toString(36).slice(2, 12)}`
          await queue(id, `probe:${id}`)
          await eventually(async () => leases.released(id), 5_000, `probe ${id} to be taken`)
          const took = leases.allHolders()
          return workers.every((w) => took.has(w.pid))
        },
        45_000,
        "both workers to take work"
      )
    } catch (e) {
      throw new Error(`${String(e)}\n${hostsOutput()}`)
    }
  }, 90_000)

  afterAll(async () => {
    await Promise.all([edge?.kill(), ...(workers ?? []).map((w) => w.cleanup())])
    await nc?.close()
  })

  it("spreads runs over the hosts: of twenty runs, each worker drives some, each run exactly once", async () => {
    showHostsOnFailure()
    const call = api(edge)
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => startRun(call, "echoer", `spread ${i}`)))
    const drivenBy = new Map<number, number>()
    for (const id of ids) {
      const events = await finished(call, id)
      expectWholeJournal(events)
      expect(startsOf(events)).toEqual(STEPS.map((s) => `${s}#1`))
      expect(providerView(model, id)).toEqual({ requests: onceEach(id), effects: onceEach(id) })
      const holders = leases.holders(id)
      expect(holders).toHaveLength(1)
      drivenBy.set(holders[0]!, (drivenBy.get(holders[0]!) ?? 0) + 1)
    }
    const spread = `runs driven per pid: ${JSON.stringify(Object.fromEntries(drivenBy))} (edge ${edge.child.pid})`
    for (const w of workers) expect(drivenBy.get(w.pid) ?? 0, spread).toBeGreaterThan(0)
  }, 60_000)

  it("hosts handed the same run at once: exactly one drives it, each step once", async () => {
    showHostsOnFailure()
    const call = api(edge)
    const jsm = await jetstreamManager(nc)
    // the drivers' consumer counts its unacknowledged messages that were delivered more than once
    const redelivered = async () => (await jsm.consumers.info(Topology.WORK, "run-driver")).num_redelivered
    // turn-1's answer is held, so whoever took the run is still driving it while the duplicates go round
    const release = model.block("turn-1")
    defer(async () => release())
    const runId = await startRun(call, "echoer", "raced")
    const DUPLICATES = 6
    await Promise.all(Array.from({ length: DUPLICATES }, (_, i) => queue(runId, `race:${runId}:${i}`)))
    await model.waitFor("turn-1", 1, runId)
    // every duplicate reached a host that found the lease taken (or the run already in its own hands), was
    // handed back to the queue and delivered again; the original stays with the driving host
    await eventually(async () => (await redelivered()) >= DUPLICATES, 20_000, "the duplicates to be refused")
    release()

    const events = await finished(call, runId)
    expectWholeJournal(events)
    expect(startsOf(events)).toEqual(STEPS.map((s) => `${s}#1`)) // no step started again: nobody else drove it
    expect(providerView(model, runId)).toEqual({ requests: onceEach(runId), effects: onceEach(runId) })
    expect(leases.holders(runId)).toHaveLength(1)
    await expectSucceeded(call, runId)
    // the duplicates were consumed once the run had ended (its next taker found nothing to do), none is stuck
    await eventually(
      async () => (await jsm.streams.info(Topology.WORK)).state.messages === 0,
      20_000,
      "the work queue to drain"
    )
  }, 60_000)
})

describe("every process SIGKILLed while runs wait (nats-server included), then restarted", () => {
  const tool = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    description: name,
    parameters: { type: "object", properties: {} },
    ...extra
  })
  const agent = (name: string, tools: ReadonlyArray<unknown>) => ({
    name,
    spec: { systemPrompt: `You are ${name}.`, maxTurns: 4, tools }
  })
  const APPROVAL = "turn-1.tool-0.approval"

  it("fires the timer after the restart, keeps the approval pending until decided, expires a short one", async () => {
    // a bus of its own whose file store the test keeps across the crash; the offline provider answers the models
    const dir = tempDir("lantern-faults-restart")
    defer(async () => rmSync(dir, { recursive: true, force: true }))
    const store = join(dir, "js")
    let bus = await NatsServer.start({ storeDir: store })
    defer(() => bus.kill())
    const stackHome = join(dir, "home")
    const first = await serve({ natsUrl: bus.url, home: stackHome }, "before the crash")
    let call = api(first)
    for (
      const a of [
        agent("sleeper", [tool("sleep")]),
        agent("careful", [tool("echo", { approval: { expiresInSeconds: 3600 } })]),
        agent("hasty", [tool("echo", { approval: { expiresInSeconds: 6 } })])
      ]
    ) {
      const r = await call("POST", "/v1/agents", a)
      expect(r.status, r.text).toBe(201)
    }
    // all three wait at once: a timer due in 4 s, an approval due in an hour, one due in 6 s
    const [sleeper, careful, hasty] = await Promise.all([
      startRun(call, "sleeper", "sleep 4 seconds"),
      startRun(call, "careful", "echo hi"),
      startRun(call, "hasty", "echo soon")
    ])
    const [timer, , short] = await Promise.all([
      stepStarted(call, sleeper, "turn-1.tool-0"),
      stepStarted(call, careful, APPROVAL),
      stepStarted(call, hasty, APPROVAL)
    ])

    await first.kill()
    await bus.kill()
    const crashedAt = Date.now()
    expect(first.child.signalCode).toBe("SIGKILL")
    expect(bus.process.signalCode).toBe("SIGKILL")
    // nothing was due yet when everything died
    expect(timer.payload.request).toMatchObject({ _tag: "sleep", seconds: 4 })
    expect(crashedAt).toBeLessThan(timer.payload.wakeAt)
    expect(crashedAt).toBeLessThan(short.payload.wakeAt)

    bus = await NatsServer.start({ storeDir: store, port: bus.port })
    const second = await serve({ natsUrl: bus.url, home: stackHome }, "after the restart")
    call = api(second)

    // the timer fires after the restart (nobody was alive before), once
    const slept = await finished(call, sleeper)
    expectWholeJournal(slept, { completed: ["turn-1", "turn-1.tool-0", "turn-2"] })
    const fired = slept.find((e) => e.type === "StepCompleted" && e.payload.stepId === "turn-1.tool-0")!
    expect(Date.parse(fired.at)).toBeGreaterThan(crashedAt)
    expect(Date.parse(fired.at)).toBeGreaterThanOrEqual(timer.payload.wakeAt)
    expect(startsOf(slept)).toEqual(["turn-1#1", "turn-1.tool-0#1", "turn-2#1"])
    const sleptRun = (await call("GET", `/v1/runs/${sleeper}`)).json
    expect(sleptRun.status).toBe("succeeded")
    expect(sleptRun.output).toContain("slept 4 seconds")

    // the short approval expired after the restart: the run failed, once
    const expired = await finished(call, hasty)
    expectWholeJournal(expired, { completed: ["turn-1"], failed: [APPROVAL], terminal: "RunFailed" })
    const failedStep = expired.find((e) => e.type === "StepFailed")!
    expect(failedStep.payload).toMatchObject({ stepId: APPROVAL, error: { code: "approval_expired" } })
    expect(Date.parse(failedStep.at)).toBeGreaterThan(crashedAt)
    expect((await call("GET", `/v1/runs/${hasty}`)).json.error.code).toBe("approval_expired")

    // the long approval is still pending: decided after the restart, the run goes on
    const waiting = await journalOf(call, careful)
    expect(waiting.filter((e) => e.payload.stepId === APPROVAL).map((e) => e.type)).toEqual(["StepStarted"])
    expect((await call("GET", `/v1/runs/${careful}`)).json.status).toBe("running")
    const approved = await call("POST", `/v1/runs/${careful}/approvals/${APPROVAL}`, {
      approved: true,
      by: "ops@example.com"
    })
    expect(approved.status, approved.text).toBe(200)
    const done = await finished(call, careful)
    expectWholeJournal(done, { completed: ["turn-1", APPROVAL, "turn-1.tool-0", "turn-2"] })
    expect(startsOf(done)).toEqual(["turn-1#1", `${APPROVAL}#1`, "turn-1.tool-0#1", "turn-2#1"])
    const run = (await call("GET", `/v1/runs/${careful}`)).json
    expect(run.status).toBe("succeeded")
    expect(run.output).toContain("echo hi")
  }, 90_000)
})
