// The streams, consumers and buckets of the bus, declared once and applied idempotently at start. One
// subject per actor instance: lantern.<type>.<tenant>.<id>.
import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream"
import { nanos } from "@nats-io/nats-core"
import { Kvm } from "@nats-io/kv"
import { Config, Effect, Schedule } from "effect"
import type { ActorType } from "../schema/Envelope.ts"
import * as Kv from "./Kv.ts"
import { Nats, unavailable } from "./Nats.ts"

export const RUNS = "LANTERN_RUNS"
export const AGENTS = "LANTERN_AGENTS"
/** Budget journals: one subject per scope, lantern.budget.<tenant>.<scope> (`_tenant` or the agent's name). */
export const BUDGETS = "LANTERN_BUDGETS"
/**
 * Audit journals: one subject per entry, lantern.audit.<tenant>.<auditId>, so an append (expecting an empty
 * subject) never meets another and never retries on a conflict (ADR 0019).
 */
export const AUDIT = "LANTERN_AUDIT"
/** Eval journals (ADR 0047): an agent's eval book (`book-<agent>`: its suites and baselines) and each eval run. */
export const EVALS = "LANTERN_EVALS"
/** Work queue of runs to drive: a message stays until a host has driven its run to a terminal state. */
export const WORK = "LANTERN_WORK"

/** Workload journals (the spawner's, ADR 0046): lantern.workload.<tenant>.<workloadId>. */
export const WORKLOADS = "LANTERN_WORKLOADS"
/** Channel connections and their conversations (ADR 0050): lantern.channel.<tenant>.<id>, lantern.session.<tenant>.<id>. */
export const CHANNELS = "LANTERN_CHANNELS"
export const SESSIONS = "LANTERN_SESSIONS"
/** The operator queue (issue 16): tasks, schedules, sensor events and queue workflows, each its own journal. */
export const TASKS = "LANTERN_TASKS"
export const SCHEDULES = "LANTERN_SCHEDULES"
export const SENSORS = "LANTERN_SENSORS"
export const QUEUEFLOWS = "LANTERN_QUEUEFLOWS"

export const streamOf: Record<ActorType, string> = {
  run: RUNS,
  agent: AGENTS,
  budget: BUDGETS,
  audit: AUDIT,
  workload: WORKLOADS,
  eval: EVALS,
  channel: CHANNELS,
  session: SESSIONS,
  task: TASKS,
  schedule: SCHEDULES,
  sensor: SENSORS,
  queueflow: QUEUEFLOWS
}

// Bucket names. A bucket other than the bus's own (snapshots, leases) is declared once with the Schema of its
// values by the code that owns it (Kv.bucket, ADR 0026) and created when that code opens it.

/** KV bucket mapping a caller's Idempotency-Key to the run it started (kept 24 h; actors/run/Runs.ts). */
export const IDEMPOTENCY_BUCKET = "lantern-idempotency"
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000

/** KV bucket of actor snapshots (bus/Snapshots.ts): key `<type>.<tenant>.<id>`, only the latest kept. */
export const SNAPSHOTS_BUCKET = "lantern-snapshots"

/** KV bucket of run leases: one entry per run that is not finished (bus/Leases.ts). */
export const LEASE_BUCKET = "lantern-leases"

/**
 * How long the marker of a removed lease stays (per-message TTL, ADR 0091): a finished run's entry is purged with a
 * marker that expires, then the server's own marker of that expiry does, and the key is gone from the bucket. A
 * plain delete left one marker per finished run for ever: the bucket, the server's index of its subjects and every
 * new watch of it (each host's start replays them) grew with every run ever run.
 */
export const LEASE_MARKER_TTL_MS = 60_000

/** KV bucket of host liveness (bus/Hosts.ts): key = a host's slot, each write carrying a per-message TTL. */
export const HOSTS_BUCKET = "lantern-hosts"

/** How long the hosts bucket keeps the marker of a key that expired (the server's minimum is 1 s). */
const HOSTS_MARKER_TTL_MS = 60_000

/** KV bucket of model-provider circuit breakers, shared by every host (actors/model/Breakers.ts): key = provider name. */
export const BREAKERS_BUCKET = "lantern-breakers"

/** KV bucket of the exact-match model response cache (actors/model/ResponseCache.ts); entries age out after a TTL. */
export const MODEL_CACHE_BUCKET = "lantern-model-cache"
/** The cache bucket's TTL when it is created; ResponseCache.open sets the configured one. */
export const MODEL_CACHE_TTL_MS = 24 * 60 * 60_000

/** KV bucket of the deployment's receipt-signing keys, sealed under the KEK (actors/receipts/Keys.ts); never purged. */
export const SIGNING_KEYS_BUCKET = "lantern-signing-keys"

