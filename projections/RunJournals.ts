// Arbitrary journals of run and audit events for property tests of the fold: runs as a run actor writes them,
// interleaved across runs and tenants, and runs in orders no actor writes (a step ended before it started, a
// second terminal event, events before RunStarted). Used by tests only.
import * as fc from "fast-check"
import type { Event } from "../schema/Events.ts"
import * as Fixtures from "./Fixtures.ts"

const TENANTS = ["t1", "t2"] as const
const ADDRESSES = TENANTS.flatMap((tenant) =>
  [1, 2, 3].map((n) => ({ type: "run" as const, tenant, id: Fixtures.runId(n) }))
)

const input = fc.constantFrom<unknown>(null, { q: "what time is it?" }, "text", 0, [1, { a: null }])
const output = fc.constantFrom<unknown>(null, { answer: "05:00" }, "done", false)
const cost = fc.constantFrom(0, 0.0012, 0.1, 0.2, 1e-7, 0.000412)
const tokens = fc.nat({ max: 2000 })
const error = fc.constantFrom({ code: "provider_unavailable", message: "HTTP 503" }, {
  code: "tool_failed",
  message: "boom"
})

const started = (id: string): fc.Arbitrary<Event> =>
  input.map((i) => ({
    _tag: "RunStarted",
    runId: id,
    agentName: "support",
    agentVersion: 1,
    agentDigest: "sha256:support1",
    spec: Fixtures.spec("support"),
    input: i,
    requestDigest: `sha256:req-${id}`
  }))

const stepStarted = (stepId: string, attempt: number): fc.Arbitrary<Event> =>
  fc.option(fc.integer({ min: 0, max: 2e12 }), { nil: undefined }).map((wakeAt) => ({
    _tag: "StepStarted",
    stepId,
    attempt,
    request: { _tag: "model", model: "auto", turn: attempt },
    ...(wakeAt === undefined ? {} : { wakeAt })
  }))

const stepEnded = (stepId: string, attempt: number): fc.Arbitrary<Event> =>
  fc.oneof(
    fc.record({ tokensIn: tokens, tokensOut: tokens, costUsd: cost }).map((t): Event => ({
      _tag: "StepCompleted",
      stepId,
      attempt,
      result: { _tag: "tool", callId: "call_1", output: `${stepId}/${attempt}` },
      durationMs: 1,
      ...t
    })),
    error.map((e): Event => ({ _tag: "StepFailed", stepId, attempt, error: e, retryable: false }))
  )

const terminal: fc.Arbitrary<Event> = fc.oneof(
  output.map((o): Event => ({ _tag: "RunSucceeded", output: o })),
  error.map((e): Event => ({ _tag: "RunFailed", error: e })),
  fc.constant<Event>({ _tag: "RunCanceled", reason: "no longer needed", by: "token:owner" })
)

/** A local step (a built-in tool) journaled as one event: its completion, carrying its request. */
const localStep = (stepId: string): fc.Arbitrary<Event> =>
  fc.record({ tokensIn: tokens, tokensOut: tokens, costUsd: cost }).map((t): Event => ({
    _tag: "StepCompleted",
    stepId,
    attempt: 1,
    result: { _tag: "tool", callId: "call_1", output: `${stepId}/local` },
    durationMs: 0,
    ...t,
    request: { _tag: "tool", call: { id: "call_1", name: "calculator", arguments: { expression: "1+1" } } }
  }))

/** Local steps performed together, journaled as one StepsCompleted (ADR 0067). */
const localSteps = (stepIds: ReadonlyArray<string>): fc.Arbitrary<Event> =>
  fc.tuple(...stepIds.map(localStep)).map((events): Event => ({
    _tag: "StepsCompleted",
    steps: events.map((e) => {
      const { _tag, ...step } = e as Extract<Event, { _tag: "StepCompleted" }>
      return { ...step, request: step.request! }
    })
  }))

/**
 * One run as a run actor journals it: started, steps each started then ended (some retried) or local steps
 * journaled once, alone or together, maybe finished.
 */
