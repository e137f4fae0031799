// The agent actor's pure logic: an agent is created once; every change of its spec or description publishes
// a new immutable version identified by a content digest. Publishing an unchanged spec is a no-op. An A/B
// experiment (ADR 0058) splits the agent's unpinned runs between two versions until it is concluded; its winner
// is the agent's current version from then on, until the next version is published.
import * as AgentSpec from "../../schema/AgentSpec.ts"
import type { AgentCommand } from "../../schema/Commands.ts"
import { AgentAlreadyExists, AgentNotFound, AgentVersionNotFound } from "../../schema/Errors.ts"
import type { AgentEvent } from "../../schema/Events.ts"
import { ExperimentNotFound, ExperimentRefused, type ExperimentStarted } from "../../schema/Experiment.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"

export interface Version {
  readonly version: number
  readonly digest: string
  readonly description: string
  readonly spec: AgentSpec.ResolvedSpec
}

export interface Experiment extends Omit<ExperimentStarted, "_tag"> {
  readonly concluded: null | {
    readonly winner: "control" | "variant"
    readonly version: number
    readonly by: string
    readonly reason: string
  }
}

export interface State {
  readonly name: string | null
  readonly versions: ReadonlyArray<Version>
  /** The version unpinned runs use when no experiment runs; null: the latest. */
  readonly current?: number | null
  /** Every experiment of the agent, oldest first; at most the last one is running. */
  readonly experiments?: ReadonlyArray<Experiment>
}

export const initialState: State = { name: null, versions: [], current: null, experiments: [] }

export const latest = (s: State): Version | undefined => s.versions[s.versions.length - 1]

/** The version unpinned runs use when no experiment chooses: the winner of the last experiment, else the latest. */
export const current = (s: State): Version | undefined =>
  (s.current ?? null) === null ? latest(s) : s.versions.find((v) => v.version === s.current) ?? latest(s)

/** The experiment that splits the agent's unpinned runs now, if any. */
export const running = (s: State): Experiment | undefined => {
  const last = s.experiments?.[s.experiments.length - 1]
  return last !== undefined && last.concluded === null ? last : undefined
}

export type Error = AgentAlreadyExists | AgentNotFound
export type ExperimentError = AgentNotFound | AgentVersionNotFound | ExperimentNotFound | ExperimentRefused

export const decide = (command: AgentCommand, state: State) => {
  switch (command._tag) {
    case "CreateAgent":
      if (state.name !== null) return reject(new AgentAlreadyExists({ name: command.name }))
      return accept<AgentEvent>({
        _tag: "AgentCreated",
        name: command.name,
        description: command.description,
        version: 1,
        digest: command.digest,
        spec: AgentSpec.resolve(command.spec)
      })
    case "PublishAgentVersion": {
      const last = latest(state)
      if (state.name === null || last === undefined) return reject(new AgentNotFound({ name: command.name }))
      const description = command.description ?? last.description
      if (command.digest === last.digest && description === last.description) return ignore
      return accept<AgentEvent>({
        _tag: "AgentVersionPublished",
        name: command.name,
        description,
        version: last.version + 1,
        digest: command.digest,
        spec: AgentSpec.resolve(command.spec)
      })
    }
    case "StartExperiment": {
      if (state.name === null) return reject(new AgentNotFound({ name: "" }))
      if (state.experiments?.some((e) => e.experimentId === command.experimentId)) return ignore
      for (const v of [command.control, command.variant]) {
        if (!state.versions.some((x) => x.version === v)) {
          return reject(new AgentVersionNotFound({ name: state.name, version: v }))
        }
      }
      const other = running(state)
      if (other !== undefined) {
        return reject(
          new ExperimentRefused({
            reason:
              `agent '${state.name}' already runs experiment ${other.experimentId} (${other.name}): conclude it first`
          })
        )
      }
      const { _tag, ...fields } = command
      return accept<AgentEvent>({ _tag: "ExperimentStarted", ...fields })
    }
    case "ConcludeExperiment": {
      const experiment = state.experiments?.find((e) => e.experimentId === command.experimentId)
      if (experiment === undefined) return reject(new ExperimentNotFound({ id: command.experimentId }))
      // concluded already (by hand and by auto-promotion at once, say): the first conclusion stands
      if (experiment.concluded !== null) return ignore
      return accept<AgentEvent>({
        _tag: "ExperimentConcluded",
        experimentId: command.experimentId,
        winner: command.winner,
        version: command.winner === "variant" ? experiment.variant : experiment.control,
        by: command.by,
        reason: command.reason
      })
    }
  }
}

export const evolve = (state: State, event: AgentEvent): State => {
  switch (event._tag) {
    case "AgentCreated":
    case "AgentVersionPublished": {
      const version = { version: event.version, digest: event.digest, description: event.description, spec: event.spec }
      return event._tag === "AgentCreated"
        ? { name: event.name, versions: [version], current: null, experiments: [] }
        : { ...state, versions: [...state.versions, version], current: null }
    }
    case "ExperimentStarted": {
      const { _tag, ...fields } = event
      return { ...state, experiments: [...(state.experiments ?? []), { ...fields, concluded: null }] }
    }
    case "ExperimentConcluded":
      return {
        ...state,
        current: event.version,
        experiments: (state.experiments ?? []).map((e) =>
          e.experimentId === event.experimentId
            ? { ...e, concluded: { winner: event.winner, version: event.version, by: event.by, reason: event.reason } }
            : e
        )
      }
  }
}

/** The state is plain JSON: snapshotted (bump the version when State or `evolve` changes). */
export const decider: Decider<State, AgentCommand, AgentEvent, Error | ExperimentError> = {
  initialState,
  decide,
  evolve,
  snapshot: { version: 2 }
}
