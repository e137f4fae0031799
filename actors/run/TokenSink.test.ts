import { describe, expect, it } from "vitest"
import type { Frame } from "../../schema/Tokens.ts"
import * as TokenSink from "./TokenSink.ts"

/** Timers a test moves by hand. */
const manual = () => {
  let now = 0
  let due: { at: number; f: () => void } | null = null
  return {
    timers: {
      now: () => now,
      after: (ms: number, f: () => void) => {
        const entry = { at: now + ms, f }
        due = entry
        return () => {
          if (due === entry) due = null
        }
      }
    } satisfies TokenSink.Timers,
    advance: (ms: number) => {
      now += ms
      if (due !== null && due.at <= now) {
        const f = due.f
        due = null
        f()
      }
    }
  }
}

const step = { stepId: "turn-1", attempt: 1 }
const text = (t: string) => ({ _tag: "text" as const, text: t })

describe("TokenSink: coalescing live tokens", () => {
  it("the first delta goes out at once, later ones at most once a window, the rest on close", () => {
    const clock = manual()
    const frames: Array<Frame> = []
    const sink = TokenSink.make(step, (f) => frames.push(f), { timers: clock.timers, windowMs: 30 })
    sink.push(text("a"))
    sink.push(text("b"))
    sink.push(text("c"))
    expect(frames).toEqual([{ ...step, seq: 1, text: "a" }])
    clock.advance(30)
    expect(frames).toEqual([{ ...step, seq: 1, text: "a" }, { ...step, seq: 2, text: "bc" }])
    sink.push(text("d"))
    sink.close(false)
    expect(frames.at(-1)).toEqual({ ...step, seq: 3, text: "d" })
    sink.push(text("late"))
    clock.advance(100)
    expect(frames).toHaveLength(3)
  })

  it("a thousand deltas in one window are two frames, and the text is whole", () => {
    const clock = manual()
    const frames: Array<Frame> = []
    const sink = TokenSink.make(step, (f) => frames.push(f), { timers: clock.timers, windowMs: 30 })
    for (let i = 0; i < 1000; i++) sink.push(text(`${i} `))
    sink.close(false)
    expect(frames).toHaveLength(2)
    expect(frames.map((f) => ("text" in f ? f.text : "")).join("")).toBe(
      Array.from({ length: 1000 }, (_, i) => `${i} `).join("")
    )
  })

  it("a reset drops what is pending and tells viewers, only when they saw text", () => {
    const clock = manual()
    const frames: Array<Frame> = []
    const sink = TokenSink.make(step, (f) => frames.push(f), { timers: clock.timers, windowMs: 30 })
    sink.push({ _tag: "reset" })
    expect(frames).toEqual([])
    sink.push(text("x"))
    sink.push(text("y"))
    sink.push({ _tag: "reset" })
    clock.advance(30)
    expect(frames).toEqual([{ ...step, seq: 1, text: "x" }, { ...step, seq: 2, reset: true }])
  })

  it("a call that fails ends with a reset when text was given", () => {
    const clock = manual()
    const frames: Array<Frame> = []
    const sink = TokenSink.make(step, (f) => frames.push(f), { timers: clock.timers, windowMs: 30 })
    sink.push(text("half"))
    sink.close(true)
    expect(frames).toEqual([{ ...step, seq: 1, text: "half" }, { ...step, seq: 2, reset: true }])
  })

  it("an unwatched step publishes nothing, not even when it ends", () => {
    const clock = manual()
    const frames: Array<Frame> = []
    const sink = TokenSink.make(step, (f) => frames.push(f), { watched: () => false, timers: clock.timers })
    for (let i = 0; i < 100; i++) {
      sink.push(text(`${i} `))
      clock.advance(10)
    }
    sink.close(false)
    expect(frames).toEqual([])
  })

  it("a watch that begins mid-step gets the step's text so far with the next delta, then the rest", () => {
    const clock = manual()
    const frames: Array<Frame> = []
    let watched = false
    const sink = TokenSink.make(step, (f) => frames.push(f), { watched: () => watched, timers: clock.timers })
    sink.push(text("a"))
    clock.advance(40)
    sink.push(text("b"))
    expect(frames).toEqual([])
    watched = true
    sink.push(text("c"))
    expect(frames).toEqual([{ ...step, seq: 1, text: "abc" }])
    sink.push(text("d"))
    sink.close(false)
    expect(frames).toEqual([{ ...step, seq: 1, text: "abc" }, { ...step, seq: 2, text: "d" }])
  })

  it("a reset reaches whoever saw text, even once the interest has lapsed", () => {
    const clock = manual()
    const frames: Array<Frame> = []
    let watched = true
    const sink = TokenSink.make(step, (f) => frames.push(f), { watched: () => watched, timers: clock.timers })
    sink.push(text("half"))
    watched = false
    sink.close(true)
    expect(frames).toEqual([{ ...step, seq: 1, text: "half" }, { ...step, seq: 2, reset: true }])
  })
})
