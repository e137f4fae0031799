// The spawner actor's shell (ADR 0046): places a workload on the weakest backend that provides its tier, journals
// each step (lantern.workload.<tenant>.<id>), mints its identity, starts its harness detached on this host and
// holds its lease in `lantern-workload-leases`. Every host journals harness reports and vends secrets (queue
// groups on lantern.spawner.report.> and lantern.spawner.vend.>); the holder pings its harnesses, and a host whose
// holder died adopts the workload if its harness still answers, or journals it as lost: a workload is never
// started twice.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  Clock,
  Config,
  Context,
  Data,
  Duration,
  Effect,
  Layer,
  Option,
  Redacted,
  Schedule,
  Schema,
  Stream
} from "effect"
import * as Kv from "../../bus/Kv.ts"
import { Hosts } from "../../bus/Hosts.ts"
import { Journal } from "../../bus/Journal.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import { BusUnavailable } from "../../schema/Errors.ts"
import * as W from "../../schema/Workload.ts"
import { Audit } from "../audit/Audit.ts"
import * as Identity from "../identity/Identity.ts"
import { Budgets } from "../budget/Budgets.ts"
import { ModelProvider } from "../model/ModelProvider.ts"
import { Receipts } from "../receipts/Receipts.ts"
import * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import { Secrets } from "../secrets/Secrets.ts"
import * as Backends from "./Backends.ts"
import * as Decider from "./Decider.ts"
import * as HarnessBuild from "./HarnessBuild.ts"
import * as Harnesses from "./Harnesses.ts"
import { SpawnFailed } from "./Harnesses.ts"
import * as Kubernetes from "./Kubernetes.ts"
import * as MicroVm from "./MicroVm.ts"
import * as ModelCalls from "./ModelCalls.ts"

/** The audience of a workload's identity token: the harness's secret vendor. */
export const AUDIENCE = "lantern-harness"

/** Heartbeats and pings: how often, and how many unanswered pings make a harness gone. */
const HEARTBEAT_MS = 2000
const PING_EVERY = Duration.seconds(1)
const MISSED_PINGS = 3

/** How long a workload's model call may take (the harness waits a little longer for the answer). */
const MODEL_CALL_TIMEOUT_MS = 120_000
const MODEL_UNAVAILABLE = ModelCalls.error(503, "api_error", "unavailable", "the model call could not be made; retry")

const Lease = Schema.Struct({ host: Schema.String, harnessPid: Schema.Int, since: Schema.String })
type Lease = typeof Lease.Type
export const leaseBucket = Kv.bucket({
  name: "lantern-workload-leases",
  value: Schema.fromJsonString(Lease),
  what: "a workload lease"
})

/** Too many workloads for the tenant right now (the edge answers 429 with Retry-After). */
export class WorkloadQuotaExceeded extends Data.TaggedError("WorkloadQuotaExceeded")<{
  readonly reason: string
  readonly retryAfterSeconds: number
}> {
  override get message() {
    return this.reason
  }
}

export { SpawnFailed } from "./Harnesses.ts"

export interface View {
  readonly id: string
  readonly name: string
  readonly state: W.WorkloadState
  readonly isolation: W.Tier
  readonly backend: string | null
  readonly host: string | null
  readonly exitCode: number | null
  readonly reason: string | null
  readonly usage: W.Usage | null
  readonly enforced: ReadonlyArray<string>
  readonly secretsVended: ReadonlyArray<string>
  readonly egress: ReadonlyArray<{ host: string; port: number; allowed: boolean; detail: string }>
  readonly heartbeats: number
  readonly attempt: number
  /** Model calls made through the harness and their cost (ADR 0062). */
  readonly modelCalls: number
  readonly costUsd: number
  readonly createdAt: string | null
  readonly createdBy: string | null
}

const viewOf = (id: string, state: Decider.State, createdAt: string | null): View => ({
  id,
  name: state.spec?.metadata.name ?? "",
  state: state.status === "none" ? "scheduled" : state.status,
  isolation: state.spec?.spec.isolation ?? "trusted",
  backend: state.backend,
  host: state.host,
  exitCode: state.exitCode,
  reason: state.reason,
  usage: state.usage,
  enforced: state.enforced,
  secretsVended: state.vended,
  egress: state.egress,
  heartbeats: state.heartbeats,
  attempt: state.attempt,
  modelCalls: state.modelCalls,
  costUsd: state.costUsd,
  createdAt,
  createdBy: state.createdBy
})

export interface Settings {
  readonly backends: ReadonlyArray<string>
  readonly workDir: string
  readonly maxConcurrent: number
  readonly spawnsPerMinute: number
  readonly allowPrivate: ReadonlyArray<string>
  readonly harnessGiveUp: Duration.Duration
  readonly harnessPool: number
}

