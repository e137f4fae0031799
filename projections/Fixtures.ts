// Test fixtures for the projections: a realistic journal of agents and runs built from the event schemas and
// passed through the envelope codec, exactly as a projector receives it. Used by tests only.
import { Effect } from "effect"
import { subjectOf } from "../bus/Journal.ts"
import type { ResolvedSpec } from "../schema/AgentSpec.ts"
import * as Envelope from "../schema/Envelope.ts"
import type { Event } from "../schema/Events.ts"

export const T0 = Date.parse("2026-11-21T05:00:00.000Z")
/** The ISO time `seconds` after T0. */
export const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString()

/** A time-ordered run id: `run_` and 26 base32 characters, growing with `n`. */
export const runId = (n: number): string => `run_01jd${n.toString(32).padStart(22, "0")}`

export const spec = (prompt: string): ResolvedSpec => ({
  systemPrompt: prompt,
  model: "auto",
  maxTurns: 8,
  tools: [{ name: "clock", description: "The current time", parameters: { type: "object", properties: {} } }]
})

/** One event of an actor instance, before it is given a stream sequence. */
export interface Entry {
  readonly address: Envelope.ActorAddress
  readonly event: Event
  readonly at: string
}

let counter = 0
/** The envelope a writer would append for `entry`; `key` makes its idempotency key unique in the stream. */
export const envelopeOf = (entry: Entry, key: string): Envelope.Envelope => {
  counter++
  return {
    eventId: `evt_${counter.toString(32).padStart(26, "0")}`,
    type: entry.event._tag,
    version: 1,
    tenant: entry.address.tenant,
    actor: entry.address,
    causationId: null,
    correlationId: entry.address.id,
    traceparent: null,
    at: entry.at,
    idempotencyKey: `${entry.address.tenant}:${entry.address.id}:${key}`,
    payload: Envelope.payloadOf(entry.event)
  }
}

/** Entries as a journal returns them: sequences from `firstSeq`, encoded to JSON and decoded by the codec. */
export const storedOf = (entries: ReadonlyArray<Entry>, firstSeq = 1): ReadonlyArray<Envelope.Stored> =>
  entries.map((entry, i) =>
    Effect.runSync(
      Envelope.decode(subjectOf(entry.address), firstSeq + i, JSON.stringify(envelopeOf(entry, `${firstSeq + i}`)))
    )
  )

const agent = (tenant: string, id: string) => ({ type: "agent" as const, tenant, id })
const run = (tenant: string, id: string) => ({ type: "run" as const, tenant, id })

export const agentEntries = (tenant: string): ReadonlyArray<Entry> => [
  {
    address: agent(tenant, "support"),
    at: at(0),
    event: {
      _tag: "AgentCreated",
      name: "support",
      description: "Answers customers",
      version: 1,
      digest: "sha256:aaa",
      spec: spec("v1")
    }
  },
  {
    address: agent(tenant, "triage"),
    at: at(5),
    event: {
      _tag: "AgentCreated",
      name: "triage",
      description: "Sorts tickets",
      version: 1,
      digest: "sha256:ttt",
      spec: spec("triage")
    }
  },
  {
    address: agent(tenant, "support"),
    at: at(10),
    event: {
      _tag: "AgentVersionPublished",
      name: "support",
      description: "Answers customers, politely",
      version: 2,
      digest: "sha256:bbb",
      spec: spec("v2")
    }
  }
]

const started = (
  tenant: string,
  id: string,
  agentName: string,
  agentVersion: number,
  input: unknown,
  t: number
): Entry => ({
  address: run(tenant, id),
  at: at(t),
  event: {
    _tag: "RunStarted",
    runId: id,
    agentName,
    agentVersion,
    agentDigest: `sha256:${agentName}${agentVersion}`,
    spec: spec(agentName),
    input,
    requestDigest: `sha256:req-${id}`
  }
})

const modelAnswer = (
  content: string | null,
  toolCalls: ReadonlyArray<{ id: string; name: string; arguments: unknown }>
) => ({
  content,
  toolCalls,
  finishReason: toolCalls.length > 0 ? "tool_calls" : "stop",
  provider: "offline",
  model: "offline-1"
})

