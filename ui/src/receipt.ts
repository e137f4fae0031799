// A receipt verified in the browser: schema/Receipt.ts's checks, one for one and with the same names and messages,
// over WebCrypto (Ed25519, SHA-256) instead of node:crypto, which a page does not have. tests/cockpit-verify.test.ts
// holds the two to the same verdict on the same input, tampered or not.
import * as Canonical from "../../schema/Canonical.ts"
import * as Completions from "../../schema/Completions.ts"
import type { Check, Line, PublicKey, Receipt, RunStatus, Verdict } from "../../schema/Receipt.ts"

export class BadInput extends Error {
  readonly _tag = "BadInput"
}

const TERMINAL_STATUS: ReadonlyMap<string, RunStatus> = new Map([
  ["RunSucceeded", "succeeded"],
  ["RunFailed", "failed"],
  ["RunCanceled", "canceled"]
])

const encoder = new TextEncoder()

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

const fromBase64Url = (text: string): Uint8Array<ArrayBuffer> => {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "")
  try {
    return Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0))
  } catch {
    return new Uint8Array(0)
  }
}

const sha256 = async (...parts: ReadonlyArray<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> => {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    all.set(p, at)
    at += p.length
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all))
}

/** keyId: the first 16 hex characters of SHA-256 of the raw 32-byte public key. */
export const keyIdOf = async (publicKey: Uint8Array): Promise<string> => hex(await sha256(publicKey)).slice(0, 16)

/** h_N of the chain h_i = SHA-256(h_{i-1} || canonical(line_i)), h_0 = 32 zero bytes, in lowercase hex. */
export const digest = async (lines: ReadonlyArray<Line>): Promise<string> => {
  let h: Uint8Array = new Uint8Array(32)
  for (const line of lines) h = await sha256(h, encoder.encode(Canonical.stringify(line)))
  return hex(h)
}

const signingBytes = (receipt: Receipt): Uint8Array<ArrayBuffer> => {
  const { signature: _, ...unsigned } = receipt
  return encoder.encode(Canonical.stringify(unsigned))
}

const verifyEd25519 = async (
  publicKey: Uint8Array<ArrayBuffer>,
  message: Uint8Array<ArrayBuffer>,
  signature: string
): Promise<boolean> => {
  const sig = fromBase64Url(signature)
  if (sig.length !== 64 || publicKey.length !== 32) return false
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"])
    return await crypto.subtle.verify({ name: "Ed25519" }, key, sig, message)
  } catch {
    return false
  }
}

// ---- input ----

