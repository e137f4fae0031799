// Receipts without Lantern: the receipt and journal-line formats, the journal digest (a SHA-256 hash chain over
// canonical JSON) and every check an auditor runs offline. Pure and free of Effect, so the SDK (sdk/) bundles the very
// checks the server runs; actors/receipts/Verify.ts adds the receipt's Schema. docs/receipts.md specifies it.
import { createHash, createPublicKey, verify as verifySignature } from "node:crypto"
import * as Canonical from "./Canonical.ts"
import * as Completions from "./Completions.ts"

export const VERSION = 1
export const ALGORITHM = "Ed25519"

export type RunStatus = "running" | "succeeded" | "failed" | "canceled"

/**
 * What a receipt covers: a run's journal (no `subject`: every receipt issued before workloads had one) or a
 * workload's (`subject: "workload"`, ADR 0062), whose id then stands in `runId`.
 */
export type Subject = "workload"

/** A receipt's fields without its signature: exactly what is signed (as canonical JSON). */
export interface Unsigned {
  readonly version: typeof VERSION
  /** Absent for a run; "workload" for a workload's receipt. */
  readonly subject?: Subject
  /** The run's id, or the workload's for a workload receipt. */
  readonly runId: string
  readonly tenantId: string
  readonly agent: string
  readonly agentVersionDigest: string
  readonly status: RunStatus
  readonly partial: boolean
  readonly eventCount: number
  readonly firstSeq: number
  readonly lastSeq: number
  readonly journalDigest: string
  readonly costUsd: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly issuedAt: string
  readonly keyId: string
}

export interface Receipt extends Unsigned {
  readonly signature: string
}

/** A journal line as exported (one per line of the JSONL file) and hashed: position, stream sequence, stored envelope. */
export interface Line {
  /** 1-based position of the event in the run's journal. */
  readonly n: number
  /** JetStream stream sequence of the event (ascending, not contiguous: other runs share the stream). */
  readonly seq: number
  /** The event's envelope exactly as stored in the journal. */
  readonly envelope: Record<string, unknown>
}

/** One published public key, as served at /.well-known/lantern-receipts. */
export interface PublicKey {
  readonly keyId: string
  /** The raw 32-byte Ed25519 public key, base64url without padding. */
  readonly publicKey: string
  readonly algorithm: typeof ALGORITHM
  readonly createdAt: string
  readonly retiredAt?: string
}

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly message: string
}

export interface Verdict {
  readonly valid: boolean
  readonly checks: ReadonlyArray<Check>
}

// ---- encodings ----

export const toBase64Url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url")
export const fromBase64Url = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64url"))

/** keyId: the first 16 hex characters of SHA-256 of the raw 32-byte public key. */
export const keyIdOf = (publicKey: Uint8Array): string =>
  createHash("sha256").update(publicKey).digest("hex").slice(0, 16)

/** The bytes a receipt's signature covers: UTF-8 of the canonical JSON of every field but `signature`. */
export const signingBytes = (receipt: Unsigned | Receipt): Uint8Array => {
  const { signature: _, ...unsigned } = receipt as Receipt
  return new TextEncoder().encode(Canonical.stringify(unsigned))
}

// ---- the journal digest ----

/** The bytes one journal line contributes to the digest: UTF-8 of its canonical JSON. */
export const lineBytes = (line: Line): Uint8Array => Buffer.from(Canonical.stringify(line), "utf8")

export const GENESIS: Uint8Array = new Uint8Array(32)

/** h_i = SHA-256(h_{i-1} || canonical(line_i)). */
export const step = (previous: Uint8Array, line: Line): Uint8Array =>
  createHash("sha256").update(previous).update(lineBytes(line)).digest()

/** Every link of the chain, h_1 … h_N (lowercase hex). */
export const chain = (lines: ReadonlyArray<Line>): ReadonlyArray<string> => {
  let h: Uint8Array = GENESIS
  return lines.map((line) => {
    h = step(h, line)
    return Buffer.from(h).toString("hex")
  })
}

/** The journal digest: h_N in lowercase hex (h_0 = 32 zero bytes, so an empty journal digests to 64 zeros). */
export const digest = (lines: ReadonlyArray<Line>): string => {
  let h: Uint8Array = GENESIS
  for (const line of lines) h = step(h, line)
  return Buffer.from(h).toString("hex")
}

