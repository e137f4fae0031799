import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Sse from "./Sse.ts"

const decodeAll = (chunks: ReadonlyArray<string>) => {
  const d = Sse.makeDecoder()
  return [...chunks.flatMap((c) => d.push(c)), ...d.end()]
}

const wire = [
  "\uFEFF: keep-alive\n\n",
  "id: 1\r\nevent: RunStarted\r\ndata: {\"seq\":1}\r\n\r\n",
  "id: 2\revent: StepStarted\rdata: {\"seq\":\r\rdata:2}\r\r",
  "data: no event name\n\n",
  "retry: 1000\nunknown: field\nid: 3\nevent: RunSucceeded\ndata: {\"seq\":3}\n\n",
  "event: cut\ndata: never terminated"
].join("")

const expected: ReadonlyArray<Sse.Message> = [
  { id: "1", event: "RunStarted", data: "{\"seq\":1}" },
  { id: "2", event: "StepStarted", data: "{\"seq\":" },
  { id: "2", event: "message", data: "2}" },
  { id: "2", event: "message", data: "no event name" },
  { id: "3", event: "RunSucceeded", data: "{\"seq\":3}" }
]

describe("Sse.makeDecoder", () => {
  it("decodes LF, CRLF and CR line endings, comments, defaults, ids and multi-line data; drops an unterminated message", () => {
    expect(decodeAll([wire])).toEqual(expected)
  })

  it("joins data lines with a newline", () => {
    expect(decodeAll(["data: a\ndata: b\ndata\n\n"])).toEqual([{ id: null, event: "message", data: "a\nb\n" }])
  })

  it("gives the same messages however the stream is cut into chunks", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 12 }), (cuts) => {
        const points = [0, ...[...cuts].sort((a, b) => a - b), wire.length]
        const chunks = points.slice(1).map((p, i) => wire.slice(points[i], p))
        expect(decodeAll(chunks)).toEqual(expected)
      })
    )
  })

  it("does not take a CR at the end of a chunk and the LF opening the next for two line ends", () => {
    expect(decodeAll(["data: x\r", "\ndata: y\r", "\n\r", "\n"])).toEqual([{
      id: null,
      event: "message",
      data: "x\ny"
    }])
  })
})