/**
 * Three runs of one tenant: the first succeeds after a model call, a tool call and a second model call; the
 * second fails after two failed attempts of its model step; the third is canceled while its step runs.
 */
export const runEntries = (tenant: string): ReadonlyArray<Entry> => {
  const r1 = run(tenant, runId(1))
  const r2 = run(tenant, runId(2))
  const r3 = run(tenant, runId(3))
  const call = { id: "call_1", name: "clock", arguments: {} }
  return [
    started(tenant, runId(1), "support", 2, { question: "What time is it?" }, 20),
    {
      address: r1,
      at: at(21),
      event: { _tag: "StepStarted", stepId: "turn-1", attempt: 1, request: { _tag: "model", model: "auto", turn: 1 } }
    },
    {
      address: r1,
      at: at(22),
      event: {
        _tag: "StepCompleted",
        stepId: "turn-1",
        attempt: 1,
        result: { _tag: "model", answer: modelAnswer(null, [call]) },
        tokensIn: 100,
        tokensOut: 20,
        costUsd: 0.0012,
        durationMs: 850
      }
    },
    {
      address: r1,
      at: at(23),
      event: { _tag: "StepStarted", stepId: "turn-1:call_1", attempt: 1, request: { _tag: "tool", call } }
    },
    started(tenant, runId(2), "triage", 1, "sort this", 23.5),
    {
      address: r1,
      at: at(24),
      event: {
        _tag: "StepCompleted",
        stepId: "turn-1:call_1",
        attempt: 1,
        result: { _tag: "tool", callId: "call_1", output: "05:00" },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        durationMs: 1
      }
    },
    {
      address: r1,
      at: at(25),
      event: { _tag: "StepStarted", stepId: "turn-2", attempt: 1, request: { _tag: "model", model: "auto", turn: 2 } }
    },
    {
      address: r1,
      at: at(26),
      event: {
        _tag: "StepCompleted",
        stepId: "turn-2",
        attempt: 1,
        result: { _tag: "model", answer: modelAnswer("It is 05:00.", []) },
        tokensIn: 150,
        tokensOut: 30,
        costUsd: 0.0018,
        durationMs: 900
      }
    },
    { address: r1, at: at(27), event: { _tag: "RunSucceeded", output: { answer: "It is 05:00." } } },
    {
      address: r2,
      at: at(31),
      event: { _tag: "StepStarted", stepId: "turn-1", attempt: 1, request: { _tag: "model", model: "auto", turn: 1 } }
    },
    {
      address: r2,
      at: at(32),
      event: {
        _tag: "StepFailed",
        stepId: "turn-1",
        attempt: 1,
        error: { code: "provider_unavailable", message: "HTTP 503" },
        retryable: true
      }
    },
    {
      address: r2,
      at: at(33),
      event: { _tag: "StepStarted", stepId: "turn-1", attempt: 2, request: { _tag: "model", model: "auto", turn: 1 } }
    },
    started(tenant, runId(3), "support", 2, null, 33.5),
    {
      address: r2,
      at: at(34),
      event: {
        _tag: "StepFailed",
        stepId: "turn-1",
        attempt: 2,
        error: { code: "provider_unavailable", message: "HTTP 503" },
        retryable: false
      }
    },
    {
      address: r2,
      at: at(35),
      event: { _tag: "RunFailed", error: { code: "step_failed", message: "turn-1 failed twice" } }
    },
    {
      address: r3,
      at: at(41),
      event: { _tag: "StepStarted", stepId: "turn-1", attempt: 1, request: { _tag: "model", model: "auto", turn: 1 } }
    },
    { address: r3, at: at(42), event: { _tag: "RunCanceled", reason: "no longer needed", by: "token:owner" } }
  ]
}

/** `count` runs of one agent that only started, with ids runId(first) … runId(first + count - 1). */
export const startedRuns = (tenant: string, count: number, first = 1): ReadonlyArray<Entry> =>
  Array.from(
    { length: count },
    (_, i) => started(tenant, runId(first + i), i % 2 === 0 ? "support" : "triage", 1, { n: first + i }, 100 + i)
  )

