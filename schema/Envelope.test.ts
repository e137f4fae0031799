import * as fc from "fast-check"
import { Effect, Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as Fixtures from "../projections/Fixtures.ts"
import * as Envelope from "./Envelope.ts"
import * as Events from "./Events.ts"
import { CURRENT_VERSION, type Event } from "./Events.ts"

const SUBJECT = "lantern.journal.run.t1.run_01"

const envelopeOf = (event: Event, overrides: Partial<Envelope.Envelope> = {}): Envelope.Envelope => ({
  eventId: "evt_01j00000000000000000000000",
  type: event._tag,
  version: CURRENT_VERSION,
  tenant: "t1",
  actor: { type: "run", tenant: "t1", id: "run_01" },
  causationId: null,
  correlationId: "run_01",
  traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  at: "2025-01-01T00:00:00.000Z",
  idempotencyKey: "run_01:turn-1:1:completed",
  payload: Envelope.payloadOf(event),
  ...overrides
})

/** What a journal stores: the envelope encoded as JSON text. */
const encode = Schema.encodeSync(Envelope.EnvelopeJson)

const decode = (data: string, seq = 7) => Effect.runSync(Effect.result(Envelope.decode(SUBJECT, seq, data)))

const failureOf = (data: string) => {
  const r = decode(data)
  if (Result.isSuccess(r))
    return expect.unreachable(`expected a decode failure, got ${JSON.stringify(r.success.event)}`)
  return r.failure
}

const stepCompleted: Event = {
  _tag: "StepCompleted",
  stepId: "turn-1",
  attempt: 1,
  result: {
    _tag: "model",
    answer: {
      content: null,
      toolCalls: [{ id: "call_0", name: "calculator", arguments: { expression: "1+1" } }],
      finishReason: "tool_calls",
      provider: "offline",
      model: "offline-echo-1"
    }
  },
  tokensIn: 12,
  tokensOut: 8,
  costUsd: 0,
  durationMs: 3
}

describe("Envelope.decode", () => {
  it("decodes a valid envelope into the typed event, keeping the envelope and its position", () => {
    const envelope = envelopeOf(stepCompleted)
    const r = decode(encode(envelope), 42)
    expect(Result.isSuccess(r)).toBe(true)
    if (Result.isSuccess(r)) expect(r.success).toEqual({ seq: 42, subject: SUBJECT, envelope, event: stepCompleted })
  })

  it("decodes hand-written journal JSON (the payload carries no _tag: the envelope type is the tag)", () => {
    const data = JSON.stringify({
      eventId: "evt_1",
      type: "RunFailed",
      version: 1,
      tenant: "t1",
      actor: { type: "run", tenant: "t1", id: "run_01" },
      causationId: "evt_0",
      correlationId: "run_01",
      traceparent: null,
      at: "2025-01-01T00:00:00.000Z",
      idempotencyKey: "run_01:failed",
      payload: { error: { code: "max_turns_exceeded", message: "out of turns" } }
    })
    const r = decode(data)
    expect(Result.isSuccess(r) && r.success.event).toEqual({
      _tag: "RunFailed",
      error: { code: "max_turns_exceeded", message: "out of turns" }
    })
  })

  it("decodes an event once for its readers: the same text at the same position is the same object", () => {
    const first = encode(envelopeOf(stepCompleted))
    const other = encode(envelopeOf({ _tag: "RunSucceeded", output: "done" }))
    const a = decode(first, 901)
    const b = decode(first, 901)
    expect(Result.isSuccess(a) && Result.isSuccess(b) && a.success === b.success).toBe(true)
    // another text at that position (another stream's sequence) is decoded from its own text
    const c = decode(other, 901)
    expect(Result.isSuccess(c) && c.success.event).toEqual({ _tag: "RunSucceeded", output: "done" })
    expect(Result.isSuccess(decode(first, 901)) && decode(first, 901)).toMatchObject({
      success: { seq: 901, event: stepCompleted }
    })
    // a bounded number is kept: after DECODED_KEPT others, the first is decoded again, equal but not the same
    const kept = decode(first, 902)
    for (let i = 0; i < Envelope.DECODED_KEPT; i++) decode(other, 10_000 + i)
    const again = decode(first, 902)
    expect(Result.isSuccess(kept) && Result.isSuccess(again)).toBe(true)
    if (Result.isSuccess(kept) && Result.isSuccess(again)) {
      expect(again.success).not.toBe(kept.success)
      expect(again.success).toEqual(kept.success)
    }
  })

  it("answers an event this process appended as it was appended, equal to what decoding its text gives", () => {
    // every kind of event a realistic journal holds: runs of each step kind, ten-step runs, agents
    const entries = [...Fixtures.runEntries("tr"), ...Fixtures.tenStepRuns("tr", 3), ...Fixtures.agentEntries("tr")]
    entries.forEach((entry, i) => {
      const envelope = Fixtures.envelopeOf(entry, `remember-${i}`)
      const subject = `lantern.${entry.address.type}.${entry.address.tenant}.${entry.address.id}`
      const appended: Envelope.Stored = { seq: 50_000 + i, subject, envelope, event: entry.event }
      const text = Envelope.encodeJson(envelope)
      Envelope.remember(appended, text)
      const read = Effect.runSync(Envelope.decode(subject, appended.seq, text))
      expect(read).toBe(appended)
      // what a reader in another process (or after a restart) decodes from the same text
      expect(Effect.runSync(Envelope.decodeThroughSchemas(subject, appended.seq, text))).toEqual(appended)
      // another text at that position is not answered with the appended event
      expect(
        Effect.runSync(
          Envelope.decode(subject, appended.seq, encode(envelopeOf({ _tag: "RunSucceeded", output: "x" })))
        )
      )
        .not.toBe(appended)
    })
  })

  it("fails loudly with UnknownEventVersion for a version this code does not know", () => {
    const e = failureOf(encode(envelopeOf({ _tag: "RunSucceeded", output: "x" }, { version: 3 })))
    expect(e).toMatchObject({ _tag: "UnknownEventVersion", type: "RunSucceeded", version: 3, subject: SUBJECT })
  })

  it("writes a RunSucceeded carrying the answer that ended the run as version 2, and decodes it (ADR 0077)", () => {
    const answer = {
      stepId: "turn-2",
      attempt: 1,
      result: {
        _tag: "model",
        answer: { content: "x", toolCalls: [], finishReason: "stop", provider: "p", model: "m" }
      },
      tokensIn: 3,
      tokensOut: 1,
      costUsd: 0.5,
      durationMs: 2
    } as const
    const ended: Events.Event = { _tag: "RunSucceeded", output: "x", steps: [answer] }
    expect(Events.versionOf(ended)).toBe(2)
    expect(Events.versionOf({ _tag: "RunSucceeded", output: "x" })).toBe(Events.CURRENT_VERSION)
    const r = decode(encode(envelopeOf(ended, { version: 2 })))
    if (Result.isFailure(r)) return expect.unreachable(`refused: ${JSON.stringify(r.failure)}`)
    expect(Events.expand(r.success.event)).toEqual([
      { _tag: "StepCompleted", ...answer },
      { _tag: "RunSucceeded", output: "x" }
    ])
  })

  it.each(["RunPaused", "constructor", "__proto__", "toString"])(
    "fails with UnknownEventVersion for the unknown type %j",
    (type) => {
      const e = failureOf(encode(envelopeOf({ _tag: "RunSucceeded", output: "x" }, { type })))
      expect(e).toMatchObject({ _tag: "UnknownEventVersion", type, version: 1 })
    }
  )

  it.each([
    ["retryable", "StepFailed", { stepId: "turn-1", attempt: 1, error: { code: "x", message: "y" } }],
    ["error.message", "RunFailed", { error: { code: "x" } }],
    ["output", "RunSucceeded", {}],
    ["result", "StepCompleted", { stepId: "turn-1", attempt: 1, tokensIn: 0, tokensOut: 0, costUsd: 0, durationMs: 0 }]
  ])("fails with CorruptEvent naming the missing field %s", (field, type, payload) => {
    const e = failureOf(encode(envelopeOf({ _tag: "RunSucceeded", output: null }, { type, payload })))
    expect(e._tag).toBe("CorruptEvent")
    expect(e).toMatchObject({ subject: SUBJECT, seq: 7 })
    expect(e._tag === "CorruptEvent" && e.reason).toContain(field)
  })

  it("fails with CorruptEvent naming a field of the wrong type", () => {
    const payload = { stepId: "turn-1", attempt: "one", error: { code: "x", message: "y" }, retryable: true }
    const e = failureOf(encode(envelopeOf({ _tag: "RunSucceeded", output: null }, { type: "StepFailed", payload })))
    expect(e).toMatchObject({ _tag: "CorruptEvent" })
    expect(e._tag === "CorruptEvent" && e.reason).toContain("attempt")
  })

  it.each([
    ["text that is not JSON", "{not json"],
    [
      "an envelope without a version",
      JSON.stringify({ ...envelopeOf({ _tag: "RunSucceeded", output: 1 }), version: undefined })
    ],
    [
      "an envelope with an unknown actor type",
      JSON.stringify({
        ...envelopeOf({ _tag: "RunSucceeded", output: 1 }),
        actor: { type: "x", tenant: "t1", id: "r" }
      })
    ]
  ])("fails with CorruptEvent for %s", (_, data) => {
    expect(failureOf(data)._tag).toBe("CorruptEvent")
  })

  // Payload fields are JSON: restrict generated values to JSON and normalise -0, which JSON writes as 0.
  const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown)
  const errorInfo = fc.record({ code: fc.string(), message: fc.string() })
  const event: fc.Arbitrary<Event> = fc.oneof(
    json.map((output): Event => ({ _tag: "RunSucceeded", output })),
    errorInfo.map((error): Event => ({ _tag: "RunFailed", error }))
  )
  const envelope = fc.record({
    event,
    eventId: fc.string(),
    tenant: fc.string(),
    id: fc.string(),
    causationId: fc.option(fc.string(), { nil: null }),
    traceparent: fc.option(fc.string(), { nil: null }),
    idempotencyKey: fc.string()
  }).map(({ event, id, ...fields }) => ({
    event,
    envelope: envelopeOf(event, { ...fields, actor: { type: "run", tenant: fields.tenant, id }, correlationId: id })
  }))

  it("decode ∘ encode = id for RunSucceeded and RunFailed envelopes", () => {
    fc.assert(
      fc.property(envelope, fc.nat(), ({ event, envelope }, seq) => {
        const r = decode(encode(envelope), seq)
        if (Result.isFailure(r)) return expect.unreachable(r.failure.message)
        expect(r.success).toEqual({ seq, subject: SUBJECT, envelope, event })
      }),
      { numRuns: 500 }
    )
  })

  it("encodeJson writes exactly what the envelope schema encodes", () => {
    fc.assert(
      fc.property(envelope, ({ envelope }) => {
        expect(Envelope.encodeJson(envelope)).toBe(encode(envelope))
      }),
      { numRuns: 300 }
    )
  })

  // an envelope with one field replaced by any JSON value, or dropped: valid or not, the quick path must answer as
  // the schemas do (the same stored event, or the same failure)
  const fields = [
    "eventId",
    "type",
    "version",
    "tenant",
    "actor",
    "causationId",
    "correlationId",
    "traceparent",
    "at",
    "idempotencyKey",
    "payload"
  ]
  const through = (data: string, seq: number) =>
    Effect.runSync(Effect.result(Envelope.decodeThroughSchemas(SUBJECT, seq, data)))
  it("decodes every envelope, well-formed or not, exactly as the schemas alone do", () => {
    const mutated = fc.tuple(
      envelope,
      fc.constantFrom(...fields, "actor.type", "actor.tenant", "actor.id", "payload.output", "payload.error"),
      fc.option(fc.jsonValue(), { nil: undefined }),
      fc.boolean()
    ).map(([{ envelope }, field, value, keep]) => {
      const raw = JSON.parse(encode(envelope)) as Record<string, any>
      if (!keep) {
        const [head, tail] = field.split(".")
        const target = tail === undefined ? raw : raw[head!]
        if (target !== null && typeof target === "object") target[tail ?? head!] = value
      }
      return JSON.stringify(raw)
    })
    fc.assert(
      fc.property(mutated, fc.nat(), (data, seq) => {
        const quick = decode(data, seq)
        const slow = through(data, seq)
        expect(quick._tag).toBe(slow._tag)
        if (Result.isSuccess(quick) && Result.isSuccess(slow)) expect(quick.success).toEqual(slow.success)
        if (Result.isFailure(quick) && Result.isFailure(slow)) expect(quick.failure).toEqual(slow.failure)
      }),
      { numRuns: 1000 }
    )
  })
})

