// Evidence over narration (issue 16, ADR 0057): a `completed` outcome is believed only when what it claims can be
// checked. Every file it says it created or modified and every artifact it names exists inside the task's artifact
// root (no absolute path, no `..`, no symlink out of it), a file it says it deleted is gone, its summary says
// something the task did not already say, and it does not narrate being blocked. Other outcomes pass as reported.
import { lstatSync, realpathSync, statSync } from "node:fs"
import { isAbsolute, join, relative, sep } from "node:path"
import type { Outcome } from "../../schema/Task.ts"

/** The reason a task is blocked with when its completed outcome fails verification. */
export const REASON = "outcome_verification_failed"

export type IssueCode =
  | "path_absolute"
  | "path_escapes_root"
  | "path_invalid"
  | "file_missing"
  | "file_still_exists"
  | "summary_empty"
  | "summary_echoes_prompt"
  | "blocked_language"

export interface Issue {
  readonly code: IssueCode
  readonly message: string
  /** The claimed path the issue is about, as the outcome gave it. */
  readonly path?: string
}

export type Verdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: typeof REASON; readonly issues: ReadonlyArray<Issue> }

export interface Context {
  /** The task's artifact root on this host. */
  readonly artifactRoot: string
  /** What the adapter was told (its prompt), when it had one. */
  readonly prompt?: string | null
  readonly description?: string | null
  /** Paths (relative to the root) already stored in the artifact store: they count as existing. */
  readonly storedArtifacts?: ReadonlyArray<string>
}

/**
 * Phrases of an agent that did not finish: "I'm blocked", "cannot proceed", "unable to complete", "waiting for"…
 * Matched case-insensitively on word boundaries, in the summary and the machine status.
 */
