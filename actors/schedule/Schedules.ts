// The schedule actor's shell (ADR 0055): schedules journaled on lantern.schedule.<tenant>.<id>; every worker host ticks
// them (a timer fiber), and a due slot is fired by whichever host's append lands first: the fire expects the journal's
// last sequence and carries the slot's message id, so however many hosts tick the same slot, one journals it and the
// others read it back. The winner starts the fire's run (actors/run/Runs.ts) or task (the TaskQueue port), under a key
// fixed by the fire, and journals what it started; a fire left undispatched by a host that died is dispatched by the
// next tick of any host, under the same key, so it starts once.
import { createHash } from "node:crypto"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Result, Schedule } from "effect"
import * as Consumer from "../../bus/Consumer.ts"
import { Journal } from "../../bus/Journal.ts"
import { Nats } from "../../bus/Nats.ts"
import * as Streams from "../../bus/Streams.ts"
import { AGENTS, SCHEDULES } from "../../bus/Topology.ts"
import { LOOP_CRONS, type ResolvedSpec } from "../../schema/AgentSpec.ts"
import type { ActorAddress } from "../../schema/Envelope.ts"
import { AppendConflict, type BusUnavailable } from "../../schema/Errors.ts"
import * as Expression from "../../schema/Expression.ts"
import { ALPHABET } from "../../schema/Ids.ts"
import {
  type FireView,
  type ScheduleEvent,
  ScheduleNotFound,
  type ScheduleRequest,
  type ScheduleView
} from "../../schema/Schedule.ts"
import * as AgentActor from "../agent/Agents.ts"
import * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import { Runs } from "../run/Runs.ts"
import { TaskQueue } from "../task/Queue.ts"
import * as Decider from "./Decider.ts"

export const actor = Actor.make(Decider.decider)

export const addressOf = (tenant: string, id: string): ActorAddress => ({ type: "schedule", tenant, id })

type Fired = Extract<ScheduleEvent, { _tag: "ScheduleFired" }>

/** A loop agent's schedule id: fixed by tenant and agent, so publishing its versions upserts one schedule. */
export const loopScheduleId = (tenant: string, agentName: string) => {
  const digest = createHash("sha256").update(`loop\n${tenant}\n${agentName}`).digest()
  let out = ""
  for (let i = 0; i < 26; i++) out += ALPHABET[digest[i]! & 31]
  return `sch_${out}`
}

/** A request's definition: defaults filled in (UTC, enabled). */
export const definitionOf = (request: ScheduleRequest): Decider.Definition => ({
  name: request.name,
  target: request.target,
  cron: request.cron ?? null,
  everySeconds: request.everySeconds ?? null,
  timezone: request.timezone ?? "UTC",
  ...(request.inputTemplate === undefined ? {} : { inputTemplate: request.inputTemplate }),
  enabled: request.enabled ?? true
})

/** A loop agent's schedule, or null when its spec declares no scheduled loop (none, or `nano`: event-driven). */
export const loopDefinition = (agentName: string, spec: ResolvedSpec): Decider.Definition | null => {
  const loop = spec.loop
  if (loop === undefined || loop.tier === "nano") return null
  return {
    name: `loop:${agentName}`,
    target: { agentName },
    cron: loop.cron ?? LOOP_CRONS[loop.tier],
    everySeconds: null,
    timezone: "UTC",
    enabled: true,
    loop: { agentName, tier: loop.tier }
  }
}

const iso = (ms: number) => new Date(ms).toISOString()

/** What a fire's input template sees as `input`. */
export const factsOf = (id: string, name: string, fire: Fired) => ({
  scheduleId: id,
  name,
  fireId: fire.fireId,
  slot: fire.slot === null ? null : iso(fire.slot),
  firedAt: iso(fire.firedAt),
  coalesced: fire.coalesced,
  manual: fire.manual
})