/** A time-ordered audit id: `aud_` and 26 base32 characters, growing with `n`. */
export const auditId = (n: number): string => `aud_01jd${n.toString(32).padStart(22, "0")}`

/** Three audit entries of one tenant, one journal subject each: two receipts and a refused scope. */
export const auditEntries = (tenant: string): ReadonlyArray<Entry> =>
  ([
    ["receipt.issued", "system", runId(1), "allowed", {}],
    ["scope.denied", "key:key_1", "POST /v1/runs", "denied", { missing: "runs:write" }],
    ["receipt.issued", "system", runId(2), "allowed", {}]
  ] as const).map(([action, actor, target, outcome, detail], i) => ({
    address: { type: "audit", tenant, id: auditId(i + 1) },
    at: at(200 + i),
    event: { _tag: "AuditRecorded", action, actor, target, outcome, detail }
  }))

/**
 * A run as the run-path bench drives it: a model step whose answer is journaled with the eight built-in tool calls
 * it asked for as one StepsCompleted (ADR 0067, 0075), a second model step whose answer is journaled with the run's
 * success (ADR 0077); 5 events. `poisoned` puts a NUL in the third tool call's output, which jsonb refuses: the
 * whole StepsCompleted is then the refused event.
 */
export const tenStepRun = (tenant: string, n: number, poisoned = false): ReadonlyArray<Entry> => {
  const address = { type: "run" as const, tenant, id: runId(n) }
  let t = 0
  const entry = (event: Event): Entry => ({ address, at: at(n * 100 + t++), event })
  const answer = (content: string) => ({
    _tag: "model" as const,
    answer: { content, toolCalls: [], finishReason: "stop", provider: "offline", model: "offline-1" }
  })
  const started = (turn: number): Entry =>
    entry({ _tag: "StepStarted", stepId: `turn-${turn}`, attempt: 1, request: { _tag: "model", model: "auto", turn } })
  const answered = (turn: number) => ({
    stepId: `turn-${turn}`,
    attempt: 1,
    result: answer(`answer ${turn}`),
    tokensIn: 100 * turn,
    tokensOut: 10,
    costUsd: 0.0011,
    durationMs: 3
  })
  const tool = (i: number) => {
    const call = { id: `call_${i}`, name: "calculator", arguments: { expression: `${i}+1` } }
    return {
      stepId: `turn-1:call_${i}`,
      attempt: 1,
      result: { _tag: "tool" as const, callId: call.id, output: poisoned && i === 3 ? "a\u0000b" : String(i + 1) },
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0,
      durationMs: 0,
      request: { _tag: "tool" as const, call }
    }
  }
  return [
    entry({
      _tag: "RunStarted",
      runId: address.id,
      agentName: "calc",
      agentVersion: 1,
      agentDigest: "sha256:calc",
      spec: spec("calc"),
      input: { n },
      requestDigest: `sha256:req-${n}`
    }),
    started(1),
    entry({ _tag: "StepsCompleted", steps: [answered(1), ...Array.from({ length: 8 }, (_, i) => tool(i))] }),
    started(2),
    entry({ _tag: "RunSucceeded", output: { answer: `answer 2` }, steps: [answered(2)] })
  ]
}

/** The runs' events interleaved one by one, as concurrent runs' events reach the stream. */
export const interleaved = (runs: ReadonlyArray<ReadonlyArray<Entry>>): ReadonlyArray<Entry> =>
  Array.from({ length: Math.max(...runs.map((r) => r.length)) }, (_, i) => runs.flatMap((r) => r[i] ?? [])).flat()

/** `runs` ten-step runs of one tenant, interleaved, the second with the poisoned tool output. */
export const tenStepRuns = (tenant: string, runs: number): ReadonlyArray<Entry> =>
  interleaved(Array.from({ length: runs }, (_, i) => tenStepRun(tenant, i + 1, i === 1)))
