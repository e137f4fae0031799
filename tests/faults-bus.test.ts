// Fault injection on the infrastructure under a live `lantern serve`: the nats-server killed and restarted,
// a node of a three-node cluster killed (the runs stream's leader; the runs projector's consumer's host),
// Postgres down for a while. Each run must end as if nothing happened: no event lost or duplicated, every
// model step's effect performed exactly once, and the projections caught up.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { jetstreamManager } from "@nats-io/jetstream"
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import pg from "pg"
import { describe, expect, it, onTestFailed } from "vitest"
import * as Completions from "../schema/Completions.ts"
import type { Journal } from "../bus/Journal.ts"
import type { Nats } from "../bus/Nats.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Topology from "../bus/Topology.ts"
import * as Migrations from "../projections/Migrations.ts"
import * as Projector from "../projections/Projector.ts"
import { Sql } from "../projections/Sql.ts"
import { busLayer } from "./support/Bus.ts"
import * as Cluster from "./support/Cluster.ts"
import * as FakeOpenAi from "./support/FakeOpenAi.ts"
import { deferrals, echoer as agent, MODEL_STEPS, modelEnv, STEPS } from "./support/Scripted.ts"
import * as Postgres from "./support/Postgres.ts"
import { api, eventually, startStack, type StackProcess } from "./support/Stack.ts"

const defer = deferrals()

const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`))
  defer(async () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Lantern's output without the access log. */
const quiet = (output: string) => output.split("\n").filter((l) => !l.includes("Sent HTTP response")).join("\n")

const stackWith = async (options: Parameters<typeof startStack>[0]): Promise<StackProcess> => {
  const stack = await startStack(options)
  defer(() => stack.kill())
  onTestFailed(() =>
    console.error(
      `--- lantern serve output (pid ${stack.child.pid}, exit ${stack.child.exitCode ?? stack.child.signalCode}) ---\n${
        quiet(stack.output())
      }`
    )
  )
  return stack
}

type Call = ReturnType<typeof api>

/** Why a request to lantern serve failed: the process is gone (with how it ended and its last words) or not. */
const gone = async (stack: StackProcess, cause: unknown): Promise<Error> => {
  const { child } = stack
  if (child.exitCode === null && child.signalCode === null) {
    await new Promise<void>((r) => {
      const timer = setTimeout(r, 2000)
      child.once("exit", () => (clearTimeout(timer), r()))
    })
  }
  const exit = child.exitCode ?? child.signalCode
  if (exit === null) return new Error(`lantern serve (still running) did not answer: ${String(cause)}`)
  return new Error(
    `lantern serve exited (${exit}) during the test; its last output:\n${quiet(stack.output()).slice(-3000)}`
  )
}

/** `api(stack)`, except that a failed connection says whether and how lantern serve died. */
const client = (stack: StackProcess): Call => {
  const call = api(stack)
  return async (...args) => {
    try {
      return await call(...args)
    } catch (e) {
      throw await gone(stack, e)
    }
  }
}

const readyz = async (stack: StackProcess): Promise<unknown> => {
  try {
    return await (await fetch(`${stack.url}/readyz`)).json()
  } catch (e) {
    throw await gone(stack, e)
  }
}

interface EventItem {
  readonly seq: number
  readonly eventId: string
  readonly type: string
  readonly payload: { readonly stepId?: string; readonly attempt?: number }
}

/** A run's journal through the API (read from the bus, never from the database). */
const journalOf = async (call: Call, runId: string): Promise<Array<EventItem>> => {
  const r = await call("GET", `/v1/runs/${runId}/events`)
  if (r.status !== 200) throw new Error(`GET events of ${runId}: ${r.status} ${r.text}`)
  return r.json.items as Array<EventItem>
}

/** Waits until the run's journal ends with a terminal event; returns the journal. */
const finished = (call: Call, runId: string, deadlineMs = 30_000) =>
  eventually(
    async () => {
      const events = await journalOf(call, runId)
      const last = events[events.length - 1]?.type
      return last === "RunSucceeded" || last === "RunFailed" || last === "RunCanceled" ? events : null
    },
    deadlineMs,
    `run ${runId} to finish`
  )

/**
 * The run succeeded, its journal holds every event exactly once (distinct ids, increasing sequences, each
 * step completed once, in order) and the provider performed each model step's effect exactly once, under
 * the key of the step's first attempt (a broker or database fault is no reason for another attempt).
 */
const expectExactlyOnce = (events: ReadonlyArray<EventItem>, model: FakeOpenAi.FakeOpenAi, runId: string) => {
  const types = events.map((e) => e.type)
  expect(types[0]).toBe("RunStarted")
  expect(types[types.length - 1]).toBe("RunSucceeded")
  expect(types.filter((t) => t === "RunStarted")).toHaveLength(1)
  expect(types.filter((t) => t === "RunSucceeded")).toHaveLength(1)
  expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length)
  const seqs = events.map((e) => e.seq)
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
  expect(new Set(seqs).size).toBe(seqs.length)
  // a StepsCompleted as the step completions it stands for (ADR 0067, 0075)
  const steps = events.flatMap(Completions.expand)
  const completed = steps.filter((e) => e.type === "StepCompleted").map((e) => e.payload.stepId)
  expect(completed).toEqual(STEPS)
  // a step starts with a StepStarted, or, for a built-in tool, is journaled once with its request
  const starts = steps.filter((e) =>
    e.type === "StepStarted" ||
    (e.type === "StepCompleted" && (e.payload as { request?: unknown }).request !== undefined)
  ).map((e) => `${e.payload.stepId}#${e.payload.attempt}`)
  expect(new Set(starts).size).toBe(starts.length)
  expect(events.filter((e) => e.type === "StepFailed")).toEqual([])
  const effects = [...model.effects].filter(([key]) => key.startsWith(`${runId}:`))
  expect(effects).toEqual(MODEL_STEPS.map((step) => [`${runId}:${step}:1`, 1]))
}

