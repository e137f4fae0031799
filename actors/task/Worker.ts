// The queue's workers (ADR 0054): LANTERN_TASK_WORKERS fibers on each serve host, each claiming the best claimable
// task (exactly once, by the claim's expected sequence), probing its adapter chain, running the first adapter that
// passes, and journaling how the attempt closed. Beside them a sweep reclaims the attempts of workers whose host is
// gone (probed dead through bus/Hosts.ts, as the run watchdog does), so nothing stays `running` for ever.
import { mkdirSync } from "node:fs"
import { resolve } from "node:path"
import { Clock, Config, Duration, Effect, Layer, Schedule } from "effect"
import { Hosts } from "../../bus/Hosts.ts"
import { busRetry } from "../../bus/Journal.ts"
import type { TaskSubmission } from "../../schema/Task.ts"
import type { AttemptContext } from "./Adapter.ts"
import { Adapters } from "./Adapters.ts"
import { Artifacts } from "./Artifacts.ts"
import * as Bundle from "./Bundle.ts"
import * as Evidence from "./Evidence.ts"
import * as Decider from "./Decider.ts"
import { Workers } from "./Dispatch.ts"
import { type Claimed, keyOf, Tasks } from "./Tasks.ts"

export const settingsConfig = Config.all({
  workers: Config.Int("LANTERN_TASK_WORKERS").pipe(Config.withDefault(2)),
  reclaimEvery: Config.Duration("LANTERN_TASK_RECLAIM_INTERVAL").pipe(Config.withDefault(Duration.millis(250)))
})

/** How long a task this host claimed may show as running here without a worker before it is reclaimed. */
const ORPHAN_GRACE_MS = 30_000

/** The longest a worker idles before it looks at the index again (a change wakes it sooner). */
const IDLE_MS = 1_000

