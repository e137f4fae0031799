// Spawn to first output per real sandbox backend (issue 14, ADR 0046), beside the raw backend's own start measured
// in the same run: the raw figure is this process spawning the backend's own command line for `/bin/echo` (the same
// isolation flags; no harness, journal or API) until the line on its stdout; Lantern's is from just before
// `POST /v1/workloads` to the first WorkloadOutput's journal time, through placement, the journal, the identity, the
// harness, the sandbox and the report back.
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Nats } from "../bus/Nats.ts"
import { TERMINAL_WORKLOAD_EVENTS } from "../schema/Workload.ts"
import * as Backends from "../actors/spawner/Backends.ts"
import * as MicroVm from "../actors/spawner/MicroVm.ts"
import { table } from "./Report.ts"
import { ms, p, scaled } from "./RunBatch.ts"
import * as RunBatch from "./RunBatch.ts"
import * as Serve from "./Serve.ts"

const STARTS = 20
const WARMUP = 2
/**
 * Idle time between two workloads: a start's figure is one workload's, not the tail of the one before (its exit,
 * receipt and harness) or the harness pool's refill (Harnesses.REFILL_AFTER_MS after a start, ~200 ms to load).
 */
const BETWEEN_MS = 400

/**
 * Every workload event as it is journaled (a core subscription of the bench's own connection to the journal
 * subjects): reading them back through the API every few ms would load the engine being measured. A workload's
 * events, in order, once its end has been journaled.
 */
const watchWorkloads = Effect.gen(function*() {
  const { nc } = yield* Nats
  const events = new Map<string, Array<{ type: string; at: string }>>()
  const waiting = new Map<string, () => void>()
  // nothing is journaled after a workload's end: its output, if any, came before
  const complete = (id: string) => (events.get(id) ?? []).some((e) => TERMINAL_WORKLOAD_EVENTS.has(e.type))
  yield* Effect.acquireRelease(
    Effect.sync(() =>
      nc.subscribe("lantern.workload.>", {
        callback: (_error, m) => {
          const id = m.subject.slice(m.subject.lastIndexOf(".") + 1)
          const { type, at } = m.json<{ type: string; at: string }>()
          const list = events.get(id) ?? []
          list.push({ type, at })
          events.set(id, list)
          if (complete(id)) waiting.get(id)?.()
        }
      })
    ),
    (sub) => Effect.sync(() => sub.unsubscribe())
  )
  yield* Effect.promise(() => nc.flush())
  return (id: string, timeoutMs: number): Promise<ReadonlyArray<{ type: string; at: string }>> =>
    new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        waiting.delete(id)
        const list = events.get(id) ?? []
        events.delete(id)
        resolve(list)
      }
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new Error(`workload ${id} did not end in ${timeoutMs} ms: ${JSON.stringify(events.get(id))}`))
      }, timeoutMs)
      if (complete(id)) done()
      else waiting.set(id, done)
    })
})

interface Backend {
  readonly name: string
  readonly tier: "trusted" | "standard" | "untrusted" | "hostile"
  /** Starts to measure at BENCH_SCALE=1, when not STARTS. */
  readonly starts?: number
  /** The raw command line: the backend's isolation around `/bin/echo first`. */
  readonly raw: (scratch: string) => ReadonlyArray<string>
}

