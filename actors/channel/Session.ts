// The session actor's pure logic (ADR 0050): one conversation (a channel's thread, or an API session), a journal
// of turns. A message is turn n+1 unless its platform event id was seen before (a redelivery: nothing happens);
// each turn gets one run, one answer and one delivery, each recorded once whatever retries happen around it.
import { Schema } from "effect"
import type { Origin, SessionEvent } from "../../schema/Channel.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"

export class SessionNotFound extends Schema.TaggedError<SessionNotFound>()("SessionNotFound", { id: Schema.String }) {
  override get message() {
    return `no session '${this.id}'`
  }
}

export interface Turn {
  readonly turn: number
  readonly eventId: string
  readonly text: string
  readonly from: string
  readonly reply: Readonly<Record<string, string>>
  readonly runId: string | null
  readonly answer: string | null
  readonly status: "waiting" | "running" | "succeeded" | "failed" | "canceled"
  readonly costUsd: number
  readonly delivery: "sent" | "failed" | "none" | null
}

export interface State {
  readonly origin: Origin | null
  readonly turns: ReadonlyArray<Turn>
}

export const initialState: State = { origin: null, turns: [] }

export type Command =
  | { readonly _tag: "Open"; readonly id: string; readonly origin: Origin }
  | {
    readonly _tag: "Receive"
    readonly id: string
    readonly origin: Origin
    readonly eventId: string
    readonly text: string
    readonly from: string
    readonly reply: Readonly<Record<string, string>>
  }
  | { readonly _tag: "LinkRun"; readonly id: string; readonly turn: number; readonly runId: string }
  | {
    readonly _tag: "Answer"
    readonly id: string
    readonly turn: number
    readonly text: string
    readonly status: "succeeded" | "failed" | "canceled"
    readonly costUsd: number
  }
  | {
    readonly _tag: "Deliver"
    readonly id: string
    readonly turn: number
    readonly outcome: "sent" | "failed" | "none"
    readonly attempts: number
    readonly detail: string
  }

export const seen = (state: State, eventId: string) => state.turns.find((t) => t.eventId === eventId)

export const decide = (command: Command, state: State) => {
  switch (command._tag) {
    case "Open":
      return state.origin === null ? accept<SessionEvent>({ _tag: "SessionOpened", origin: command.origin }) : ignore
    case "Receive": {
      if (seen(state, command.eventId) !== undefined) return ignore
      const opened: Array<SessionEvent> = state.origin === null
        ? [{ _tag: "SessionOpened", origin: command.origin }]
        : []
      return accept<SessionEvent>(...opened, {
        _tag: "TurnReceived",
        turn: state.turns.length + 1,
        eventId: command.eventId,
        text: command.text,
        from: command.from,
        reply: command.reply
      })
    }
    case "LinkRun": {
      const turn = state.turns[command.turn - 1]
      if (turn === undefined) return reject(new SessionNotFound({ id: command.id }))
      return turn.runId === null
        ? accept<SessionEvent>({ _tag: "TurnRunStarted", turn: command.turn, runId: command.runId })
        : ignore
    }
    case "Answer": {
      const turn = state.turns[command.turn - 1]
      if (turn === undefined) return reject(new SessionNotFound({ id: command.id }))
      return turn.answer === null
        ? accept<SessionEvent>({
          _tag: "TurnAnswered",
          turn: command.turn,
          text: command.text,
          status: command.status,
          costUsd: command.costUsd
        })
        : ignore
    }
    case "Deliver": {
      const turn = state.turns[command.turn - 1]
      if (turn === undefined) return reject(new SessionNotFound({ id: command.id }))
      return turn.delivery === null
        ? accept<SessionEvent>({
          _tag: "TurnDelivered",
          turn: command.turn,
          outcome: command.outcome,
          attempts: command.attempts,
          detail: command.detail
        })
        : ignore
    }
  }
}

const setTurn = (state: State, n: number, f: (t: Turn) => Turn): State => ({
  ...state,
  turns: state.turns.map((t) => (t.turn === n ? f(t) : t))
})

export const evolve = (state: State, event: SessionEvent): State => {
  switch (event._tag) {
    case "SessionOpened":
      return { ...state, origin: event.origin }
    case "TurnReceived":
      return {
        ...state,
        turns: [...state.turns, {
          turn: event.turn,
          eventId: event.eventId,
          text: event.text,
          from: event.from,
          reply: event.reply,
          runId: null,
          answer: null,
          status: "waiting",
          costUsd: 0,
          delivery: null
        }]
      }
    case "TurnRunStarted":
      return setTurn(state, event.turn, (t) => ({ ...t, runId: event.runId, status: "running" }))
    case "TurnAnswered":
      return setTurn(state, event.turn, (t) => ({
        ...t,
        answer: event.text,
        status: event.status,
        costUsd: event.costUsd
      }))
    case "TurnDelivered":
      return setTurn(state, event.turn, (t) => ({ ...t, delivery: event.outcome }))
  }
}

/** The conversation before turn `n` and its message, as the run of turn n reads it. */
export const transcript = (state: State, n: number): string => {
  const lines: Array<string> = []
  for (const t of state.turns) {
    if (t.turn > n) break
    lines.push(`user: ${t.text}`)
    if (t.turn < n && t.answer !== null) lines.push(`assistant: ${t.answer}`)
  }
  return lines.join("\n")
}

export type Error = SessionNotFound

export const decider: Decider<State, Command, SessionEvent, Error> = { initialState, decide, evolve }