/** The run's projected row, once the projection shows it finished. */
const projected = (call: Call, runId: string, deadlineMs = 15_000) =>
  eventually(
    async () => {
      const r = await call("GET", "/v1/runs?agentName=echoer&limit=200")
      const row = (r.json?.items as Array<{ id: string; status: string }> | undefined)?.find((x) => x.id === runId)
      return row !== undefined && row.status !== "running" ? row : null
    },
    deadlineMs,
    `the projection of run ${runId}`
  )

const startRun = async (call: Call, input: string): Promise<string> => {
  const started = await call("POST", "/v1/runs", { agentName: "echoer", input })
  expect(started.status, started.text).toBe(201)
  return started.json.id as string
}

/**
 * One nats-server on a store of its own (`bus`: the one running now, replaced by a restart), the fake provider, lantern
 * serve on them and the agent created.
 */
const singleServerStack = async (prefix: string) => {
  const store = join(tempDir(prefix), "js")
  const single = { store, bus: await NatsServer.start({ storeDir: store }) }
  defer(() => single.bus.kill())
  const model = await FakeOpenAi.start(2)
  defer(() => model.close())
  const stack = await stackWith({ natsUrl: single.bus.url, env: modelEnv(model) })
  const call = client(stack)
  expect((await call("POST", "/v1/agents", agent)).status).toBe(201)
  return Object.assign(single, { port: single.bus.port, model, stack, call })
}

