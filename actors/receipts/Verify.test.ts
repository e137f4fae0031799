import sodium from "libsodium-wrappers"
import { beforeAll, describe, expect, it } from "vitest"
import * as Canonical from "../../schema/Canonical.ts"
import { TERMINAL_WORKLOAD_EVENTS } from "../../schema/Workload.ts"
import { TERMINAL_RUN_EVENTS } from "../../schema/Events.ts"
import * as Fixture from "./Fixture.ts"
import * as Keys from "./Keys.ts"
import { unsignedOf } from "./Receipts.ts"
import * as Verify from "./Verify.ts"

interface KeyPair {
  readonly key: Keys.SigningKey
  readonly published: Verify.PublicKey
}

let alice: KeyPair
let bob: KeyPair

const keyPair = (createdAt: string): KeyPair => {
  const kp = sodium.crypto_sign_keypair()
  const keyId = Verify.keyIdOf(kp.publicKey)
  return {
    key: { keyId, secretKey: kp.privateKey },
    published: { keyId, publicKey: Verify.toBase64Url(kp.publicKey), algorithm: "Ed25519", createdAt }
  }
}

beforeAll(async () => {
  await sodium.ready
  alice = keyPair("2026-11-01T00:00:00.000Z")
  bob = keyPair("2026-11-02T00:00:00.000Z")
})

const issue = (lines: ReadonlyArray<Verify.Line>, by: KeyPair = alice) =>
  Keys.sign(by.key, unsignedOf(Fixture.TENANT, Fixture.RUN_ID, lines, by.key.keyId, "2026-11-21T12:00:01.000Z"))

const failed = (verdict: Verify.Verdict) => verdict.checks.filter((c) => !c.ok).map((c) => c.name)

/** A deep copy of the lines with `f` applied to it. */
const tampered = (lines: ReadonlyArray<Verify.Line>, f: (copy: Array<Verify.Line>) => void) => {
  const copy = JSON.parse(JSON.stringify(lines)) as Array<Verify.Line>
  f(copy)
  return copy
}

