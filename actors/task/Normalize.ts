// From what a model or a coding agent said to the queue's Outcome (ADR 0057): the last JSON outcome block in its
// final message when there is one, else its text as a `completed` summary marked `unstructured` (the evidence check
// then decides whether it may complete), and rate-limit hints ("try again in 20s", HTTP 429) as seconds to wait.
import { Schema } from "effect"
import * as Issues from "../../schema/Issues.ts"
import { type FileChange as FileChangeSchema, Outcome, OUTCOME_STATUSES } from "../../schema/Task.ts"

export type FileChange = typeof FileChangeSchema.Type

export const MAX_SUMMARY = 20_000

/** `machineStatus` of an outcome made from free text (no JSON block). */
export const UNSTRUCTURED = "unstructured"
/** `machineStatus` of an outcome whose JSON block did not decode: reported `failed`, with the issues. */
export const INVALID = "invalid_outcome"

const truncate = (text: string, max = MAX_SUMMARY) => text.length <= max ? text : `${text.slice(0, max - 1)}…`

/** JSON objects in `text`, last first: fenced ```json blocks, then the text itself, then any balanced `{…}` span. */
const candidates = (text: string): ReadonlyArray<unknown> => {
  const found: Array<unknown> = []
  const tryParse = (s: string) => {
    try {
      const v: unknown = JSON.parse(s)
      if (typeof v === "object" && v !== null && !Array.isArray(v)) found.push(v)
    } catch {
      // not JSON
    }
  }
  const fences = [...text.matchAll(/```(?:json)?[ \t]*\r?\n([\s\S]*?)```/gu)].map((m) => m[1]!)
  for (const f of fences.reverse()) tryParse(f.trim())
  tryParse(text.trim())
  // balanced spans starting at each '{', outermost first from the end (strings are skipped so braces inside them do not count)
  for (let start = text.lastIndexOf("{"); start >= 0; start = text.lastIndexOf("{", start - 1)) {
    const end = closing(text, start)
    if (end > start) tryParse(text.slice(start, end + 1))
    if (start === 0) break
  }
  return found
}

const closing = (text: string, start: number): number => {
  let depth = 0
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === "\\") i++
      else if (c === "\"") inString = false
      continue
    }
    if (c === "\"") inString = true
    else if (c === "{") depth++
    else if (c === "}" && --depth === 0) return i
  }
  return -1
}

const isOutcomeLike = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && typeof (v as Record<string, unknown>)["status"] === "string"

const decode = Schema.decodeUnknownResult(Outcome)

/** An outcome JSON object with the lists it left out filled in; refused (with the issues) when it does not decode. */
export const fromJson = (
  v: Record<string, unknown>
): { readonly ok: true; readonly outcome: Outcome } | { readonly ok: false; readonly issues: string } => {
  const filled = {
    machineStatus: typeof v["status"] === "string" ? v["status"] : "",
    fileChanges: [],
    artifactPaths: [],
    followUpTasks: [],
    externalMessages: [],
    ...v,
    operatorSummary: typeof v["operatorSummary"] === "string"
      ? v["operatorSummary"]
      : typeof v["summary"] === "string"
      ? v["summary"]
      : v["operatorSummary"]
  }
  const { summary: _summary, ...rest } = filled as Record<string, unknown>
  const decoded = decode(rest, { errors: "all", onExcessProperty: "error" })
  return decoded._tag === "Success"
    ? { ok: true, outcome: decoded.success }
    : { ok: false, issues: Issues.toText(decoded.failure.issue) }
}

/**
 * The outcome a final message reports: its last outcome JSON block (an object with a `status`); a block that does
 * not decode is a `failed` outcome naming its issues (never silently read as free text); no block at all is the text
 * as a `completed` summary with machineStatus `unstructured`. `observed` file changes (what the driver saw the agent
 * do) fill in an outcome that lists none.
 */
export const fromText = (text: string, observed: ReadonlyArray<FileChange> = []): Outcome => {
  const block = candidates(text).find(isOutcomeLike)
  if (block !== undefined) {
    const decoded = fromJson(block)
    if (decoded.ok) {
      const o = decoded.outcome
      return o.fileChanges.length === 0 && observed.length > 0 ? { ...o, fileChanges: [...observed] } : o
    }
    return {
      status: "failed",
      operatorSummary: truncate(`the outcome JSON did not decode: ${decoded.issues}`),
      machineStatus: INVALID,
      fileChanges: [...observed],
      artifactPaths: [],
      followUpTasks: [],
      externalMessages: []
    }
  }
  return {
    status: "completed",
    operatorSummary: truncate(text.trim()),
    machineStatus: UNSTRUCTURED,
    fileChanges: [...observed],
    artifactPaths: [],
    followUpTasks: [],
    externalMessages: []
  }
}

export const isStatus = (s: string): s is typeof OUTCOME_STATUSES[number] =>
  (OUTCOME_STATUSES as ReadonlyArray<string>).includes(s)

// ---- rate-limit hints ----

/** Seconds waited for a rate limit that names no time. */
export const DEFAULT_RATE_LIMIT_SECONDS = 60
/** The longest hint honoured: a longer one is capped (the queue bounds hint-driven reschedules too). */
export const MAX_RATE_LIMIT_SECONDS = 3600

const UNIT_SECONDS: Readonly<Record<string, number>> = { ms: 0.001, s: 1, m: 60, h: 3600 }
const unitOf = (u: string) =>
  /^(ms|millis|milliseconds?)$/iu.test(u) ? "ms" : /^(m|mins?|minutes?)$/iu.test(u) ? "m" : /^(h|hours?)$/iu.test(u)
    ? "h"
    : "s"

const WAIT = String
  .raw`(?:try again|retry|retrying|wait|available again|reset[s]?)\s+(?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:ms|milliseconds?|millis|s|secs?|seconds?|m|mins?|minutes?|h|hours?)(?![a-z])\s*){1,3})`
const RATE_LIMITED = /\b429\b|rate[ -]?limit|too many requests|quota exceeded|overloaded/iu

/**
 * Seconds to wait before trying again, when `text` says it was rate limited: the time it names ("try again in 20s",
 * "retry after 1m30s", "please wait 5 seconds"), else DEFAULT_RATE_LIMIT_SECONDS for a bare 429 or "rate limit";
 * undefined when it is not a rate limit. Rounded up to whole seconds, at least 1, at most MAX_RATE_LIMIT_SECONDS.
 */
export const retryAfterOf = (text: string): number | undefined => {
  const m = new RegExp(WAIT, "iu").exec(text)
  if (m !== null) {
    let total = 0
    for (const part of m[1]!.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)/giu)) {
      total += Number(part[1]) * UNIT_SECONDS[unitOf(part[2]!)]!
    }
    if (total > 0 || RATE_LIMITED.test(text)) return clampSeconds(total)
  }
  return RATE_LIMITED.test(text) ? DEFAULT_RATE_LIMIT_SECONDS : undefined
}

export const clampSeconds = (s: number): number => Math.min(MAX_RATE_LIMIT_SECONDS, Math.max(1, Math.ceil(s)))
