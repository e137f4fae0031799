// The cockpit's in-browser receipt checks (ui/src/receipt.ts, WebCrypto) give the very verdict of schema/Receipt.ts
// (node:crypto), check for check and word for word, on a valid receipt and on any tampering of it: a changed, dropped
// or moved event, a changed receipt field or signature, a key that is not the signer's.
import { generateKeyPairSync, sign } from "node:crypto"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Receipt from "../schema/Receipt.ts"
import * as UiReceipt from "../ui/src/receipt.ts"

const keyPair = () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519")
  const raw = Receipt.fromBase64Url(publicKey.export({ format: "jwk" }).x!)
  const published: Receipt.PublicKey = {
    keyId: Receipt.keyIdOf(raw),
    publicKey: Receipt.toBase64Url(raw),
    algorithm: "Ed25519",
    createdAt: "2026-12-01T00:00:00.000Z"
  }
  return { published, privateKey }
}
const signer = keyPair()
const stranger = keyPair()

const RUN = "run_01m8x8kd20nek1wqgredsz9wqm"
const envelope = (type: string, payload: Record<string, unknown>, i: number) => ({
  eventId: `evt_${i}`,
  type,
  version: 1,
  tenant: "dev",
  actor: { type: "run", tenant: "dev", id: RUN },
  causationId: null,
  correlationId: RUN,
  traceparent: null,
  at: `2026-12-03T06:00:0${i % 10}.000Z`,
  idempotencyKey: `${RUN}:${i}`,
  payload
})

/** A finished run of `steps` model steps: RunStarted, StepStarted/StepCompleted pairs, RunSucceeded. */
const journalOf = (steps: ReadonlyArray<{ tokensIn: number; tokensOut: number; costUsd: number }>) => {
  const events = [
    envelope("RunStarted", { runId: RUN, agentName: "calc", agentDigest: "sha256:ab", input: "2+2" }, 0),
    ...steps.flatMap((s, i) => [
      envelope("StepStarted", { stepId: `turn-${i}`, attempt: 1 }, 2 * i + 1),
      envelope("StepCompleted", { stepId: `turn-${i}`, attempt: 1, ...s, result: { _tag: "model" } }, 2 * i + 2)
    ]),
    envelope("RunSucceeded", { output: "4" }, 2 * steps.length + 1)
  ]
  return events.map((e, i): Receipt.Line => ({ n: i + 1, seq: 10 + 3 * i, envelope: e }))
}

const receiptOf = (lines: ReadonlyArray<Receipt.Line>): Receipt.Receipt => {
  const totals = Receipt.totalsOf(lines)
  const unsigned: Receipt.Unsigned = {
    version: 1,
    runId: RUN,
    tenantId: "dev",
    agent: "calc",
    agentVersionDigest: "sha256:ab",
    status: "succeeded",
    partial: false,
    eventCount: lines.length,
    firstSeq: lines[0]!.seq,
    lastSeq: lines[lines.length - 1]!.seq,
    journalDigest: Receipt.digest(lines),
    ...totals,
    issuedAt: "2026-12-03T06:00:09.000Z",
    keyId: signer.published.keyId
  }
  const signature = Receipt.toBase64Url(sign(null, Receipt.signingBytes(unsigned), signer.privateKey))
  return { ...unsigned, signature }
}

const step = fc.record({
  tokensIn: fc.nat(5000),
  tokensOut: fc.nat(5000),
  costUsd: fc.double({ min: 0, max: 1, noNaN: true })
})

type Case = { receipt: Receipt.Receipt; lines: ReadonlyArray<Receipt.Line>; keys: ReadonlyArray<Receipt.PublicKey> }