export const fireView = (fire: Fired, state: Decider.State): FireView => {
  const dispatch = state.pending[fire.fireId] !== undefined
    ? null
    : state.lastFire?.fireId === fire.fireId
    ? state.lastFireDispatch
    : null
  return {
    fireId: fire.fireId,
    slot: fire.slot === null ? null : iso(fire.slot),
    firedAt: iso(fire.firedAt),
    coalesced: fire.coalesced,
    manual: fire.manual,
    by: fire.by,
    dispatched: state.pending[fire.fireId] === undefined,
    runId: dispatch?.runId ?? null,
    taskId: dispatch?.taskId ?? null,
    error: dispatch?.error ?? null
  }
}

export const viewOf = (id: string, state: Decider.State, now: number): ScheduleView | null => {
  const d = state.definition
  if (state.status !== "active" || d === null) return null
  const next = Decider.nextAt(state, now)
  return {
    id,
    name: d.name,
    target: d.target,
    cron: d.cron,
    everySeconds: d.everySeconds,
    timezone: d.timezone,
    ...(d.inputTemplate === undefined ? {} : { inputTemplate: d.inputTemplate }),
    enabled: d.enabled,
    loop: d.loop ?? null,
    nextFireAt: next === null ? null : iso(next),
    fires: state.fires,
    lastFire: state.lastFire === null ? null : fireView(state.lastFire, state),
    createdAt: iso(state.createdAt),
    updatedAt: iso(state.updatedAt)
  }
}

/**
 * Fires the slot of one schedule due at `now`, if one is: the append expects the journal's last sequence and its
 * message id is the slot's, so of the hosts ticking the same slot exactly one journals it. The fire (and the state
 * after it) when this host journaled it; null when nothing was due or another host fired it first.
 */
export const fireDue = (address: ActorAddress, now: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    for (let attempt = 0; attempt < 16; attempt++) {
      const loaded = yield* actor.load(address)
      const decided = Decider.decider.decide({ _tag: "Tick", id: address.id, now }, loaded.state)
      if (Result.isFailure(decided) || decided.success.length === 0) return null
      const fired = decided.success[0] as Fired
      const batch = yield* actor.envelopes(address, [fired], {
        idempotencyKey: `${address.tenant}:${address.id}:${fired.fireId}`,
        correlationId: address.id
      }, loaded.seq)
      const appended = yield* Effect.result(journal.append(address, batch, loaded.seq))
      if (Result.isSuccess(appended)) {
        // a duplicate: the same slot's fire was journaled by another host (its message id) first
        if (appended.success.duplicates > 0) return null
        return { fired, state: Decider.evolve(loaded.state, fired), seq: appended.success.lastSeq }
      }
      if (!(appended.failure instanceof AppendConflict)) return yield* Effect.fail(appended.failure)
      // another host appended: decide again on what it wrote
    }
    return null
  })

/** What a fire started: a run, a task, or why neither (recorded, not retried). */
export interface Started {
  readonly runId: string | null
  readonly taskId: string | null
  readonly error: string | null
}

/** Starts what a fire targets, idempotently (the key is the fire's); fails only when it should be tried again. */
export type Dispatch = (
  tenant: string,
  id: string,
  definition: Decider.Definition,
  fire: Fired
) => Effect.Effect<Started, BusUnavailable>

/** The dispatch of this host: runs through Runs, tasks through the TaskQueue when this host has one. */
export const makeDispatch = Effect.gen(function*() {
  const runs = yield* Runs
  const queue = yield* Effect.serviceOption(TaskQueue)
  const dispatch: Dispatch = (tenant, id, definition, fire) =>
    Effect.gen(function*() {
      const facts = factsOf(id, definition.name, fire)
      let input: unknown = facts
      if (definition.inputTemplate !== undefined) {
        try {
          input = Expression.renderDeep(definition.inputTemplate, { input: facts })
        } catch (e) {
          return { runId: null, taskId: null, error: `inputTemplate: ${(e as Error).message}` }
        }
      }
      const target = definition.target
      if ("agentName" in target) {
        const started = yield* runs.start(tenant, {
          agentName: target.agentName,
          ...(target.agentVersion === undefined ? {} : { agentVersion: target.agentVersion }),
          input
        }, `schedule:${id}:${fire.fireId}`).pipe(Effect.result)
        if (Result.isSuccess(started)) return { runId: started.success.run.id, taskId: null, error: null }
        const e = started.failure
        if (e._tag === "BusUnavailable") return yield* Effect.fail(e)
        if (e._tag === "AppendConflict") return yield* Effect.fail(e as unknown as BusUnavailable)
        return { runId: null, taskId: null, error: e.message }
      }
      if (Option.isNone(queue)) {
        return { runId: null, taskId: null, error: "this host has no task queue to submit the task to" }
      }
      const submitted = yield* queue.value.submit(tenant, {
        ...target.task,
        ...(definition.inputTemplate === undefined ? {} : { payload: input }),
        // one task per fire, however often the fire is dispatched
        dedupeKey: `schedule:${id}:${fire.fireId}`
      }, { scheduleId: id }).pipe(Effect.result)
      if (Result.isSuccess(submitted)) return { runId: null, taskId: submitted.success.task.id, error: null }
      const e = submitted.failure
      if (e._tag === "BusUnavailable") return yield* Effect.fail(e)
      return { runId: null, taskId: null, error: `${e.field}: ${e.message}` }
    })
  return dispatch
})