/** The JSONL export of a journal: one canonical line per event, each ending in "\n". */
export const toJsonl = (lines: ReadonlyArray<Line>): string => lines.map((l) => `${Canonical.stringify(l)}\n`).join("")

// ---- input ----

/** Input that cannot be verified at all: not JSON, not a receipt, not a key. */
export class BadInput extends Error {
  readonly _tag = "BadInput"
}

/** JSON.parse, failing with BadInput naming `what`. */
export const parseJson = (text: string, what: string): unknown => {
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

/** Journal lines from parsed JSON values (the export's lines, or an array in a request body). */
export const parseLines = (values: ReadonlyArray<unknown>): ReadonlyArray<Line> =>
  values.map((v, i) => {
    if (!isLine(v)) throw new BadInput(`journal line ${i + 1} is not {n, seq, envelope}`)
    return v
  })

/** A JSONL journal export; blank lines are ignored. */
export const parseJsonl = (text: string): ReadonlyArray<Line> =>
  parseLines(text.split("\n").flatMap((raw, i) => raw.trim() === "" ? [] : [parseJson(raw, `journal line ${i + 1}`)]))

const bytesOfKey = (text: string): Uint8Array | null => {
  const t = text.trim()
  if (/^[0-9a-fA-F]{64}$/.test(t)) return new Uint8Array(Buffer.from(t, "hex"))
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const bytes = Buffer.from(t.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""), "base64url")
    return bytes.length === 32 ? new Uint8Array(bytes) : null
  }
  return null
}

/** A raw public key given on its own (hex, base64 or base64url of its 32 bytes), as a published key. */
export const keyFromRaw = (text: string): PublicKey | null => {
  const bytes = bytesOfKey(text)
  return bytes === null
    ? null
    : { keyId: keyIdOf(bytes), publicKey: toBase64Url(bytes), algorithm: ALGORITHM, createdAt: "" }
}

/** Public keys from a raw key or the well-known document `{keys: [...]}`. */
export const parseKeys = (text: string): ReadonlyArray<PublicKey> => {
  const raw = keyFromRaw(text)
  if (raw !== null) return [raw]
  const doc = parseJson(text, "the key") as { keys?: unknown }
  if (doc === null || typeof doc !== "object" || !Array.isArray(doc.keys)) {
    throw new BadInput("the key is neither a 32-byte Ed25519 public key (hex or base64) nor a {keys: [...]} document")
  }
  return doc.keys.map((k: unknown, i) => {
    const key = k as Partial<PublicKey>
    if (typeof key?.publicKey !== "string" || bytesOfKey(key.publicKey) === null)
      throw new BadInput(`keys[${i}].publicKey is not a 32-byte key`)
    const bytes = bytesOfKey(key.publicKey)!
    return {
      keyId: keyIdOf(bytes),
      publicKey: toBase64Url(bytes),
      algorithm: ALGORITHM,
      createdAt: typeof key.createdAt === "string" ? key.createdAt : "",
      ...(typeof key.retiredAt === "string" ? { retiredAt: key.retiredAt } : {})
    }
  })
}

// ---- checks ----

const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex")

/** Whether `signature` (base64url) is a valid Ed25519 signature of `message` under the raw public key. */
export const verifyEd25519 = (publicKey: Uint8Array, message: Uint8Array, signature: string): boolean => {
  const sig = fromBase64Url(signature)
  if (sig.length !== 64 || publicKey.length !== 32) return false
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: "der", type: "spki" })
  return verifySignature(null, message, key, sig)
}

/** A run's terminal events and the status each gives a receipt (schema/Events.ts's TERMINAL_RUN_EVENTS, as a test checks). */
export const TERMINAL_STATUS: ReadonlyMap<string, RunStatus> = new Map([
  ["RunSucceeded", "succeeded"],
  ["RunFailed", "failed"],
  ["RunCanceled", "canceled"]
])

/** A workload's terminal events (schema/Workload.ts's TERMINAL_WORKLOAD_EVENTS, as a test checks). */
export const WORKLOAD_TERMINAL_EVENTS: ReadonlySet<string> = new Set([
  "WorkloadExited",
  "WorkloadTerminated",
  "WorkloadFailed"
])

/** The event whose payload carries a workload's model usage: `tokensIn`, `tokensOut`, `costUsd`. */
export const WORKLOAD_USAGE_EVENT = "WorkloadModelCalled"

