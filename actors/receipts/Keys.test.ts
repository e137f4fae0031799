// The signing keys against a real nats-server: hosts racing to make the first key agree on one, rotation keeps
// the old public key published, and a host with another KEK refuses to sign, saying why.
import { randomBytes } from "node:crypto"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Nats } from "../../bus/Nats.ts"
import * as Topology from "../../bus/Topology.ts"
import { startServer, type TestServer } from "../../tests/support/Bus.ts"
import { SigningKeys } from "./Keys.ts"

let nats: TestServer

beforeAll(async () => {
  nats = await startServer("lantern-keys")
}, 30_000)

afterAll(async () => {
  await nats?.cleanup()
})

const withKeys = <A, E>(
  kek: Uint8Array,
  count: number,
  f: (hosts: ReadonlyArray<SigningKeys["Service"]>) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    yield* Topology.apply
    const hosts = yield* Effect.all(Array.from({ length: count }, () => SigningKeys.make(kek)))
    return yield* f(hosts)
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.fresh(Nats.layerUrl(nats.handle.url, "lantern-keys-test"))),
    Effect.runPromise
  )

describe("SigningKeys", () => {
  const kek = new Uint8Array(randomBytes(32))

  it("hosts racing for the first key all sign with the same one, and only it is published", async () => {
    const [ids, published] = await withKeys(kek, 4, (hosts) =>
      Effect.all([
        Effect.all(hosts.map((h) => Effect.map(h.current, (k) => k.keyId)), { concurrency: "unbounded" }),
        Effect.flatMap(Effect.all(hosts.map((h) => h.current)), () => hosts[0]!.published)
      ]))
    expect(new Set(ids).size).toBe(1)
    expect(published.map((k) => k.keyId)).toEqual([ids[0]])
  })

  it("rotation makes a new current key and keeps the old one published, retired", async () => {
    const [before, rotated, after, current] = await withKeys(
      kek,
      2,
      ([a, b]) => Effect.all([a!.current, a!.rotate, b!.published, b!.current])
    )
    expect(rotated.keyId).not.toBe(before.keyId)
    expect(current.keyId).toBe(rotated.keyId)
    expect(after.find((k) => k.keyId === before.keyId)?.retiredAt).toBeDefined()
    expect(after.find((k) => k.keyId === rotated.keyId)?.retiredAt).toBeUndefined()
  })

  it("a host with another KEK cannot sign and says which KEK sealed the key", async () => {
    const failure = await withKeys(new Uint8Array(randomBytes(32)), 1, ([h]) => Effect.flip(h!.current))
    expect(failure._tag).toBe("SigningKeyUnavailable")
    expect(failure.message).toMatch(/sealed under KEK [0-9a-f]{16}, this host has KEK [0-9a-f]{16}: set LANTERN_KEK/)
  })
})
