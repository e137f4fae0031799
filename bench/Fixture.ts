// Real run-journal envelopes for the step benchmark: StepStarted and StepCompleted of a model step, built
// the way a run actor records them and checked to decode with the schema's own `decode`.
import { randomBytes } from "node:crypto"
import { Effect, Schema } from "effect"
import * as Envelope from "../schema/Envelope.ts"
import * as Events from "../schema/Events.ts"

export const TENANT = "bench"

// 26 characters of [0-9a-z], as run and event ids are: a random per-process prefix, then a counter.
const prefix = Array.from(randomBytes(10), (b) => (b % 36).toString(36)).join("")
let counter = 0
const id26 = () => prefix + (counter++).toString(36).padStart(16, "0")

export const runId = (): string => `run_${id26()}`
const eventId = () => `evt_${id26()}`

export const address = (run: string): Envelope.ActorAddress => ({ type: "run", tenant: TENANT, id: run })

const envelopeOf = (run: string, event: Events.Event, key: string, causationId: string | null): Envelope.Envelope => ({
  eventId: eventId(),
  type: event._tag,
  version: Events.CURRENT_VERSION,
  tenant: TENANT,
  actor: address(run),
  causationId,
  correlationId: run,
  traceparent: null,
  at: new Date().toISOString(),
  idempotencyKey: key,
  payload: Envelope.payloadOf(event)
})

/** The StepStarted envelope of step `n` of a run. */
export const stepStarted = (run: string, n: number): Envelope.Envelope => {
  const event: Events.StepStarted = {
    _tag: "StepStarted",
    stepId: `step-${n}`,
    attempt: 1,
    request: { _tag: "model", model: "bench/echo", turn: n }
  }
  return envelopeOf(run, event, `${run}:step-${n}:1:started`, null)
}

const ANSWER = "The quick brown fox jumps over the lazy dog; a short model answer of typical size."

/** The StepCompleted envelope of step `n` of a run, caused by its StepStarted. */
export const stepCompleted = (run: string, n: number, startedId: string): Envelope.Envelope => {
  const event: Events.StepCompleted = {
    _tag: "StepCompleted",
    stepId: `step-${n}`,
    attempt: 1,
    result: {
      _tag: "model",
      answer: { content: ANSWER, toolCalls: [], finishReason: "stop", provider: "bench", model: "echo" }
    },
    tokensIn: 812,
    tokensOut: 23,
    costUsd: 0.000412,
    durationMs: 0
  }
  return envelopeOf(run, event, `${run}:step-${n}:1:completed`, startedId)
}

const encode = Schema.encodeSync(Envelope.EnvelopeJson)

/** Encodes a sample step's two envelopes and decodes them back with `Envelope.decode`; their encoded sizes. */
export const check = Effect.gen(function*() {
  const run = runId()
  const started = stepStarted(run, 0)
  const completed = stepCompleted(run, 0, started.eventId)
  const sizes: Array<number> = []
  for (const [i, e] of [started, completed].entries()) {
    const json = encode(e)
    const stored = yield* Envelope.decode(`lantern.run.${TENANT}.${run}`, i + 1, json)
    if (stored.event._tag !== e.type)
      return yield* Effect.die(new Error(`decoded ${stored.event._tag}, expected ${e.type}`))
    sizes.push(Buffer.byteLength(json))
  }
  return { startedBytes: sizes[0]!, completedBytes: sizes[1]! }
})
