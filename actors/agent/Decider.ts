// The agent actor's pure logic: an agent is created once; every change of its spec or description publishes
// a new immutable version identified by a content digest. Publishing an unchanged spec is a no-op.
import * as AgentSpec from "../../schema/AgentSpec.ts"
import type { AgentCommand } from "../../schema/Commands.ts"
import { AgentAlreadyExists, AgentNotFound } from "../../schema/Errors.ts"
import type { AgentEvent } from "../../schema/Events.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"

export interface Version {
  readonly version: number
  readonly digest: string
  readonly description: string
  readonly spec: AgentSpec.ResolvedSpec
}

export interface State {
  readonly name: string | null
  readonly versions: ReadonlyArray<Version>
}

export const initialState: State = { name: null, versions: [] }

export const latest = (s: State): Version | undefined => s.versions[s.versions.length - 1]

export type Error = AgentAlreadyExists | AgentNotFound

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
      const current = latest(state)
      if (state.name === null || current === undefined) return reject(new AgentNotFound({ name: command.name }))
      const description = command.description ?? current.description
      if (command.digest === current.digest && description === current.description) return ignore
      return accept<AgentEvent>({
        _tag: "AgentVersionPublished",
        name: command.name,
        description,
        version: current.version + 1,
        digest: command.digest,
        spec: AgentSpec.resolve(command.spec)
      })
    }
  }
}

export const evolve = (state: State, event: AgentEvent): State => {
  const version = { version: event.version, digest: event.digest, description: event.description, spec: event.spec }
  switch (event._tag) {
    case "AgentCreated":
      return { name: event.name, versions: [version] }
    case "AgentVersionPublished":
      return { ...state, versions: [...state.versions, version] }
  }
}

/** The state is plain JSON: snapshotted (bump the version when State or `evolve` changes). */
export const decider: Decider<State, AgentCommand, AgentEvent, Error> = {
  initialState,
  decide,
  evolve,
  snapshot: { version: 1 }
}
