// The shared HTTP plumbing's pure parts: the kind an error is made with, and `Retry-After` read as a wait in
// either of its forms (delay seconds, HTTP-date), capped.
import { describe, expect, it } from "vitest"
import * as Wire from "./Wire.ts"

describe("Wire", () => {
  const now = Date.parse("2026-12-02T12:00:00Z")

  it("reads Retry-After as delay seconds or as an HTTP-date, capped, and ignores what it cannot read", () => {
    expect(Wire.parseRetryAfter("2", now)).toBe(2_000)
    expect(Wire.parseRetryAfter(" 0.5 ", now)).toBe(500)
    expect(Wire.parseRetryAfter("Wed, 02 Dec 2026 12:00:07 GMT", now)).toBe(7_000)
    // a date already past: try at once
    expect(Wire.parseRetryAfter("Wed, 02 Dec 2026 11:00:00 GMT", now)).toBe(0)
    expect(Wire.parseRetryAfter("86400", now)).toBe(Wire.MAX_RETRY_AFTER_MS)
    expect(Wire.parseRetryAfter("soon", now)).toBeUndefined()
    expect(Wire.parseRetryAfter("-3", now)).toBeUndefined()
    expect(Wire.parseRetryAfter(null, now)).toBeUndefined()
  })

  it("makes each error with its kind: from the status and retryability, or as the maker says", () => {
    const fail = Wire.failWith("p", "sk-secret")
    expect(fail("slow down", true, 429, { retryAfterMs: 2_000 })).toMatchObject({
      kind: "rate_limited",
      retryAfterMs: 2_000
    })
    expect(fail("boom", true, 503).kind).toBe("unavailable")
    expect(fail("reset", true).kind).toBe("unavailable")
    expect(fail("bad", false, 400).kind).toBe("refused")
    expect(fail("malformed", false).kind).toBe("refused")
    expect(fail("no answer within 5 ms", true, undefined, { kind: "timeout" }).kind).toBe("timeout")
    // scrubbing a per-request key keeps the kind and the wait
    const scrubbed = Wire.scrub(fail("echo sk-tenant", true, 429, { retryAfterMs: 1_000 }), "sk-tenant")
    expect([scrubbed.kind, scrubbed.retryAfterMs, scrubbed.reason]).toEqual(["rate_limited", 1_000, "echo [redacted]"])
  })
})