/**
 * The status a terminal event gives a receipt of `subject`, or undefined for any other event: a workload that
 * exited 0 `succeeded`, with another code or lost `failed`, terminated `canceled`.
 */
export const terminalStatusOf = (subject: Subject | undefined, line: Line | undefined): RunStatus | undefined => {
  if (line === undefined) return undefined
  const type = String(line.envelope["type"])
  if (subject === undefined) return TERMINAL_STATUS.get(type)
  if (!WORKLOAD_TERMINAL_EVENTS.has(type)) return undefined
  if (type === "WorkloadTerminated") return "canceled"
  return type === "WorkloadExited" && payloadOf(line)["code"] === 0 ? "succeeded" : "failed"
}

/** A workload spec's digest, `sha256:` and the hex SHA-256 of its canonical JSON: a workload receipt's version digest. */
export const specDigest = (spec: unknown): string =>
  `sha256:${createHash("sha256").update(Canonical.stringify(spec ?? null)).digest("hex")}`

/** What a journal's first event says its subject is: the agent's name and version digest, or null when it is not the subject's start. */
export const startOf = (
  subject: Subject | undefined,
  line: Line | undefined
): { readonly agent: string; readonly digest: string } | null => {
  if (line === undefined) return null
  const p = payloadOf(line)
  if (subject === undefined) {
    return line.envelope["type"] === "RunStarted"
      ? { agent: String(p["agentName"] ?? ""), digest: String(p["agentDigest"] ?? "") }
      : null
  }
  if (line.envelope["type"] !== "WorkloadScheduled") return null
  const spec = p["spec"] !== null && typeof p["spec"] === "object" ? p["spec"] as Record<string, unknown> : {}
  const metadata = spec["metadata"] !== null && typeof spec["metadata"] === "object"
    ? spec["metadata"] as Record<string, unknown>
    : {}
  return { agent: String(metadata["name"] ?? ""), digest: specDigest(p["spec"]) }
}

const check = (name: string, ok: boolean, good: string, bad: string): Check => ({ name, ok, message: ok ? good : bad })

const payloadOf = (line: Line): Record<string, unknown> => {
  const p = line.envelope["payload"]
  return p !== null && typeof p === "object" ? p as Record<string, unknown> : {}
}

const actorOf = (line: Line): Record<string, unknown> => {
  const a = line.envelope["actor"]
  return a !== null && typeof a === "object" ? a as Record<string, unknown> : {}
}

const signatureCheck = (receipt: Receipt, keys: ReadonlyArray<PublicKey>): Check => {
  const key = keys.find((k) => k.keyId === receipt.keyId)
  if (key === undefined) {
    return {
      name: "signature",
      ok: false,
      message: `no public key with keyId ${receipt.keyId} (known: ${keys.map((k) => k.keyId).join(", ") || "none"})`
    }
  }
  const ok = verifyEd25519(fromBase64Url(key.publicKey), signingBytes(receipt), receipt.signature)
  const retired = key.retiredAt === undefined ? "" : ` (a key retired at ${key.retiredAt})`
  return check(
    "signature",
    ok,
    `valid Ed25519 signature by key ${key.keyId}${retired}`,
    `the signature does not verify under key ${key.keyId}: the receipt was altered or signed by another key`
  )
}

/**
 * Every check of a receipt against a journal and the published keys. Each check runs even when another
 * fails, so the verdict names every problem; `valid` holds only when all pass.
 */