describe("nats-server killed and restarted mid-run", () => {
  it("finishes the run once the bus is back; lantern reconnects by itself", async () => {
    const single = await singleServerStack("lantern-faults-nats")
    const { store, port, model, stack, call } = single

    // the provider holds turn-2's answer; kill the broker while the call is in flight
    const release = model.block("turn-2")
    const runId = await startRun(call, "go")
    await model.waitFor("turn-2", undefined, runId)
    // a live follower of the run's events stays connected to lantern across the broker's restart
    const response = await fetch(`${stack.url}/v1/runs/${runId}/stream`, {
      headers: { authorization: `Bearer ${stack.token}` }
    })
    expect(response.status).toBe(200)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let sse = ""
    const followed = (async () => {
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) sse += decoder.decode(chunk.value)
      return sse
    })()
    await eventually(
      async () => sse.includes("event: StepStarted"),
      10_000,
      "the follower to receive the run's first events"
    )
    await single.bus.kill()
    expect(single.bus.process.signalCode).toBe("SIGKILL")

    // the answer arrives while the bus is down: completing the step has to wait for it
    release()
    await eventually(
      async () => model.answered.get(`${runId}:turn-2:1`) === 1,
      10_000,
      "turn-2's answer to be delivered"
    )
    single.bus = await NatsServer.start({ storeDir: store, port })

    const events = await finished(call, runId)
    expectExactlyOnce(events, model, runId)
    // the follower resubscribed after the last event it had and got every event once, in order, then the end
    const streamed = [...(await followed).matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    expect(streamed).toEqual(events.map((e) => e.seq))
    expect(stack.child.exitCode).toBeNull() // the same process, never restarted
    expect(stack.child.signalCode).toBeNull()
    expect(await readyz(stack)).toMatchObject({ bus: "ok", database: "ok", deadLetters: 0 })

    // the work queue and projections resubscribed: a run started after the outage goes through too
    const after = await startRun(call, "again")
    expectExactlyOnce(await finished(call, after), model, after)
    expect(await projected(call, runId)).toMatchObject({ status: "succeeded", steps: 5 })
    expect(await projected(call, after)).toMatchObject({ status: "succeeded", steps: 5 })
  }, 60_000)
})

