// A message of a model conversation, as the run core builds it and every model provider sends it: shared by
// actors/run (which folds a run's journal into the conversation) and actors/model (which speaks it to providers).
import type { ToolCall } from "./Events.ts"

export interface Message {
  readonly role: "system" | "user" | "assistant" | "tool"
  readonly content: string | null
  readonly toolCalls?: ReadonlyArray<ToolCall>
  readonly toolCallId?: string
}