export const settingsConfig = Config.all({
  backends: Config.String("LANTERN_SPAWNER_BACKENDS").pipe(
    Config.withDefault("process,bwrap,gvisor"),
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => x !== ""))
  ),
  workDir: Config.String("LANTERN_WORKLOAD_DIR").pipe(
    Config.withDefault(join(process.env["TMPDIR"] ?? "/tmp", "lantern-workloads"))
  ),
  maxConcurrent: Config.Int("LANTERN_WORKLOADS_MAX_CONCURRENT").pipe(Config.withDefault(16)),
  spawnsPerMinute: Config.Int("LANTERN_WORKLOADS_SPAWNS_PER_MINUTE").pipe(Config.withDefault(60)),
  allowPrivate: Config.String("LANTERN_EGRESS_ALLOW_PRIVATE").pipe(
    Config.withDefault(""),
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => x !== ""))
  ),
  /** How long a harness whose workload ended keeps trying to report it while no spawner answers. */
  harnessGiveUp: Config.Duration("LANTERN_HARNESS_GIVE_UP").pipe(Config.withDefault(Duration.minutes(10))),
  /** Harness processes kept started ahead of need on each host (0: start one per workload). */
  harnessPool: Config.Int("LANTERN_HARNESS_POOL").pipe(Config.withDefault(2))
})

const addressOf = (tenant: string, id: string): ActorAddress => ({ type: "workload", tenant, id })
const leaseKey = (tenant: string, id: string) => `${tenant}.${id}`
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))

/** What an in-process caller (a task adapter) may ask of a start beyond the spec; never taken from the API. */
export interface StartOptions {
  /**
   * A host directory the workload starts in and may write (a task's artifact root); only the process and bwrap
   * backends can share one, so a tier no such backend provides is refused. Not journaled (a path of this host), and
   * a workload given one is not started again elsewhere.
   */
  readonly workDir?: string
}

