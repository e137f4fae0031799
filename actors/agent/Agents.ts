// The agent actor's shell: create agents and publish versions through the decider, and read an agent or
// one of its versions straight from its journal (the source of truth the run actor pins versions from).
import { createHash } from "node:crypto"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { Journal, subjectOf } from "../../bus/Journal.ts"
import * as Kv from "../../bus/Kv.ts"
import * as Subjects from "../../bus/Subjects.ts"
import { streamOf } from "../../bus/Topology.ts"
import * as AgentSpec from "../../schema/AgentSpec.ts"
import type { AgentUpdate, AgentVersionView, AgentView, NewAgent } from "../../schema/Agent.ts"
import * as Canonical from "../../schema/Canonical.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import { AgentNotFound, AgentVersionNotFound, type BusUnavailable } from "../../schema/Errors.ts"
import {
  type Arm,
  type Assignment,
  ExperimentNotFound,
  type ExperimentRequest,
  type ExperimentView
} from "../../schema/Experiment.ts"
import * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import * as SingleFlight from "../kernel/SingleFlight.ts"
import * as Decider from "./Decider.ts"
import * as Split from "./Split.ts"

export const actor = Actor.make(Decider.decider)

export const addressOf = (tenant: string, name: string): ActorAddress => ({ type: "agent", tenant, id: name })

/** Content digest of a spec: SHA-256 over its canonical JSON with every default filled in. */
export const digestOf = (spec: AgentSpec.AgentSpec): string =>
  `sha256:${createHash("sha256").update(Canonical.stringify(AgentSpec.resolve(spec))).digest("hex")}`

const versionResponse = (name: string, stored: Stored): AgentVersionView => {
  const e = stored.event as Extract<Stored["event"], { _tag: "AgentCreated" | "AgentVersionPublished" }>
  return {
    name,
    version: e.version,
    digest: e.digest,
    description: e.description,
    spec: e.spec,
    createdAt: stored.envelope.at
  }
}

/** Folds an agent's stored events into the API's view of it. */
export const toResponse = (stored: ReadonlyArray<Stored>): AgentView | null => {
  const first = stored[0]
  const last = stored[stored.length - 1]
  if (first === undefined || last === undefined) return null
  const v = versionResponse(first.envelope.actor.id, last)
  return {
    name: v.name,
    description: v.description,
    latestVersion: v.version,
    digest: v.digest,
    spec: v.spec,
    createdAt: first.envelope.at,
    updatedAt: last.envelope.at
  }
}

/** `<tenant>.<experimentId>` → the agent whose journal holds the experiment. */
const experimentIndex = Kv.bucket({
  name: "lantern-experiments",
  value: Schema.NonEmptyString,
  what: "an experiment's agent"
})

/** Each experiment of an agent as its journal has it (figures aside), oldest first. */
export const experimentsOf = (stored: ReadonlyArray<Stored>): ReadonlyArray<ExperimentView> => {
  const out: Array<ExperimentView> = []
  const name = stored[0]?.envelope.actor.id ?? ""
  for (const s of stored) {
    const e = s.event
    if (e._tag === "ExperimentStarted") {
      out.push({
        id: e.experimentId,
        agentName: name,
        name: e.name,
        control: e.control,
        variant: e.variant,
        trafficPercent: e.trafficPercent,
        metric: e.metric,
        suiteId: e.suiteId,
        autoPromote: e.autoPromote,
        minRuns: e.minRuns,
        minLift: e.minLift,
        status: "running",
        winner: null,
        promoted: false,
        concludedBy: null,
        reason: null,
        startedAt: s.envelope.at,
        concludedAt: null
      })
    }
    if (e._tag === "ExperimentConcluded") {
      const i = out.findIndex((x) => x.id === e.experimentId)
      if (i < 0 || out[i]!.status === "concluded") continue
      out[i] = {
        ...out[i]!,
        status: "concluded",
        winner: e.winner,
        promoted: e.winner === "variant",
        concludedBy: e.by,
        reason: e.reason,
        concludedAt: s.envelope.at
      }
    }
  }
  return out
}

/** The version a run of the agent uses, and the experiment arm that chose it when one did. */
export interface Chosen {
  readonly version: Decider.Version
  readonly experiment?: Assignment
}

