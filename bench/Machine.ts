// The machine's speed, as a fixed CPU workload timed at the start and at the end of a bench run. Sessions run on
// machines of different speed, and one machine's speed drifts with its neighbours: figures from two runs compare
// through this yardstick, not by their absolute values.
import { createHash } from "node:crypto"

const BLOCK = Buffer.alloc(1 << 20, 7)

/** One pass: 3e7 JavaScript loop iterations and SHA-256 over 32 MiB; ms of this process's CPU. */
const pass = (): number => {
  const began = process.cpuUsage()
  let sum = 0
  for (let i = 0; i < 3e7; i++) sum += i % 7
  const hash = createHash("sha256")
  for (let i = 0; i < 32; i++) hash.update(BLOCK)
  hash.digest()
  const used = process.cpuUsage(began)
  // the loop's result is used, so it cannot be left out
  if (sum < 0) throw new Error("unreachable")
  return (used.user + used.system) / 1000
}

/** The least of three passes (the least disturbed one), CPU ms: lower is a faster machine. */
export const yardstick = (): number => Math.min(pass(), pass(), pass())

export interface Result {
  readonly startMs: number
  readonly endMs: number
}

export const render = (r: Result): string =>
  `machine yardstick: ${r.startMs.toFixed(0)} ms at the start, ${
    r.endMs.toFixed(0)
  } ms at the end (CPU ms of a fixed workload, bench/Machine.ts; lower is faster). Compare figures of two runs through it`

export const json = (r: Result): string =>
  `BENCH_MACHINE_JSON ${JSON.stringify({ startMs: Number(r.startMs.toFixed(1)), endMs: Number(r.endMs.toFixed(1)) })}`
