// The ingest contract checked (ADR 0051): a message on `lantern.ingest.<tenant>.<source>` is an event when its subject
// has exactly those tokens, its body is a JSON object that decodes as `IngestEvent`, and its Nats-Msg-Id (when set)
// is its eventId. Pure: subject, header and bytes in, the event or the field at fault out.
import { Schema } from "effect"
import { IngestEvent, isToken } from "../../schema/Ingest.ts"
import * as Issues from "../../schema/Issues.ts"

export type Checked =
  | { readonly ok: true; readonly tenant: string; readonly source: string; readonly event: IngestEvent }
  | {
    readonly ok: false
    readonly tenant: string | null
    readonly source: string | null
    readonly field: string
    readonly reason: string
  }

const decode = Schema.decodeUnknownResult(IngestEvent)

export const check = (subject: string, msgId: string | undefined, bytes: Uint8Array): Checked => {
  const tokens = subject.split(".")
  const tenant = tokens[2] ?? null
  const source = tokens[3] ?? null
  const where = {
    tenant: tenant !== null && isToken(tenant) ? tenant : null,
    source: source !== null && isToken(source) ? source : null
  }
  if (tokens.length !== 4 || where.tenant === null || where.source === null) {
    return {
      ok: false,
      ...where,
      field: "(subject)",
      reason: "Expected lantern.ingest.<tenant>.<source>, each a lowercase token"
    }
  }
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes))
  } catch {
    return { ok: false, ...where, field: "(body)", reason: "Expected a JSON object in UTF-8" }
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, ...where, field: "(body)", reason: "Expected a JSON object" }
  }
  if (!("data" in body)) return { ok: false, ...where, field: "data", reason: "Missing key" }
  const decoded = decode(body)
  if (decoded._tag === "Failure") {
    const [first] = Issues.toFieldIssues(decoded.failure.issue)
    return { ok: false, ...where, field: first?.field ?? "(body)", reason: first?.message ?? "Invalid event" }
  }
  const event = decoded.success
  if (msgId !== undefined && msgId !== event.eventId) {
    return { ok: false, ...where, field: "Nats-Msg-Id", reason: "Expected the header to equal eventId" }
  }
  return { ok: true, tenant: where.tenant, source: where.source, event }
}

/** The run input of a rule's template: `{{path}}` filled from the event (strings as they are, the rest as JSON). */
export const render = (
  template: string,
  values: {
    readonly eventId: string
    readonly type: string
    readonly source: string
    readonly occurredAt: string | null
    readonly data: unknown
  }
): string =>
  template.replace(/\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/gu, (_, path: string) => {
    let v: unknown = values
    for (const part of path.split(".")) {
      v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[part] : undefined
    }
    return v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v)
  })
