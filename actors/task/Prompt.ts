// What a model-backed adapter (ollama, agent-cli) tells its model or coding agent: the task's fields and the outcome
// contract it answers with. Pure: the same task always gives the same prompt, so an attempt's bundle hash is stable.
import * as Canonical from "../../schema/Canonical.ts"
import { OUTCOME_STATUSES } from "../../schema/Task.ts"

/** The task fields a prompt is made of (AttemptContext's). */
export interface TaskFields {
  readonly kind: string
  readonly subject: string | null
  readonly description: string | null
  readonly payload: unknown
}

/** The outcome contract, as the model reads it. */
export const CONTRACT = [
  "When you are done, end your answer with one JSON object in a ```json fenced block, and nothing after it:",
  "{",
  `  "status": one of ${OUTCOME_STATUSES.map((s) => `"${s}"`).join(", ")},`,
  "  \"operatorSummary\": what you did, for the operator, in your own words (not the task restated),",
  "  \"machineStatus\": a short code such as \"ok\", \"done\", \"continue\" or \"tests_failed\",",
  "  \"fileChanges\": [{\"path\": \"relative/path\", \"change\": \"created\" | \"modified\" | \"deleted\"}],",
  "  \"artifactPaths\": [\"relative/paths/of/files/you/produced\"],",
  "  \"followUpTasks\": [{\"kind\": \"...\", \"source\": \"...\", \"payload\": {}, \"description\": \"...\"}],",
  "  \"externalMessages\": [{\"channel\": \"...\", \"to\": \"...\", \"text\": \"...\"}]",
  "}",
  "Paths are relative to your working directory; list only files that exist when you finish.",
  "Report \"blocked\" (with the reason) rather than \"completed\" if you could not do the task."
].join("\n")

/** The system message: the role and the contract. */
export const system = (files: boolean): string =>
  [
    "You carry out one task of an operator's queue.",
    files
      ? "Your current working directory is the task's own: create files only under it."
      : "You have no file system: report no fileChanges and no artifactPaths.",
    CONTRACT
  ].join("\n")

/** The task itself, field by field; the payload as canonical JSON. */
export const task = (t: TaskFields): string =>
  [
    `Task kind: ${t.kind}`,
    ...(t.subject === null ? [] : [`Subject: ${t.subject}`]),
    ...(t.description === null ? [] : ["Description:", t.description]),
    "Payload (JSON):",
    payloadText(t.payload)
  ].join("\n")

const payloadText = (payload: unknown): string => {
  try {
    return Canonical.stringify(payload ?? null)
  } catch {
    return "null"
  }
}

/** One prompt for a CLI that takes a single message: the system part, then the task. */
export const single = (t: TaskFields, files: boolean): string => `${system(files)}\n\n${task(t)}`