/** KV bucket of tenants' secrets, sealed under the KEK (actors/secrets/Secrets.ts): key `<tenant>.<name>`. */
export const SECRETS_BUCKET = "lantern-secrets"

/** KV bucket of runs' Ed25519 identities, sealed under the KEK (actors/identity/Identity.ts): key `<tenant>.<runId>`, written once. */
export const RUN_IDENTITIES_BUCKET = "lantern-run-identities"

/** KV bucket of issued run receipts (actors/receipts/Receipts.ts): key `<tenant>.<runId>`, written once. */
export const RECEIPTS_BUCKET = "lantern-receipts"

/** Duplicate window for `msgID` dedupe of re-sent appends. */
export const DUPLICATE_WINDOW_MS = 2 * 60_000

type StreamSpec = Partial<StreamConfig> & { name: string; subjects: string[] }

/** A journal stream: kept (limits), on file, deduplicating re-sent appends, readable by direct get on any replica. */
const journal = (name: string, subject: string, replicas: number): StreamSpec => ({
  name,
  subjects: [subject],
  retention: RetentionPolicy.Limits,
  storage: StorageType.File,
  discard: DiscardPolicy.Old,
  duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  allow_direct: true,
  num_replicas: replicas
})

export const streams = (replicas: number): ReadonlyArray<StreamSpec> => [
  journal(RUNS, "lantern.run.>", replicas),
  journal(AGENTS, "lantern.agent.>", replicas),
  journal(BUDGETS, "lantern.budget.>", replicas),
  journal(AUDIT, "lantern.audit.>", replicas),
  journal(WORKLOADS, "lantern.workload.>", replicas),
  journal(EVALS, "lantern.eval.>", replicas),
  journal(TASKS, "lantern.task.>", replicas),
  journal(SCHEDULES, "lantern.schedule.>", replicas),
  journal(SENSORS, "lantern.sensor.>", replicas),
  journal(QUEUEFLOWS, "lantern.queueflow.>", replicas),
  journal(CHANNELS, "lantern.channel.>", replicas),
  journal(SESSIONS, "lantern.session.>", replicas),
  {
    name: WORK,
    subjects: ["lantern.work.>"],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: replicas
  }
]

/**
 * Start-up declarations (streams, buckets) tried again, every second for 20 s: a freshly formed cluster may time out
 * the first creates while its meta leader settles, and a busy single server its API requests. Each declaration is
 * idempotent (it reads before it creates), so trying again never doubles one.
 */
export const retryAtStart = <A, E extends { readonly message: string }, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  effect.pipe(
    Effect.tapError((e) => Effect.logWarning(`${e.message}; trying again`)),
    Effect.retry({ schedule: Schedule.spaced("1 second"), times: 20 })
  )

/** Creates every stream that is missing and updates the subjects of those that exist. Safe to run on every start. */
export const apply = Effect.gen(function*() {
  const { js, jsm } = yield* Nats
  const replicas = yield* Config.Int("LANTERN_REPLICAS").pipe(Config.withDefault(1))
  for (const config of streams(replicas)) {
    yield* Effect.tryPromise({
      try: async () => {
        const existing = await jsm.streams.info(config.name).catch(() => null)
        if (existing === null) {
          await jsm.streams.add(config)
        } else if (existing.config.subjects.join(",") !== config.subjects.join(",")) {
          await jsm.streams.update(config.name, { ...existing.config, subjects: config.subjects })
        }
      },
      catch: unavailable(`apply stream ${config.name}`)
    })
  }
  // the buckets of the bus itself; every other bucket is declared with its value Schema beside the code that
  // owns it (Kv.bucket) and created by Kv.open when that code starts
  yield* Effect.tryPromise({
    try: () => new Kvm(js).create(SNAPSHOTS_BUCKET, { history: 1, replicas }),
    catch: unavailable(`apply bucket ${SNAPSHOTS_BUCKET}`)
  })
  // a lease bucket made before ADR 0091 is given its markers' TTL
  yield* Effect.tryPromise({
    try: async () => {
      await new Kvm(js).create(LEASE_BUCKET, { history: 1, replicas, markerTTL: LEASE_MARKER_TTL_MS })
      await Kv.ensureLimits(jsm, LEASE_BUCKET, { markerTtlMs: LEASE_MARKER_TTL_MS })
    },
    catch: unavailable(`apply bucket ${LEASE_BUCKET}`)
  })
  // liveness keys expire on the server's clock (per-message TTL, nats-server 2.11+): no host reads another's clock
  yield* Effect.tryPromise({
    try: () => new Kvm(js).create(HOSTS_BUCKET, { history: 1, replicas, markerTTL: HOSTS_MARKER_TTL_MS }),
    catch: unavailable(`apply bucket ${HOSTS_BUCKET}`)
  })
}).pipe(retryAtStart, Effect.withSpan("Topology.apply"))
