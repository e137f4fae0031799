// What the recovery and worker benchmarks run against: real `lantern worker` processes joined to the bench's
// nats-server, and the command side in this process (agents, Runs.start) with a watch on the lease bucket.
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { type KvEntry, KvWatchInclude } from "@nats-io/kv"
import { Effect, Layer, Stream } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import { Budgets } from "../actors/budget/Budgets.ts"
import { Identities } from "../actors/identity/Identity.ts"
import * as Actor from "../actors/kernel/Actor.ts"
import * as Offline from "../actors/model/Offline.ts"
import { Ids } from "../actors/kernel/Ids.ts"
import { actor, addressOf, Runs } from "../actors/run/Runs.ts"
import { Journal } from "../bus/Journal.ts"
import { Dispatch } from "../actors/run/Dispatch.ts"
import { Registry } from "../actors/workflow/Registry.ts"
import { Hosts, pidOfHolder } from "../bus/Hosts.ts"
import { decodeEntry, Leases } from "../bus/Leases.ts"
import { Nats, unavailable } from "../bus/Nats.ts"
import { WORK } from "../bus/Topology.ts"
import type { Stored } from "../schema/Envelope.ts"
import * as Fixture from "./Fixture.ts"

const ROOT = resolve(import.meta.dirname, "..")
const NODE = join(ROOT, "node_modules/.bin/node")
const TSX = `file://${join(ROOT, "node_modules/tsx/dist/loader.mjs")}`

/** The durable consumer every host's run driver pulls from (actors/run/Driver.ts). */
const DRIVER = "run-driver"

export interface Worker {
  readonly pid: number
  /** The last 20,000 characters the process wrote. */
  readonly output: () => string
  /** Resolves once the process has exited, with the epoch ms at which this process saw it exit. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: string | null; readonly at: number }>
  readonly alive: () => boolean
}

const kill = (child: ChildProcess, exited: Promise<unknown>) =>
  Effect.promise(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await exited
  })

/**
 * A `lantern worker` process (edge/main.ts under tsx, as `bin/lantern` runs it) with PATH, HOME and `env`;
 * SIGKILLed when the scope closes.
 */
export const worker = (natsUrl: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const home = mkdtempSync(join(tmpdir(), "lantern-bench-worker-"))
      const child = spawn(NODE, ["--import", TSX, join(ROOT, "edge/main.ts"), "worker"], {
        cwd: ROOT,
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: process.env["HOME"] ?? "/root",
          NATS_URL: natsUrl,
          LANTERN_HOME: home,
          ...env
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      const append = (d: Buffer) => (output = (output + d.toString()).slice(-20_000))
      child.stdout?.on("data", append)
      child.stderr?.on("data", append)
      const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((r) =>
        child.once("exit", (code, signal) => r({ code, signal, at: Date.now() }))
      )
      const w: Worker = {
        pid: child.pid ?? -1,
        output: () => output,
        exited,
        alive: () => child.exitCode === null && child.signalCode === null
      }
      return { w, child, home }
    }),
    ({ child, w, home }) =>
      Effect.andThen(kill(child, w.exited), Effect.sync(() => rmSync(home, { recursive: true, force: true })))
  ).pipe(Effect.map(({ w }) => w))

/**
 * Pull requests waiting on the run drivers' consumer. A worker keeps at least one once it consumes, a busy one
 * several (each refill is a new request), so a rise over a baseline taken before spawning means "pulling".
 */
export const waitingPulls = Effect.gen(function*() {
  const { jsm } = yield* Nats
  return yield* Effect.tryPromise({
    try: () => jsm.consumers.info(WORK, DRIVER).then((i) => i.num_waiting, () => 0),
    catch: unavailable("consumer info")
  })
})

/**
 * Waits until at least `count` pull requests wait on the run drivers' consumer: true when they do, false when
 * `deadlineMs` passed first (a busy worker's extra requests may have expired meanwhile). Dies with the
 * workers' output if one exits.
 */
export const ready = (workers: ReadonlyArray<Worker>, count: number, deadlineMs = 30_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + deadlineMs
    while (true) {
      const dead = workers.find((w) => !w.alive())
      if (dead !== undefined)
        return yield* Effect.die(new Error(`worker ${dead.pid} exited while starting:\n${dead.output()}`))
      if ((yield* waitingPulls) >= count)
        return true
      if (Date.now() > deadline) return false
      yield* Effect.sleep("50 millis")
    }
  })

