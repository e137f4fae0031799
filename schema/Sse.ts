// Server-Sent Events (`text/event-stream`) both ways: frames and comments encoded for the API's clients, and one
// incremental decoder (WHATWG "event stream interpretation") for every reader: model providers' streams, the CLI.

/** A decoded message. */
export interface Message {
  /** The `id:` field of the message, or the last id seen on the stream when the message had none. */
  readonly id: string | null
  /** The `event:` field; "message" when absent. */
  readonly event: string
  /** The `data:` lines joined with "\n". */
  readonly data: string
}

/** A message to encode. Without an `event` it decodes as "message"; without an `id` it keeps the last one. */
export interface Frame {
  readonly id?: string | undefined
  readonly event?: string | undefined
  /** Written one `data:` line per line: CR, LF and CRLF all come back as LF. */
  readonly data: string
  /** The reconnection time the reader should use, in milliseconds. */
  readonly retry?: number | undefined
}

const LINE_END = /\r\n|\r|\n/

/** A field value that fits on its line: a line end would start another field, and an id may not hold NUL. */
const field = (name: string, value: string) => {
  if (/[\r\n]/.test(value) || (name === "id" && value.includes("\u0000")))
    throw new TypeError(`an SSE ${name} cannot hold a line end${name === "id" ? " or NUL" : ""}`)
  return `${name}: ${value}\n`
}

/** One frame: its `id`, `event` and `retry` when given, its data lines, then the blank line that ends it. */
export const encode = (frame: Frame): string =>
  (frame.id === undefined ? "" : field("id", frame.id)) +
  (frame.event === undefined ? "" : field("event", frame.event)) +
  (frame.retry === undefined ? "" : field("retry", String(Math.max(0, Math.floor(frame.retry))))) +
  frame.data.split(LINE_END).map((line) => `data: ${line}\n`).join("") +
  "\n"

/** A comment (a keep-alive), which readers skip: one `:` line per line of `text`, then a blank line. */
export const comment = (text: string): string => text.split(LINE_END).map((line) => `: ${line}\n`).join("") + "\n"

export interface Decoder {
  /** Feeds a chunk of text, cut anywhere; returns the messages it completed. */
  readonly push: (chunk: string) => ReadonlyArray<Message>
  /** The stream ended: a message not yet terminated by a blank line is dropped, as the spec says. */
  readonly end: () => ReadonlyArray<Message>
  /** The reconnection time the last valid `retry:` field asked for, in milliseconds; null before any. */
  readonly retry: () => number | null
}

export const makeDecoder = (): Decoder => {
  let buffer = ""
  /** How much of `buffer` holds no line end (all of it, but a final "\r"): the next push scans on from there. */
  let scanned = 0
  let first = true
  let lastId: string | null = null
  let retry: number | null = null
  let event = ""
  let data: Array<string> = []

  const dispatch = (out: Array<Message>) => {
    if (data.length > 0) out.push({ id: lastId, event: event === "" ? "message" : event, data: data.join("\n") })
    event = ""
    data = []
  }

  const line = (text: string, out: Array<Message>) => {
    if (text === "") return dispatch(out)
    if (text.startsWith(":")) return
    const colon = text.indexOf(":")
    const name = colon === -1 ? text : text.slice(0, colon)
    let value = colon === -1 ? "" : text.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    switch (name) {
      case "event":
        event = value
        return
      case "data":
        data.push(value)
        return
      case "id":
        if (!value.includes("\u0000")) lastId = value
        return
      case "retry":
        if (/^[0-9]+$/.test(value)) retry = Number(value)
        return
      default:
        // unknown fields are ignored
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
    for (let i = scanned; i < buffer.length; i++) {
      const c = buffer[i]
      if (c === "\n" || c === "\r") {
        // a "\r" at the very end may be the first half of a "\r\n" still in flight: wait for the next chunk
        if (c === "\r" && i === buffer.length - 1) break
        line(buffer.slice(start, i), out)
        if (c === "\r" && buffer[i + 1] === "\n") i++
        start = i + 1
      }
    }
    buffer = buffer.slice(start)
    scanned = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length
    return out
  }

  const end = (): ReadonlyArray<Message> => {
    const out: Array<Message> = []
    // a "\r" held back for a "\n" that never came ended its line after all
    if (buffer.endsWith("\r")) line(buffer.slice(0, -1), out)
    buffer = ""
    scanned = 0
    event = ""
    data = []
    return out
  }

  return { push, end, retry: () => retry }
}