export class Agents extends Context.Service<Agents, {
  readonly create: (
    tenant: string,
    request: NewAgent
  ) => Effect.Effect<AgentView, Actor.ExecuteError<Decider.Error>>
  readonly update: (
    tenant: string,
    name: string,
    request: AgentUpdate
  ) => Effect.Effect<AgentView, Actor.ExecuteError<Decider.Error>>
  readonly get: (tenant: string, name: string) => Effect.Effect<AgentView, AgentNotFound | Actor.ReadError>
  readonly versions: (
    tenant: string,
    name: string
  ) => Effect.Effect<ReadonlyArray<AgentVersionView>, AgentNotFound | Actor.ReadError>
  /** One version of an agent (the latest when `version` is absent), as a run pins it. */
  readonly version: (tenant: string, name: string, version?: number) => Effect.Effect<
    Decider.Version,
    AgentNotFound | AgentVersionNotFound | Actor.ReadError
  >
  /**
   * The version a new run uses: `version` when pinned; otherwise the arm of the running experiment that `key()`
   * (the caller's Idempotency-Key, else the run's id) falls in, else the agent's current version (ADR 0058).
   */
  readonly choose: (tenant: string, name: string, version: number | undefined, key: () => string) => Effect.Effect<
    Chosen,
    AgentNotFound | AgentVersionNotFound | Actor.ReadError
  >
  readonly startExperiment: (
    tenant: string,
    request: ExperimentRequest,
    by: string
  ) => Effect.Effect<ExperimentView, Actor.ExecuteError<Decider.ExperimentError> | BusUnavailable>
  readonly concludeExperiment: (
    tenant: string,
    id: string,
    winner: Arm,
    by: string,
    reason: string
  ) => Effect.Effect<ExperimentView, Actor.ExecuteError<Decider.ExperimentError> | BusUnavailable>
  readonly experiment: (
    tenant: string,
    id: string
  ) => Effect.Effect<ExperimentView, ExperimentNotFound | BusUnavailable | Actor.ReadError>
  /** The experiments of an agent, or of every agent of the tenant, oldest first. */
  readonly experiments: (
    tenant: string,
    name?: string
  ) => Effect.Effect<ReadonlyArray<ExperimentView>, AgentNotFound | BusUnavailable | Actor.ReadError>
}>()("lantern/actors/Agents") {
  static readonly layer = Layer.effect(
    Agents,
    Effect.gen(function*() {
      const journal = yield* Journal
      const provide = yield* Actor.provider
      const ids = yield* Ids
      const index = yield* Kv.open(experimentIndex)

      // agents as last read, by journal subject: a run's start reads its agent from here, no request; the watch
      // drops an agent as soon as a new event of it is stored (and all of them when it had to start again)
      const cache = new Map<string, ReadonlyArray<Stored>>()
      // bumped by every event seen: a read that began before one is not cached (it may not hold it)
      let generation = 0
      const forget = (subject: string) => {
        generation++
        cache.delete(subject)
      }
      const watched = yield* Subjects.watch(streamOf.agent, "lantern.agent.>", "agents", {
        onMessage: forget,
        onRestart: () => {
          generation++
          cache.clear()
        }
      })

      // reads under way, by subject, with the generation each began at: the starts of a burst that find an agent
      // not cached yet (a host just started) wait for one read of it, not one each; a read that began before an
      // event of the agents was seen is not joined
      const reads = SingleFlight.make<string, ReadonlyArray<Stored>, Actor.ReadError>()

      /** One read of the agent's journal for every start that waits for it; cached when no event came meanwhile. */
      const readOnce = (tenant: string, name: string, subject: string) => {
        const before = generation
        return reads(
          subject,
          Effect.tap(journal.read(addressOf(tenant, name)), (stored) =>
            Effect.sync(() => {
              if (stored.length > 0 && generation === before) cache.set(subject, stored)
            })),
          before
        )
      }

      const readAll = (tenant: string, name: string) =>
        Effect.gen(function*() {
          const subject = subjectOf(addressOf(tenant, name))
          const cached = watched.has(subject) === undefined ? undefined : cache.get(subject)
          if (cached !== undefined) return cached
          const stored = yield* readOnce(tenant, name, subject)
          if (stored.length === 0) return yield* new AgentNotFound({ name })
          return stored
        })

      const get = (tenant: string, name: string) => Effect.map(readAll(tenant, name), (s) => toResponse(s)!)

      const execute = (
        tenant: string,
        name: string,
        command: Parameters<typeof Decider.decide>[0],
        key: Actor.Meta["idempotencyKey"]
      ) =>
        provide(
          Effect.gen(function*() {
            const outcome = yield* actor.execute(addressOf(tenant, name), command, {
              idempotencyKey: key,
              correlationId: `agent:${name}`
            })
            // this host's own write is read back, not answered from before it
            forget(subjectOf(addressOf(tenant, name)))
            return outcome
          })
        )

      const write = (
        tenant: string,
        name: string,
        command: Parameters<typeof Decider.decide>[0],
        key: Actor.Meta["idempotencyKey"]
      ) =>
        execute(tenant, name, command, key).pipe(
          // creating and publishing never meet an experiment's errors
          Effect.catchTags({
            AgentVersionNotFound: Effect.die,
            ExperimentNotFound: Effect.die,
            ExperimentRefused: Effect.die
          }),
          Effect.andThen(get(tenant, name))
        )

      const stateOf = (tenant: string, name: string) =>
        Effect.map(readAll(tenant, name), (stored) => actor.fromStored(addressOf(tenant, name), stored).state)

      const agentOfExperiment = (tenant: string, id: string) =>
        index.get(`${tenant}.${id}`).pipe(
          Effect.catchTag("CorruptValue", Effect.die),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new ExperimentNotFound({ id })),
            onSome: (e) => Effect.succeed(e.value)
          }))
        )

      const experiment = (tenant: string, id: string) =>
        Effect.gen(function*() {
          const name = yield* agentOfExperiment(tenant, id)
          const stored = yield* readAll(tenant, name).pipe(
            Effect.catchTag("AgentNotFound", () => Effect.fail(new ExperimentNotFound({ id })))
          )
          const found = experimentsOf(stored).find((e) => e.id === id)
          if (found === undefined) return yield* new ExperimentNotFound({ id })
          return found
        })

      return Agents.of({
        create: (tenant, request) => {
          const digest = digestOf(request.spec)
          return write(tenant, request.name, {
            _tag: "CreateAgent",
            name: request.name,
            description: request.description ?? "",
            spec: request.spec,
            digest
          }, `agent:${tenant}:${request.name}:create`).pipe(Effect.withSpan("Agents.create"))
        },
        update: (tenant, name, request) => {
          const digest = digestOf(request.spec)
          return write(tenant, name, {
            _tag: "PublishAgentVersion",
            name,
            spec: request.spec,
            digest,
            ...(request.description === undefined ? {} : { description: request.description })
          }, (seq) => `agent:${tenant}:${name}@${seq}`)
            .pipe(Effect.withSpan("Agents.update"))
        },
        get,
        // the agent's journal also holds its experiments (ExperimentStarted, ExperimentConcluded): versions only
        versions: (tenant, name) =>
          Effect.map(
            readAll(tenant, name),
            (stored) =>
              stored.filter((s) => s.event._tag === "AgentCreated" || s.event._tag === "AgentVersionPublished")
                .map((s) => versionResponse(name, s))
          ),
        version: (tenant, name, version) =>
          Effect.gen(function*() {
            const stored = yield* readAll(tenant, name)
            const state = actor.fromStored(addressOf(tenant, name), stored).state
            const found = version === undefined
              ? Decider.latest(state)
              : state.versions.find((v) => v.version === version)
            if (found === undefined) return yield* new AgentVersionNotFound({ name, version: version ?? 0 })
            return found
          }),
        choose: (tenant, name, version, key) =>
          Effect.gen(function*() {
            const state = yield* stateOf(tenant, name)
            const pinned = version !== undefined
            const split = pinned ? undefined : Decider.running(state)
            const arm = split === undefined ? undefined : Split.armOf(split.experimentId, split.trafficPercent, key())
            const wanted = split === undefined ? version : arm === "variant" ? split.variant : split.control
            const found = wanted === undefined
              ? Decider.current(state)
              : state.versions.find((v) => v.version === wanted)
            if (found === undefined) return yield* new AgentVersionNotFound({ name, version: version ?? 0 })
            return split === undefined || arm === undefined
              ? { version: found }
              : { version: found, experiment: { id: split.experimentId, arm } }
          }),
        startExperiment: (tenant, request, by) =>
          Effect.gen(function*() {
            const id = yield* ids.next("exp")
            // indexed first: an experiment journaled is always found by its id
            yield* index.put(`${tenant}.${id}`, request.agentName)
            yield* execute(tenant, request.agentName, {
              _tag: "StartExperiment",
              experimentId: id,
              name: request.name,
              control: request.control,
              variant: request.variant,
              trafficPercent: request.trafficPercent,
              metric: request.metric,
              suiteId: request.suiteId ?? null,
              autoPromote: request.autoPromote,
              minRuns: request.minRuns,
              minLift: request.minLift,
              by
            }, `experiment:${tenant}:${id}:start`).pipe(
              Effect.catchTag("AgentAlreadyExists", Effect.die),
              Effect.mapError((e) => e._tag === "AgentNotFound" ? new AgentNotFound({ name: request.agentName }) : e),
              Effect.tapError(() => Effect.ignore(index.delete(`${tenant}.${id}`)))
            )
            return yield* experiment(tenant, id).pipe(Effect.catchTag("ExperimentNotFound", Effect.die))
          }).pipe(Effect.withSpan("Agents.startExperiment")),
        concludeExperiment: (tenant, id, winner, by, reason) =>
          Effect.gen(function*() {
            const name = yield* agentOfExperiment(tenant, id)
            yield* execute(tenant, name, { _tag: "ConcludeExperiment", experimentId: id, winner, by, reason }, (seq) =>
              `experiment:${tenant}:${id}:conclude@${seq}`).pipe(Effect.catchTag("AgentAlreadyExists", Effect.die))
            return yield* experiment(tenant, id).pipe(Effect.catchTag("ExperimentNotFound", Effect.die))
          }).pipe(Effect.withSpan("Agents.concludeExperiment")),
        experiment,
        experiments: (tenant, name) =>
          Effect.gen(function*() {
            if (name !== undefined) return experimentsOf(yield* readAll(tenant, name))
            const names = new Set<string>()
            for (const key of yield* index.keys(`${tenant}.*`)) {
              const agent = yield* index.get(key).pipe(Effect.catchTag("CorruptValue", Effect.die))
              if (Option.isSome(agent)) names.add(agent.value.value)
            }
            const out: Array<ExperimentView> = []
            for (const n of [...names].sort()) {
              out.push(...experimentsOf(yield* readAll(tenant, n).pipe(Effect.orElseSucceed(() => []))))
            }
            return out
          })
      })
    })
  )
}