describe("JetStream away when a model's answer arrives", () => {
  it(
    "settles the answer against the budget and journals it once JetStream is back, never asking the model again",
    async () => {
      const single = await singleServerStack("lantern-faults-nojs")
      const { store, port, model, stack, call } = single
      // a budget applies: each model call is reserved against it before, and settled after, reading its journal
      const budget = await call("PUT", "/v1/agents/echoer/budget", { maxCostUsdPerDay: 100, hardFail: true })
      expect(budget.status, budget.text).toBe(200)

      const release = model.block("turn-2")
      const runId = await startRun(call, "go")
      await model.waitFor("turn-2", undefined, runId)
      // the broker comes back without JetStream: connections succeed, every JetStream request has no responder
      await single.bus.kill()
      const bare = spawn(NatsServer.findBinary(), ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" })
      defer(async () => {
        if (bare.exitCode === null && bare.signalCode === null) bare.kill("SIGKILL")
      })
      release()
      // the settle and the completion after the answer meet the broker without JetStream, each write for as long
      // as the bus's own retries last (about 30 s); then the drive either waits on (it says it tries again) or gives
      // up and queues the run to be driven again, which would ask the model for turn-2 once more
      await eventually(
        async () => /trying again|queued to be driven again/.test(stack.output()),
        90_000,
        "the write of turn-2's answer to give up on a bus without JetStream once"
      )
      expect(model.answered.get(`${runId}:turn-2:1`)).toBe(1)
      bare.kill("SIGKILL")
      await new Promise<void>((
        r
      ) => (bare.exitCode !== null || bare.signalCode !== null ? r() : bare.once("exit", () => r())))
      single.bus = await NatsServer.start({ storeDir: store, port })

      const events = await finished(call, runId)
      expectExactlyOnce(events, model, runId)
      // turn-2 was asked for once: its answer waited for the bus, it was not asked for again by a new drive
      expect(model.answered.get(`${runId}:turn-2:1`)).toBe(1)
      expect(stack.output()).not.toContain("queued to be driven again")
      expect(stack.child.exitCode).toBeNull()
    },
    240_000
  )
})

/** A three-node cluster, lantern serve on all three URLs with R3 streams, the agent created, a connection. */
const clusterStack = async () => {
  const cluster = await Cluster.start("lantern-faults-cluster")
  defer(() => cluster.stop())
  const model = await FakeOpenAi.start(2)
  defer(() => model.close())
  const stack = await stackWith({ natsUrl: cluster.urls, env: { ...modelEnv(model), LANTERN_REPLICAS: "3" } })
  const call = client(stack)
  const created = await call("POST", "/v1/agents", agent)
  expect(created.status, created.text).toBe(201)
  const nc = await connect({ servers: cluster.urls.split(","), timeout: 5000 })
  defer(() => nc.close())
  const jsm = await jetstreamManager(nc)
  const runs = await jsm.streams.info(Topology.RUNS)
  expect(runs.config.num_replicas).toBe(3)
  expect(runs.cluster?.replicas).toHaveLength(2)
  return { cluster, model, stack, call, jsm }
}

describe("three-node cluster, the runs stream's leader killed mid-run", () => {
  it("finishes the run on the new leader with every event exactly once", async () => {
    const { cluster, model, stack, call } = await clusterStack()
    const release = model.block("turn-2")
    const runId = await startRun(call, "go")
    await model.waitFor("turn-2", undefined, runId)
    const leader = await cluster.streamLeader(Topology.RUNS)
    await cluster.kill(leader)
    expect(cluster.running(leader)).toBe(false)
    // completing turn-2 lands in the election: appends are retried until a new leader takes them
    release()

    const events = await finished(call, runId, 50_000)
    expectExactlyOnce(events, model, runId)
    expect(await cluster.streamLeader(Topology.RUNS)).not.toBe(leader)
    // reads may answer 503 for a while after the election on nats-server 2.9 (new consumers time out)
    const run = await eventually(
      async () => {
        const r = await call("GET", `/v1/runs/${runId}`)
        return r.status === 200 ? r.json : null
      },
      30_000,
      "the run to be readable"
    )
    expect(run).toMatchObject({ status: "succeeded", steps: 5 })
    expect(stack.child.exitCode).toBeNull()
  }, 90_000)

  it("keeps projecting when the node holding the runs projector's consumer dies", async () => {
    const { cluster, model, stack, call, jsm } = await clusterStack()
    const release = model.block("turn-2")
    const runId = await startRun(call, "go")
    await model.waitFor("turn-2", undefined, runId)
    // the projector reads the whole stream through one ordered consumer (ephemeral, one replica, on one
    // node); per-run reads filter on the run's subject
    const host = await eventually(
      async () => {
        const unfiltered = []
        for await (const c of jsm.consumers.list(Topology.RUNS)) {
          if ((c.config.filter_subject ?? "") === "") unfiltered.push(c)
        }
        return unfiltered.length === 1 ? unfiltered[0]!.cluster?.leader : null
      },
      10_000,
      "the runs projector's consumer"
    )
    await cluster.kill(host)
    release()

    const events = await finished(call, runId, 50_000)
    expectExactlyOnce(events, model, runId)
    expect(await projected(call, runId)).toMatchObject({ status: "succeeded", steps: 5 })
    expect(stack.child.exitCode).toBeNull()
  }, 90_000)
})

const postgres = Postgres.privateCluster()

type Dump = Record<"agents" | "agentVersions" | "runs" | "steps" | "checkpoints", ReadonlyArray<unknown>>

const dump = Effect.gen(function*() {
  const sql = yield* Sql
  // checkpoints first: the projector commits rows and checkpoint together, so rows read after a checkpoint
  // include everything up to it (reading them last raced a projector still catching up)
  const checkpoints = yield* sql.query(
    `select projector, stream, last_seq from projector_checkpoints order by projector, stream`
  )
  return {
    agents: yield* sql.query(`select * from agents order by tenant_id, name`),
    agentVersions: yield* sql.query(`select * from agent_versions order by tenant_id, name, version`),
    runs: yield* sql.query(`select * from runs order by tenant_id, id`),
    steps: yield* sql.query(`select * from steps order by tenant_id, run_id, step_id, attempt`),
    checkpoints
  } satisfies Dump
})

/** One statement on a connection of its own. */
const query = async (url: string, text: string): Promise<Array<unknown>> => {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query(text)).rows
  } finally {
    await c.end()
  }
}

/** The streams the projectors read into Postgres. */
const PROJECTED = [Topology.RUNS, Topology.AGENTS, Topology.AUDIT]

/** The last sequence of each projected stream, from the bus. */
const streamHeads = async (natsUrl: string) => {
  const nc = await connect({ servers: natsUrl, timeout: 5000 })
  try {
    const jsm = await jetstreamManager(nc)
    const heads: Record<string, number> = {}
    for (const stream of PROJECTED) heads[stream] = (await jsm.streams.info(stream)).state.last_seq
    return heads
  } finally {
    await nc.close()
  }
}