export class Spawner extends Context.Service<Spawner, {
  /** The backends configured and usable on this host, weakest first. */
  readonly backends: ReadonlyArray<string>
  /** The backend a workload of `tier` would be placed on here, or why none (nothing is started). */
  readonly placement: (
    tier: W.Tier,
    options?: { readonly sharedWorkDir?: boolean }
  ) => Effect.Effect<string, Backends.IsolationUnavailable>
  readonly start: (
    tenant: string,
    spec: W.WorkloadSpec,
    input: string | null,
    by: string,
    options?: StartOptions
  ) => Effect.Effect<View, Backends.IsolationUnavailable | WorkloadQuotaExceeded | SpawnFailed | BusUnavailable>
  readonly get: (tenant: string, id: string) => Effect.Effect<View, Decider.WorkloadNotFound | BusUnavailable>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<View>, BusUnavailable>
  readonly terminate: (
    tenant: string,
    id: string,
    by: string
  ) => Effect.Effect<View, Decider.WorkloadNotFound | Decider.WorkloadFinished | BusUnavailable>
  /** The workload's journal from `afterSeq` on, following it until the workload ends. */
  readonly follow: (tenant: string, id: string, afterSeq: number) => Stream.Stream<Stored, BusUnavailable>
}>()("lantern/actors/spawner/Spawner") {
  static readonly layer = Layer.effect(
    Spawner,
    Effect.gen(function*() {
      const settings = yield* settingsConfig
      const { nc, url, jsm } = yield* Nats
      const journal = yield* Journal
      const ids = yield* Ids
      const hosts = yield* Hosts
      const identities = yield* Identity.Identities
      const secrets = yield* Secrets
      const audit = yield* Audit
      const receipts = yield* Receipts
      const budgets = yield* Budgets
      const models = yield* ModelProvider
      const run = yield* Actor.provider
      const kv = yield* Kv.open(leaseBucket)

      // only what is configured and present here: a missing binary removes a backend (and the tiers only it gave)
      const backends: Array<Backends.Backend> = []
      const kube = yield* Kubernetes.settingsConfig
      for (const name of settings.backends) {
        const backend = name === "kubernetes"
          ? kube === null ? null : Kubernetes.kubernetesBackend(kube)
          : name === "microvm"
          ? MicroVm.microvmBackend(yield* MicroVm.settingsConfig)
          : Backends.byName(name)
        if (backend === null) {
          yield* Effect.logWarning(
            `LANTERN_SPAWNER_BACKENDS names '${name}', which is not a backend here (${Backends.KNOWN.join(", ")})`
          )
          continue
        }
        const probe = yield* backend.probe
        if (probe.ok) backends.push(backend)
        else yield* Effect.logWarning(`sandbox backend ${name} is unavailable: ${probe.reason}`)
      }
      yield* Effect.logInfo(`spawner backends: ${backends.map((b) => b.name).join(", ") || "none"}`)
      const harness = yield* HarnessBuild.build

      // the command that ends a workload issues its receipt (ADR 0062): once, the first host's (the bucket keeps the
      // first written); one that failed here is issued by the first reader of GET /v1/workloads/{id}/receipt
      const execute = (tenant: string, id: string, command: Decider.Command, key: string) =>
        run(
          Actor.make(Decider.decider(id)).execute(addressOf(tenant, id), command, {
            idempotencyKey: key,
            correlationId: id
          })
        ).pipe(
          Effect.tap((outcome) =>
            outcome.appended.some((e) => W.TERMINAL_WORKLOAD_EVENTS.has(e._tag))
              ? receipts.issueWorkload(tenant, id).pipe(
                Effect.catchCause((cause) =>
                  Effect.logWarning(`workload ${id}: its receipt was not issued now (it will be when asked for)`, cause)
                )
              )
              : Effect.void
          )
        )

      const load = (tenant: string, id: string) =>
        run(journal.read(addressOf(tenant, id))).pipe(
          Effect.mapError((e) =>
            e._tag === "BusUnavailable" ? e : new BusUnavailable({ operation: "read workload", reason: e.message })
          ),
          Effect.map((stored) => ({
            state: stored.reduce((s, x) => Decider.evolve(s, x.event as W.WorkloadEvent), Decider.initialState),
            createdAt: stored[0]?.envelope.at ?? null,
            lastSeq: stored.length === 0 ? 0 : stored[stored.length - 1]!.seq
          }))
        )

      /** Journal errors other than the bus being down are defects here: every command below is valid for its state. */
      const orDie = <A, E>(effect: Effect.Effect<A, E>) =>
        effect.pipe(Effect.catch((e) => e instanceof BusUnavailable ? Effect.fail(e) : Effect.die(e))) as Effect.Effect<
          A,
          BusUnavailable
        >

      // ---- quotas: checked before any side effect ----
      /**
       * The lease bucket's keys as the liveness loop last listed them (every PING_EVERY), so that a start does not
       * list the bucket itself (a consumer made and deleted: tens of milliseconds on a busy host). Leases this host
       * writes meanwhile count from their start until a listing has had time to include them; those it deletes stop
       * counting at once. A listing older than LISTING_STALE_MS is not trusted: the bucket is listed then, as before.
       */
      let listed: { readonly at: number; readonly keys: Set<string> } | null = null
      const startedHere = new Map<string, number>()
      const LISTING_STALE_MS = 10 * Duration.toMillis(PING_EVERY)
      const activeLeases = (tenant: string) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const keys = listed !== null && now - listed.at < LISTING_STALE_MS
            ? [...listed.keys].filter((k) => k.startsWith(`${tenant}.`))
            : yield* kv.keys(`${tenant}.*`)
          const active = new Set(keys)
          for (const [key, at] of startedHere) {
            if (now - at > 2 * LISTING_STALE_MS) startedHere.delete(key)
            else if (key.startsWith(`${tenant}.`)) active.add(key)
          }
          return active.size
        })
      /** Deletes a workload's lease, and stops counting it at once. */
      const releaseLease = (tenant: string, id: string) =>
        Effect.suspend(() => {
          startedHere.delete(leaseKey(tenant, id))
          listed?.keys.delete(leaseKey(tenant, id))
          return kv.delete(leaseKey(tenant, id))
        })
      const spawnTimes = new Map<string, Array<number>>()
      const quota = (tenant: string) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const recent = (spawnTimes.get(tenant) ?? []).filter((t) => now - t < 60_000)
          if (recent.length >= settings.spawnsPerMinute) {
            return yield* new WorkloadQuotaExceeded({
              reason:
                `the tenant started ${recent.length} workloads in the last minute (at most ${settings.spawnsPerMinute})`,
              retryAfterSeconds: Math.max(1, Math.ceil((60_000 - (now - recent[0]!)) / 1000))
            })
          }
          const active = yield* activeLeases(tenant)
          if (active >= settings.maxConcurrent) {
            return yield* new WorkloadQuotaExceeded({
              reason: `the tenant has ${active} workloads running (at most ${settings.maxConcurrent})`,
              retryAfterSeconds: 5
            })
          }
          recent.push(now)
          spawnTimes.set(tenant, recent)
        })

      const { prepare } = yield* Harnesses.pool(harness.main, settings.workDir, settings.harnessPool, url)
      const workloadActor = Actor.make(Decider.decider(""))

      /** What a first start journals in one append before its harness is told to go (the rest comes from the id). */
      interface FirstStart {
        readonly by: string
        readonly backend: string
      }

      /**
       * Starts the workload's harness on this host (attempt 1, or a restart of an idempotent workload), as ADR 0069
       * orders it: the sandbox's command line (the tier checked again) and a harness handed the config, which it
       * prepares while the start is made durable (for a first start: Scheduled, Placed and IdentityMinted in one
       * append, after the identity it names; the lease, holder not yet known); only then is the harness told to go,
       * with the token. Whatever fails before that calls the harness off, so nothing ever runs unrecorded. Then the
       * lease names the harness and Spawned is journaled. Returns the workload as the journal then has it.
       */
      const launchWorkload = (
        tenant: string,
        id: string,
        spec: W.WorkloadSpec,
        input: string | null,
        backend: Backends.Backend,
        attempt: number,
        first: FirstStart | null,
        workDir?: string
      ) => {
        const address = addressOf(tenant, id)
        const meta = (key: string) => ({ idempotencyKey: key, correlationId: id })
        /** Set once the workload is in the journal: a failure from there on is journaled as its end. */
        let journaled = first === null
        return Effect.gen(function*() {
          const dir = join(settings.workDir, id)
          const sockDir = join(dir, "sock")
          mkdirSync(sockDir, { recursive: true, mode: 0o755 })
          if (workDir !== undefined) mkdirSync(workDir, { recursive: true })
          const argv = yield* backend.argv(spec, {
            sockDir,
            relay: harness.relay,
            kube: harness.kube,
            vm: harness.vm,
            dir,
            workloadId: id,
            tenant,
            input,
            ...(workDir === undefined ? {} : { workDir })
          })
          const since = new Date(yield* Clock.currentTimeMillis).toISOString()
          startedHere.set(leaseKey(tenant, id), yield* Clock.currentTimeMillis)
          const configPath = join(dir, "harness.json")
          // the identity token is not in the file: the harness gets it with `go`
          const config = {
            tenant,
            workloadId: id,
            natsUrl: url,
            argv,
            env: {
              PATH: "/usr/local/bin:/usr/bin:/bin",
              HOME: "/tmp",
              LANG: "C.UTF-8",
              ...spec.spec.env,
              LANTERN_WORKLOAD_ID: id,
              LANTERN_WORKLOAD_ATTEMPT: String(attempt),
              // the model endpoint's socket (ADR 0062); the relay, when there is one, adds LANTERN_MODELS_URL too
              ...(backend.socketsInside === undefined
                ? {}
                : { LANTERN_MODELS_SOCKET: join(backend.socketsInside(sockDir), "models.sock") }),
              ...(input === null ? {} : { LANTERN_INPUT: input })
            },
            dir,
            ...(workDir === undefined ? {} : { cwd: workDir }),
            egress: {
              rules: spec.spec.network === "allowlist" ? spec.spec.egressRules ?? [] : [],
              allowPrivate: settings.allowPrivate
            },
            timeoutMs: spec.spec.limits.timeoutSeconds * 1000,
            heartbeatMs: HEARTBEAT_MS,
            giveUpMs: Duration.toMillis(settings.harnessGiveUp),
            limits: { memoryMb: spec.spec.limits.memoryMb, vcpu: spec.spec.limits.vcpu, pids: 512 }
          }
          writeFileSync(configPath, JSON.stringify(config), { mode: 0o600 })
          chmodSync(configPath, 0o600)
          const prepared = yield* prepare(configPath)

          // ---- what must be durable before the start, while the harness prepares ----
          const durable = Effect.all([
            Effect.gen(function*() {
              const identity = yield* identities.ensure(tenant, id)
              const ttlSeconds = Math.min(Identity.MAX_TTL_SECONDS, spec.spec.limits.timeoutSeconds + 60)
              const minted = yield* identities.mint(tenant, id, { audience: AUDIENCE, ttlSeconds })
              // a first start's id is new: its journal is empty, so the append needs no read before it
              const outcome = first === null
                ? yield* orDie(execute(
                  tenant,
                  id,
                  { _tag: "IdentityMinted", keyId: identity.keyId, expiresAt: minted.expiresAt },
                  `${id}:identity`
                ))
                : yield* orDie(run(workloadActor.executeOn(
                  { address, state: Decider.initialState, seq: 0, events: 0, snapshotEvents: 0 },
                  {
                    _tag: "Start",
                    spec,
                    input,
                    by: first.by,
                    backend: first.backend,
                    keyId: identity.keyId,
                    expiresAt: minted.expiresAt
                  },
                  meta(`${id}:start`)
                )))
              journaled = true
              return { token: minted.token, outcome }
            }),
            kv.put(leaseKey(tenant, id), { host: hosts.id, harnessPid: 0, since })
          ], { concurrency: "unbounded" })
          const [{ outcome: recorded, token }] = yield* durable.pipe(Effect.onError(() => prepared.abort))

          // ---- the start ----
          const launched = yield* prepared.go(token)
          const [, spawned] = yield* Effect.all([
            kv.put(leaseKey(tenant, id), { host: hosts.id, harnessPid: launched.pid, since }),
            orDie(run(workloadActor.executeOn(
              recorded.loaded,
              { _tag: "Spawned", host: hosts.id, pid: launched.pid, enforced: launched.enforced },
              meta(`${id}:spawned:${attempt}`)
            )))
          ], { concurrency: "unbounded" })
          const createdAt = recorded.stored[0]?.envelope.at ?? null
          return { state: spawned.loaded.state, createdAt }
        }).pipe(
          Effect.mapError((e) =>
            e instanceof BusUnavailable || e instanceof Backends.IsolationUnavailable || e instanceof SpawnFailed
              ? e
              : new SpawnFailed({ reason: e.message })
          ),
          Effect.tapError((e) =>
            Effect.ignore(Effect.andThen(
              journaled ? orDie(execute(tenant, id, { _tag: "Fail", reason: e.message }, `${id}:fail`)) : Effect.void,
              releaseLease(tenant, id)
            ))
          )
        )
      }

      const placement = (tier: W.Tier, options: { readonly sharedWorkDir?: boolean } = {}) =>
        Effect.map(Backends.place(backends, tier, { workDir: options.sharedWorkDir === true }), (b) => b.name)

      const start = (
        tenant: string,
        spec: W.WorkloadSpec,
        input: string | null,
        by: string,
        options: StartOptions = {}
      ) =>
        Effect.gen(function*() {
          const backend = yield* Backends.place(backends, spec.spec.isolation, {
            workDir: options.workDir !== undefined
          })
          yield* quota(tenant)
          const id = yield* ids.next("wl")
          const { state, createdAt } = yield* launchWorkload(
            tenant,
            id,
            spec,
            input,
            backend,
            1,
            { by, backend: backend.name },
            options.workDir
          )
          return viewOf(id, state, createdAt)
        }).pipe(
          // a workload journaled as scheduled is launched (or journaled as failed) even when the request that asked
          // for it is dropped meanwhile: an interrupted start would leave it scheduled, or running unsupervised
          Effect.uninterruptible,
          Effect.withSpan("Spawner.start", { attributes: { tenant_id: tenant } })
        )

      /** The MAX_ATTEMPTS-th start of an idempotent workload is its last. */
      const MAX_ATTEMPTS = 3

      /**
       * The workload's harness is gone: an `idempotent` one is started again on this host (at most MAX_ATTEMPTS
       * starts in all), any other is ended with `otherwise`, never started twice.
       */
      const harnessGone = (tenant: string, id: string, otherwise: Decider.Command, key: string) =>
        Effect.gen(function*() {
          const { state } = yield* load(tenant, id)
          if (Decider.isFinished(state) || state.spec === null) return yield* releaseLease(tenant, id)
          const backend = backends.find((b) => b.name === state.backend)
          if (state.spec.spec.idempotent === true && state.attempt < MAX_ATTEMPTS && backend !== undefined) {
            const restarted = yield* execute(
              tenant,
              id,
              { _tag: "Restart", reason: otherwiseReason(otherwise) },
              `${id}:restart:${state.attempt + 1}`
            )
            if (restarted.appended.length > 0) {
              yield* Effect.logWarning(`workload ${id}: ${otherwiseReason(otherwise)}; starting it again (idempotent)`)
              return yield* Effect.ignore(
                launchWorkload(tenant, id, state.spec, state.input, backend, state.attempt + 1, null)
              )
            }
          }
          yield* execute(tenant, id, otherwise, key).pipe(Effect.ignore)
          yield* releaseLease(tenant, id).pipe(Effect.ignore)
          yield* Harnesses.reapCgroups(id)
        }).pipe(
          Effect.catchCause((cause) => Effect.logWarning(`workload ${id}: could not settle a lost harness`, cause))
        )

      const otherwiseReason = (c: Decider.Command) =>
        c._tag === "Fail" || c._tag === "Terminate" ? c.reason : "the harness is gone"

      const get = (tenant: string, id: string) =>
        Effect.gen(function*() {
          const { state, createdAt } = yield* load(tenant, id)
          if (state.status === "none") return yield* new Decider.WorkloadNotFound({ id })
          return viewOf(id, state, createdAt)
        })

      const list = (tenant: string) =>
        Effect.gen(function*() {
          const names = yield* Effect.tryPromise({
            try: async () => {
              const info = await jsm.streams.info("LANTERN_WORKLOADS", {
                subjects_filter: `lantern.workload.${tenant}.>`
              })
              return Object.keys(info.state.subjects ?? {})
            },
            catch: unavailable("list workloads")
          })
          const views = yield* Effect.forEach(
            names.map((s) => s.slice(`lantern.workload.${tenant}.`.length)),
            (id) => Effect.option(get(tenant, id).pipe(Effect.catchTag("WorkloadNotFound", () => Effect.fail(null)))),
            { concurrency: 8 }
          )
          return views.flatMap((v) => Option.isSome(v) ? [v.value] : []).sort((a, b) => a.id < b.id ? 1 : -1)
        })

      const ask = (tenant: string, id: string, what: "ping" | "terminate", body: unknown) =>
        Effect.tryPromise(() => nc.request(`lantern.harness.${tenant}.${id}.${what}`, enc(body), { timeout: 2000 }))
          .pipe(
            Effect.map((m) => JSON.parse(new TextDecoder().decode(m.data)) as { running?: boolean }),
            Effect.option
          )

      const terminate = (tenant: string, id: string, by: string) =>
        Effect.gen(function*() {
          const { state } = yield* load(tenant, id)
          if (state.status === "none") return yield* new Decider.WorkloadNotFound({ id })
          if (Decider.isFinished(state)) return yield* new Decider.WorkloadFinished({ id, status: state.status })
          const answer = yield* ask(tenant, id, "terminate", { reason: "terminated by request", by })
          if (Option.isSome(answer)) {
            // the harness kills the workload and reports it: wait for the journal to say so
            yield* get(tenant, id).pipe(
              Effect.repeat({
                until: (v) => v.state !== "running" && v.state !== "placed",
                schedule: Schedule.spaced("100 millis")
              }),
              Effect.timeout("15 seconds"),
              Effect.ignore
            )
          }
          // no harness answered (or it did not report in time): journal the end here
          yield* execute(
            tenant,
            id,
            { _tag: "Terminate", reason: "terminated by request", by, usage: null },
            `${id}:terminate`
          ).pipe(
            Effect.catchTag("WorkloadFinished", () => Effect.void),
            Effect.catch((e) => e instanceof BusUnavailable ? Effect.fail(e) : Effect.void)
          )
          yield* releaseLease(tenant, id)
          yield* audit.record({
            tenant,
            action: "workload.terminated",
            actor: by,
            target: id,
            outcome: "allowed",
            detail: {}
          })
          return yield* get(tenant, id)
        })

      const follow = (tenant: string, id: string, afterSeq: number) =>
        journal.follow(addressOf(tenant, id), afterSeq).pipe(
          Stream.mapError((e) =>
            e._tag === "BusUnavailable" ? e : new BusUnavailable({ operation: "follow workload", reason: e.message })
          ),
          Stream.takeUntil((s) => W.TERMINAL_WORKLOAD_EVENTS.has(s.event._tag))
        )

      // ---- harness reports, from any harness, on any host ----
      const parseSubject = (subject: string, prefix: string) => {
        const rest = subject.slice(prefix.length).split(".")
        return rest.length === 2 ? { tenant: rest[0]!, id: rest[1]! } : null
      }
      const onReport = (m: { subject: string; data: Uint8Array; respond: (d: Uint8Array) => boolean }) =>
        Effect.gen(function*() {
          const who = parseSubject(m.subject, "lantern.spawner.report.")
          if (who === null) return
          const body = JSON.parse(new TextDecoder().decode(m.data)) as {
            seq: number
            reports: ReadonlyArray<Decider.Report>
          }
          const outcome = yield* Effect.result(
            execute(who.tenant, who.id, { _tag: "Report", reports: body.reports }, `${who.id}:report:${body.seq}`)
          )
          if (outcome._tag === "Failure") {
            if (outcome.failure instanceof BusUnavailable) return // unacknowledged: the harness sends it again
            m.respond(enc({ ok: false, stop: true }))
            return
          }
          const ended = outcome.success.appended.some((e) => W.TERMINAL_WORKLOAD_EVENTS.has(e._tag))
          if (ended) {
            yield* releaseLease(who.tenant, who.id).pipe(Effect.ignore)
            yield* Harnesses.reapCgroups(who.id)
          }
          m.respond(enc({ ok: true, stop: Decider.isFinished(outcome.success.loaded.state) && !ended }))
        }).pipe(Effect.catchCause((cause) => Effect.logWarning("a harness report was not journaled", cause)))

      /** The workload's identity token checked against its identity: its own, for the harness, not expired. */
      const authenticate = (tenant: string, id: string, token: unknown) =>
        Effect.gen(function*() {
          const identity = yield* identities.ensure(tenant, id)
          const verdict = yield* Identity.check(String(token), identity, yield* Clock.currentTimeMillis, AUDIENCE)
          if (!verdict.valid) return { _tag: "Refused", reason: `token: ${verdict.reason}` } as const
          if (verdict.claims.sub !== Identity.subjectOf(tenant, id)) {
            return { _tag: "Refused", reason: "token: another workload's" } as const
          }
          return { _tag: "Valid", verdict } as const
        })

      // ---- secret vending: the token, the workload, the declaration, then the secret ----
      const onVend = (m: { subject: string; data: Uint8Array; respond: (d: Uint8Array) => boolean }) =>
        Effect.gen(function*() {
          const who = parseSubject(m.subject, "lantern.spawner.vend.")
          if (who === null) return
          const { envName, token } = JSON.parse(new TextDecoder().decode(m.data)) as { envName: string; token: string }
          const refuse = (reason: string) =>
            Effect.andThen(
              audit.record({
                tenant: who.tenant,
                action: "workload.secret.vended",
                actor: `workload:${who.id}`,
                target: String(envName).slice(0, 128),
                outcome: "denied",
                detail: { reason }
              }),
              Effect.sync(() => m.respond(enc({ error: "refused" })))
            )
          const { state } = yield* load(who.tenant, who.id)
          const declared = (state.spec?.spec.secrets ?? []).find((s) => s.envName === envName)
          if (state.status === "none" || Decider.isFinished(state)) return yield* refuse("the workload is not running")
          if (declared === undefined) return yield* refuse("the spec does not declare it")
          const token_ = yield* authenticate(who.tenant, who.id, token)
          if (token_._tag === "Refused") return yield* refuse(token_.reason)
          const verdict = token_.verdict
          const value = yield* Effect.result(secrets.resolve(who.tenant, declared.secretRef, `workload:${who.id}`))
          if (value._tag === "Failure") return yield* refuse(`secret: ${value.failure._tag}`)
          const vended = yield* Effect.result(
            execute(
              who.tenant,
              who.id,
              { _tag: "Vend", envName },
              `${who.id}:vend:${envName}:${verdict.claims.jti}:${Date.now()}`
            )
          )
          if (vended._tag === "Failure") return yield* refuse("the workload is not running")
          yield* audit.record({
            tenant: who.tenant,
            action: "workload.secret.vended",
            actor: `workload:${who.id}`,
            target: envName,
            outcome: "allowed",
            detail: {}
          })
          m.respond(enc({ value: Redacted.value(value.success) }))
        }).pipe(
          Effect.catchCause((cause) =>
            Effect.andThen(
              Effect.logWarning("a secret was not vended", cause),
              Effect.sync(() => m.respond(enc({ error: "refused" })))
            )
          )
        )

      // ---- model calls (ADR 0062): the token, the workload, the budgets, then the router; journaled without content ----
      const onModel = (m: { subject: string; data: Uint8Array; respond: (d: Uint8Array) => boolean }) =>
        Effect.gen(function*() {
          const who = parseSubject(m.subject, "lantern.spawner.model.")
          if (who === null) return
          const answer = (a: ModelCalls.Answer) => Effect.sync(() => m.respond(enc(a)))
          const { token, body } = JSON.parse(new TextDecoder().decode(m.data)) as { token: unknown; body: unknown }
          // a refused caller is audited as a refused secret is: the reason on record, one answer to the caller
          const refuse = (reason: string) =>
            Effect.andThen(
              audit.record({
                tenant: who.tenant,
                action: "workload.model.refused",
                actor: `workload:${who.id}`,
                target: `workload:${who.id}`,
                outcome: "denied",
                detail: { reason }
              }),
              answer(ModelCalls.REFUSED)
            )
          const { state } = yield* load(who.tenant, who.id)
          if (state.status === "none" || Decider.isFinished(state) || state.spec === null) {
            return yield* refuse("the workload is not running")
          }
          const checked = yield* authenticate(who.tenant, who.id, token)
          if (checked._tag === "Refused") return yield* refuse(checked.reason)
          const callId = crypto.randomUUID()
          const key = `${who.id}:model:${callId}`
          const parsed = ModelCalls.parse(body, who.tenant, key)
          if (parsed._tag === "Invalid") return yield* answer(parsed.answer)
          const request = parsed.request
          const agentName = state.spec.metadata.name
          const started = yield* Clock.currentTimeMillis
          // the spec's own cap first: what the workload has spent plus this call's worst case
          const maxCost = state.spec.spec.limits.maxCostUsd
          if (maxCost !== undefined) {
            const quote = yield* models.quote(request)
            if (state.costUsd + quote.worstCaseUsd > maxCost) {
              return yield* answer(ModelCalls.error(
                402,
                "insufficient_quota",
                "budget_exceeded",
                `the workload's limits.maxCostUsd ($${maxCost}) leaves no room: $${state.costUsd} spent, this call may cost $${quote.worstCaseUsd}`
              ))
            }
          }
          // then the agent's and the tenant's budgets, exactly as a run's model step reserves them
          const hold = yield* Effect.result(budgets.reserve({
            tenant: who.tenant,
            agentName,
            runId: who.id,
            reservationId: key,
            quote: models.quote(request),
            run: { costUsd: state.costUsd, tokens: state.tokensIn + state.tokensOut, toolCalls: 0 },
            expiresAt: started + MODEL_CALL_TIMEOUT_MS + 60_000
          }))
          if (hold._tag === "Failure") {
            const e = hold.failure
            if (e._tag !== "BudgetExceeded") return yield* answer(MODEL_UNAVAILABLE)
            return yield* answer(ModelCalls.error(402, "insufficient_quota", "budget_exceeded", e.refusal.reason))
          }
          const outcome = yield* Effect.result(
            models.complete(request).pipe(Effect.timeout(Duration.millis(MODEL_CALL_TIMEOUT_MS)))
          )
          const used = outcome._tag === "Success"
            ? { costUsd: outcome.success.costUsd, tokens: outcome.success.tokensIn + outcome.success.tokensOut }
            : { costUsd: 0, tokens: 0 }
          if (hold.success.scopes.length > 0) yield* budgets.settle(hold.success, used).pipe(Effect.ignore)
          if (outcome._tag === "Failure") {
            const e = outcome.failure
            return yield* answer(ModelCalls.error(
              e._tag === "ProviderError" && e.kind === "rate_limited" ? 429 : 502,
              "api_error",
              e._tag === "ProviderError" ? e.kind : "timeout",
              e._tag === "ProviderError" ? e.message : `the model call took longer than ${MODEL_CALL_TIMEOUT_MS} ms`
            ))
          }
          const response = outcome.success
          const finished = yield* Clock.currentTimeMillis
          yield* execute(who.tenant, who.id, {
            _tag: "ModelCalled",
            call: {
              model: request.model,
              chosen: response.route?.chosen ?? `${response.answer.provider}/${response.answer.model}`,
              cached: response.route?.cached ?? false,
              finishReason: response.answer.finishReason,
              tokensIn: response.tokensIn,
              tokensOut: response.tokensOut,
              costUsd: response.costUsd,
              durationMs: finished - started
            }
          }, key).pipe(Effect.ignore)
          yield* answer(ModelCalls.completion(callId, Math.floor(finished / 1000), response))
        }).pipe(
          Effect.catchCause((cause) =>
            Effect.andThen(
              Effect.logWarning("a workload's model call failed", cause),
              Effect.sync(() => m.respond(enc(MODEL_UNAVAILABLE)))
            )
          )
        )

      const serve = (subject: string, handle: typeof onReport) =>
        Effect.gen(function*() {
          const sub = nc.subscribe(subject, { queue: "lantern-spawner" })
          yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
          yield* Effect.forkScoped(
            Stream.fromAsyncIterable(sub, unavailable(`serve ${subject}`)).pipe(
              Stream.mapEffect(handle, { concurrency: 32, unordered: true }),
              Stream.runDrain,
              Effect.ignore
            )
          )
        })
      yield* serve("lantern.spawner.report.>", onReport)
      yield* serve("lantern.spawner.vend.>", onVend)
      yield* serve("lantern.spawner.model.>", onModel)

      // ---- liveness: the holder pings its harnesses; another host adopts or closes the workloads of a dead one ----
      const missed = new Map<string, number>()
      const watch = Effect.gen(function*() {
        const keys = yield* kv.keys()
        listed = { at: yield* Clock.currentTimeMillis, keys: new Set(keys) }
        for (const key of keys) {
          const entry = yield* kv.get(key).pipe(Effect.option, Effect.map(Option.flatten))
          if (Option.isNone(entry)) continue
          const lease = entry.value.value
          const dot = key.indexOf(".")
          const tenant = key.slice(0, dot)
          const id = key.slice(dot + 1)
          if (lease.harnessPid === 0) continue // still being started
          if (lease.host !== hosts.id) {
            if ((yield* hosts.probe(lease.host)) === "alive") continue
            const taken = yield* kv.update(key, { ...lease, host: hosts.id }, entry.value.revision)
            if (taken._tag !== "Updated") continue
            yield* Effect.logWarning(`host ${lease.host} is gone; checking its workload ${id}`)
            const answer = yield* ask(tenant, id, "ping", {})
            if (Option.isSome(answer) && answer.value.running !== false) {
              yield* execute(tenant, id, { _tag: "Adopt", host: hosts.id }, `${id}:adopt:${hosts.id}`).pipe(
                Effect.ignore
              )
            } else {
              yield* harnessGone(
                tenant,
                id,
                { _tag: "Fail", reason: `lost: host ${lease.host} died and its harness with it` },
                `${id}:lost`
              )
            }
            continue
          }
          const answer = yield* ask(tenant, id, "ping", {})
          if (Option.isSome(answer)) {
            missed.delete(key)
            continue
          }
          const n = (missed.get(key) ?? 0) + 1
          missed.set(key, n)
          if (n < MISSED_PINGS) continue
          missed.delete(key)
          // the harness is gone (killed, or its machine): no more heartbeats, so the workload is ended and journaled
          // (or, if idempotent, started again)
          yield* harnessGone(tenant, id, {
            _tag: "Terminate",
            reason: "heartbeats stopped: the harness is gone",
            by: "spawner",
            usage: null
          }, `${id}:heartbeats-stopped`)
        }
      }).pipe(Effect.catchCause((cause) => Effect.logWarning("workload watch failed; trying again", cause)))
      yield* Effect.forkScoped(watch.pipe(Effect.repeat(Schedule.spaced(PING_EVERY))))

      return Spawner.of({
        backends: backends.map((b) => b.name),
        placement,
        start,
        get,
        list,
        terminate,
        follow
      })
    })
  )
}