const wellFormedRun = (id: string): fc.Arbitrary<ReadonlyArray<Event>> =>
  fc.tuple(
    started(id),
    fc.array(fc.tuple(fc.nat({ max: 1 }), fc.boolean(), fc.constantFrom("started", "local", "locals")), {
      maxLength: 3
    }),
    fc.option(terminal, { nil: undefined })
  )
    .chain(([first, steps, last]) =>
      fc.tuple(
        ...steps.flatMap(([retries, ends, kind], i) =>
          kind === "local"
            ? [localStep(`s${i}`).map((e) => [e])]
            : kind === "locals"
            ? [localSteps([`s${i}`, `s${i}.b`]).map((e) => [e])]
            : Array.from({ length: retries + 1 }, (_, a) =>
              fc.tuple(
                stepStarted(`s${i}`, a + 1),
                a < retries || ends ? stepEnded(`s${i}`, a + 1).map((e) => [e]) : fc.constant([])
              )
                .map(([s, e]) => [s, ...e]))
        )
      ).map((groups) => [first, ...groups.flat(), ...(last === undefined ? [] : [last])])
    )

/** Any run event of a small set of step ids and attempts, so the same step attempt recurs in any order. */
const anyRunEvent = (id: string): fc.Arbitrary<Event> =>
  fc.oneof(
    { arbitrary: started(id), weight: 1 },
    {
      arbitrary: fc.tuple(fc.constantFrom("s0", "s1"), fc.integer({ min: 1, max: 2 })).chain(([s, a]) =>
        stepStarted(s, a)
      ),
      weight: 3
    },
    {
      arbitrary: fc.tuple(fc.constantFrom("s0", "s1"), fc.integer({ min: 1, max: 2 })).chain(([s, a]) =>
        stepEnded(s, a)
      ),
      weight: 3
    },
    { arbitrary: terminal, weight: 1 }
  )

const audit: fc.Arbitrary<Fixtures.Entry> = fc.tuple(
  fc.constantFrom(...TENANTS),
  fc.integer({ min: 1, max: 3 }),
  fc.constantFrom("receipt.issued", "scope.denied")
)
  .map(([tenant, n, action]): Fixtures.Entry => ({
    address: { type: "audit", tenant, id: Fixtures.auditId(n) },
    at: Fixtures.at(300 + n),
    event: {
      _tag: "AuditRecorded",
      action,
      actor: "system",
      target: `t-${n}`,
      outcome: "allowed",
      detail: { n: String(n) }
    }
  }))

/** Interleaves per-run event lists, keeping each run's order, as `picks` choose; times grow with position. */
const interleave = (
  runs: ReadonlyArray<ReadonlyArray<Fixtures.Entry>>,
  picks: ReadonlyArray<number>
): ReadonlyArray<Fixtures.Entry> => {
  const queues = runs.map((r) => [...r])
  const out: Array<Fixtures.Entry> = []
  for (let k = 0; queues.some((q) => q.length > 0); k++) {
    const open = queues.filter((q) => q.length > 0)
    out.push(open[(picks[k % Math.max(1, picks.length)] ?? 0) % open.length]!.shift()!)
  }
  return out.map((e, i) => ({ ...e, at: e.address.type === "audit" ? e.at : Fixtures.at(20 + i) }))
}

const entriesOf = (addressIndex: number, events: ReadonlyArray<Event>): ReadonlyArray<Fixtures.Entry> =>
  events.map((event) => ({ address: ADDRESSES[addressIndex]!, at: Fixtures.at(0), event }))

/** Journals that runs actors write, interleaved across up to four runs of two tenants, with audit entries. */
export const wellFormed: fc.Arbitrary<ReadonlyArray<Fixtures.Entry>> = fc.uniqueArray(
  fc.nat({ max: ADDRESSES.length - 1 }),
  { minLength: 1, maxLength: 4 }
)
  .chain((indexes) =>
    fc.tuple(
      fc.tuple(...indexes.map((i) => wellFormedRun(ADDRESSES[i]!.id).map((events) => entriesOf(i, events)))),
      fc.array(audit, { maxLength: 3 }),
      fc.array(fc.nat(), { maxLength: 20 })
    )
  )
  .map(([runs, audits, picks]) => interleave([...runs, ...audits.map((a) => [a])], picks))

/** Run events in any order, of any run: what no actor writes, but the fold must still treat as it always did. */
export const anyOrder: fc.Arbitrary<ReadonlyArray<Fixtures.Entry>> = fc.array(
  fc.nat({ max: ADDRESSES.length - 1 }).chain((i) =>
    anyRunEvent(ADDRESSES[i]!.id).map((event) => entriesOf(i, [event])[0]!)
  ),
  { minLength: 1, maxLength: 24 }
).map((entries) => entries.map((e, i) => ({ ...e, at: Fixtures.at(20 + i) })))

export const journal = fc.oneof({ arbitrary: wellFormed, weight: 3 }, { arbitrary: anyOrder, weight: 1 })