export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* settingsConfig
    const tasks = yield* Tasks
    const hosts = yield* Hosts
    const adapters = yield* Adapters
    const workers = yield* Workers
    const artifacts = yield* Artifacts
    /** Attempts running on this host, by task key: a cancel aborts the adapter's signal. */
    const controllers = new Map<string, AbortController>()

    const unlisten = tasks.onChange((change) => {
      if (change.task.status === "running") return
      controllers.get(keyOf(change.task.tenant, change.task.id))?.abort()
    })
    yield* Effect.addFinalizer(() => Effect.sync(unlisten))

    /** A journal write of the attempt: retried while the bus is away, so an attempt is not left open by a blip. */
    const write = (tenant: string, id: string, command: Decider.Command, key: string) =>
      tasks.execute(tenant, id, command, key).pipe(
        Effect.retry({ schedule: busRetry, times: 10, while: (e) => e._tag === "BusUnavailable" })
      )

    const attempt = (worker: string, claimed: Claimed) =>
      Effect.gen(function*() {
        const { entry, attempt } = claimed
        const { tenant, id } = entry
        const sub = entry.state.submitted!
        const key = keyOf(tenant, id)
        const controller = new AbortController()
        controllers.set(key, controller)
        workers.running(worker, { tenant, taskId: id })
        const chosen = yield* adapters.choose(tenant, sub.adapters)
        yield* write(tenant, id, {
          _tag: "ChooseAdapter",
          attempt,
          probes: chosen.probes,
          chosen: chosen.chosen?.adapter.type ?? null,
          at: yield* Clock.currentTimeMillis
        }, "adapter")
        let result: Decider.Result
        let usage: Decider.Usage = Decider.NO_USAGE
        if (chosen.chosen === null) {
          result = {
            _tag: "NoAdapter",
            reason: chosen.probes.map((p) => `${p.type}: ${p.reason ?? "failed"}`).join("; ") || "the chain is empty"
          }
        } else {
          const artifactRoot = resolve(tasks.settings.home, sub.artifactRoot)
          mkdirSync(artifactRoot, { recursive: true })
          const ctx: AttemptContext = {
            tenant,
            taskId: id,
            attempt,
            kind: sub.kind,
            subject: sub.subject,
            description: sub.description,
            payload: sub.payload,
            artifactRoot,
            signal: controller.signal
          }
          const ran = yield* chosen.chosen.adapter.execute(chosen.chosen.spec, ctx).pipe(Effect.result)
          // the attempt's bundle (ADR 0057): what the adapter saw, hashed, whether or not it produced an outcome
          const seen = ran._tag === "Success" ? ran.success.seen : ran.failure.seen
          const bundleHash = Bundle.compile({ task: ctx, adapter: chosen.chosen.spec, seen }).hash
          if (ran._tag === "Success") {
            const r = ran.success
            // evidence over narration (ADR 0057): a completed outcome's claims are checked, then its artifacts stored
            const verdict = Evidence.verify(r.outcome, {
              artifactRoot,
              prompt: Evidence.promptOf(seen),
              description: sub.description
            })
            const issues: Array<string> = verdict.ok ? [] : verdict.issues.map((i) => `${i.code}: ${i.message}`)
            let stored: ReadonlyArray<string> = []
            if (verdict.ok && r.outcome.status === "completed" && r.outcome.artifactPaths.length > 0) {
              const collected = yield* Effect.result(
                artifacts.collect(tenant, id, artifactRoot, r.outcome.artifactPaths)
              )
              if (collected._tag === "Success") stored = collected.success.map((e) => e.path)
              else issues.push(`artifact_not_stored: ${collected.failure.message}`)
            }
            result = { _tag: "Reported", outcome: r.outcome, issues }
            usage = {
              bundleHash,
              costUsd: r.usage.costUsd,
              tokens: r.usage.tokens,
              runId: r.ref.runId ?? null,
              workloadId: r.ref.workloadId ?? null,
              artifacts: stored
            }
          } else {
            const f = ran.failure
            usage = { ...Decider.NO_USAGE, bundleHash }
            result = {
              _tag: "Failed",
              message: f.message,
              retryable: f.retryable,
              retryAfterSeconds: f.retryAfterSeconds ?? null
            }
          }
        }
        const { entry: after } = yield* write(tenant, id, {
          _tag: "Finish",
          attempt,
          result,
          usage,
          hintCap: tasks.settings.hintCap,
          random: Math.random(),
          at: yield* Clock.currentTimeMillis
        }, "finish")
        // follow-up tasks of a completed outcome, each once (its id fixed by the parent's attempt and its place)
        const closed = after.state.attempts.find((a) => a.attempt === attempt)?.closed
        if (closed?.status === "completed" && closed.outcome !== null) {
          for (const [i, f] of closed.outcome.followUpTasks.entries()) {
            const submission: TaskSubmission = { ...f, dedupeKey: f.dedupeKey ?? `followup:${id}:${attempt}:${i}` }
            yield* tasks.submit(tenant, submission, { parentTaskId: id }).pipe(
              Effect.catch((e) => Effect.logWarning(`follow-up ${i} of task ${id} not submitted: ${e.message}`))
            )
          }
        }
      }).pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning(`task ${claimed.entry.id}: attempt ${claimed.attempt} stopped`, cause)
        ),
        Effect.ensuring(Effect.sync(() => {
          controllers.delete(keyOf(claimed.entry.tenant, claimed.entry.id))
          workers.running(worker, null)
        })),
        Effect.withSpan("Task.attempt", {
          attributes: { tenant_id: claimed.entry.tenant, task_id: claimed.entry.id, attempt: claimed.attempt }
        })
      )

    const loop = (worker: string) =>
      Effect.gen(function*() {
        workers.register(worker, hosts.id)
        for (;;) {
          // the index's version before it looks: a change while it claims (and finds nothing) wakes it at once
          const looked = tasks.version()
          const claimed = yield* tasks.claimNext(worker, hosts.id)
          if (claimed !== null) {
            yield* attempt(worker, claimed)
            continue
          }
          const now = yield* Clock.currentTimeMillis
          const next = tasks.nextAvailable(now)
          yield* tasks.waitChange(next === null ? IDLE_MS : Math.min(IDLE_MS, Math.max(1, next - now)), looked)
        }
      }).pipe(
        Effect.catchCause((cause) => Effect.logWarning(`task worker ${worker} stopped; starting it again`, cause)),
        Effect.repeat(Schedule.spaced("1 second"))
      )

    /** Holders probed this sweep: one probe per host, however many of its tasks run. */
    const sweep = Effect.gen(function*() {
      const verdicts = new Map<string, "alive" | "dead">()
      const now = yield* Clock.currentTimeMillis
      for (const e of tasks.running()) {
        const running = e.state.running!
        let dead = false
        if (running.holder === hosts.id) {
          // a task this host claimed whose worker is gone (its journal write failed after every retry)
          dead = !controllers.has(keyOf(e.tenant, e.id)) && now - running.claimedAt > ORPHAN_GRACE_MS
        } else {
          let verdict = verdicts.get(running.holder)
          if (verdict === undefined) {
            verdict = yield* hosts.probe(running.holder).pipe(Effect.orElseSucceed(() => "alive" as const))
            verdicts.set(running.holder, verdict)
          }
          dead = verdict === "dead"
        }
        if (!dead) continue
        yield* Effect.logWarning(`task ${e.id}: its worker ${running.worker} (${running.holder}) is gone; reclaiming`)
        yield* tasks.execute(e.tenant, e.id, {
          _tag: "Reclaim",
          attempt: running.attempt,
          holder: running.holder,
          at: now
        }, "reclaim").pipe(Effect.catch((err) => Effect.logWarning(`task ${e.id} not reclaimed: ${err.message}`)))
      }
    }).pipe(Effect.catchCause((cause) => Effect.logWarning("task reclaim sweep failed", cause)))

    for (let i = 1; i <= settings.workers; i++) yield* Effect.forkScoped(loop(`${hosts.slot}/w${i}`))
    yield* Effect.forkScoped(sweep.pipe(Effect.repeat(Schedule.spaced(settings.reclaimEvery))))
    yield* Effect.logInfo(`task workers: ${settings.workers} on ${hosts.id}`)
  })
)
