// Marketplace settlement receipts without Lantern (ADR 0059): the bytes a settlement's signature covers and the
// checks an auditor runs offline against the published receipt keys. Pure and free of Effect, so the SDK (sdk/)
// bundles the very checks the server and the CLI run.
import * as Canonical from "./Canonical.ts"
import { fromBase64Url, verifyEd25519 } from "./Receipt.ts"

export interface Settlement {
  readonly kind: "settlement"
  readonly version: 1
  readonly invocationId: string
  readonly buyerTenant: string
  readonly sellerTenant: string
  readonly agent: string
  readonly agentVersion: number
  readonly runId: string
  readonly status: "succeeded" | "failed" | "canceled"
  readonly costUsd: number
  readonly issuedAt: string
  readonly keyId: string
  readonly signature: string
}

/** The bytes the signature covers: UTF-8 of the canonical JSON of every field but `signature`. */
export const settlementBytes = (receipt: Omit<Settlement, "signature"> | Settlement): Uint8Array => {
  const { signature: _, ...unsigned } = receipt as Settlement
  return new TextEncoder().encode(Canonical.stringify(unsigned))
}

export const isSettlement = (value: unknown): boolean =>
  typeof value === "object" && value !== null && (value as Record<string, unknown>)["kind"] === "settlement"

const STRINGS = ["invocationId", "buyerTenant", "sellerTenant", "agent", "runId", "issuedAt", "keyId", "signature"]
const FIELDS = new Set([...STRINGS, "kind", "version", "agentVersion", "status", "costUsd"])

/** Why `value` is not a settlement receipt of version 1, or null when it is one. */
const formatIssue = (value: unknown): string | null => {
  if (!isSettlement(value)) return "its kind is not \"settlement\""
  const r = value as Record<string, unknown>
  if (r["version"] !== 1) return "its version is not 1"
  for (const f of STRINGS) if (typeof r[f] !== "string") return `${f} is not a string`
  if (!Number.isInteger(r["agentVersion"])) return "agentVersion is not a whole number"
  if (typeof r["costUsd"] !== "number" || !Number.isFinite(r["costUsd"])) return "costUsd is not a number"
  if (!["succeeded", "failed", "canceled"].includes(r["status"] as string)) return "status is not a final status"
  const extra = Object.keys(r).find((k) => !FIELDS.has(k))
  return extra === undefined ? null : `${extra} is not a field of a settlement`
}

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly message: string
}

/**
 * Checks a settlement receipt against published keys (`/.well-known/lantern-receipts`): its fields, a known key and
 * an Ed25519 signature by it over the canonical JSON of the other fields. Each check is named, as for run receipts.
 */
export const verifySettlement = (
  value: unknown,
  keys: ReadonlyArray<{ readonly keyId: string; readonly publicKey: string }>
): { readonly valid: boolean; readonly checks: ReadonlyArray<Check> } => {
  const issue = formatIssue(value)
  if (issue !== null) return { valid: false, checks: [{ name: "format", ok: false, message: issue }] }
  const receipt = value as Settlement
  const checks: Array<Check> = [{ name: "format", ok: true, message: `settlement ${receipt.invocationId}` }]
  const key = keys.find((k) => k.keyId === receipt.keyId)
  if (key === undefined) {
    checks.push({ name: "key", ok: false, message: `no published key ${receipt.keyId}` })
    return { valid: false, checks }
  }
  checks.push({ name: "key", ok: true, message: `key ${receipt.keyId}` })
  let ok = false
  try {
    ok = verifyEd25519(fromBase64Url(key.publicKey), settlementBytes(receipt), receipt.signature)
  } catch {
    ok = false
  }
  checks.push({
    name: "signature",
    ok,
    message: ok ? "Ed25519 signature by the key over the settlement" : "the signature does not match the settlement"
  })
  return { valid: ok, checks }
}
