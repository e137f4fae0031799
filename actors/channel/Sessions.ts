// The session actor's shell (ADR 0050): a conversation's journal on lantern.session.<tenant>.<id>, and the worker
// that answers its turns. A message is journaled as a turn (a redelivered one, by its platform event id, is not),
// then a work message (LANTERN_WORK, lantern.work.session.<tenant>.<id>) asks any host to answer it: start the
// bound agent's run with the conversation so far (idempotency key per session and turn), wait for it, journal the
// answer, send it through the platform with the same key, journal the delivery. Each step is recorded once, so a
// host killed anywhere in between leaves work another host finishes without a second run or a second reply.
import { createHash, randomBytes } from "node:crypto"
import { Context, Deferred, Effect, Fiber, Layer, Option, Redacted, Schedule, Stream } from "effect"
import * as Consumer from "../../bus/Consumer.ts"
import { Journal } from "../../bus/Journal.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import { SESSIONS, WORK } from "../../bus/Topology.ts"
import type { Origin, SessionView, TurnView } from "../../schema/Channel.ts"
import type { ActorAddress, Stored } from "../../schema/Envelope.ts"
import type { RunView } from "../../schema/Run.ts"
import * as Actor from "../kernel/Actor.ts"
import * as RunsModule from "../run/Runs.ts"
import { Runs } from "../run/Runs.ts"
import { expand, isTerminal } from "../../schema/Events.ts"
import { type Channel, Channels } from "./Channels.ts"
import * as Outbound from "./Outbound.ts"
import * as Session from "./Session.ts"

export const actor = Actor.make(Session.decider)

export const addressOf = (tenant: string, id: string): ActorAddress => ({ type: "session", tenant, id })

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")

/** A channel's conversation has a fixed id: the same thread is always the same session. */
export const sessionIdOf = (channelId: string, thread: string) =>
  `ses_${sha256(`${channelId}\0${thread}`).slice(0, 32)}`

export const workSubject = (tenant: string, id: string) => `lantern.work.session.${tenant}.${id}`

/** A message from a platform, as a webhook parsed it. */
export interface Inbound {
  /** The platform's id of the event (Slack event_id, Telegram update_id, …): redeliveries carry the same. */
  readonly eventId: string
  readonly thread: string
  readonly text: string
  readonly from: string
  readonly reply: Readonly<Record<string, string>>
}

export interface Received {
  readonly sessionId: string
  readonly turn: number
  /** The event id was seen before: nothing was started. */
  readonly duplicate: boolean
}

const viewOf = (id: string, stored: ReadonlyArray<Stored>): SessionView | null => {
  const state = actor.fromStored(addressOf("", id), stored).state
  if (state.origin === null) return null
  const receivedAt = new Map<number, string>()
  for (const s of stored) if (s.event._tag === "TurnReceived") receivedAt.set(s.event.turn, s.envelope.at)
  const turns: Array<TurnView> = state.turns.map((t) => ({
    turn: t.turn,
    eventId: t.eventId,
    from: t.from,
    text: t.text,
    receivedAt: receivedAt.get(t.turn) ?? "",
    runId: t.runId,
    answer: t.answer,
    status: t.status,
    delivery: t.delivery,
    costUsd: t.costUsd
  }))
  return {
    id,
    channelId: state.origin.channelId,
    kind: state.origin.kind,
    thread: state.origin.thread,
    agentName: state.origin.agentName,
    turns,
    runs: turns.flatMap((t) => (t.runId === null ? [] : [t.runId])),
    costUsd: turns.reduce((sum, t) => sum + t.costUsd, 0),
    createdAt: stored[0]!.envelope.at,
    updatedAt: stored[stored.length - 1]!.envelope.at
  }
}

