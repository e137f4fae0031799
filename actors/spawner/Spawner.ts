// The spawner actor's shell (ADR 0046): places a workload on the weakest backend that provides its tier, journals
// each step (lantern.workload.<tenant>.<id>), mints its identity, starts its harness detached on this host and
// holds its lease in `lantern-workload-leases`. Every host journals harness reports and vends secrets (queue
// groups on lantern.spawner.report.> and lantern.spawner.vend.>); the holder pings its harnesses, and a host whose
// holder died adopts the workload if its harness still answers, or journals it as lost: a workload is never
// started twice. This module composes those parts (Launch, Supervision, SecretVend, ModelRequests, Leases).
import { Context, Effect, Layer, Option, Schedule, Stream } from "effect"
import { Ids } from "../kernel/Ids.ts"
import { Journal } from "../../bus/Journal.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import type { Stored } from "../../schema/Envelope.ts"
import { BusUnavailable } from "../../schema/Errors.ts"
import * as W from "../../schema/Workload.ts"
import { Audit } from "../audit/Audit.ts"
import * as Identity from "../identity/Identity.ts"
import * as Backends from "./Backends.ts"
import * as Decider from "./Decider.ts"
import * as HarnessAuth from "./HarnessAuth.ts"
import * as HarnessBus from "./HarnessBus.ts"
import type { SpawnFailed } from "./Harnesses.ts"
import * as Kubernetes from "./Kubernetes.ts"
import * as Launch from "./Launch.ts"
import * as Leases from "./Leases.ts"
import type { WorkloadQuotaExceeded } from "./Leases.ts"
import * as MicroVm from "./MicroVm.ts"
import * as ModelRequests from "./ModelRequests.ts"
import * as SecretVend from "./SecretVend.ts"
import { settingsConfig } from "./Settings.ts"
import * as Supervision from "./Supervision.ts"
import * as WorkloadJournal from "./WorkloadJournal.ts"

export { AUDIENCE } from "./HarnessAuth.ts"
export { SpawnFailed } from "./Harnesses.ts"
export { leaseBucket, WorkloadQuotaExceeded } from "./Leases.ts"
export { type Settings, settingsConfig } from "./Settings.ts"

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
      const { jsm } = yield* Nats
      const journal = yield* Journal
      const ids = yield* Ids
      const audit = yield* Audit
      const identities = yield* Identity.Identities
      const workloads = yield* WorkloadJournal.make
      const { execute, load } = workloads
      const leases = yield* Leases.make(settings)
      const { releaseLease, quota } = leases
      const addressOf = WorkloadJournal.addressOf

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
      const launchWorkload = yield* Launch.make(settings, workloads, leases)
      const { ask, onReport, watch } = yield* Supervision.make(workloads, leases, backends, launchWorkload)

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

      // ---- what harnesses ask of any host: reports, secrets (ADR 0046) and model calls (ADR 0062) ----
      const authenticate = HarnessAuth.authenticate(identities)
      yield* HarnessBus.serve("lantern.spawner.report.>", onReport)
      yield* HarnessBus.serve("lantern.spawner.vend.>", yield* SecretVend.handler(workloads, authenticate))
      yield* HarnessBus.serve("lantern.spawner.model.>", yield* ModelRequests.handler(workloads, authenticate))

      // ---- liveness: the holder pings its harnesses; another host adopts or closes the workloads of a dead one ----
      yield* Effect.forkScoped(watch.pipe(Effect.repeat(Schedule.spaced(Leases.PING_EVERY))))

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
