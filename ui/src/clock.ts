// The current time as a signal, ticking each second while its owner lives (for age columns).
import { createSignal, onCleanup } from "solid-js"

export const createNow = (everyMs = 1000) => {
  const [now, setNow] = createSignal(Date.now())
  const timer = setInterval(() => setNow(Date.now()), everyMs)
  onCleanup(() => clearInterval(timer))
  return now
}

/** The message of whatever was thrown. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))