export class Sessions extends Context.Service<Sessions, {
  /** Journals a channel's message as the next turn of its thread's session and queues its answer. */
  readonly receive: (channel: Channel, inbound: Inbound) => Effect.Effect<Received, Actor.ExecuteError<Session.Error>>
  /** Opens an API session with an agent (`POST /v1/sessions`). */
  readonly open: (tenant: string, agentName: string) => Effect.Effect<SessionView, Actor.ExecuteError<Session.Error>>
  /** An API-driven turn; `eventId` (the caller's Idempotency-Key) makes a retried POST the same turn. */
  readonly say: (
    tenant: string,
    id: string,
    text: string,
    eventId: string | null,
    from: string
  ) => Effect.Effect<Received, Session.SessionNotFound | Actor.ExecuteError<Session.Error>>
  readonly get: (tenant: string, id: string) => Effect.Effect<SessionView, Session.SessionNotFound | Actor.ReadError>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<SessionView>, Actor.ReadError>
  /** The session's journal as it stands. */
  readonly events: (tenant: string, id: string) => Effect.Effect<ReadonlyArray<Stored>, Actor.ReadError>
  /** The session's journal after stream sequence `afterSeq`, then live. */
  readonly follow: (tenant: string, id: string, afterSeq: number) => Stream.Stream<Stored, Actor.ReadError>
}>()("lantern/actors/channel/Sessions") {
  static readonly layer = Layer.effect(
    Sessions,
    Effect.gen(function*() {
      const provide = yield* Actor.provider
      const journal = yield* Journal
      const { js, jsm } = yield* Nats

      const enqueue = (tenant: string, id: string, turn: number) =>
        Effect.tryPromise({
          try: () => js.publish(workSubject(tenant, id), JSON.stringify({ turn }), { msgID: `${id}:${turn}` }),
          catch: unavailable(`queue turn ${turn} of ${id}`)
        }).pipe(Effect.retry({ schedule: Schedule.exponential("100 millis"), times: 5 }), Effect.asVoid)

      const receiveOn = (tenant: string, id: string, origin: Origin, inbound: Omit<Inbound, "thread">) =>
        Effect.gen(function*() {
          const key = `${id}:event:${sha256(inbound.eventId).slice(0, 32)}`
          const outcome = yield* provide(actor.execute(addressOf(tenant, id), {
            _tag: "Receive",
            id,
            origin,
            ...inbound
          }, { idempotencyKey: key, correlationId: key }))
          const state = outcome.loaded.state
          const turn = Session.seen(state, inbound.eventId)!.turn
          // every turn not yet delivered is queued again: one whose queueing was lost to a crash is picked up
          for (const t of state.turns) if (t.delivery === null) yield* enqueue(tenant, id, t.turn)
          return { sessionId: id, turn, duplicate: outcome.appended.length === 0 }
        }).pipe(
          // a turn journaled is queued, even when the request that brought it is dropped meanwhile (interrupted):
          // otherwise it would wait for the session's next message to be queued again
          Effect.uninterruptible
        )

      const get = (tenant: string, id: string) =>
        Effect.gen(function*() {
          const view = viewOf(id, yield* journal.read(addressOf(tenant, id)))
          return view === null ? yield* new Session.SessionNotFound({ id }) : view
        })

      return Sessions.of({
        receive: (channel, inbound) => {
          const id = sessionIdOf(channel.id, inbound.thread)
          const origin: Origin = {
            channelId: channel.id,
            kind: channel.kind,
            thread: inbound.thread,
            agentName: channel.agentName
          }
          return receiveOn(channel.tenant, id, origin, inbound)
        },
        open: (tenant, agentName) =>
          Effect.gen(function*() {
            const id = `ses_${randomBytes(16).toString("hex")}`
            const origin: Origin = { channelId: null, kind: "api", thread: id, agentName }
            yield* provide(actor.execute(addressOf(tenant, id), { _tag: "Open", id, origin }, {
              idempotencyKey: `${id}:open`,
              correlationId: id
            }))
            return yield* get(tenant, id).pipe(Effect.orDie)
          }),
        say: (tenant, id, text, eventId, from) =>
          Effect.gen(function*() {
            const view = yield* get(tenant, id)
            const origin: Origin = {
              channelId: view.channelId,
              kind: view.kind as Origin["kind"],
              thread: view.thread,
              agentName: view.agentName
            }
            return yield* receiveOn(tenant, id, origin, {
              eventId: eventId === null ? `api:${randomBytes(12).toString("hex")}` : `api:${eventId}`,
              text,
              from,
              reply: {}
            })
          }),
        get,
        list: (tenant) =>
          Effect.gen(function*() {
            const info = yield* Effect.tryPromise({
              try: () => jsm.streams.info(SESSIONS, { subjects_filter: `lantern.session.${tenant}.*` }),
              catch: unavailable(`list the sessions of ${tenant}`)
            })
            const out: Array<SessionView> = []
            for (const subject of Object.keys(info.state.subjects ?? {})) {
              const id = subject.split(".")[3]!
              const view = viewOf(id, yield* journal.read(addressOf(tenant, id)))
              if (view !== null) out.push(view)
            }
            return out.sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0))
          }),
        events: (tenant, id) => journal.read(addressOf(tenant, id)),
        follow: (tenant, id, afterSeq) => journal.follow(addressOf(tenant, id), afterSeq)
      })
    })
  )
}