export const BLOCKED_PATTERNS: ReadonlyArray<RegExp> = [
  /\bI(?:'m|’m| am)\s+(?:currently\s+|still\s+)?blocked\b/iu,
  /\b(?:am|is|are|was|were|remain(?:s|ed)?|got)\s+blocked\b/iu,
  /\bblocked\s+(?:on|by)\b/iu,
  /\bcan(?:not|'t|’t)\s+(?:proceed|continue|complete|finish)\b/iu,
  /\b(?:unable|not able)\s+to\s+(?:complete|proceed|continue|finish|do|access|perform)\b/iu,
  /\bcould(?:\s+not|n't|n’t)\s+(?:complete|finish|proceed|continue)\b/iu,
  /\bwaiting\s+(?:for|on)\b/iu,
  /\b(?:need|needs|require|requires)\s+(?:your|human|manual|operator)\s+(?:input|approval|intervention|help)\b/iu,
  /\bI\s+(?:do not|don't|don’t)\s+have\s+(?:access|permission)\b/iu,
  /^\s*blocked\s*$/iu
]

/** The first blocked phrase in `text`, or null. */
export const blockedPhrase = (text: string): string | null => {
  for (const p of BLOCKED_PATTERNS) {
    const m = p.exec(text)
    if (m !== null) return m[0].trim()
  }
  return null
}

const normalize = (text: string) => text.toLowerCase().normalize("NFKC").replace(/[^\p{L}\p{N}]+/gu, " ").trim()

/** A summary shorter than this is not judged an echo (too little to tell). */
export const ECHO_MIN_CHARS = 16

/**
 * Whether `summary` only restates `source` (the prompt or the description): it is contained in it, or it is mostly
 * it (the source makes up at least 80 % of the summary).
 */
export const isEcho = (summary: string, source: string | null | undefined): boolean => {
  if (source === null || source === undefined) return false
  const s = normalize(summary)
  const p = normalize(source)
  if (s.length < ECHO_MIN_CHARS || p.length === 0) return false
  if (p.includes(s)) return true
  return p.length >= ECHO_MIN_CHARS && s.includes(p) && p.length >= 0.8 * s.length
}

/** Where `path` lands inside `root`, or why it may not be used. */
export const resolveInside = (
  root: string,
  path: string
): { readonly ok: true; readonly absolute: string } | { readonly ok: false; readonly issue: Issue } => {
  const refuse = (code: IssueCode, message: string) => ({ ok: false as const, issue: { code, message, path } })
  if (path.length === 0 || path.includes("\0")) return refuse("path_invalid", "an empty path or one with a NUL byte")
  if (isAbsolute(path) || /^[A-Za-z]:[\\/]/u.test(path)) {
    return refuse("path_absolute", `${path} is absolute; paths are relative to the artifact root`)
  }
  if (path.split(/[\\/]/u).includes("..")) return refuse("path_escapes_root", `${path} climbs out with '..'`)
  const absolute = join(root, path)
  const rel = relative(root, absolute)
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel)) {
    return refuse("path_escapes_root", `${path} is not inside the artifact root`)
  }
  return { ok: true, absolute }
}

/** Whether the file at `absolute` exists without leaving `root` through a symlink (in it or in a folder above it). */
const existsInside = (root: string, absolute: string): "file" | "missing" | "escapes" => {
  try {
    lstatSync(absolute)
  } catch {
    return "missing"
  }
  try {
    const realRoot = realpathSync(root)
    const real = realpathSync(absolute)
    const rel = relative(realRoot, real)
    if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return "escapes"
    return statSync(real).isFile() ? "file" : "missing"
  } catch {
    // a dangling symlink
    return "missing"
  }
}

/** Verifies a `completed` outcome against the artifact root; any other status passes as reported. */
export const verify = (outcome: Outcome, ctx: Context): Verdict => {
  if (outcome.status !== "completed") return { ok: true }
  const issues: Array<Issue> = []
  const stored = new Set(ctx.storedArtifacts ?? [])
  const mustExist = (path: string, what: string) => {
    const r = resolveInside(ctx.artifactRoot, path)
    if (!r.ok) return issues.push(r.issue)
    if (stored.has(path)) return
    const found = existsInside(ctx.artifactRoot, r.absolute)
    if (found === "escapes") {
      issues.push({ code: "path_escapes_root", message: `${path} is a link out of the artifact root`, path })
    } else if (found === "missing") {
      issues.push({ code: "file_missing", message: `${what} ${path} does not exist in the artifact root`, path })
    }
  }
  for (const c of outcome.fileChanges) {
    if (c.change === "deleted") {
      const r = resolveInside(ctx.artifactRoot, c.path)
      if (!r.ok) issues.push(r.issue)
      else if (existsInside(ctx.artifactRoot, r.absolute) !== "missing") {
        issues.push({ code: "file_still_exists", message: `claimed deleted, ${c.path} is still there`, path: c.path })
      }
    } else {
      mustExist(c.path, `claimed ${c.change},`)
    }
  }
  for (const p of outcome.artifactPaths) mustExist(p, "the artifact")

  const summary = outcome.operatorSummary
  if (normalize(summary).length === 0) {
    issues.push({ code: "summary_empty", message: "the summary says nothing" })
  } else if (isEcho(summary, ctx.description) || isEcho(summary, ctx.prompt)) {
    issues.push({
      code: "summary_echoes_prompt",
      message: "the summary restates the task instead of reporting what was done"
    })
  }
  const phrase = blockedPhrase(summary) ?? blockedPhrase(outcome.machineStatus)
  if (phrase !== null) {
    issues.push({
      code: "blocked_language",
      message: `reported completed, yet says "${phrase}"`
    })
  }
  return issues.length === 0 ? { ok: true } : { ok: false, reason: REASON, issues }
}

/** The issues as one line, for a task's reason. */
export const describe = (issues: ReadonlyArray<Issue>): string => issues.map((i) => i.message).join("; ")

/** The prompt an adapter's `seen` records (`prompt`, or its messages' text), for the echo check; null when none. */
export const promptOf = (seen: unknown): string | null => {
  if (typeof seen !== "object" || seen === null) return null
  const s = seen as { prompt?: unknown; messages?: unknown }
  if (typeof s.prompt === "string") return s.prompt
  if (Array.isArray(s.messages)) {
    const texts = s.messages.flatMap((m) =>
      typeof m === "object" && m !== null && typeof (m as { content?: unknown }).content === "string"
        ? [(m as { content: string }).content]
        : []
    )
    return texts.length === 0 ? null : texts.join("\n")
  }
  return null
}
