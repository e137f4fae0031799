// Identifier generation as a service: time-ordered, 26 lowercase base32 characters after a prefix
// (`run_…`, `evt_…`). Tests swap in a deterministic sequence.
import { randomFillSync } from "node:crypto"
import { Clock, Context, Effect, Layer } from "effect"

// the encoding is pure and shared with the read models (api key ids): it lives in schema/
export { ALPHABET, encode } from "../../schema/Ids.ts"
import { encode } from "../../schema/Ids.ts"

/** Randomness drawn from the OS 4 KiB at a time: one system call per 256 ids, not one per id (the run path's hot spot). */
const POOL = new Uint8Array(4096)
let used = POOL.length
const random16 = (): Uint8Array => {
  if (used + 16 > POOL.length) {
    randomFillSync(POOL)
    used = 0
  }
  used += 16
  // a copy: the pool is refilled in place later
  return POOL.slice(used - 16, used)
}

export class Ids extends Context.Service<Ids, {
  readonly next: (
    prefix: "run" | "evt" | "aud" | "wl" | "evr" | "tsk" | "sch" | "sev" | "qfw" | "snp" | "exp" | "inv"
  ) => Effect.Effect<string>
}>()("lantern/actors/Ids") {
  static readonly layer = Layer.succeed(Ids, {
    next: (prefix) => Effect.map(Clock.currentTimeMillis, (now) => `${prefix}_${encode(now, random16())}`)
  })

  /** Deterministic ids for tests: a counter in the random part. */
  static readonly layerTest = Layer.sync(Ids, () => {
    let n = 0
    return {
      next: (prefix) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          n++
          const random = new Uint8Array(16)
          for (let i = 0, v = n; i < 16; i++, v = Math.floor(v / 32)) random[15 - i] = v % 32
          return `${prefix}_${encode(now, random)}`
        })
    }
  })
}
