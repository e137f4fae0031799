// Model calls of a sandboxed workload (ADR 0062), pure: the OpenAI-compatible `POST /v1/chat/completions` body its
// harness forwards, read into the ModelProvider port's request, and the router's answer (or a refusal) written back
// in OpenAI's shapes, so a workload's OpenAI client works unchanged against its harness.
import type { Request, Response } from "../model/ModelProvider.ts"
import type { Message } from "../../schema/Message.ts"

/** What the host answers the harness: an HTTP status and the JSON body the workload gets. */
export interface Answer {
  readonly status: number
  readonly body: unknown
}

/** An OpenAI-style error answer (`{error: {message, type, code, param}}`). */
export const error = (
  status: number,
  type: string,
  code: string,
  message: string,
  param: string | null = null
): Answer => ({ status, body: { error: { message, type, code, param } } })

/** The one answer to every refused token, whatever the reason: a caller learns nothing from which it was. */
export const REFUSED = error(401, "authentication_error", "refused", "refused")

const MAX_MESSAGES = 256
const ROLES = new Set(["system", "user", "assistant", "developer"])

/** A message's text: a string, null, or text parts joined; undefined when it is anything else. */
const textOf = (content: unknown): string | null | undefined => {
  if (typeof content === "string") return content
  if (content === null || content === undefined) return null
  if (!Array.isArray(content)) return undefined
  // content parts: only text is passed on (images and audio are not supported here)
  const parts = content.map((p: unknown) =>
    p !== null && typeof p === "object" && (p as Record<string, unknown>)["type"] === "text" &&
      typeof (p as Record<string, unknown>)["text"] === "string"
      ? (p as Record<string, string>)["text"]
      : null
  )
  return parts.some((p) => p === null) ? undefined : parts.join("")
}

/**
 * The port's request for an OpenAI chat completion body, or the 400 to answer. Non-streaming text chat only:
 * `stream: true`, `tools` and non-text content parts are refused by name rather than dropped silently.
 */
export const parse = (
  body: unknown,
  tenant: string,
  idempotencyKey: string
): { readonly _tag: "Request"; readonly request: Request } | { readonly _tag: "Invalid"; readonly answer: Answer } => {
  const bad = (param: string, message: string) => ({
    _tag: "Invalid" as const,
    answer: error(400, "invalid_request_error", "invalid_request", message, param)
  })
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return bad("body", "the body must be a JSON object")
  }
  const b = body as Record<string, unknown>
  const model = b["model"]
  if (typeof model !== "string" || model === "" || model.length > 200) {
    return bad("model", "model must be a model name or a capability alias such as auto")
  }
  if (b["stream"] === true) return bad("stream", "streaming is not supported through the harness; send stream: false")
  if (Array.isArray(b["tools"]) && b["tools"].length > 0) {
    return bad("tools", "tools are not supported through the harness")
  }
  const raw = b["messages"]
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_MESSAGES) {
    return bad("messages", `messages must be an array of 1 to ${MAX_MESSAGES} messages`)
  }
  const messages: Array<Message> = []
  for (const [i, m] of raw.entries()) {
    const role = m !== null && typeof m === "object" ? (m as Record<string, unknown>)["role"] : undefined
    if (typeof role !== "string" || !ROLES.has(role)) {
      return bad(`messages[${i}].role`, "role must be system, developer, user or assistant")
    }
    const content = textOf((m as Record<string, unknown>)["content"])
    if (content === undefined) return bad(`messages[${i}].content`, "content must be text or text parts")
    messages.push({ role: role === "developer" ? "system" : role as Message["role"], content })
  }
  const maxTokens = b["max_completion_tokens"] ?? b["max_tokens"]
  if (maxTokens !== undefined && maxTokens !== null && (!Number.isInteger(maxTokens) || (maxTokens as number) < 1)) {
    return bad("max_tokens", "max_tokens must be a positive integer")
  }
  const temperature = b["temperature"]
  if (temperature !== undefined && temperature !== null && (typeof temperature !== "number" || temperature < 0)) {
    return bad("temperature", "temperature must be a number ≥ 0")
  }
  return {
    _tag: "Request",
    request: {
      model,
      messages,
      tools: [],
      idempotencyKey,
      tenant,
      ...(typeof maxTokens === "number" ? { maxTokens } : {}),
      ...(typeof temperature === "number" ? { temperature } : {})
    }
  }
}

/** The router's answer as an OpenAI chat completion, with Lantern's usage (cost, route) beside OpenAI's. */
export const completion = (
  callId: string,
  createdSeconds: number,
  response: Response
): Answer => {
  const { answer } = response
  const chosen = response.route?.chosen ?? `${answer.provider}/${answer.model}`
  return {
    status: 200,
    body: {
      id: `chatcmpl-${callId}`,
      object: "chat.completion",
      created: createdSeconds,
      model: answer.model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: answer.content ?? "" },
        finish_reason: answer.finishReason
      }],
      usage: {
        prompt_tokens: response.tokensIn,
        completion_tokens: response.tokensOut,
        total_tokens: response.tokensIn + response.tokensOut
      },
      lantern: { costUsd: response.costUsd, chosen, cached: response.route?.cached ?? false }
    }
  }
}