/** The command side of a `lantern serve` host without its drivers: agents and Runs.start, in this process. */
export const commandSide = Runs.layer.pipe(
  // runs' identity keys sealed under a throwaway KEK: the bench never mints tokens
  Layer.provideMerge(
    Layer.mergeAll(
      Agents.layer,
      Budgets.layer,
      Offline.layer,
      Layer.effect(Identities, Identities.make(new Uint8Array(randomBytes(32))))
    )
  ),
  Layer.provideMerge(
    Layer.mergeAll(Ids.layer, Dispatch.layer, Registry.layer, Leases.layer.pipe(Layer.provideMerge(Hosts.layer)))
  )
)

/** A tool-calling agent: the offline provider calls `calculator` on turn 1, answers on turn 2 (three steps). */
export const AGENT = "bench-calc"
export const INPUT = "Use the calculator: what is (17 + 25) * 3?"

/** Creates AGENT unless an earlier phase did. */
export const ensureAgent = Effect.gen(function*() {
  const agents = yield* Agents
  yield* agents.create(Fixture.TENANT, {
    name: AGENT,
    spec: {
      systemPrompt: "Answer with the calculator.",
      model: "auto",
      maxTurns: 4,
      tools: [{
        name: "calculator",
        description: "arithmetic",
        parameters: { type: "object", properties: { expression: { type: "string" } } }
      }]
    }
  }).pipe(Effect.catchTag("AgentAlreadyExists", () => Effect.void))
})

/** Starts `count` runs of AGENT, `concurrency` starts at a time; their ids in start order. */
export const startRuns = (count: number, concurrency: number) =>
  Effect.gen(function*() {
    const runs = yield* Runs
    return yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      () => Effect.map(runs.start(Fixture.TENANT, { agentName: AGENT, input: INPUT }, null), (r) => r.run.id),
      { concurrency }
    )
  })

/**
 * Journals `count` runs of AGENT as Runs.start does (lease entry registered, then RunStarted appended) but does
 * not queue them, so that a measurement can hand a whole batch to the drivers at once with `queue`.
 */
export const journalRuns = (count: number, concurrency: number) =>
  Effect.gen(function*() {
    const agents = yield* Agents
    const ids = yield* Ids
    const leases = yield* Leases
    const provide = yield* Actor.provider
    const version = yield* agents.version(Fixture.TENANT, AGENT)
    const one = Effect.gen(function*() {
      const runId = yield* ids.next("run")
      yield* leases.register(Fixture.TENANT, runId)
      yield* provide(actor.execute(addressOf(Fixture.TENANT, runId), {
        _tag: "StartRun",
        runId,
        agentName: AGENT,
        agentVersion: version.version,
        agentDigest: version.digest,
        spec: version.spec,
        input: INPUT,
        requestDigest: "bench"
      }, { idempotencyKey: `${runId}:start`, correlationId: runId }))
      return runId
    })
    return yield* Effect.forEach(Array.from({ length: count }, () => one), (e) => e, { concurrency })
  })

/** Puts journaled runs on the work queue, all at once. */
export const queue = (runIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const runs = yield* Runs
    yield* Effect.forEach(runIds, (r) => runs.enqueue(Fixture.TENANT, r), { concurrency: "unbounded", discard: true })
  })

export interface LeaseEvent {
  readonly op: "PUT" | "DEL" | "PURGE"
  readonly holder: string | null
  readonly dueAt: number
  /** When the server stored the change (epoch ms). */
  readonly at: number
}

/** Every change to the lease bucket since the watch began, per run id, in order. */
export interface LeaseLog {
  readonly history: ReadonlyMap<string, ReadonlyArray<LeaseEvent>>
  /** Runs whose entry has been deleted: they ended (or never started). */
  readonly ended: ReadonlySet<string>
}

/** The pid in a lease holder (`<slot>/<pid>-<random>`, bus/Hosts.ts). */
export const pidOf = (holder: string | null): number | null => (holder === null ? null : pidOfHolder(holder))