/** One tampering of a valid case, chosen by `kind` at `at`. */
const tamper = (c: Case, kind: number, at: number): Case => {
  const i = at % c.lines.length
  const lines = [...c.lines]
  switch (kind) {
    case 0:
      return c
    case 1:
      lines[i] = { ...lines[i]!, envelope: { ...lines[i]!.envelope, at: "2026-12-03T07:00:00.000Z" } }
      return { ...c, lines }
    case 2:
      lines.splice(i, 1)
      return { ...c, lines }
    case 3:
      if (lines.length > 1) [lines[0], lines[lines.length - 1]] = [lines[lines.length - 1]!, lines[0]!]
      return { ...c, lines }
    case 4:
      lines[i] = { ...lines[i]!, seq: lines[i]!.seq + 1000 }
      return { ...c, lines }
    case 5:
      return { ...c, receipt: { ...c.receipt, costUsd: c.receipt.costUsd + 1 } }
    case 6:
      return {
        ...c,
        receipt: { ...c.receipt, signature: c.receipt.signature.replace(/^./, (x) => (x === "A" ? "B" : "A")) }
      }
    case 7:
      return { ...c, keys: [stranger.published] }
    case 8:
      lines[i] = { ...lines[i]!, envelope: { ...lines[i]!.envelope, tenant: "other" } }
      return { ...c, lines }
    default:
      return { ...c, lines: lines.slice(0, -1) } // the terminal event dropped
  }
}

describe("the cockpit's receipt checks", () => {
  it("pass a valid receipt with every named check, as the server's do", async () => {
    const lines = journalOf([{ tokensIn: 7, tokensOut: 9, costUsd: 0.0012 }])
    const receipt = receiptOf(lines)
    const verdict = await UiReceipt.verify(receipt, lines, [signer.published])
    expect(verdict.valid).toBe(true)
    expect(verdict).toEqual(Receipt.verify(receipt, lines, [signer.published]))
    expect(await UiReceipt.digest(lines)).toBe(Receipt.digest(lines))
    expect(UiReceipt.parseJsonl(Receipt.toJsonl(lines))).toEqual(lines)
  })

  it("give schema/Receipt.ts's verdict on any tampering", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 0, maxLength: 4 }),
        fc.nat(9),
        fc.nat(100),
        async (steps, kind, at) => {
          const lines = journalOf(steps)
          const c = tamper({ receipt: receiptOf(lines), lines, keys: [signer.published] }, kind, at)
          const expected = Receipt.verify(c.receipt, c.lines, c.keys)
          expect(await UiReceipt.verify(c.receipt, c.lines, c.keys)).toEqual(expected)
          if (kind !== 0) expect(expected.valid).toBe(false)
        }
      ),
      { numRuns: 200 }
    )
  })

  it("count every step of a StepsCompleted (ADR 0067) in the totals, as the server does", async () => {
    const model = journalOf([{ tokensIn: 7, tokensOut: 9, costUsd: 0.0012 }])
    const local = (i: number, tokensIn: number) => ({
      stepId: `turn-0.tool-${i}`,
      attempt: 1,
      result: { _tag: "tool", callId: `c${i}`, output: String(i) },
      tokensIn,
      tokensOut: 1,
      costUsd: 0.0001,
      durationMs: 0,
      request: { _tag: "tool", call: { id: `c${i}`, name: "calculator", arguments: {} } }
    })
    const batch = envelope("StepsCompleted", { steps: [local(0, 2), local(1, 3)] }, 3)
    const lines = [...model.slice(0, -1), { n: 0, seq: 0, envelope: batch }, model[model.length - 1]!]
      .map((l, i): Receipt.Line => ({ ...l, n: i + 1, seq: 10 + 3 * i }))
    expect(Receipt.totalsOf(lines)).toEqual({ tokensIn: 12, tokensOut: 11, costUsd: 0.0012 + 0.0001 + 0.0001 })
    const receipt = receiptOf(lines)
    const verdict = await UiReceipt.verify(receipt, lines, [signer.published])
    expect(verdict.valid).toBe(true)
    expect(verdict).toEqual(Receipt.verify(receipt, lines, [signer.published]))
    // a changed step inside the one event breaks the chain and the totals alike
    const changed = { ...batch, payload: { steps: [local(0, 2), local(1, 30)] } }
    const tampered = lines.map((l) => (l.envelope === batch ? { ...l, envelope: changed } : l))
    const refused = Receipt.verify(receipt, tampered, [signer.published])
    expect(refused.valid).toBe(false)
    expect(await UiReceipt.verify(receipt, tampered, [signer.published])).toEqual(refused)
  })
})
