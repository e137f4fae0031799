// Rate-limit hints in an adapter's output (ADR 0054): "try again in N seconds" or a `Retry-After: N` line. The
// queue reschedules a hinted failure at now + N without spending an attempt, up to its cap of such reschedules.
import { Schema } from "effect"
import { Outcome } from "../../schema/Task.ts"

/** The longest hint honoured: a day. */
const MAX_HINT_SECONDS = 86_400

/** The seconds of the last rate-limit hint in `text`, or null. */
export const retryAfterOf = (text: string): number | null => {
  let found: number | null = null
  const patterns = [
    /try again in (\d+(?:\.\d+)?)\s*(?:s\b|sec(?:ond)?s?\b)/giu,
    /retry-after:\s*(\d+(?:\.\d+)?)\s*$/gimu
  ]
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const n = Number(m[1])
      if (Number.isFinite(n) && n > 0) found = Math.min(MAX_HINT_SECONDS, n)
    }
  }
  return found
}

const decodeOutcome = Schema.decodeUnknownOption(Outcome)

/** A value as an Outcome: itself, or the JSON text of one; null when it is neither. */
export const outcomeOf = (value: unknown): Outcome | null => {
  if (typeof value === "string") {
    const text = value.trim()
    if (!text.startsWith("{")) return null
    try {
      return outcomeOf(JSON.parse(text))
    } catch {
      return null
    }
  }
  const decoded = decodeOutcome(value)
  return decoded._tag === "Some" ? decoded.value : null
}

/** The last line of `stdout` that is a JSON Outcome, or null. */
export const lastOutcomeLine = (stdout: string): Outcome | null => {
  const lines = stdout.split("\n")
  for (let i = lines.length - 1; i >= 0; i--) {
    const o = outcomeOf(lines[i]!)
    if (o !== null) return o
  }
  return null
}

/** A completed outcome that only says `summary`. */
export const completedWith = (summary: string): Outcome => ({
  status: "completed",
  operatorSummary: summary,
  machineStatus: "ok",
  fileChanges: [],
  artifactPaths: [],
  followUpTasks: [],
  externalMessages: []
})
