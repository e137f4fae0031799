// What this process appends to each journal, handed at once to the followers of that journal in this process
// (ADR 0074): a follower gets an event from its append's acknowledgement, with no consumer on the bus.
import type { MsgHdrs } from "@nats-io/nats-core"

/** One event this process appended, as its followers see it before they decode it. */
export interface Tapped {
  readonly subject: string
  /** The subject's sequence before this event: the append's expected last sequence. */
  readonly prev: number
  readonly seq: number
  /** The event's journal bytes as text, exactly as stored. */
  readonly text: string
}

/** What a follower is told: an event appended here, or that the journal may have grown some other way. */
export type Signal = { readonly _tag: "Tapped"; readonly tapped: Tapped } | { readonly _tag: "Wake" }

export const WAKE: Signal = { _tag: "Wake" }

export interface Tap {
  /** Starts telling `listener` about `subject`; the returned function stops it. */
  readonly listen: (subject: string, listener: (signal: Signal) => void) => () => void
  /** An append of this event is on its way (its Nats-Msg-Id); `settled` when it was answered either way. */
  readonly sending: (msgId: string) => void
  readonly settled: (msgId: string) => void
  /** The event was stored at `seq`, right after `prev`. */
  readonly appended: (tapped: Tapped) => void
  /** `subject` may have grown in a way this process does not know the order of (a re-sent, failed or cut append). */
  readonly wake: (subject: string) => void
  /**
   * Whether a message seen on the bus is an append of this process, which its followers get (or got) from here:
   * its Nats-Msg-Id is in flight, or was appended lately.
   */
  readonly isOwn: (headers: MsgHdrs | undefined) => boolean
  /**
   * Whether this process appended to `subject` lately (the last LATELY subjects it appended to): then the journal
   * has an event, for journals are never deleted. False says nothing.
   */
  readonly hasAppended: (subject: string) => boolean
}

export const make = (): Tap => {
  const listeners = new Map<string, Set<(signal: Signal) => void>>()
  const inFlight = new Map<string, number>()
  // ids appended lately (bounded, oldest first): a message of ours may reach a subscriber after its ack
  const lately = new Set<string>()
  const LATELY = 4_096
  // subjects appended to lately (bounded, oldest first)
  const subjects = new Set<string>()

  const tell = (subject: string, signal: Signal) => {
    const set = listeners.get(subject)
    if (set === undefined) return
    for (const l of set) l(signal)
  }

  return {
    listen: (subject, listener) => {
      let set = listeners.get(subject)
      if (set === undefined) listeners.set(subject, set = new Set())
      set.add(listener)
      return () => {
        set.delete(listener)
        if (set.size === 0 && listeners.get(subject) === set) listeners.delete(subject)
      }
    },
    sending: (msgId) => void inFlight.set(msgId, (inFlight.get(msgId) ?? 0) + 1),
    settled: (msgId) => {
      const n = (inFlight.get(msgId) ?? 1) - 1
      if (n <= 0) inFlight.delete(msgId)
      else inFlight.set(msgId, n)
      lately.add(msgId)
      if (lately.size > LATELY) lately.delete(lately.values().next().value!)
    },
    appended: (tapped) => {
      if (!subjects.has(tapped.subject)) {
        subjects.add(tapped.subject)
        if (subjects.size > LATELY) subjects.delete(subjects.values().next().value!)
      }
      tell(tapped.subject, { _tag: "Tapped", tapped })
    },
    wake: (subject) => tell(subject, WAKE),
    isOwn: (headers) => {
      const id = headers?.get("Nats-Msg-Id")
      return id !== undefined && id !== "" && (inFlight.has(id) || lately.has(id))
    },
    hasAppended: (subject) => subjects.has(subject)
  }
}