const parseJson = (text: string, what: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new BadInput(`${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
}

const isLine = (v: unknown): v is Line =>
  v !== null && typeof v === "object" && !Array.isArray(v) && Number.isInteger((v as Line).n) &&
  Number.isInteger((v as Line).seq) &&
  (v as Line).envelope !== null && typeof (v as Line).envelope === "object" && !Array.isArray((v as Line).envelope)

/** A JSONL journal export; blank lines are ignored. */
export const parseJsonl = (text: string): ReadonlyArray<Line> =>
  text.split("\n").flatMap((raw, i) => raw.trim() === "" ? [] : [parseJson(raw, `journal line ${i + 1}`)]).map(
    (v, i) => {
      if (!isLine(v)) throw new BadInput(`journal line ${i + 1} is not {n, seq, envelope}`)
      return v
    }
  )

/** A receipt given as JSON text. */
export const parseReceipt = (text: string): Receipt => {
  const r = parseJson(text, "the receipt") as Partial<Receipt> | null
  if (r === null || typeof r !== "object" || typeof r.signature !== "string" || typeof r.keyId !== "string") {
    throw new BadInput("the receipt is not a Lantern receipt (no signature or keyId)")
  }
  return r as Receipt
}

// ---- checks (schema/Receipt.ts's verify, in the same order with the same words) ----

const check = (name: string, ok: boolean, good: string, bad: string): Check => ({ name, ok, message: ok ? good : bad })

const payloadOf = (line: Line): Record<string, unknown> => {
  const p = line.envelope["payload"]
  return p !== null && typeof p === "object" ? p as Record<string, unknown> : {}
}

const actorOf = (line: Line): Record<string, unknown> => {
  const a = line.envelope["actor"]
  return a !== null && typeof a === "object" ? a as Record<string, unknown> : {}
}

/** The published keys with each keyId computed from its bytes, as the server's parseKeys gives them. */
const withKeyIds = (keys: ReadonlyArray<PublicKey>): Promise<ReadonlyArray<PublicKey>> =>
  Promise.all(keys.map(async (k) => ({ ...k, keyId: await keyIdOf(fromBase64Url(k.publicKey)) })))

const signatureCheck = async (receipt: Receipt, keys: ReadonlyArray<PublicKey>): Promise<Check> => {
  const key = keys.find((k) => k.keyId === receipt.keyId)
  if (key === undefined) {
    return {
      name: "signature",
      ok: false,
      message: `no public key with keyId ${receipt.keyId} (known: ${keys.map((k) => k.keyId).join(", ") || "none"})`
    }
  }
  const ok = await verifyEd25519(fromBase64Url(key.publicKey), signingBytes(receipt), receipt.signature)
  const retired = key.retiredAt === undefined ? "" : ` (a key retired at ${key.retiredAt})`
  return check(
    "signature",
    ok,
    `valid Ed25519 signature by key ${key.keyId}${retired}`,
    `the signature does not verify under key ${key.keyId}: the receipt was altered or signed by another key`
  )
}

const totalsOf = (lines: ReadonlyArray<Line>) => {
  let tokensIn = 0
  let tokensOut = 0
  let costUsd = 0
  // every step completion: a StepCompleted's, and each step of a StepsCompleted (ADR 0067)
  for (const l of lines)
    for (const p of Completions.payloadsOf(l.envelope["type"], l.envelope["payload"])) {
      tokensIn += typeof p["tokensIn"] === "number" ? p["tokensIn"] : 0
      tokensOut += typeof p["tokensOut"] === "number" ? p["tokensOut"] : 0
      costUsd += typeof p["costUsd"] === "number" ? p["costUsd"] : 0
    }
  return { tokensIn, tokensOut, costUsd }
}

/** Every check of a receipt against a journal and the published keys; `valid` only when all pass. */
export const verify = async (
  receipt: Receipt,
  lines: ReadonlyArray<Line>,
  published: ReadonlyArray<PublicKey>
): Promise<Verdict> => {
  const checks: Array<Check> = [await signatureCheck(receipt, await withKeyIds(published))]
  const first = lines[0]
  const last = lines[lines.length - 1]

  const journalRun = first === undefined ? "(empty journal)" : String(actorOf(first)["id"])
  checks.push(
    check(
      "run-id",
      journalRun === receipt.runId,
      `the journal is run ${receipt.runId}'s`,
      `the receipt is for run ${receipt.runId}, the journal is ${journalRun}'s`
    )
  )

  const stranger = lines.find((l) => {
    const a = actorOf(l)
    return a["type"] !== "run" || a["id"] !== receipt.runId || a["tenant"] !== receipt.tenantId ||
      l.envelope["tenant"] !== receipt.tenantId
  })
  checks.push(check(
    "membership",
    stranger === undefined,
    `every event belongs to run ${receipt.runId} of tenant ${receipt.tenantId}`,
    `event n=${stranger?.n} (seq ${stranger?.seq}) belongs to ${
      stranger === undefined
        ? ""
        : `${String(actorOf(stranger)["type"])} ${String(actorOf(stranger)["id"])} of tenant ${
          String(stranger.envelope["tenant"])
        }`
    }, not run ${receipt.runId} of tenant ${receipt.tenantId}`
  ))

  checks.push(
    check(
      "event-count",
      lines.length === receipt.eventCount,
      `${lines.length} events, as the receipt says`,
      `the journal has ${lines.length} events, the receipt says ${receipt.eventCount}`
    )
  )

  const disorder = lines.findIndex((l, i) => l.n !== i + 1 || (i > 0 && l.seq <= lines[i - 1]!.seq))
  checks.push(check(
    "order",
    disorder === -1,
    "positions run 1…N without gaps and stream sequences ascend",
    disorder === -1 ? "" : lines[disorder]!.n !== disorder + 1
      ? `line ${disorder + 1} has position n=${lines[disorder]!.n}, expected ${
        disorder + 1
      }: an event is missing, repeated or moved`
      : `line ${disorder + 1} has seq ${lines[disorder]!.seq}, not above the previous line's ${
        lines[disorder - 1]!.seq
      }: events are out of order`
  ))

  const range = `${first?.seq ?? "none"}…${last?.seq ?? "none"}`
  checks.push(check(
    "seq-range",
    first?.seq === receipt.firstSeq && last?.seq === receipt.lastSeq,
    `stream sequences ${range}, as the receipt says`,
    `the journal spans sequences ${range}, the receipt says ${receipt.firstSeq}…${receipt.lastSeq}`
  ))

  const computed = await digest(lines)
  checks.push(check(
    "journal-digest",
    computed === receipt.journalDigest,
    `SHA-256 chain over ${lines.length} events is ${computed}`,
    `the journal hashes to ${computed}, the receipt says ${receipt.journalDigest}: an event was changed, added, dropped or moved`
  ))

  const terminal = last === undefined ? undefined : TERMINAL_STATUS.get(String(last.envelope["type"]))
  const laterTerminal = lines.slice(0, -1).find((l) => TERMINAL_STATUS.has(String(l.envelope["type"])))
  const statusOk = laterTerminal === undefined && (receipt.partial
    ? receipt.status === "running" && terminal === undefined
    : terminal !== undefined && terminal === receipt.status)
  checks.push(check(
    "status",
    statusOk,
    receipt.partial
      ? "a partial receipt of a run still running: no terminal event"
      : `the journal ends with ${String(last?.envelope["type"])}, status ${receipt.status}`,
    laterTerminal !== undefined
      ? `a terminal event (${String(laterTerminal.envelope["type"])}) is followed by more events`
      : `the receipt says status ${receipt.status}${receipt.partial ? " (partial)" : ""}, the journal ends with ${
        String(last?.envelope["type"] ?? "nothing")
      }`
  ))

  const started = first !== undefined && first.envelope["type"] === "RunStarted" ? payloadOf(first) : null
  checks.push(check(
    "agent",
    started !== null && started["agentName"] === receipt.agent && started["agentDigest"] === receipt.agentVersionDigest,
    `run of agent ${receipt.agent}, version digest ${receipt.agentVersionDigest}`,
    started === null
      ? "the journal does not begin with RunStarted"
      : `the journal's RunStarted names agent ${String(started["agentName"])} with digest ${
        String(started["agentDigest"])
      }, the receipt ${receipt.agent} with ${receipt.agentVersionDigest}`
  ))

  const totals = totalsOf(lines)
  checks.push(check(
    "totals",
    totals.tokensIn === receipt.tokensIn && totals.tokensOut === receipt.tokensOut &&
      Math.abs(totals.costUsd - receipt.costUsd) <= 1e-9,
    `tokens ${totals.tokensIn} in / ${totals.tokensOut} out, $${totals.costUsd}, as the receipt says`,
    `the journal's completed steps add up to ${totals.tokensIn} in / ${totals.tokensOut} out / $${totals.costUsd}, the receipt says ${receipt.tokensIn} / ${receipt.tokensOut} / $${receipt.costUsd}`
  ))
  return { valid: checks.every((c) => c.ok), checks }
}