/** Journals what a fire started; a fire already recorded (by another host) is left as it is. */
const record = (address: ActorAddress, fireId: string, started: Started) =>
  actor.execute(address, { _tag: "RecordDispatch", fireId, ...started }, {
    idempotencyKey: `${address.tenant}:${address.id}:dispatch:${fireId}`,
    correlationId: address.id
  })

/** How long a fire may stay undispatched before any host dispatches it (its own host died, or failed to). */
export const REDISPATCH_AFTER_MS = 15_000

export interface TickReport {
  readonly fired: ReadonlyArray<{ readonly tenant: string; readonly id: string; readonly fire: Fired }>
  readonly dispatched: number
}

/**
 * A host's ticker: `tick(now)` fires every schedule due at `now` and dispatches what this host fired, plus fires left
 * undispatched for REDISPATCH_AFTER_MS. It knows the schedules from the stream's subjects, reloading a journal only
 * when its count of events changed.
 */
export const makeTicker = (dispatch: Dispatch) =>
  Effect.gen(function*() {
    const provide = yield* Actor.provider
    const nats = yield* Nats
    const known = new Map<
      string,
      { readonly tenant: string; readonly id: string; count: number; state: Decider.State }
    >()

    const refresh = Effect.gen(function*() {
      const counts = yield* Streams.counts(SCHEDULES, "lantern.schedule.>").pipe(Effect.provideService(Nats, nats))
      for (const subject of known.keys()) if (counts[subject] === undefined) known.delete(subject)
      for (const [subject, count] of Object.entries(counts)) {
        const entry = known.get(subject)
        if (entry !== undefined && entry.count === count) continue
        const [, , tenant = "", id = ""] = subject.split(".")
        const loaded = yield* provide(actor.load(addressOf(tenant, id)))
        known.set(subject, { tenant, id, count, state: loaded.state })
      }
    })

    const dispatchOne = (tenant: string, id: string, definition: Decider.Definition, fire: Fired) =>
      Effect.gen(function*() {
        const started = yield* dispatch(tenant, id, definition, fire)
        yield* provide(record(addressOf(tenant, id), fire.fireId, started))
      })

    const tick = (now: number) =>
      Effect.gen(function*() {
        yield* refresh
        const fired: Array<TickReport["fired"][number]> = []
        let dispatched = 0
        yield* Effect.forEach([...known.values()], (entry) =>
          Effect.gen(function*() {
            const { tenant, id } = entry
            const address = addressOf(tenant, id)
            if (Decider.dueAt(entry.state, now) !== null) {
              const won = yield* provide(fireDue(address, now))
              if (won !== null) {
                entry.state = won.state
                fired.push({ tenant, id, fire: won.fired })
                yield* dispatchOne(tenant, id, won.state.definition!, won.fired)
                dispatched++
              }
            }
            // fires a host journaled and never dispatched: started now, under the fire's own key
            for (const fire of Object.values(entry.state.pending)) {
              if (now - fire.firedAt < REDISPATCH_AFTER_MS || entry.state.definition === null) continue
              yield* dispatchOne(tenant, id, entry.state.definition, fire)
              dispatched++
            }
          }).pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning(`schedule ${entry.tenant}/${entry.id}: tick failed; next tick`, cause)
            )
          ), { concurrency: 8, discard: true })
        return { fired, dispatched } satisfies TickReport
      })

    return { tick }
  })

