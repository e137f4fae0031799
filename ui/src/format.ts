// How the cockpit writes numbers and times.

export const usd = (n: number): string => (n === 0 ? "$0" : n < 0.01 ? `$${n.toFixed(6)}` : `$${n.toFixed(4)}`)

export const tokens = (tin: number, tout: number): string => `${tin.toLocaleString()} / ${tout.toLocaleString()}`

/** How long ago `iso` was, coarsely (`4s`, `3m`, `2h`, `5d`), against `now` in epoch ms. */
export const age = (iso: string, now: number): string => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86_400)}d`
}

export const json = (v: unknown): string => {
  if (typeof v === "string") return v
  try {
    return JSON.stringify(v, null, 2)
  } catch {
    return String(v)
  }
}
