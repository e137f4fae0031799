// A workload's harness started on this host (ADR 0046, ADR 0069): its sandbox's command line and config written,
// the start made durable while a pooled harness prepares, and only then the harness told to go. Nothing ever runs
// unrecorded: whatever fails before the start calls the harness off; whatever fails after is journaled as the end.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Clock, Duration, Effect } from "effect"
import { Hosts } from "../../bus/Hosts.ts"
import { Nats } from "../../bus/Nats.ts"
import * as Started from "../../bus/Started.ts"
import { BusUnavailable } from "../../schema/Errors.ts"
import type * as W from "../../schema/Workload.ts"
import * as Identity from "../identity/Identity.ts"
import * as Actor from "../kernel/Actor.ts"
import * as Backends from "./Backends.ts"
import * as Decider from "./Decider.ts"
import { AUDIENCE } from "./HarnessAuth.ts"
import * as HarnessBuild from "./HarnessBuild.ts"
import * as Harnesses from "./Harnesses.ts"
import { SpawnFailed } from "./Harnesses.ts"
import { type Leases, leaseKey } from "./Leases.ts"
import type { Settings } from "./Settings.ts"
import { addressOf, orDie, type WorkloadJournal } from "./WorkloadJournal.ts"

/** How often a harness reports that its workload still runs. */
const HEARTBEAT_MS = 2000

/** What a first start journals in one append before its harness is told to go (the rest comes from the id). */
export interface FirstStart {
  readonly by: string
  readonly backend: string
}

/** The harness built and its pool started; the returned function starts one workload. */
export const make = (settings: Settings, { execute, remember, run }: WorkloadJournal, leases: Leases) =>
  Effect.gen(function*() {
    const { url } = yield* Nats
    const hosts = yield* Hosts
    const identities = yield* Identity.Identities
    const { kv, releaseLease } = leases
    const harness = yield* HarnessBuild.build
    const { prepare } = yield* Harnesses.pool(
      harness.main,
      settings.workDir,
      settings.harnessPool,
      url,
      // Node processes loading beside the host's own start would slow it (ADR 0072)
      Started.whenStarted
    )
    const workloadActor = Actor.make(Decider.decider(""))

    /**
     * Starts the workload's harness on this host (attempt 1, or a restart of an idempotent workload), as ADR 0069
     * orders it: the sandbox's command line (the tier checked again) and a harness handed the config, which it
     * prepares while the start is made durable (for a first start: Scheduled, Placed and IdentityMinted in one
     * append, after the identity it names; the lease, holder not yet known); only then is the harness told to go,
     * with the token. Whatever fails before that calls the harness off, so nothing ever runs unrecorded. Then the
     * lease names the harness and Spawned is journaled. Returns the workload as the journal then has it.
     */
    return (
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
        leases.startingHere(tenant, id, yield* Clock.currentTimeMillis)
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
        // the harness's first report is decided on this, not on a read of the journal back
        remember(tenant, id, spawned)
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
  })

export type LaunchWorkload = Effect.Success<ReturnType<typeof make>>
