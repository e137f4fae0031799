// The envelope stamp the actor shell and the audit recorder share: ids, time, trace, origin and the keys that
// make a re-sent append a duplicate.
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import type { ActorAddress } from "../../schema/Envelope.ts"
import type { Event } from "../../schema/Events.ts"
import * as Envelopes from "./Envelopes.ts"
import { Ids } from "./Ids.ts"

const address: ActorAddress = { type: "run", tenant: "acme", id: "run_1" }
const canceled = (reason: string): Event => ({ _tag: "RunCanceled", reason, by: "token:dev" })
const origin = { correlationId: "run_1", causationId: "evt_0", idempotencyKey: "run_1:cancel" }

const stamp = (events: ReadonlyArray<Event>, span?: string) => {
  const made = Envelopes.make(address, events, origin)
  return (span === undefined ? made : Effect.withSpan(made, span)).pipe(
    Effect.provide(Ids.layerTest),
    Effect.provide(TestClock.layer()),
    Effect.runSync
  )
}

describe("Envelopes.make", () => {
  it("given one event, then its envelope carries the origin, the actor, the current version and the key as is", () => {
    const [envelope, ...rest] = stamp([canceled("no longer needed")])
    expect(rest).toEqual([])
    expect(envelope).toMatchObject({
      type: "RunCanceled",
      version: 1,
      tenant: "acme",
      actor: address,
      causationId: "evt_0",
      correlationId: "run_1",
      traceparent: null,
      at: new Date(0).toISOString(),
      idempotencyKey: "run_1:cancel",
      payload: { reason: "no longer needed", by: "token:dev" }
    })
    expect(envelope!.eventId).toMatch(/^evt_[0-9a-z]{26}$/)
  })

  it("given several events, then each gets its own id and the key suffixed with its index", () => {
    const envelopes = stamp([canceled("a"), canceled("b")])
    expect(envelopes.map((e) => e.idempotencyKey)).toEqual(["run_1:cancel#0", "run_1:cancel#1"])
    expect(new Set(envelopes.map((e) => e.eventId)).size).toBe(2)
  })

  it("given a current span, then every envelope names it as its traceparent", () => {
    const envelopes = stamp([canceled("a"), canceled("b")], "test")
    expect(envelopes[0]!.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
    expect(envelopes[1]!.traceparent).toBe(envelopes[0]!.traceparent)
  })
})
