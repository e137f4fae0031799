// The codex driver (ADR 0057): `codex exec --json` prints one JSON event per line: thread.started, turn.started,
// item.started/updated/completed (agent_message, file_change, command_execution, error…), then turn.completed with
// the turn's token usage, or turn.failed / error. Codex reports no cost, so an attempt's cost is 0 and its tokens
// are the turns' input plus output tokens (cached input is part of input).
import type { FileChange } from "../Normalize.ts"
import { type Driver, jsonLines, lastPerPath, num, obj, type Parsed, relativeTo, str } from "./Driver.ts"

const CHANGE: Readonly<Record<string, FileChange["change"]>> = {
  add: "created",
  added: "created",
  create: "created",
  update: "modified",
  modify: "modified",
  modified: "modified",
  delete: "deleted",
  deleted: "deleted",
  remove: "deleted"
}

export const parse = (stdout: string, cwd: string): Parsed => {
  const { events, ignored } = jsonLines(stdout)
  let finalMessage: string | null = null
  let sessionId: string | null = null
  let tokens = 0
  const errors: Array<string> = []
  const changes: Array<FileChange> = []
  for (const e of events) {
    switch (e["type"]) {
      case "thread.started":
        sessionId = str(e["thread_id"]) ?? sessionId
        break
      case "turn.completed": {
        const usage = obj(e["usage"])
        if (usage !== null) tokens += num(usage["input_tokens"]) + num(usage["output_tokens"])
        break
      }
      case "turn.failed":
        errors.push(str(obj(e["error"])?.["message"]) ?? "the turn failed")
        break
      case "error":
        errors.push(str(e["message"]) ?? str(obj(e["error"])?.["message"]) ?? "error")
        break
      case "item.completed": {
        const item = obj(e["item"])
        if (item === null) break
        // `type` since codex 0.44; `item_type` (and assistant_message) before it
        const type = str(item["type"]) ?? str(item["item_type"])
        if (type === "agent_message" || type === "assistant_message") {
          finalMessage = str(item["text"]) ?? finalMessage
        } else if (type === "file_change" && item["status"] !== "failed") {
          for (const c of Array.isArray(item["changes"]) ? item["changes"] : []) {
            const path = str(obj(c)?.["path"])
            const change = CHANGE[str(obj(c)?.["kind"]) ?? ""]
            if (path !== null && path !== "" && change !== undefined) {
              changes.push({ path: relativeTo(cwd, path), change })
            }
          }
        } else if (type === "error") {
          errors.push(str(item["message"]) ?? "error")
        }
        break
      }
    }
  }
  return {
    finalMessage,
    errors,
    usage: { costUsd: 0, tokens },
    fileChanges: lastPerPath(changes),
    sessionId,
    ignoredLines: ignored
  }
}

export const driver: Driver = {
  name: "codex",
  defaultCommand: "codex",
  // Lantern's sandbox is the boundary: codex's own (Landlock, seccomp) cannot nest inside a user namespace
  args: (prompt) => [
    "exec",
    "--json",
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
    "--",
    prompt
  ],
  apiHost: "api.openai.com",
  parse
}
