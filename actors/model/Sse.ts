// Server-sent events (`text/event-stream`) as the model providers' streaming APIs send them: an incremental
// parser that takes decoded text however the network cut it and hands back whole events.

export interface Event {
  /** `message` when the server named none (OpenAI's streams); the `event:` field otherwise (Anthropic's). */
  readonly event: string
  readonly data: string
}

/** An incremental `text/event-stream` parser (WHATWG rules): feed decoded text as it arrives, get whole events. */
export const parser = () => {
  let buffer = ""
  let event = ""
  let data: Array<string> = []
  const onLine = (line: string, out: Array<Event>) => {
    if (line === "") {
      if (data.length > 0) out.push({ event: event === "" ? "message" : event, data: data.join("\n") })
      event = ""
      data = []
      return
    }
    if (line.startsWith(":")) return
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
    if (field === "event") event = value
    else if (field === "data") data.push(value)
  }
  return {
    feed: (chunk: string): Array<Event> => {
      buffer += chunk
      const out: Array<Event> = []
      const eol = /\r\n|\r|\n/g
      let start = 0
      for (let m = eol.exec(buffer); m !== null; m = eol.exec(buffer)) {
        // a final \r may be the first half of a \r\n still in flight
        if (m[0] === "\r" && m.index === buffer.length - 1) break
        onLine(buffer.slice(start, m.index), out)
        start = m.index + m[0].length
      }
      buffer = buffer.slice(start)
      return out
    }
  }
}