const installed = (binary: string) => {
  try {
    execFileSync(binary, ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/** A workload that prints one line: the raw measurement runs the backend's own command line for it. */
const echo = (tier: Backend["tier"]) =>
  ({
    apiVersion: "lantern.dev/v1",
    kind: "AgentSpec",
    metadata: { name: "raw" },
    spec: {
      command: ["/bin/echo", "first"],
      isolation: tier,
      limits: { vcpu: 1, memoryMb: 256, timeoutSeconds: 60 },
      network: "none"
    }
  }) as const

/** The backend's command line for `echo` (the same isolation flags, no harness), with `scratch` as its folder. */
const own = (backend: Backends.Backend, tier: Backend["tier"]) => (scratch: string) =>
  Effect.runSync(backend.argv(echo(tier), { sockDir: scratch }))

const BACKENDS: ReadonlyArray<Backend> = [
  { name: "process", tier: "trusted", raw: own(Backends.processBackend, "trusted") },
  ...(installed("bwrap")
    ? [{ name: "bwrap", tier: "standard" as const, raw: own(Backends.bwrapBackend(), "standard") }]
    : []),
  ...(installed("runsc")
    ? [{
      name: "gvisor",
      tier: "untrusted" as const,
      raw: (scratch: string) => own(Backends.gvisorBackend("runsc", scratch), "untrusted")(scratch)
    }]
    : []),
  // a real microVM under TCG (ADR 0046): seconds a boot, so fewer starts; raw is QEMU itself with the same arguments
  ...(installed("qemu-system-x86_64") && existsSync(MicroVm.settingsDefaults.kernel)
    ? [{
      name: "microvm",
      tier: "hostile" as const,
      starts: 5,
      // QEMU itself, without the driver that hides the kernel's lines and reads the exit code
      raw:
        () => ["qemu-system-x86_64", ...MicroVm.qemuArgs(MicroVm.settingsDefaults, echo("hostile"), "exec echo first")]
    }]
    : [])
]

/** BENCH_SPAWN_BACKENDS=process,bwrap measures only those (all installed ones when unset). */
const only = (process.env["BENCH_SPAWN_BACKENDS"] ?? "").split(",").map((x) => x.trim()).filter((x) => x !== "")
const MEASURED = only.length === 0 ? BACKENDS : BACKENDS.filter((b) => only.includes(b.name))

export interface Row {
  readonly backend: string
  readonly rawMs: ReadonlyArray<number>
  readonly lanternMs: ReadonlyArray<number>
  /** From before the POST to WorkloadSpawned's journal time (the harness has said it started the sandbox). */
  readonly spawnedMs: ReadonlyArray<number>
  /** From before the POST to each event's journal time, per event type (where the time goes). */
  readonly stepsMs: Readonly<Record<string, ReadonlyArray<number>>>
  /** From before the POST to its answer. */
  readonly answeredMs: ReadonlyArray<number>
}
export type Result = ReadonlyArray<Row>

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: spawn: ${text}\n`))

/** From spawning `argv` to the workload's line ("first") on its stdout (a VM's kernel may print before it). */
const rawFirstOutput = (argv: ReadonlyArray<string>) =>
  new Promise<number>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "ignore"] })
    let at: number | null = null
    let out = ""
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      if (at === null && out.includes("first")) at = performance.now() - t0
    })
    child.on("error", reject)
    child.on(
      "close",
      (code) => (at === null ? reject(new Error(`${argv[0]} exited ${code} without output`)) : resolve(at))
    )
  })

export const run = (scale: number) =>
  Serve.withStack(
    "spawn",
    { LANTERN_SPAWNER_BACKENDS: MEASURED.map((b) => b.name).join(","), LANTERN_WORKLOADS_SPAWNS_PER_MINUTE: "100000" },
    progress,
    (stack) =>
      Effect.gen(function*() {
        const starts = scaled(STARTS, scale, 5)
        const watched = yield* watchWorkloads
        const rows: Array<Row> = []
        const scratch = mkdtempSync(join(tmpdir(), "lantern-bench-runsc-"))
        for (const backend of MEASURED) {
          const n = backend.starts === undefined ? starts : scaled(backend.starts, scale, 2)
          yield* progress(`${backend.name}: ${n} raw starts, then ${n} workloads`)
          const rawMs: Array<number> = []
          for (let i = 0; i < n + WARMUP; i++) {
            const t = yield* Effect.promise(() => rawFirstOutput(backend.raw(scratch)))
            if (i >= WARMUP) rawMs.push(t)
          }
          const lanternMs: Array<number> = []
          const spawnedMs: Array<number> = []
          const answeredMs: Array<number> = []
          const stepsMs: Record<string, Array<number>> = {}
          for (let i = 0; i < n + WARMUP; i++) {
            const t = yield* Effect.promise(async () => {
              const t0 = Date.now()
              const w = await stack.call("POST", "/v1/workloads", {
                apiVersion: "lantern.dev/v1",
                kind: "AgentSpec",
                metadata: { name: `bench-${backend.name}` },
                spec: {
                  command: ["/bin/echo", "first"],
                  isolation: backend.tier,
                  limits: { vcpu: 1, memoryMb: 256, timeoutSeconds: 60 },
                  network: "none"
                }
              })
              const answered = Date.now() - t0
              const events = await watched(w.id, 60_000)
              const first = events.find((e) => e.type === "WorkloadOutput")
              const end = events.find((e) => TERMINAL_WORKLOAD_EVENTS.has(e.type))!
              if (first === undefined || end.type !== "WorkloadExited")
                throw new Error(`workload ${w.id} ended without output: ${JSON.stringify(events)}`)
              // a workload that ends before its host journals WorkloadSpawned has none (the decider journals nothing
              // after the end): its first output counts, its spawned time does not
              const spawned = events.find((e) => e.type === "WorkloadSpawned")
              const steps: Record<string, number> = {}
              for (const e of events) steps[e.type] ??= Date.parse(e.at) - t0
              await new Promise((r) => setTimeout(r, BETWEEN_MS))
              return {
                first: Date.parse(first.at) - t0,
                spawned: spawned === undefined ? null : Date.parse(spawned.at) - t0,
                answered,
                steps
              }
            })
            if (i >= WARMUP) {
              lanternMs.push(t.first)
              if (t.spawned !== null) spawnedMs.push(t.spawned)
              answeredMs.push(t.answered)
              for (const [type, at] of Object.entries(t.steps)) (stepsMs[type] ??= []).push(at)
            }
          }
          rows.push({ backend: backend.name, rawMs, lanternMs, spawnedMs, stepsMs, answeredMs })
        }
        rmSync(scratch, { recursive: true, force: true })
        return rows satisfies Result
      })
  )

export const render = (r: Result): string =>
  [
    "Spawn to first output (bench/Spawn.ts, issue 14): a workload printing one line, per backend, beside the raw start",
    table(
      [
        "backend",
        "starts",
        "raw p50 ms",
        "raw p90 ms",
        "spawned p50 ms",
        "lantern p50 ms",
        "lantern p90 ms",
        "p50 / raw",
        "goal <= 1.1x"
      ],
      r.map((row) => {
        const ratio = p(row.lanternMs, 0.5) / p(row.rawMs, 0.5)
        return [
          row.backend,
          String(row.lanternMs.length),
          ms(p(row.rawMs, 0.5)),
          ms(p(row.rawMs, 0.9)),
          ms(p(row.spawnedMs, 0.5)),
          ms(p(row.lanternMs, 0.5)),
          ms(p(row.lanternMs, 0.9)),
          ratio.toFixed(1),
          RunBatch.met(ratio <= 1.1)
        ]
      })
    ),
    "   raw: the backend's command around /bin/echo, spawned here, to the line on its stdout; lantern: from just before",
    "   POST /v1/workloads to the first WorkloadOutput's journal time (whole milliseconds); spawned: to WorkloadSpawned,",
    "   journaled once the harness has started and said so.",
    "Where the time goes: p50 ms from before the POST to each event's journal time, and to the POST's answer",
    table(
      ["backend", ...STEPS.map((s) => s.replace(/^Workload/, "")), "answered"],
      r.map((row) => [
        row.backend,
        ...STEPS.map((s) => row.stepsMs[s] === undefined ? "-" : ms(p(row.stepsMs[s]!, 0.5))),
        ms(p(row.answeredMs, 0.5))
      ])
    )
  ].join("\n")

const STEPS = [
  "WorkloadScheduled",
  "WorkloadPlaced",
  "WorkloadIdentityMinted",
  "WorkloadSpawned",
  "WorkloadOutput",
  "WorkloadExited"
] as const

export const json = (r: Result): string =>
  `BENCH_SPAWN_JSON ${
    JSON.stringify(Object.fromEntries(r.map((row) => [row.backend, {
      rawP50Ms: RunBatch.round(p(row.rawMs, 0.5)),
      rawP90Ms: RunBatch.round(p(row.rawMs, 0.9)),
      lanternP50Ms: RunBatch.round(p(row.lanternMs, 0.5)),
      lanternP90Ms: RunBatch.round(p(row.lanternMs, 0.9)),
      starts: row.lanternMs.length
    }])))
  }`
