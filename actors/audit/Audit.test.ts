// The audit recorder without a bus: what it journals (redacted, bounded), that it never fails its caller, and
// that the flood of entries without a tenant is capped per host.
import { describe, expect, it } from "vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Journal } from "../../bus/Journal.ts"
import * as Envelope from "../../schema/Envelope.ts"
import { AUDIT_ACTIONS } from "../../schema/Audit.ts"
import { BusUnavailable } from "../../schema/Errors.ts"
import { Ids } from "../kernel/Ids.ts"
import {
  Audit,
  type AuditAction,
  type AuditEntry,
  REDACTED,
  redact,
  UNKNOWN_PER_SECOND,
  UNKNOWN_TENANT
} from "./Audit.ts"

const entry = (over: Partial<AuditEntry> = {}): AuditEntry => ({
  tenant: "acme",
  action: "api_key.created",
  actor: "key:key_01jd0000000000000000000001",
  target: "key_01jd0000000000000000000002",
  outcome: "allowed",
  detail: {},
  ...over
})

/** A journal that keeps what is appended, or fails every append. */
const journalOf = (
  appended: Array<{ address: Envelope.ActorAddress; envelope: Envelope.Envelope; expected: number }>,
  fail = false
) =>
  Layer.succeed(
    Journal,
    Journal.of({
      append: (address, envelopes, expected) =>
        fail
          ? Effect.fail(new BusUnavailable({ operation: "append", reason: "down" }))
          : Effect.sync(() => {
            for (const envelope of envelopes) appended.push({ address, envelope, expected })
            return {
              lastSeq: appended.length,
              seqs: [appended.length],
              duplicates: 0,
              texts: envelopes.map(Envelope.encodeJson)
            }
          }),
      read: () => Effect.die("unused"),
      readFrom: () => Effect.die("unused"),
      lastSeq: () => Effect.die("unused"),
      exists: () => Effect.die("unused"),
      follow: () => Effect.die("unused") as never
    })
  )

const recordAll = (entries: ReadonlyArray<AuditEntry>, fail = false) => {
  const appended: Array<{ address: Envelope.ActorAddress; envelope: Envelope.Envelope; expected: number }> = []
  return Effect.gen(function*() {
    const audit = yield* Audit
    for (const e of entries) yield* audit.record(e)
    return appended
  }).pipe(
    Effect.provide(Audit.layer.pipe(Layer.provide(Layer.merge(journalOf(appended, fail), Ids.layerTest)))),
    // time stands still: the per-second cap is tested without a second boundary in the middle
    Effect.provide(TestClock.layer()),
    Effect.runPromise
  )
}

describe("Audit", () => {
  it("names every action of the contract in the API's list", () => {
    // the list's every entry is an AuditAction (the type checks it), none twice, and as many as the contract has
    const contract: ReadonlyArray<AuditAction> = AUDIT_ACTIONS
    expect(new Set(contract).size).toBe(contract.length)
    expect(contract.length).toBe(24)
  })

  it("journals each entry on its own subject, expecting it empty, keyed by its id", async () => {
    const appended = await recordAll([
      entry(),
      entry({ action: "receipt.issued", actor: "system", target: "run_01jd0000000000000000000001" })
    ])
    expect(appended).toHaveLength(2)
    const [a, b] = appended
    expect(a!.address.type).toBe("audit")
    expect(a!.address.tenant).toBe("acme")
    expect(a!.address.id).toMatch(/^aud_[0-9a-z]{26}$/)
    expect(a!.address.id).not.toBe(b!.address.id)
    expect(a!.expected).toBe(0)
    expect(a!.envelope.idempotencyKey).toBe(a!.address.id)
    expect(a!.envelope.type).toBe("AuditRecorded")
    expect(b!.envelope.payload).toEqual({
      action: "receipt.issued",
      actor: "system",
      target: "run_01jd0000000000000000000001",
      outcome: "allowed",
      detail: {}
    })
  })

  it("redacts token-looking values and secret-named details", () => {
    const r = redact(entry({
      target: "GET /v1/lt_abcdefghijklmnopqrstuvwxyz012345",
      detail: {
        reason: "bad key lk_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg",
        header: "Bearer something",
        provider: "sk-ant-0123456789abcdefghij",
        apiKey: "plain",
        token: "x",
        missingScope: "runs:write",
        run: "run_01jd0000000000000000000001"
      }
    }))
    expect(r.target).toBe(REDACTED)
    expect(r.detail).toEqual({
      reason: REDACTED,
      header: REDACTED,
      provider: REDACTED,
      apiKey: REDACTED,
      token: REDACTED,
      missingScope: "runs:write",
      run: "run_01jd0000000000000000000001"
    })
    // ids and routes stay readable
    expect(redact(entry()).actor).toBe("key:key_01jd0000000000000000000001")
    expect(redact(entry({ target: "POST /v1/api-keys" })).target).toBe("POST /v1/api-keys")
  })

  it("journals the redacted entry, never the secret", async () => {
    const appended = await recordAll([entry({ detail: { leaked: "lt_test_owner_token" } })])
    expect(JSON.stringify(appended[0]!.envelope)).not.toContain("lt_test_owner_token")
    expect(appended[0]!.envelope.payload).toMatchObject({ detail: { leaked: REDACTED } })
  })

  it("never fails its caller: a journal that is down is logged", async () => {
    await expect(recordAll([entry()], true)).resolves.toEqual([])
  })

  it("caps entries without a tenant per second, and refuses a tenant that cannot be a subject token", async () => {
    const flood = Array.from(
      { length: UNKNOWN_PER_SECOND + 25 },
      () => entry({ tenant: UNKNOWN_TENANT, action: "auth.failed", actor: "anonymous" })
    )
    const appended = await recordAll([...flood, entry(), entry({ tenant: "a.b" }), entry({ tenant: "x>" })])
    expect(appended.filter((a) => a.address.tenant === UNKNOWN_TENANT)).toHaveLength(UNKNOWN_PER_SECOND)
    expect(appended.filter((a) => a.address.tenant === "acme")).toHaveLength(1)
    expect(appended).toHaveLength(UNKNOWN_PER_SECOND + 1)
  })
})
