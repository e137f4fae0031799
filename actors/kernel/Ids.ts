// Identifier generation as a service: time-ordered, 26 lowercase base32 characters after a prefix
// (`run_…`, `evt_…`). Tests swap in a deterministic sequence.
import { randomBytes } from "node:crypto"
import { Clock, Context, Effect, Layer } from "effect"

export const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

/** 10 characters of milliseconds then 16 of randomness, like a ULID in lowercase Crockford base32. */
export const encode = (millis: number, random: Uint8Array): string => {
  let time = ""
  let t = millis
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time
    t = Math.floor(t / 32)
  }
  let rand = ""
  for (let i = 0; i < 16; i++) rand += ALPHABET[random[i]! % 32]!
  return time + rand
}

export class Ids extends Context.Service<Ids, {
  readonly next: (prefix: "run" | "evt" | "aud") => Effect.Effect<string>
}>()("lantern/actors/Ids") {
  static readonly layer = Layer.succeed(Ids, {
    next: (prefix) => Effect.map(Clock.currentTimeMillis, (now) => `${prefix}_${encode(now, randomBytes(16))}`)
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
