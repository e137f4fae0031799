// The claude-code driver (ADR 0057): `claude -p --output-format stream-json --verbose` prints one JSON message per
// line: a `system` init message, `assistant` and `user` messages (text and tool_use blocks), and last a `result`
// message with `result` (the final text), `is_error`, `subtype`, `total_cost_usd` and `usage`.
import type { FileChange } from "../Normalize.ts"
import { type Driver, jsonLines, lastPerPath, num, obj, type Parsed, relativeTo, str } from "./Driver.ts"

/** Tools whose input names a file they write, and what they do to it. */
const WRITES: Readonly<Record<string, FileChange["change"]>> = {
  Write: "created",
  Edit: "modified",
  MultiEdit: "modified",
  NotebookEdit: "modified"
}

export const parse = (stdout: string, cwd: string): Parsed => {
  const { events, ignored } = jsonLines(stdout)
  let finalMessage: string | null = null
  let lastText: string | null = null
  let sessionId: string | null = null
  let costUsd = 0
  let tokens = 0
  let resultSeen = false
  const errors: Array<string> = []
  const changes: Array<FileChange> = []
  for (const e of events) {
    sessionId = str(e["session_id"]) ?? sessionId
    switch (e["type"]) {
      case "assistant": {
        const content = obj(e["message"])?.["content"]
        const texts: Array<string> = []
        for (const block of Array.isArray(content) ? content : []) {
          const b = obj(block)
          if (b?.["type"] === "text" && typeof b["text"] === "string") texts.push(b["text"])
          if (b?.["type"] === "tool_use") {
            const change = WRITES[str(b["name"]) ?? ""]
            const input = obj(b["input"])
            const path = str(input?.["file_path"]) ?? str(input?.["notebook_path"])
            if (change !== undefined && path !== null && path !== "")
              changes.push({ path: relativeTo(cwd, path), change })
          }
        }
        if (texts.length > 0) lastText = texts.join("\n")
        break
      }
      case "result": {
        resultSeen = true
        finalMessage = str(e["result"])
        costUsd = num(e["total_cost_usd"] ?? e["cost_usd"])
        const usage = obj(e["usage"])
        if (usage !== null) {
          tokens = num(usage["input_tokens"]) + num(usage["output_tokens"]) +
            num(usage["cache_creation_input_tokens"]) + num(usage["cache_read_input_tokens"])
        }
        if (e["is_error"] === true || (typeof e["subtype"] === "string" && e["subtype"] !== "success")) {
          errors.push(finalMessage ?? `the run ended with ${str(e["subtype"]) ?? "an error"}`)
        }
        break
      }
    }
  }
  return {
    // without a result message (the CLI died), the last thing the assistant said
    finalMessage: resultSeen ? finalMessage : lastText,
    errors,
    usage: { costUsd, tokens },
    fileChanges: lastPerPath(changes),
    sessionId,
    ignoredLines: ignored
  }
}

export const driver: Driver = {
  name: "claude-code",
  defaultCommand: "claude",
  // stream-json needs --verbose with -p; permission prompts cannot be answered headless, and Lantern's sandbox is
  // the boundary
  args: (prompt) => [
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--dangerously-skip-permissions",
    "--",
    prompt
  ],
  apiHost: "api.anthropic.com",
  parse
}
