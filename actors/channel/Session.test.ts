// The session decider: a platform event id is one turn however often it is received; each turn's run, answer and
// delivery are recorded once; the run of turn n reads the conversation before it.
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { Origin, SessionEvent } from "../../schema/Channel.ts"
import { fold } from "../kernel/Decider.ts"
import * as Session from "./Session.ts"

const origin: Origin = { channelId: "ch_x", kind: "slack", thread: "C1", agentName: "helper" }
const receive = (eventId: string, text: string): Session.Command => ({
  _tag: "Receive",
  id: "ses_1",
  origin,
  eventId,
  text,
  from: "slack:U1",
  reply: { channel: "C1" }
})

const run = (events: ReadonlyArray<SessionEvent>, command: Session.Command) => {
  const decided = Session.decide(command, fold(Session.decider, events))
  if (Result.isFailure(decided)) throw decided.failure
  return decided.success
}

describe("session decider", () => {
  it("opens the session with the first turn, numbers turns, and ignores a seen event id", () => {
    const first = run([], receive("Ev1", "hi"))
    expect(first.map((e) => e._tag)).toEqual(["SessionOpened", "TurnReceived"])
    const second = run(first, receive("Ev2", "again"))
    expect(second).toEqual([expect.objectContaining({ _tag: "TurnReceived", turn: 2, eventId: "Ev2" })])
    expect(run([...first, ...second], receive("Ev1", "hi"))).toEqual([])
    expect(run([...first, ...second], receive("Ev2", "changed text, same event"))).toEqual([])
  })

  it("records a turn's run, answer and delivery once each", () => {
    const events: Array<SessionEvent> = [...run([], receive("Ev1", "hi"))]
    const once = (command: Session.Command) => {
      const out = run(events, command)
      events.push(...out)
      return out.length
    }
    expect(once({ _tag: "LinkRun", id: "ses_1", turn: 1, runId: "run_a" })).toBe(1)
    expect(once({ _tag: "LinkRun", id: "ses_1", turn: 1, runId: "run_b" })).toBe(0)
    const answer = { _tag: "Answer", id: "ses_1", turn: 1, text: "hello", status: "succeeded", costUsd: 0 } as const
    expect(once(answer)).toBe(1)
    expect(once({ ...answer, text: "other" })).toBe(0)
    const deliver = { _tag: "Deliver", id: "ses_1", turn: 1, outcome: "sent", attempts: 1, detail: "HTTP 200" } as const
    expect(once(deliver)).toBe(1)
    expect(once(deliver)).toBe(0)
    const state = fold(Session.decider, events)
    expect(state.turns[0]).toMatchObject({ runId: "run_a", answer: "hello", delivery: "sent", status: "succeeded" })
  })

  it("refuses to record against a turn that does not exist", () => {
    const decided = Session.decide({ _tag: "LinkRun", id: "ses_1", turn: 3, runId: "run_a" }, Session.initialState)
    expect(Result.isFailure(decided)).toBe(true)
  })

  it("gives turn n the conversation before it and its own message", () => {
    const events: Array<SessionEvent> = [...run([], receive("Ev1", "my name is Ada"))]
    events.push(
      ...run(events, { _tag: "Answer", id: "ses_1", turn: 1, text: "hi Ada", status: "succeeded", costUsd: 0 })
    )
    events.push(...run(events, receive("Ev2", "what is my name?")))
    const state = fold(Session.decider, events)
    expect(Session.transcript(state, 2)).toBe("user: my name is Ada\nassistant: hi Ada\nuser: what is my name?")
    expect(Session.transcript(state, 1)).toBe("user: my name is Ada")
  })
})
