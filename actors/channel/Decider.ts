// The channel actor's pure logic (ADR 0050): a connection is made once, replaced as a whole by an update, and
// deleted for good; a deleted channel takes no webhooks and cannot be brought back under its id.
import { Schema } from "effect"
import type { ChannelConfig, ChannelEvent, ChannelKind, ChannelSecrets } from "../../schema/Channel.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"

export class ChannelNotFound extends Schema.TaggedError<ChannelNotFound>()("ChannelNotFound", { id: Schema.String }) {
  override get message() {
    return `no channel '${this.id}'`
  }
}

export interface Settings {
  readonly kind: ChannelKind
  readonly name: string
  readonly agentName: string
  readonly config: ChannelConfig
  readonly secrets: ChannelSecrets
}

export type Command =
  | { readonly _tag: "Connect"; readonly id: string; readonly settings: Settings }
  | { readonly _tag: "Update"; readonly id: string; readonly settings: Omit<Settings, "kind"> }
  | { readonly _tag: "Delete"; readonly id: string; readonly by: string }

export interface State {
  readonly status: "none" | "connected" | "deleted"
  readonly settings: Settings | null
}

export const initialState: State = { status: "none", settings: null }

export const decide = (command: Command, state: State) => {
  switch (command._tag) {
    case "Connect":
      // a re-sent create of the same connection (same id) changes nothing
      if (state.status !== "none") return ignore
      return accept<ChannelEvent>({ _tag: "ChannelConnected", ...command.settings })
    case "Update": {
      if (state.status !== "connected" || state.settings === null)
        return reject(new ChannelNotFound({ id: command.id }))
      return accept<ChannelEvent>({ _tag: "ChannelUpdated", kind: state.settings.kind, ...command.settings })
    }
    case "Delete":
      if (state.status !== "connected") return reject(new ChannelNotFound({ id: command.id }))
      return accept<ChannelEvent>({ _tag: "ChannelDeleted", by: command.by })
  }
}

export const evolve = (state: State, event: ChannelEvent): State => {
  switch (event._tag) {
    case "ChannelConnected":
    case "ChannelUpdated": {
      const { _tag, ...settings } = event
      return { status: "connected", settings }
    }
    case "ChannelDeleted":
      return { ...state, status: "deleted" }
  }
}

export type Error = ChannelNotFound

export const decider: Decider<State, Command, ChannelEvent, Error> = { initialState, decide, evolve }
