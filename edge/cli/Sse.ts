// A Server-Sent Events decoder (WHATWG "event stream interpretation"): fed text chunks split anywhere, it
// yields whole messages. Pure, so the CLI's stream reader and its tests share it.

export interface Message {
  /** The `id:` field of the message, or the last id seen on the stream when the message had none. */
  readonly id: string | null
  /** The `event:` field; "message" when absent. */
  readonly event: string
  /** The `data:` lines joined with "\n". */
  readonly data: string
}

export interface Decoder {
  /** Feeds a chunk; returns the messages it completed. */
  readonly push: (chunk: string) => ReadonlyArray<Message>
  /** The stream ended: a message not yet terminated by a blank line is dropped, as the spec says. */
  readonly end: () => ReadonlyArray<Message>
}

export const makeDecoder = (): Decoder => {
  let buffer = ""
  let first = true
  let lastId: string | null = null
  let event = ""
  let data: Array<string> = []
  let hasData = false

  const dispatch = (out: Array<Message>) => {
    if (hasData) out.push({ id: lastId, event: event === "" ? "message" : event, data: data.join("\n") })
    event = ""
    data = []
    hasData = false
  }

  const line = (text: string, out: Array<Message>) => {
    if (text === "") return dispatch(out)
    if (text.startsWith(":")) return
    const colon = text.indexOf(":")
    const field = colon === -1 ? text : text.slice(0, colon)
    let value = colon === -1 ? "" : text.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    switch (field) {
      case "event":
        event = value
        return
      case "data":
        data.push(value)
        hasData = true
        return
      case "id":
        if (!value.includes("\u0000")) lastId = value
        return
      default:
        // `retry` and unknown fields do not concern a one-shot reader.
        return
    }
  }

  const push = (chunk: string): ReadonlyArray<Message> => {
    if (first && chunk.length > 0) {
      first = false
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1)
    }
    buffer += chunk
    const out: Array<Message> = []
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer[i]
      if (c === "\n" || c === "\r") {
        // A "\r" at the very end may be the first half of "\r\n": wait for the next chunk.
        if (c === "\r" && i === buffer.length - 1) break
        line(buffer.slice(start, i), out)
        if (c === "\r" && buffer[i + 1] === "\n") i++
        start = i + 1
      }
    }
    buffer = buffer.slice(start)
    return out
  }

  const end = (): ReadonlyArray<Message> => {
    const out: Array<Message> = []
    if (buffer.endsWith("\r")) {
      line(buffer.slice(0, -1), out)
      buffer = ""
    }
    buffer = ""
    event = ""
    data = []
    hasData = false
    return out
  }

  return { push, end }
}
