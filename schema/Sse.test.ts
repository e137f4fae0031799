// The SSE codec: the decoder follows the WHATWG event stream rules however the stream is cut into chunks, and
// decoding what the encoder wrote gives back the frames (property test).
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Sse from "./Sse.ts"

const decodeAll = (chunks: ReadonlyArray<string>) => {
  const d = Sse.makeDecoder()
  return [...chunks.flatMap((c) => d.push(c)), ...d.end()]
}

/** `text` cut at `cuts` (positions inside it, any order, repeats allowed). */
const cut = (text: string, cuts: ReadonlyArray<number>) => {
  const points = [0, ...[...new Set(cuts)].filter((p) => p > 0 && p < text.length).sort((a, b) => a - b), text.length]
  return points.slice(1).map((p, i) => text.slice(points[i], p))
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

  it("joins data lines with a newline; a field without a colon has an empty value", () => {
    expect(decodeAll(["data: a\ndata: b\ndata\n\n"])).toEqual([{ id: null, event: "message", data: "a\nb\n" }])
  })

  it("strips one space after the colon, no more", () => {
    expect(decodeAll(["data:x\n\ndata:  two\n\n"]).map((m) => m.data)).toEqual(["x", " two"])
  })

  it("dispatches nothing for a blank line without data, and forgets the event name it had", () => {
    expect(decodeAll(["event: lost\n\ndata: x\n\n"])).toEqual([{ id: null, event: "message", data: "x" }])
  })

  it("keeps the last id for later messages, ignores an id holding NUL, and takes an empty id", () => {
    expect(decodeAll(["id: 7\ndata: a\n\nid: 8\u00009\ndata: b\n\nid\ndata: c\n\n"]).map((m) => m.id)).toEqual([
      "7",
      "7",
      ""
    ])
  })

  it("strips a byte order mark only at the very start of the stream", () => {
    expect(decodeAll(["\uFEFF", "data: a\n\n"])).toEqual([{ id: null, event: "message", data: "a" }])
    expect(decodeAll(["data: a\n\n\uFEFFdata: b\n\n"]).map((m) => m.data)).toEqual(["a"])
  })

  it("takes the reconnection time from a retry field of digits only", () => {
    const d = Sse.makeDecoder()
    expect(d.retry()).toBe(null)
    d.push("retry: 1500\n")
    expect(d.retry()).toBe(1500)
    d.push("retry: 2s\nretry: -1\nretry:\n")
    expect(d.retry()).toBe(1500)
  })

  it("gives the same messages however the stream is cut into chunks", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 12 }), (cuts) => {
        expect(decodeAll(cut(wire, cuts))).toEqual(expected)
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

  it("takes a CR held back at the end of the stream for the line end it was", () => {
    expect(decodeAll(["data: x\n\r"])).toEqual([{ id: null, event: "message", data: "x" }])
  })
})

describe("Sse.encode and Sse.comment", () => {
  it("write the frames the API has always sent", () => {
    expect(Sse.encode({ id: "3", event: "RunStarted", data: "{\"a\":1}" })).toBe(
      "id: 3\nevent: RunStarted\ndata: {\"a\":1}\n\n"
    )
    expect(Sse.encode({ data: "a\r\nb\rc\n", retry: 250 })).toBe("retry: 250\ndata: a\ndata: b\ndata: c\ndata: \n\n")
    expect(Sse.comment("keep-alive")).toBe(": keep-alive\n\n")
    expect(Sse.comment("two\nlines")).toBe(": two\n: lines\n\n")
  })

  it("refuse an id or event that would break its line", () => {
    expect(() => Sse.encode({ event: "a\nb", data: "" })).toThrow(TypeError)
    expect(() => Sse.encode({ id: "1\r", data: "" })).toThrow(TypeError)
    expect(() => Sse.encode({ id: "1\u00002", data: "" })).toThrow(TypeError)
  })
})

/** Text on one line (no CR, no LF), any Unicode. */
const oneLine = fc.string({ unit: "grapheme", maxLength: 12 }).map((s) => s.replace(/[\r\n]/g, ""))

const frame = fc.record({
  id: fc.option(oneLine.map((s) => s.replace(/\u0000/g, "")), { nil: undefined }),
  event: fc.option(oneLine.filter((s) => s !== ""), { nil: undefined }),
  data: fc.array(oneLine, { minLength: 1, maxLength: 4 }).map((lines) => lines.join("\n")),
  comment: fc.option(oneLine, { nil: undefined })
})

describe("Sse property", () => {
  it("decode(encode(frames)) gives back the frames, however the stream is cut, comments and BOM aside", () => {
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 8 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 16 }),
        (frames, bom, cuts) => {
          const text = (bom ? "\uFEFF" : "") +
            frames.map((f) => (f.comment === undefined ? "" : Sse.comment(f.comment)) + Sse.encode(f)).join("")
          let id: string | null = null
          const want = frames.map((f): Sse.Message => {
            id = f.id ?? id
            return { id, event: f.event ?? "message", data: f.data }
          })
          expect(decodeAll(cut(text, cuts.map((c) => c % (text.length + 1))))).toEqual(want)
        }
      )
    )
  })
})