export const verify = (receipt: Receipt, lines: ReadonlyArray<Line>, keys: ReadonlyArray<PublicKey>): Verdict => {
  const checks: Array<Check> = [signatureCheck(receipt, keys)]
  const first = lines[0]
  const last = lines[lines.length - 1]

  const subject = receipt.subject
  const kind = subject ?? "run"
  const journalRun = first === undefined ? "(empty journal)" : String(actorOf(first)["id"])
  checks.push(
    check(
      "run-id",
      journalRun === receipt.runId,
      `the journal is ${kind} ${receipt.runId}'s`,
      `the receipt is for ${kind} ${receipt.runId}, the journal is ${journalRun}'s`
    )
  )

  const stranger = lines.find((l) => {
    const a = actorOf(l)
    return a["type"] !== kind || a["id"] !== receipt.runId || a["tenant"] !== receipt.tenantId ||
      l.envelope["tenant"] !== receipt.tenantId
  })
  checks.push(check(
    "membership",
    stranger === undefined,
    `every event belongs to ${kind} ${receipt.runId} of tenant ${receipt.tenantId}`,
    `event n=${stranger?.n} (seq ${stranger?.seq}) belongs to ${
      stranger === undefined
        ? ""
        : `${String(actorOf(stranger)["type"])} ${String(actorOf(stranger)["id"])} of tenant ${
          String(stranger.envelope["tenant"])
        }`
    }, not ${kind} ${receipt.runId} of tenant ${receipt.tenantId}`
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

  const computed = digest(lines)
  checks.push(check(
    "journal-digest",
    computed === receipt.journalDigest,
    `SHA-256 chain over ${lines.length} events is ${computed}`,
    `the journal hashes to ${computed}, the receipt says ${receipt.journalDigest}: an event was changed, added, dropped or moved`
  ))

  const terminal = terminalStatusOf(subject, last)
  const laterTerminal = lines.slice(0, -1).find((l) => terminalStatusOf(subject, l) !== undefined)
  const statusOk = laterTerminal === undefined && (receipt.partial
    ? receipt.status === "running" && terminal === undefined
    : terminal !== undefined && terminal === receipt.status)
  checks.push(check(
    "status",
    statusOk,
    receipt.partial
      ? `a partial receipt of a ${kind} still running: no terminal event`
      : `the journal ends with ${String(last?.envelope["type"])}, status ${receipt.status}`,
    laterTerminal !== undefined
      ? `a terminal event (${String(laterTerminal.envelope["type"])}) is followed by more events`
      : `the receipt says status ${receipt.status}${receipt.partial ? " (partial)" : ""}, the journal ends with ${
        String(last?.envelope["type"] ?? "nothing")
      }`
  ))

  const started = startOf(subject, first)
  const opening = subject === undefined ? "RunStarted" : "WorkloadScheduled"
  checks.push(check(
    "agent",
    started !== null && started.agent === receipt.agent && started.digest === receipt.agentVersionDigest,
    `${kind} of agent ${receipt.agent}, version digest ${receipt.agentVersionDigest}`,
    started === null
      ? `the journal does not begin with ${opening}`
      : `the journal's ${opening} names agent ${started.agent} with digest ${started.digest}, the receipt ${receipt.agent} with ${receipt.agentVersionDigest}`
  ))

  const totals = totalsOf(lines, subject)
  checks.push(check(
    "totals",
    totals.tokensIn === receipt.tokensIn && totals.tokensOut === receipt.tokensOut &&
      Math.abs(totals.costUsd - receipt.costUsd) <= 1e-9,
    `tokens ${totals.tokensIn} in / ${totals.tokensOut} out, $${totals.costUsd}, as the receipt says`,
    `the journal's ${
      subject === undefined ? "completed steps" : "model calls"
    } add up to ${totals.tokensIn} in / ${totals.tokensOut} out / $${totals.costUsd}, the receipt says ${receipt.tokensIn} / ${receipt.tokensOut} / $${receipt.costUsd}`
  ))
  return { valid: checks.every((c) => c.ok), checks }
}

/**
 * Tokens and cost of a journal: the sums over its step completions (a run's StepCompleted events, and the steps of
 * its StepsCompleted ones and of a RunSucceeded that carries one, ADR 0077) or WorkloadModelCalled events (a
 * workload's), in journal order.
 */
export const totalsOf = (lines: ReadonlyArray<Line>, subject?: Subject) => {
  const usages = (l: Line): ReadonlyArray<Record<string, unknown>> =>
    subject === undefined
      ? Completions.payloadsOf(l.envelope["type"], l.envelope["payload"])
      : l.envelope["type"] === WORKLOAD_USAGE_EVENT
      ? [payloadOf(l)]
      : []
  let tokensIn = 0
  let tokensOut = 0
  let costUsd = 0
  for (const l of lines)
    for (const p of usages(l)) {
      tokensIn += typeof p["tokensIn"] === "number" ? p["tokensIn"] : 0
      tokensOut += typeof p["tokensOut"] === "number" ? p["tokensOut"] : 0
      costUsd += typeof p["costUsd"] === "number" ? p["costUsd"] : 0
    }
  return { tokensIn, tokensOut, costUsd }
}

/** The first failed check as one line, or null when the verdict is valid. */
export const failureOf = (verdict: Verdict): string | null => {
  const failed = verdict.checks.filter((c) => !c.ok)
  return failed.length === 0 ? null : failed.map((c) => `${c.name}: ${c.message}`).join("; ")
}