// ---- the worker: answers queued turns ----

export const durable: Consumer.Durable = {
  stream: WORK,
  durable: "session-worker",
  filterSubject: "lantern.work.session.>",
  // held messages are kept with in-progress acks; a dead host's turn is taken over this long after
  ackWait: "10 seconds",
  maxAckPending: 256,
  ackPolicy: "explicit"
}

const textOf = (run: RunView): string => {
  if (run.status === "succeeded") {
    return typeof run.output === "string" ? run.output : JSON.stringify(run.output)
  }
  return `Sorry, I could not answer this (${run.status}${run.error === null ? "" : `: ${run.error.message}`}).`
}

/** Answers one queued turn, from wherever its journal says it stands. */
const answer = (tenant: string, id: string, n: number) =>
  Effect.gen(function*() {
    const provide = yield* Actor.provider
    const runs = yield* Runs
    const journal = yield* Journal
    const channels = yield* Channels
    const address = addressOf(tenant, id)
    const execute = (command: Session.Command, step: string) =>
      provide(actor.execute(address, command, { idempotencyKey: `${id}:${n}:${step}`, correlationId: `${id}:${n}` }))
    let state = (yield* provide(actor.load(address))).state
    const turn = state.turns[n - 1]
    if (state.origin === null || turn === undefined) return Consumer.Decision.Term({ reason: "no such turn" })
    if (turn.delivery !== null) return Consumer.Decision.Ack()
    // turns are answered in order: the run of turn n reads the answers before it
    if (state.turns.slice(0, n - 1).some((t) => t.answer === null)) {
      return Consumer.Decision.Nak({ delay: "250 millis" })
    }
    const origin = state.origin
    const channel = origin.channelId === null
      ? null
      : yield* channels.get(tenant, origin.channelId).pipe(Effect.option, Effect.map(Option.getOrNull))
    const secrets = new Map<string, Redacted.Redacted<string>>()
    if (channel !== null) {
      for (const name of ["botToken", "authToken", "smtpPassword"] as const) {
        if (channel.secrets[name] === undefined) continue
        const value = yield* channels.secret(channel, name).pipe(Effect.option)
        if (Option.isSome(value)) secrets.set(name, value.value)
      }
    }
    const send = (text: string, key: string, approval?: string): Outbound.Send => ({
      channel: channel!,
      secret: (name) => secrets.get(name) ?? null,
      reply: turn.reply,
      text,
      idempotencyKey: key,
      ...(approval === undefined ? {} : { approval })
    })

    let runId = turn.runId
    if (runId === null) {
      if (channel !== null) {
        const typing = Outbound.typingOf(send("", `${id}:${n}`))
        if (typing !== null) yield* Outbound.fire(typing)
      }
      const started = yield* runs.start(tenant, {
        agentName: origin.agentName,
        input: Session.transcript(state, n)
      }, `session:${id}:${n}`).pipe(Effect.result)
      if (started._tag === "Failure") {
        yield* execute({
          _tag: "Answer",
          id,
          turn: n,
          text: `Sorry, I could not start (${started.failure._tag}).`,
          status: "failed",
          costUsd: 0
        }, "answer")
      } else {
        runId = started.success.run.id
        yield* execute({ _tag: "LinkRun", id, turn: n, runId }, "run")
      }
      state = (yield* provide(actor.load(address))).state
    }
    let current = state.turns[n - 1]!
    if (current.answer === null && runId !== null) {
      const asked = new Set<string>()
      const rid = runId
      // the run's journal, followed to its end (no polling): a step waiting for a person gets Slack buttons, once
      const runAddress = RunsModule.addressOf(tenant, rid)
      const answered = new Set<string>()
      const waiting: Array<string> = []
      const ask = (stepId: string) =>
        Effect.gen(function*() {
          if (channel?.kind !== "slack" || asked.has(stepId)) return
          asked.add(stepId)
          const request = Outbound.requestOf(
            send(
              `Approval needed for step ${stepId} of run ${rid}`,
              `${id}:${n}:approval:${stepId}`,
              `${rid}|${stepId}`
            )
          )
          if (request !== null) yield* Outbound.deliver(channel.kind, request)
        })
      const past = yield* journal.read(runAddress)
      for (const e of past.flatMap((s) => expand(s.event))) {
        if (e._tag === "StepCompleted" || e._tag === "StepFailed") answered.add(e.stepId)
        if (e._tag === "StepStarted" && e.request._tag === "approval") waiting.push(e.stepId)
      }
      const last = past[past.length - 1]
      if (last === undefined || !isTerminal(last.event)) {
        for (const stepId of waiting) if (!answered.has(stepId)) yield* ask(stepId)
        // the follow is left to close in the background: its subscription takes up to a pull's wait to stop
        const ended = yield* Deferred.make<void>()
        const following = yield* journal.follow(runAddress, last?.seq ?? 0).pipe(
          Stream.runForEach((s) =>
            isTerminal(s.event)
              ? Deferred.succeed(ended, undefined)
              : s.event._tag === "StepStarted" && s.event.request._tag === "approval"
              ? ask(s.event.stepId)
              : Effect.void
          ),
          Effect.forkDetach
        )
        yield* Effect.raceFirst(Deferred.await(ended), Fiber.join(following))
        yield* Effect.forkDetach(Fiber.interrupt(following))
      }
      const finished = yield* runs.get(tenant, rid)
      yield* execute({
        _tag: "Answer",
        id,
        turn: n,
        text: textOf(finished),
        status: finished.status === "running" ? "failed" : finished.status,
        costUsd: finished.costUsd
      }, "answer")
      current = (yield* provide(actor.load(address))).state.turns[n - 1]!
    }
    const request = channel === null ? null : Outbound.requestOf(send(current.answer ?? "", `${id}:${n}`))
    const delivered = origin.channelId !== null && channel === null
      ? { outcome: "failed" as const, attempts: 0, detail: "the channel was deleted before the answer" }
      : channel?.kind === "email"
      ? yield* Outbound.deliverEmail(
        channel,
        secrets.get("smtpPassword") ?? null,
        turn.reply,
        current.answer ?? "",
        `${id}.${n}`
      )
      : request === null || channel === null
      ? { outcome: "none" as const, attempts: 0, detail: "answered in the session (API, webchat)" }
      : yield* Outbound.deliver(channel.kind, request)
    yield* execute({ _tag: "Deliver", id, turn: n, ...delivered }, "deliver")
    return Consumer.Decision.Ack()
  })

/** The worker of a host that drives runs: answers queued turns, several sessions at once. */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    yield* Consumer.ensure(durable)
    yield* Consumer.run(durable, 16, (m) => {
      const [, , , tenant = "", id = ""] = m.subject.split(".")
      let turn = 0
      try {
        turn = Number((JSON.parse(m.text()) as { turn?: unknown }).turn)
      } catch {
        // not a turn: terminated below
      }
      if (!Number.isInteger(turn) || turn < 1) return Effect.succeed(Consumer.Decision.Term({ reason: "malformed" }))
      return answer(tenant, id, turn)
    }).pipe(
      // the bus away ends the consumer: it starts again once the bus is back
      Effect.tapError((e) => Effect.logWarning(`session worker: ${e.message}; starting again`)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.catchCause((cause) => Effect.logError("session worker stopped", cause)),
      Effect.forkScoped
    )
  })
)
