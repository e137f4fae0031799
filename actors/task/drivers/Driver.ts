// What the agent-cli adapter needs of a coding-agent CLI (ADR 0057): how to call it headless with one prompt, the
// host it talks to, and how to read its machine output (JSON lines) into a final message, usage and errors.
import type { FileChange } from "../Normalize.ts"

export interface Parsed {
  /** The agent's last message to the user: where its outcome JSON block is looked for. Null when it gave none. */
  readonly finalMessage: string | null
  /** Errors the CLI reported (a failed turn, an error result), in order. */
  readonly errors: ReadonlyArray<string>
  readonly usage: { readonly costUsd: number; readonly tokens: number }
  /** Files the event stream shows the agent changing, relative to its working directory where they are inside it. */
  readonly fileChanges: ReadonlyArray<FileChange>
  /** The CLI's own session or thread id, when it printed one. */
  readonly sessionId: string | null
  /** Lines that were not JSON events (banners, stray prints): counted, not trusted. */
  readonly ignoredLines: number
}

export interface Driver {
  readonly name: "codex" | "claude-code"
  /** The executable's usual name, looked up on PATH when the spec names none. */
  readonly defaultCommand: string
  /** The arguments after the executable for one headless run of `prompt`. */
  readonly args: (prompt: string) => ReadonlyArray<string>
  /** The vendor API host the CLI must reach (the workload's one egress rule). */
  readonly apiHost: string
  /** Reads the CLI's stdout; `cwd` is its working directory, to make absolute paths relative. */
  readonly parse: (stdout: string, cwd: string) => Parsed
}

/** Each line of `stdout` that is a JSON object, and how many were not. */
export const jsonLines = (
  stdout: string
): { readonly events: ReadonlyArray<Record<string, unknown>>; readonly ignored: number } => {
  const events: Array<Record<string, unknown>> = []
  let ignored = 0
  for (const line of stdout.split(/\r?\n/u)) {
    const t = line.trim()
    if (t === "") continue
    try {
      const v: unknown = JSON.parse(t)
      if (typeof v === "object" && v !== null && !Array.isArray(v)) events.push(v as Record<string, unknown>)
      else ignored++
    } catch {
      ignored++
    }
  }
  return { events, ignored }
}

export const num = (v: unknown): number => typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0
export const str = (v: unknown): string | null => typeof v === "string" ? v : null
export const obj = (v: unknown): Record<string, unknown> | null =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : null

/** `path` relative to `cwd` when it is an absolute path inside it; as given otherwise (the evidence check judges it). */
export const relativeTo = (cwd: string, path: string): string => {
  const root = cwd.endsWith("/") ? cwd : `${cwd}/`
  return path.startsWith(root) ? path.slice(root.length) : path
}

/** The changes in `changes`, the last word on each path kept. */
export const lastPerPath = (changes: ReadonlyArray<FileChange>): ReadonlyArray<FileChange> => {
  const byPath = new Map<string, FileChange>()
  for (const c of changes) {
    const previous = byPath.get(c.path)
    // a file created then modified in one run is still one the run created
    byPath.delete(c.path)
    byPath.set(c.path, previous?.change === "created" && c.change === "modified" ? previous : c)
  }
  return [...byPath.values()]
}