/** Watches the lease bucket for the bench tenant's runs until the scope closes. */
export const watchLeases = Effect.gen(function*() {
  const leases = yield* Leases
  const history = new Map<string, Array<LeaseEvent>>()
  const ended = new Set<string>()
  const prefix = `${Fixture.TENANT}.`
  const record = (e: KvEntry) => {
    if (!e.key.startsWith(prefix)) return
    const runId = e.key.slice(prefix.length)
    const op = e.operation as LeaseEvent["op"]
    const entry = op === "PUT" ? decodeEntry(e.string()) : null
    const list = history.get(runId) ?? []
    list.push({ op, holder: entry?.holder ?? null, dueAt: entry?.dueAt ?? 0, at: e.created.getTime() })
    history.set(runId, list)
    if (op === "PUT") ended.delete(runId)
    else ended.add(runId)
  }
  const watcher = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => leases.bucket.watch({ include: KvWatchInclude.UpdatesOnly }),
      catch: unavailable("watch leases")
    }),
    (w) => Effect.sync(() => w.stop())
  )
  yield* Effect.forkScoped(
    Stream.fromAsyncIterable(watcher, unavailable("watch leases")).pipe(
      Stream.runForEach((e) => Effect.sync(() => record(e)))
    )
  )
  return { history, ended } satisfies LeaseLog
})

/** Waits until every run of `runIds` has left the lease bucket (its driver released it), or dies at the deadline. */
export const awaitEnded = (log: LeaseLog, runIds: ReadonlyArray<string>, deadlineMs: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + deadlineMs
    while (runIds.some((r) => !log.ended.has(r))) {
      if (Date.now() > deadline) {
        const left = runIds.filter((r) => !log.ended.has(r)).length
        return yield* Effect.die(new Error(`${left} of ${runIds.length} runs still unfinished after ${deadlineMs} ms`))
      }
      yield* Effect.sleep("20 millis")
    }
  })

/**
 * Starts batches of `batch` runs until every worker of `workers` has held a run's lease (it pulls and drives),
 * which also warms each one up; dies after `maxBatches`.
 */
export const warmUp = (log: LeaseLog, workers: ReadonlyArray<Worker>, batch: number, maxBatches = 40) =>
  Effect.gen(function*() {
    const drove = () => {
      const pids = new Set<number | null>()
      for (const events of log.history.values())
        for (const e of events) if (e.holder !== null) pids.add(pidOf(e.holder))
      return workers.filter((w) => pids.has(w.pid)).length
    }
    for (let i = 0; drove() < workers.length; i++) {
      if (i === maxBatches) {
        return yield* Effect.die(
          new Error(`${workers.length - drove()} workers drove no run in ${maxBatches} batches of ${batch}`)
        )
      }
      yield* awaitEnded(log, yield* startRuns(batch, batch), 60_000)
      yield* Effect.sleep("100 millis")
    }
  })

/** The journals of `runIds`, read back `concurrency` at a time. */
export const journals = (runIds: ReadonlyArray<string>, concurrency = 16) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    return yield* Effect.forEach(runIds, (r) => journal.read(Fixture.address(r)), { concurrency })
  })

export const TERMINAL = new Set(["RunSucceeded", "RunFailed", "RunCanceled"])

/** The epoch ms an envelope was written at. */
export const atOf = (s: Stored): number => Date.parse(s.envelope.at)

/** Messages stored by every stream so far (sum of last sequences): the JetStream writes of a phase by difference. */
export const writes = Effect.gen(function*() {
  const { jsm } = yield* Nats
  return yield* Effect.tryPromise({
    try: async () => {
      let total = 0
      for await (const s of jsm.streams.list()) total += s.state.last_seq
      return total
    },
    catch: unavailable("list streams")
  })
})

/** The whole machine's CPU so far, ms summed over its cores: busy and in every state. */
export interface MachineCpu {
  readonly busyMs: number
  readonly allMs: number
}

/**
 * The first line of /proc/stat (USER_HZ 100) as MachineCpu. Busy is user, nice, system, irq, softirq and steal; idle
 * and iowait are not (a core waiting on the disk is free to run something else). Null when the line is not there.
 */
export const parseMachineCpu = (stat: string): MachineCpu | null => {
  const line = stat.split("\n").find((l) => l.startsWith("cpu "))
  if (line === undefined) return null
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number)
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null
  // user, nice, system, idle, iowait, irq, softirq, steal
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
  return { busyMs: busy * 10, allMs: (busy + f[3]! + f[4]!) * 10 }
}

/** The machine's CPU so far (every process, kernel included), from /proc/stat; NaN figures without /proc. */
export const machineCpu = (): MachineCpu => {
  try {
    return parseMachineCpu(readFileSync("/proc/stat", "utf8")) ?? { busyMs: Number.NaN, allMs: Number.NaN }
  } catch {
    return { busyMs: Number.NaN, allMs: Number.NaN }
  }
}

/** CPU time (user + system, ms) process `pid` has used so far, from /proc (USER_HZ 100); NaN without /proc. */
export const cpuMs = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}
