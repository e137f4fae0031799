// Workloads supervised through their harnesses (ADR 0046): every host journals the reports of any harness; the
// holder of a lease pings its harnesses, and a host whose holder died adopts the workload if its harness still
// answers, or journals it as lost. A lost idempotent workload is started again; no other is ever started twice.
import { Clock, Effect, Option } from "effect"
import { Hosts } from "../../bus/Hosts.ts"
import { Nats } from "../../bus/Nats.ts"
import { BusUnavailable } from "../../schema/Errors.ts"
import * as W from "../../schema/Workload.ts"
import type * as Backends from "./Backends.ts"
import * as Decider from "./Decider.ts"
import { enc, read, type Request } from "./HarnessBus.ts"
import * as Harnesses from "./Harnesses.ts"
import type { LaunchWorkload } from "./Launch.ts"
import type { Leases } from "./Leases.ts"
import type { WorkloadJournal } from "./WorkloadJournal.ts"

/** How many unanswered pings make a harness gone. */
const MISSED_PINGS = 3

/** The MAX_ATTEMPTS-th start of an idempotent workload is its last. */
const MAX_ATTEMPTS = 3

const otherwiseReason = (c: Decider.Command) =>
  c._tag === "Fail" || c._tag === "Terminate" ? c.reason : "the harness is gone"

export const make = (
  { execute, load }: WorkloadJournal,
  leases: Leases,
  backends: ReadonlyArray<Backends.Backend>,
  launchWorkload: LaunchWorkload
) =>
  Effect.gen(function*() {
    const { nc } = yield* Nats
    const hosts = yield* Hosts
    const { kv, releaseLease } = leases

    /** Asks the workload's harness, wherever it runs; none when no harness answers in 2 s. */
    const ask = (tenant: string, id: string, what: "ping" | "terminate", body: unknown) =>
      Effect.tryPromise(() => nc.request(`lantern.harness.${tenant}.${id}.${what}`, enc(body), { timeout: 2000 }))
        .pipe(
          Effect.map((m) => JSON.parse(new TextDecoder().decode(m.data)) as { running?: boolean }),
          Effect.option
        )

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

    // ---- harness reports, from any harness, on any host ----
    const onReport = (m: Request) =>
      Effect.gen(function*() {
        const asked = read<{ seq: number; reports: ReadonlyArray<Decider.Report> }>(m, "lantern.spawner.report.")
        if (asked === null) return
        const { who, body } = asked
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

    // ---- liveness: the holder pings its harnesses; another host adopts or closes the workloads of a dead one ----
    const missed = new Map<string, number>()
    // the lease bucket's keys, kept by one watch: an idle host no longer lists the bucket every second (a consumer
    // made and deleted each time); while that watch is down the bucket is listed as before
    const live = yield* kv.liveKeys
    const watch = Effect.gen(function*() {
      const keys = live.current() ?? (yield* kv.keys())
      leases.noteListing(yield* Clock.currentTimeMillis, keys)
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

    return { ask, onReport, watch }
  })
