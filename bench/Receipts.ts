// What receipts cost: receipts signed and verified per second (Ed25519 over canonical JSON, signed by node:crypto, ADR 0017), and the
// time to verify a 10,000-event journal beside the raw SHA-256 rate over the same bytes, measured in the same run.
import { createHash } from "node:crypto"
import sodium from "libsodium-wrappers"
import { Effect } from "effect"
import * as Fixture from "../actors/receipts/Fixture.ts"
import * as Keys from "../actors/receipts/Keys.ts"
import { unsignedOf } from "../actors/receipts/Receipts.ts"
import * as Verify from "../actors/receipts/Verify.ts"
import * as Canonical from "../schema/Canonical.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

export interface Result {
  readonly receiptEvents: number
  readonly sign: Stats.Summary
  /** The signature check alone. */
  readonly verifySignature: Stats.Summary
  /** Every check of a receipt against its journal (a typical run's). */
  readonly verifyReceipt: Stats.Summary
  readonly bigEvents: number
  readonly bigBytes: number
  /** Full verification of the 10,000-event journal (parse of the JSONL included). */
  readonly verifyBig: Stats.Summary
  /** The chain alone over the big journal's canonical lines, already serialised. */
  readonly chainRaw: Stats.Summary
  /** One SHA-256 over all the big journal's bytes: the physical limit. */
  readonly sha256Raw: Stats.Summary
}

const time = (n: number, f: () => void): Stats.Summary => {
  const samples: Array<number> = []
  const began = performance.now()
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    f()
    samples.push(performance.now() - t)
  }
  return Stats.summarize(samples, performance.now() - began)
}

export const run = (scale: number) =>
  Effect.gen(function*() {
    yield* Keys.ready
    const kp = sodium.crypto_sign_keypair()
    const key: Keys.SigningKey = { keyId: Verify.keyIdOf(kp.publicKey), secretKey: kp.privateKey }
    const published: Verify.PublicKey = {
      keyId: key.keyId,
      publicKey: Verify.toBase64Url(kp.publicKey),
      algorithm: "Ed25519",
      createdAt: ""
    }
    const issuedAt = new Date().toISOString()
    const n = Math.max(100, Math.round(5000 * scale))

    // a typical run: 5 model steps, 12 events
    const lines = Fixture.journal({ steps: 5 })
    const unsigned = unsignedOf(Fixture.TENANT, Fixture.RUN_ID, lines, key.keyId, issuedAt)
    time(Math.round(n / 10), () => Keys.sign(key, unsigned))
    const sign = time(n, () => Keys.sign(key, unsigned))
    const receipt = Keys.sign(key, unsigned)
    const raw = Verify.fromBase64Url(published.publicKey)
    const bytes = Verify.signingBytes(receipt)
    const verifySignature = time(n, () => Verify.verifyEd25519(raw, bytes, receipt.signature))
    const verifyReceipt = time(n, () => {
      if (!Verify.verify(receipt, lines, [published]).valid) throw new Error("receipt did not verify")
    })

    // 10,000 events: RunStarted, 4,999 model steps, RunSucceeded
    const big = Fixture.journal({ steps: 4999, stride: 7 })
    const bigReceipt = Keys.sign(key, unsignedOf(Fixture.TENANT, Fixture.RUN_ID, big, key.keyId, issuedAt))
    const jsonl = Verify.toJsonl(big)
    const serialised = big.map((l) => Buffer.from(Canonical.stringify(l), "utf8"))
    const all = Buffer.concat(serialised)
    const rounds = Math.max(3, Math.round(10 * scale))
    const verifyBig = time(rounds, () => {
      if (!Verify.verify(bigReceipt, Verify.parseJsonl(jsonl), [published]).valid)
        throw new Error("big receipt did not verify")
    })
    const chainRaw = time(rounds, () => {
      let h: Buffer = Verify.GENESIS
      for (const b of serialised) h = createHash("sha256").update(h).update(b).digest()
    })
    const sha256Raw = time(rounds, () => createHash("sha256").update(all).digest())
    return {
      receiptEvents: lines.length,
      sign,
      verifySignature,
      verifyReceipt,
      bigEvents: big.length,
      bigBytes: all.length,
      verifyBig,
      chainRaw,
      sha256Raw
    } satisfies Result
  })

const ms = (x: number) => x < 1 ? `${(x * 1000).toFixed(1)} µs` : `${x.toFixed(2)} ms`
const rate = (x: number) => `${Math.round(x).toLocaleString("en-US")}/s`

export const render = (r: Result): string =>
  [
    `Receipts (bench/Receipts.ts): Ed25519 over canonical JSON, SHA-256 chain over ${r.receiptEvents}-event and ${r.bigEvents}-event journals`,
    table(["operation", "rate", "median", "p99"], [
      ["sign a receipt (node:crypto)", rate(r.sign.perSecond), ms(r.sign.medianMs), ms(r.sign.p99Ms)],
      [
        "verify its signature (node:crypto)",
        rate(r.verifySignature.perSecond),
        ms(r.verifySignature.medianMs),
        ms(r.verifySignature.p99Ms)
      ],
      [
        `verify a receipt, all checks (${r.receiptEvents} events)`,
        rate(r.verifyReceipt.perSecond),
        ms(r.verifyReceipt.medianMs),
        ms(r.verifyReceipt.p99Ms)
      ]
    ]),
    "",
    table([
      `${r.bigEvents.toLocaleString("en-US")}-event journal (${(r.bigBytes / 1e6).toFixed(1)} MB canonical)`,
      "median",
      "MB/s",
      "vs raw SHA-256"
    ], [
      [
        "verify: parse JSONL, canonicalise, chain, all checks",
        ms(r.verifyBig.medianMs),
        (r.bigBytes / 1e3 / r.verifyBig.medianMs).toFixed(0),
        `${(r.verifyBig.medianMs / r.sha256Raw.medianMs).toFixed(1)}x`
      ],
      [
        "chain alone over serialised lines",
        ms(r.chainRaw.medianMs),
        (r.bigBytes / 1e3 / r.chainRaw.medianMs).toFixed(0),
        `${(r.chainRaw.medianMs / r.sha256Raw.medianMs).toFixed(1)}x`
      ],
      [
        "raw SHA-256 over the same bytes (limit)",
        ms(r.sha256Raw.medianMs),
        (r.bigBytes / 1e3 / r.sha256Raw.medianMs).toFixed(0),
        "1.0x"
      ]
    ])
  ].join("\n")

export const json = (r: Result) => JSON.stringify({ bench: "receipts", ...r })
