// Server-sent events as the model providers' streaming APIs send them, read with the one SSE decoder
// (schema/Sse.ts): text goes in however the network cut it, whole events come out.
import * as Sse from "../../schema/Sse.ts"

export interface Event {
  /** `message` when the server named none (OpenAI's streams); the `event:` field otherwise (Anthropic's). */
  readonly event: string
  readonly data: string
}

/** An incremental `text/event-stream` parser: feed decoded text as it arrives, get whole events. */
export const parser = () => {
  const decoder = Sse.makeDecoder()
  return {
    feed: (chunk: string): Array<Event> => decoder.push(chunk).map(({ data, event }) => ({ event, data }))
  }
}