describe("Envelope.decode of a StepsCompleted (ADR 0067)", () => {
  /** A local step as a StepsCompleted lists it: its completion and its request. */
  const local = (i: number): Record<string, unknown> => ({
    stepId: `turn-1/call_${i}`,
    attempt: 1,
    result: { _tag: "tool", callId: `call_${i}`, output: String(i) },
    tokensIn: 0,
    tokensOut: 0,
    costUsd: 0,
    durationMs: 1,
    request: { _tag: "tool", call: { id: `call_${i}`, name: "calculator", arguments: { expression: `${i}+0` } } }
  })
  /** The journal text of a StepsCompleted whose steps are these (a foreign or broken writer's, maybe). */
  const batch = (steps: ReadonlyArray<unknown>) =>
    encode(envelopeOf({ _tag: "RunSucceeded", output: null }, { type: "StepsCompleted", payload: { steps } }))

  it("decodes a well-formed one into the completions it stands for, in order", () => {
    const r = decode(batch([local(0), local(1), local(2)]))
    if (Result.isFailure(r)) return expect.unreachable(`refused: ${JSON.stringify(r.failure)}`)
    const completions = Events.expand(r.success.event)
    expect(completions.map((e) => e._tag)).toEqual(["StepCompleted", "StepCompleted", "StepCompleted"])
    expect(completions.map((e) => e._tag === "StepCompleted" && e.stepId)).toEqual(
      ["turn-1/call_0", "turn-1/call_1", "turn-1/call_2"]
    )
  })

  it("decodes one led by the model answer that asked for its steps, which has no request (ADR 0075)", () => {
    const { request: _request, ...answer } = local(9)
    const r = decode(batch([answer, local(0)]))
    if (Result.isFailure(r)) return expect.unreachable(`refused: ${JSON.stringify(r.failure)}`)
    const [first, second] = Events.expand(r.success.event)
    expect(first).toMatchObject({ _tag: "StepCompleted", stepId: "turn-1/call_9" })
    expect(first && "request" in first).toBe(false)
    expect(second).toMatchObject({ _tag: "StepCompleted", stepId: "turn-1/call_0", request: { _tag: "tool" } })
  })

  const without = (key: string) => (s: Record<string, unknown>) => {
    const { [key]: _, ...rest } = s
    return rest
  }
  it.each<[string, (s: Record<string, unknown>) => unknown, string]>([
    ["an attempt that is not an integer", (s) => ({ ...s, attempt: 1.5 }), "attempt"],
    ["an attempt written as text", (s) => ({ ...s, attempt: "1" }), "attempt"],
    ["a step id that is not a string", (s) => ({ ...s, stepId: 7 }), "stepId"],
    ["a result of no known kind", (s) => ({ ...s, result: { _tag: "teleport", output: "x" } }), "result"],
    ["a tool result without its output", (s) => ({ ...s, result: { _tag: "tool", callId: "call_1" } }), "output"],
    ["a request of no known kind", (s) => ({ ...s, request: { _tag: "teleport" } }), "request"],
    ["a cost written as text", (s) => ({ ...s, costUsd: "0" }), "costUsd"],
    ["no duration", without("durationMs"), "durationMs"],
    ["tokens that are not whole", (s) => ({ ...s, tokensIn: 0.5 }), "tokensIn"],
    ["a step that is not an object", () => 5, "steps"],
    ["a step that is null", () => null, "steps"]
  ])(
    "refuses one whose second completion has %s (CorruptEvent naming it), none of its steps decoded",
    (_, bad, field) => {
      const data = batch([local(0), bad(local(1)), local(2)])
      const e = failureOf(data)
      expect(e).toMatchObject({ _tag: "CorruptEvent", subject: SUBJECT, seq: 7 })
      expect(e._tag === "CorruptEvent" && e.reason).toContain(field)
      // the quick path for well-formed events refuses it exactly as the schemas alone do
      expect(Effect.runSync(Effect.result(Envelope.decodeThroughSchemas(SUBJECT, 7, data)))).toEqual(Result.fail(e))
    }
  )

  it("refuses one whose steps are not a list", () => {
    for (const steps of [null, {}, "turn-1", 3]) {
      const data = encode(envelopeOf({ _tag: "RunSucceeded", output: null }, {
        type: "StepsCompleted",
        payload: { steps }
      }))
      const e = failureOf(data)
      expect(e._tag === "CorruptEvent" && e.reason).toContain("steps")
    }
  })
})