export class Schedules extends Context.Service<Schedules, {
  readonly create: (
    tenant: string,
    request: ScheduleRequest
  ) => Effect.Effect<ScheduleView, Actor.ExecuteError<ScheduleNotFound>>
  readonly update: (
    tenant: string,
    id: string,
    request: ScheduleRequest
  ) => Effect.Effect<ScheduleView, Actor.ExecuteError<Decider.Error>>
  readonly remove: (tenant: string, id: string, by: string) => Effect.Effect<void, Actor.ExecuteError<Decider.Error>>
  readonly get: (tenant: string, id: string) => Effect.Effect<ScheduleView, ScheduleNotFound | Actor.ReadError>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<ScheduleView>, Actor.ReadError>
  /** Fires now (journaled as a manual fire, whether the schedule is enabled or not) and starts its run or task. */
  readonly fire: (
    tenant: string,
    id: string,
    by: string
  ) => Effect.Effect<FireView, Actor.ExecuteError<ScheduleNotFound>>
  /** Creates, updates or removes an agent's loop schedule to match its latest spec (null: the agent has none). */
  readonly syncLoop: (
    tenant: string,
    agentName: string,
    spec: ResolvedSpec | null
  ) => Effect.Effect<void, Actor.ExecuteError<Decider.Error>>
}>()("lantern/actors/schedule/Schedules") {
  static readonly layer = Layer.effect(
    Schedules,
    Effect.gen(function*() {
      const provide = yield* Actor.provider
      const nats = yield* Nats
      const ids = yield* Ids
      const dispatch = yield* makeDispatch

      const get = (tenant: string, id: string) =>
        Effect.gen(function*() {
          const loaded = yield* provide(actor.load(addressOf(tenant, id)))
          const view = viewOf(id, loaded.state, yield* Clock.currentTimeMillis)
          if (view === null) return yield* new ScheduleNotFound({ id })
          return view
        })

      const exec = (tenant: string, id: string, command: Decider.Command, key: Actor.Meta["idempotencyKey"]) =>
        provide(actor.execute(addressOf(tenant, id), command, { idempotencyKey: key, correlationId: id }))

      const viewAfter = (id: string, outcome: Actor.Outcome<Decider.State, ScheduleEvent>) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const view = viewOf(id, outcome.loaded.state, now)
          return view === null ? Effect.fail(new ScheduleNotFound({ id })) : Effect.succeed(view)
        })

      return Schedules.of({
        create: (tenant, request) =>
          Effect.gen(function*() {
            const id = yield* ids.next("sch")
            const at = yield* Clock.currentTimeMillis
            const outcome = yield* exec(
              tenant,
              id,
              { _tag: "Create", id, definition: definitionOf(request), at },
              `${tenant}:${id}:create`
            )
            return yield* viewAfter(id, outcome)
          }).pipe(Effect.catchTag("ScheduleManaged", Effect.die)),
        update: (tenant, id, request) =>
          Effect.gen(function*() {
            const at = yield* Clock.currentTimeMillis
            const outcome = yield* exec(
              tenant,
              id,
              { _tag: "Update", id, definition: definitionOf(request), at },
              (seq) => `${tenant}:${id}:update@${seq}`
            )
            return yield* viewAfter(id, outcome)
          }),
        remove: (tenant, id, by) =>
          Effect.asVoid(exec(tenant, id, { _tag: "Delete", id, by }, (seq) => `${tenant}:${id}:delete@${seq}`)),
        get,
        list: (tenant) =>
          Effect.gen(function*() {
            const counts = yield* Streams.counts(SCHEDULES, `lantern.schedule.${tenant}.*`).pipe(
              Effect.provideService(Nats, nats)
            )
            const now = yield* Clock.currentTimeMillis
            const out: Array<ScheduleView> = []
            for (const subject of Object.keys(counts).sort()) {
              const id = subject.split(".")[3]!
              const loaded = yield* provide(actor.load(addressOf(tenant, id)))
              const view = viewOf(id, loaded.state, now)
              if (view !== null) out.push(view)
            }
            return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
          }),
        fire: (tenant, id, by) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const outcome = yield* exec(
              tenant,
              id,
              { _tag: "Fire", id, now, by },
              (seq) => `${tenant}:${id}:fire@${seq}`
            )
            const fired = outcome.appended[0] as Fired
            const definition = outcome.loaded.state.definition!
            const started = yield* dispatch(tenant, id, definition, fired)
            const after = yield* provide(record(addressOf(tenant, id), fired.fireId, started))
            return fireView(fired, after.loaded.state)
          }).pipe(Effect.catchTag("ScheduleManaged", Effect.die)),
        syncLoop: (tenant, agentName, spec) =>
          Effect.gen(function*() {
            const id = loopScheduleId(tenant, agentName)
            const at = yield* Clock.currentTimeMillis
            const definition = spec === null ? null : loopDefinition(agentName, spec)
            const loaded = yield* provide(actor.load(addressOf(tenant, id)))
            if (definition === null) {
              if (loaded.state.status !== "active") return
              yield* exec(tenant, id, { _tag: "Delete", id, by: `agent:${agentName}`, managed: true }, (seq) =>
                `${tenant}:${id}:delete@${seq}`)
              return
            }
            if (loaded.state.status === "active") {
              yield* exec(tenant, id, { _tag: "Update", id, definition, at, managed: true }, (seq) =>
                `${tenant}:${id}:update@${seq}`)
            } else {
              yield* exec(tenant, id, { _tag: "Create", id, definition, at }, (seq) =>
                `${tenant}:${id}:create@${seq}`)
            }
          })
      })
    })
  )
}

