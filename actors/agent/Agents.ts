// The agent actor's shell: create agents and publish versions through the decider, and read an agent or
// one of its versions straight from its journal (the source of truth the run actor pins versions from).
import { createHash } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { Journal, subjectOf } from "../../bus/Journal.ts"
import * as Subjects from "../../bus/Subjects.ts"
import { streamOf } from "../../bus/Topology.ts"
import * as AgentSpec from "../../schema/AgentSpec.ts"
import type { AgentUpdate, AgentVersionView, AgentView, NewAgent } from "../../schema/Agent.ts"
import * as Canonical from "../../schema/Canonical.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import { AgentNotFound, AgentVersionNotFound } from "../../schema/Errors.ts"
import * as Actor from "../kernel/Actor.ts"
import * as Decider from "./Decider.ts"

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
}>()("lantern/actors/Agents") {
  static readonly layer = Layer.effect(
    Agents,
    Effect.gen(function*() {
      const journal = yield* Journal
      const provide = yield* Actor.provider

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

      const readAll = (tenant: string, name: string) =>
        Effect.gen(function*() {
          const subject = subjectOf(addressOf(tenant, name))
          const cached = watched.has(subject) === undefined ? undefined : cache.get(subject)
          if (cached !== undefined) return cached
          const before = generation
          const stored = yield* journal.read(addressOf(tenant, name))
          if (stored.length === 0) return yield* new AgentNotFound({ name })
          if (generation === before) cache.set(subject, stored)
          return stored
        })

      const get = (tenant: string, name: string) => Effect.map(readAll(tenant, name), (s) => toResponse(s)!)

      const write = (
        tenant: string,
        name: string,
        command: Parameters<typeof Decider.decide>[0],
        key: Actor.Meta["idempotencyKey"]
      ) =>
        provide(
          Effect.gen(function*() {
            yield* actor.execute(addressOf(tenant, name), command, {
              idempotencyKey: key,
              correlationId: `agent:${name}`
            })
            // this host's own write is read back, not answered from before it
            forget(subjectOf(addressOf(tenant, name)))
            return yield* get(tenant, name)
          })
        )

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
        versions: (tenant, name) =>
          Effect.map(readAll(tenant, name), (stored) => stored.map((s) => versionResponse(name, s))),
        version: (tenant, name, version) =>
          Effect.gen(function*() {
            const stored = yield* readAll(tenant, name)
            const state = actor.fromStored(addressOf(tenant, name), stored).state
            const found = version === undefined
              ? Decider.latest(state)
              : state.versions.find((v) => v.version === version)
            if (found === undefined) return yield* new AgentVersionNotFound({ name, version: version ?? 0 })
            return found
          })
      })
    })
  )
}
