// Receipts without Lantern: the receipt's Schema (what the API declares and the CLI decodes) over the pure format and
// offline checks of schema/Receipt.ts, which the SDK bundles as they are. docs/receipts.md specifies both.
import { Schema } from "effect"
import * as Issues from "../../schema/Issues.ts"
import * as Pure from "../../schema/Receipt.ts"

export * from "../../schema/Receipt.ts"

/** h_0 as a Buffer, for hashing on from it with node:crypto. */
export const GENESIS: Buffer = Buffer.from(Pure.GENESIS)

export const RunStatus = Schema.Literals(["running", "succeeded", "failed", "canceled"])

/** A receipt's fields without its signature: exactly what is signed (as canonical JSON). */
export const Unsigned = Schema.Struct({
  version: Schema.Literal(Pure.VERSION),
  /** Absent for a run; "workload" for a workload's receipt (ADR 0062), whose id is then `runId`. */
  subject: Schema.optionalKey(Schema.Literal("workload")),
  runId: Schema.String,
  tenantId: Schema.String,
  agent: Schema.String,
  agentVersionDigest: Schema.String,
  status: RunStatus,
  partial: Schema.Boolean,
  eventCount: Schema.Int,
  firstSeq: Schema.Int,
  lastSeq: Schema.Int,
  journalDigest: Schema.String,
  costUsd: Schema.Number,
  tokensIn: Schema.Int,
  tokensOut: Schema.Int,
  issuedAt: Schema.String,
  keyId: Schema.String
})
export type Unsigned = typeof Unsigned.Type

export const Receipt = Schema.Struct({ ...Unsigned.fields, signature: Schema.String })
export type Receipt = typeof Receipt.Type

// the Schema and the pure module's interfaces describe one receipt: a field added to one and not the other fails here
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const same: Same<Receipt, Pure.Receipt> & Same<Unsigned, Pure.Unsigned> & Same<typeof RunStatus.Type, Pure.RunStatus> =
  true
void same

const decodeReceipt = Schema.decodeUnknownResult(Receipt)

export const parseReceipt = (value: unknown): Receipt => {
  const r = decodeReceipt(value, { errors: "all" })
  if (r._tag === "Failure") throw new Pure.BadInput(`not a Lantern receipt: ${Issues.toText(r.failure.issue)}`)
  return r.success
}

export const parseReceiptText = (text: string): Receipt => parseReceipt(Pure.parseJson(text, "the receipt"))