export const settingsConfig = Config.all({
  /** How often this host ticks the schedules. */
  tick: Config.Duration("LANTERN_SCHEDULE_TICK").pipe(Config.withDefault(Duration.seconds(1)))
})

/** The durable consumer that keeps loop agents' schedules in step with their specs: each agent event, once. */
export const loopsConsumer: Consumer.Durable = {
  stream: AGENTS,
  durable: "schedule-loops",
  filterSubject: "lantern.agent.>",
  ackWait: "30 seconds",
  maxAckPending: 64,
  ackPolicy: "explicit"
}

/**
 * A worker host's part: its timer fiber ticks every schedule every LANTERN_SCHEDULE_TICK (1 s), and its share of the
 * loop consumer syncs an agent's loop schedule with the agent's latest version whenever a version is published.
 */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* settingsConfig
    const ticker = yield* makeTicker(yield* makeDispatch)
    yield* Effect.forkScoped(
      Effect.flatMap(Clock.currentTimeMillis, ticker.tick).pipe(
        Effect.catchCause((cause) => Effect.logWarning("schedule tick failed; next tick", cause)),
        Effect.repeat(Schedule.spaced(settings.tick))
      )
    )
    const schedules = yield* Schedules
    const journal = yield* Journal
    const handle = (m: Consumer.Message) =>
      Effect.gen(function*() {
        const [, , tenant, name] = m.subject.split(".")
        if (tenant === undefined || name === undefined) return Consumer.Decision.Term({ reason: "bad subject" })
        const address = AgentActor.addressOf(tenant, name)
        const state = AgentActor.actor.fromStored(address, yield* journal.read(address)).state
        const latest = state.versions[state.versions.length - 1]
        yield* schedules.syncLoop(tenant, name, latest?.spec ?? null)
        return Consumer.Decision.Ack()
      }).pipe(
        Effect.catch((e) =>
          Effect.as(
            Effect.logWarning(`loop schedule of ${m.subject}: ${e.message}; retrying`),
            Consumer.Decision.Nak({ delay: "2 seconds" })
          )
        )
      )
    yield* Effect.forkScoped(
      Consumer.run(loopsConsumer, 4, handle).pipe(
        Effect.tapCause((c) => Effect.logWarning("loop schedule consumer stopped; resubscribing", c)),
        Effect.retry(Schedule.spaced("1 second"))
      )
    )
  })
)
