// A model step's live tokens, coalesced on their way to the bus (ADR 0061): the first delta goes out at once, later
// ones at most every `windowMs`, the rest when the call ends; a reset drops what is pending. Only while the run is
// watched (ADR 0066): unwatched, the text waits, so a watch that begins mid-step gets it all at the next delta, and a
// step nobody watches publishes nothing. Cheap on the run path: a string append per delta and a publish per window.
import type { Delta } from "../model/ModelProvider.ts"
import type { Frame } from "../../schema/Tokens.ts"

export const WINDOW_MS = 30

export interface Timers {
  readonly now: () => number
  /** Runs `f` after `ms`; the returned function cancels it. */
  readonly after: (ms: number, f: () => void) => () => void
}

const realTimers: Timers = {
  now: () => performance.now(),
  after: (ms, f) => {
    const t = setTimeout(f, ms)
    return () => clearTimeout(t)
  }
}

const always = () => true

export interface Sink {
  readonly push: (delta: Delta) => void
  /** Publishes what is pending; after it, deltas are ignored. `failed`: the call failed, so its text is void. */
  readonly close: (failed: boolean) => void
}

export interface Options {
  /** Whether the run is watched now, asked at each flush; always, by default. */
  readonly watched?: () => boolean
  readonly timers?: Timers
  readonly windowMs?: number
}

/** The sink of one step attempt's deltas, published as frames through `publish` while the run is watched. */
export const make = (
  step: { readonly stepId: string; readonly attempt: number },
  publish: (frame: Frame) => void,
  options: Options = {}
): Sink => {
  const { watched = always, timers = realTimers, windowMs = WINDOW_MS } = options
  let seq = 0
  let pending = ""
  let gave = false
  let lastAt = Number.NEGATIVE_INFINITY
  let cancel: (() => void) | null = null
  let closed = false
  const flush = () => {
    cancel?.()
    cancel = null
    // unwatched, the text waits for a watcher (or the end of the call); the next delta asks again
    if (pending === "" || !watched()) return
    publish({ stepId: step.stepId, attempt: step.attempt, seq: ++seq, text: pending })
    pending = ""
    gave = true
    lastAt = timers.now()
  }
  const reset = () => {
    cancel?.()
    cancel = null
    pending = ""
    // whoever was shown text must drop it, even if its interest has just lapsed
    if (gave) publish({ stepId: step.stepId, attempt: step.attempt, seq: ++seq, reset: true })
    gave = false
  }
  return {
    push: (delta) => {
      if (closed) return
      if (delta._tag === "reset") return reset()
      pending += delta.text
      const wait = lastAt + windowMs - timers.now()
      if (wait <= 0) flush()
      else if (cancel === null) cancel = timers.after(wait, flush)
    },
    close: (failed) => {
      if (closed) return
      if (failed) reset()
      else flush()
      closed = true
    }
  }
}