/** Every stream that has events has its checkpoint at its head (a stream with none may have no checkpoint yet). */
const caughtUp = (d: Dump, heads: Record<string, number>) => {
  const checkpoints = d.checkpoints as ReadonlyArray<{ stream: string; last_seq: number }>
  return Object.entries(heads).every(([stream, head]) =>
    head === 0 || checkpoints.some((c) => c.stream === stream && c.last_seq === head)
  ) && checkpoints.every((c) => c.last_seq === heads[c.stream])
}

describe.skipIf(!postgres.available)(
  `Postgres down for a while${postgres.available ? "" : ` — skipped: ${postgres.reason}`}`,
  () => {
    it("keeps runs going without the database, then the projections catch up to a replay from zero", async () => {
      if (!postgres.available) return
      const db = await postgres.start()
      defer(() => db.stop())
      const store = join(tempDir("lantern-faults-pg-nats"), "js")
      const bus = await NatsServer.start({ storeDir: store })
      defer(() => bus.stop())
      const model = await FakeOpenAi.start(2)
      defer(() => model.close())
      const stack = await stackWith({ natsUrl: bus.url, env: { ...modelEnv(model), DATABASE_URL: db.url } })
      const call = client(stack)
      // /readyz answers before lantern has seeded its owner token, and the edge caches a refused token for
      // 30 s: wait for the token's row so that the first call cannot lose that race
      await eventually(
        async () => (await query(db.url, "select 1 from api_tokens")).length > 0,
        10_000,
        "the owner token"
      )
      // this first call looks the token up in Postgres; the edge then caches it for 30 s, so the calls
      // below (all within that window) authenticate without the database
      expect((await call("POST", "/v1/agents", agent)).status).toBe(201)

      const release = model.block("turn-2")
      const before = await startRun(call, "started before the outage")
      await model.waitFor("turn-2", undefined, before)
      await db.crash()
      expect(await readyz(stack)).toMatchObject({ bus: "ok", database: "unavailable" })

      const during = await startRun(call, "started during the outage")
      await model.waitFor("turn-2", undefined, during)
      release()
      const journals = await Promise.all([finished(call, before, 20_000), finished(call, during, 20_000)])
      expectExactlyOnce(journals[0], model, before)
      expectExactlyOnce(journals[1], model, during)
      // the database is still down: nothing could have been projected meanwhile
      expect((await call("GET", "/v1/runs?agentName=echoer")).status).toBe(503)

      await db.restart()
      for (const id of [before, during]) {
        expect(await projected(call, id)).toMatchObject({
          status: "succeeded",
          steps: 5,
          output: "done after 2 tool calls"
        })
      }
      const heads = await streamHeads(bus.url)
      const live = ManagedRuntime.make(Sql.layerPg(db.url))
      defer(() => live.dispose())
      const liveRows = await eventually(
        async () => {
          const d = await live.runPromise(dump)
          return caughtUp(d, heads) ? d : null
        },
        20_000,
        "the live projections to reach the head of both streams"
      )

      // a replay of both streams from sequence zero into a fresh schema gives the very same rows
      await query(db.url, "create schema replay")
      const replayUrl = new URL(db.url)
      replayUrl.searchParams.set("options", "-c search_path=replay")
      const replay = ManagedRuntime.make(
        Layer.mergeAll(busLayer(bus.url), Sql.layerPg(replayUrl.toString())) as Layer.Layer<
          Sql | Nats | Journal,
          unknown
        >
      )
      defer(() => replay.dispose())
      await replay.runPromise(Migrations.migrate)
      const projector = replay.runFork(Projector.run)
      defer(() => replay.runPromise(Fiber.interrupt(projector)))
      const replayed = await eventually(
        async () => {
          const d = await replay.runPromise(dump)
          return caughtUp(d, heads) ? d : null
        },
        20_000,
        "the replay to reach the head of both streams"
      )
      expect(replayed).toEqual(liveRows)
      expect(liveRows.runs).toHaveLength(2)
      expect(liveRows.steps).toHaveLength(2 * STEPS.length)
    }, 90_000)
  }
)