describe("receipts", () => {
  it("a receipt verifies against its journal and key, every check passing", () => {
    const lines = Fixture.journal({ steps: 3 })
    const receipt = issue(lines)
    const verdict = Verify.verify(receipt, lines, [alice.published])
    expect(verdict.checks.filter((c) => !c.ok)).toEqual([])
    expect(verdict.valid).toBe(true)
    expect(verdict.checks.map((c) => c.name)).toEqual([
      "signature",
      "run-id",
      "membership",
      "event-count",
      "order",
      "seq-range",
      "journal-digest",
      "status",
      "agent",
      "totals"
    ])
    expect(receipt).toMatchObject({
      status: "succeeded",
      partial: false,
      eventCount: 8,
      firstSeq: 10,
      lastSeq: 31,
      tokensIn: 2436,
      tokensOut: 69
    })
  })

  it("the digest is the SHA-256 chain over canonical lines, from 32 zero bytes", async () => {
    const lines = Fixture.journal()
    const { createHash } = await import("node:crypto")
    let h = Buffer.alloc(32)
    for (const l of lines) h = createHash("sha256").update(h).update(Canonical.stringify(l), "utf8").digest()
    expect(Verify.digest(lines)).toBe(h.toString("hex"))
    expect(Verify.chain(lines).at(-1)).toBe(h.toString("hex"))
    expect(Verify.digest([])).toBe("0".repeat(64))
  })

  it("the JSONL export round-trips to the same digest, and a pretty-printed journal still verifies", () => {
    const lines = Fixture.journal({ steps: 2 })
    const receipt = issue(lines)
    expect(Verify.verify(receipt, Verify.parseJsonl(Verify.toJsonl(lines)), [alice.published]).valid).toBe(true)
    const reordered = lines.map((l) => JSON.stringify({ seq: l.seq, envelope: l.envelope, n: l.n })).join("\n")
    expect(Verify.verify(receipt, Verify.parseJsonl(reordered), [alice.published]).valid).toBe(true)
  })

  it("libsodium signatures verify with node:crypto and the signature covers the canonical unsigned receipt", () => {
    const receipt = issue(Fixture.journal())
    const raw = Verify.fromBase64Url(alice.published.publicKey)
    expect(
      sodium.crypto_sign_verify_detached(Verify.fromBase64Url(receipt.signature), Verify.signingBytes(receipt), raw)
    ).toBe(true)
    expect(Verify.verifyEd25519(raw, Verify.signingBytes(receipt), receipt.signature)).toBe(true)
    expect(new TextDecoder().decode(Verify.signingBytes(receipt))).not.toContain("signature")
  })

  it("changing one byte of any event breaks the digest", () => {
    const lines = Fixture.journal({ steps: 2 })
    const receipt = issue(lines)
    for (let i = 0; i < lines.length; i++) {
      const copy = tampered(lines, (c) => {
        c[i]!.envelope["at"] = String(c[i]!.envelope["at"]).replace(/Z$/, "Y")
      })
      expect(failed(Verify.verify(receipt, copy, [alice.published]))).toEqual(["journal-digest"])
    }
    const cheaper = tampered(lines, (c) => {
      ;(c[2]!.envelope["payload"] as Record<string, unknown>)["costUsd"] = 0.000411
    })
    expect(failed(Verify.verify(receipt, cheaper, [alice.published]))).toEqual(["journal-digest", "totals"])
  })

  it("dropping an event is caught by the count, the order and the digest", () => {
    const lines = Fixture.journal({ steps: 2 })
    const receipt = issue(lines)
    const dropped = tampered(lines, (c) => c.splice(2, 1))
    // the dropped event was a completed step: its tokens and cost are missing from the totals too
    expect(failed(Verify.verify(receipt, dropped, [alice.published]))).toEqual([
      "event-count",
      "order",
      "journal-digest",
      "totals"
    ])
    const droppedLast = lines.slice(0, -1)
    expect(failed(Verify.verify(receipt, droppedLast, [alice.published]))).toEqual([
      "event-count",
      "seq-range",
      "journal-digest",
      "status"
    ])
  })

  it("swapping two events is caught by the order check and the digest", () => {
    const lines = Fixture.journal({ steps: 2 })
    const receipt = issue(lines)
    const swapped = tampered(lines, (c) => {
      const t = c[2]!
      c[2] = c[3]!
      c[3] = t
    })
    expect(failed(Verify.verify(receipt, swapped, [alice.published]))).toEqual(["order", "journal-digest"])
    // renumbered to look contiguous, the sequences still go backwards
    const renumbered = tampered(swapped, (c) => c.forEach((l, i) => ((l as { n: number }).n = i + 1)))
    expect(failed(Verify.verify(receipt, renumbered, [alice.published]))).toEqual(["order", "journal-digest"])
  })

  it("another run's receipt does not verify this journal", () => {
    const lines = Fixture.journal()
    const other = Fixture.journal({ runId: "run_01jd0000000000000000000099", firstSeq: 11 })
    const otherReceipt = Keys.sign(
      alice.key,
      unsignedOf(Fixture.TENANT, "run_01jd0000000000000000000099", other, alice.key.keyId, "2026-11-21T12:00:01.000Z")
    )
    expect(Verify.verify(otherReceipt, other, [alice.published]).valid).toBe(true)
    expect(failed(Verify.verify(otherReceipt, lines, [alice.published]))).toEqual([
      "run-id",
      "membership",
      "seq-range",
      "journal-digest"
    ])
  })

  it("an event of another run or tenant spliced in fails membership", () => {
    const lines = Fixture.journal()
    const receipt = issue(lines)
    const foreign = tampered(lines, (c) => {
      ;(c[1]!.envelope["actor"] as Record<string, unknown>)["tenant"] = "other"
    })
    expect(failed(Verify.verify(receipt, foreign, [alice.published]))).toEqual(["membership", "journal-digest"])
  })

  it("a tampered receipt field fails the signature (and the check about that field)", () => {
    const lines = Fixture.journal()
    const receipt = issue(lines)
    expect(failed(Verify.verify({ ...receipt, costUsd: 0 }, lines, [alice.published]))).toEqual(["signature", "totals"])
    expect(failed(Verify.verify({ ...receipt, status: "failed" }, lines, [alice.published]))).toEqual([
      "signature",
      "status"
    ])
    expect(failed(Verify.verify({ ...receipt, issuedAt: "2020-01-01T00:00:00.000Z" }, lines, [alice.published])))
      .toEqual(["signature"])
    // re-hashing a tampered journal into the receipt needs a new signature
    const changed = tampered(lines, (c) => (c[1]!.envelope["at"] = "2026-01-01T00:00:00.000Z"))
    expect(failed(Verify.verify({ ...receipt, journalDigest: Verify.digest(changed) }, changed, [alice.published])))
      .toEqual(["signature"])
  })

  it("a wrong key fails the signature, naming the keyId", () => {
    const lines = Fixture.journal()
    const receipt = issue(lines)
    const verdict = Verify.verify(receipt, lines, [bob.published])
    expect(failed(verdict)).toEqual(["signature"])
    expect(verdict.checks[0]!.message).toContain(receipt.keyId)
    // bob's key under alice's keyId: the signature does not verify
    const impostor = { ...bob.published, keyId: alice.key.keyId }
    expect(failed(Verify.verify(receipt, lines, [impostor]))).toEqual(["signature"])
    // signed by bob but claiming alice's keyId
    const forged = Keys.sign(bob.key, {
      ...unsignedOf(Fixture.TENANT, Fixture.RUN_ID, lines, alice.key.keyId, "2026-11-21T12:00:01.000Z")
    })
    expect(failed(Verify.verify(forged, lines, [alice.published, bob.published]))).toEqual(["signature"])
  })

  it("a receipt signed by a rotated-out key still verifies, and says so", () => {
    const lines = Fixture.journal()
    const receipt = issue(lines, alice)
    const retired = { ...alice.published, retiredAt: "2026-11-02T00:00:00.000Z" }
    const verdict = Verify.verify(receipt, lines, [retired, bob.published])
    expect(verdict.valid).toBe(true)
    expect(verdict.checks[0]!.message).toContain("retired")
  })

  it("a partial receipt covers a running run; claiming it finished fails the status check", () => {
    const lines = Fixture.journal({ steps: 1, terminal: false })
    const receipt = issue(lines)
    expect(receipt).toMatchObject({ status: "running", partial: true, eventCount: 3 })
    expect(Verify.verify(receipt, lines, [alice.published]).valid).toBe(true)
    // the same partial receipt against the journal once finished: one more event than it covers
    expect(Verify.verify(receipt, Fixture.journal({ steps: 1 }), [alice.published]).valid).toBe(false)
    const claimed = Keys.sign(alice.key, {
      ...unsignedOf(Fixture.TENANT, Fixture.RUN_ID, lines, alice.key.keyId, "x"),
      status: "succeeded",
      partial: false
    })
    expect(failed(Verify.verify(claimed, lines, [alice.published]))).toEqual(["status"])
  })

  it("keys parse from hex, base64, base64url and the well-known document", () => {
    const raw = Verify.fromBase64Url(alice.published.publicKey)
    const forms = [
      Buffer.from(raw).toString("hex"),
      Buffer.from(raw).toString("base64"),
      alice.published.publicKey,
      JSON.stringify({ keys: [alice.published] })
    ]
    for (const f of forms) expect(Verify.parseKeys(f).map((k) => k.keyId)).toEqual([alice.key.keyId])
    expect(() => Verify.parseKeys("nope")).toThrow(Verify.BadInput)
    expect(() => Verify.parseReceiptText("{")).toThrow(Verify.BadInput)
    expect(() => Verify.parseReceipt({ runId: "x" })).toThrow(/not a Lantern receipt/)
    expect(() => Verify.parseJsonl("{\"n\":1}")).toThrow(/journal line 1/)
  })

  it("sealed keys open only under their KEK and keyId", () => {
    const kek = sodium.randombytes_buf(32)
    const kp = sodium.crypto_sign_keypair()
    const stored = Keys.seal(kek, kp, "2026-11-21T00:00:00.000Z")
    const run = <A, E>(e: import("effect").Effect.Effect<A, E>) =>
      import("effect").then(({ Effect }) => Effect.runPromise(Effect.result(e)))
    return Promise.all([
      run(Keys.open(kek, stored)).then((r) =>
        expect(r._tag === "Success" && Buffer.from(r.success.secretKey).equals(Buffer.from(kp.privateKey))).toBe(true)
      ),
      run(Keys.open(sodium.randombytes_buf(32), stored)).then((r) =>
        expect(r._tag === "Failure" && r.failure.reason).toMatch(/sealed under KEK/)
      ),
      run(Keys.open(kek, { ...stored, keyId: "0000000000000000" })).then((r) => expect(r._tag).toBe("Failure"))
    ])
  })

  it("reproduces the worked example of docs/receipts.md exactly", () => {
    const kp = sodium.crypto_sign_seed_keypair(new Uint8Array(32).map((_, i) => i + 1))
    const keyId = Verify.keyIdOf(kp.publicKey)
    expect(keyId).toBe("65b60673d6ed884b")
    expect(Verify.toBase64Url(kp.publicKey)).toBe("ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ")
    const lines = Fixture.journal({ steps: 1 })
    expect(Verify.chain(lines)).toEqual([
      "f3eb9a0b223965739dbd3abb9e0e10b34d373ddcd44d49da598e93b959f0117a",
      "b3ddc58659620197c54c5a9ad2656f186b315029203c6a061983a15c48a0fa63",
      "b9db6a75fc68fe57ed353c282d047d7f31ecddb605f11064d3809cbe619948fd",
      "2a99795c1898708a7a6953f36c901690c989c274e0d5c930c24cc7c779ea562a"
    ])
    const receipt = Keys.sign(
      { keyId, secretKey: kp.privateKey },
      unsignedOf(Fixture.TENANT, Fixture.RUN_ID, lines, keyId, "2026-11-21T12:00:01.000Z")
    )
    expect(receipt.signature).toBe(
      "z472RnOI5LxU49VOLRu5eqzx-lsdCanwnN3mQNZIFtv_Lzm_UJzOurLV1I9ht_48C9Y6nwrwKMHrJ_PcKbpMDw"
    )
  })
})

describe("the pure module", () => {
  it("knows the same terminal events as the run's events", () => {
    expect(new Set(Verify.TERMINAL_STATUS.keys())).toEqual(TERMINAL_RUN_EVENTS)
  })
  it("knows the same terminal events as the workload's events", () => {
    expect(Verify.WORKLOAD_TERMINAL_EVENTS).toEqual(TERMINAL_WORKLOAD_EVENTS)
  })
})
