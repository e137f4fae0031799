// The signing keys against a real nats-server: hosts racing to make the first key agree on one, rotation keeps
// the old public key published, and a host with another KEK refuses to sign, saying why.
import { randomBytes } from "node:crypto"
import { connect } from "@nats-io/transport-node"
import { Context, Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Nats } from "../../bus/Nats.ts"
import * as Topology from "../../bus/Topology.ts"
import { startServer, type TestServer } from "../../tests/support/Bus.ts"
import sodium from "libsodium-wrappers"
import { freshKeyPair, SigningKeys, signDetached } from "./Keys.ts"

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

/** A host's signing keys on a connection of its own (as another process would have), until the scope closes. */
const host = (kek: Uint8Array, name: string) =>
  Effect.map(
    Layer.build(
      Layer.effect(SigningKeys, SigningKeys.make(kek)).pipe(
        Layer.provideMerge(Layer.fresh(Nats.layerUrl(nats.handle.url, name)))
      )
    ),
    (c) => ({ keys: Context.get(c, SigningKeys), nc: Context.get(c, Nats).nc })
  )

/** The host's current key once it is `keyId` (deadline polling), or the last one it gave after 5 s. */
const signsWith = (host: SigningKeys["Service"], keyId: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 5_000
    for (;;) {
      const key = yield* host.current
      if (key.keyId === keyId || Date.now() > deadline) return key
      yield* Effect.sleep("10 millis")
    }
  })

describe("Ed25519 through node:crypto (ADR 0090)", () => {
  it("makes key pairs in libsodium's shape and the very signatures libsodium makes with them", async () => {
    await sodium.ready
    const seen = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const pair = freshKeyPair()
      expect(pair.publicKey).toHaveLength(32)
      expect(pair.privateKey).toHaveLength(64)
      // libsodium derives the same pair from the seed
      const again = sodium.crypto_sign_seed_keypair(pair.privateKey.slice(0, 32))
      expect(Buffer.from(again.publicKey).equals(Buffer.from(pair.publicKey))).toBe(true)
      expect(Buffer.from(again.privateKey).equals(Buffer.from(pair.privateKey))).toBe(true)
      const message = new Uint8Array(randomBytes(100 + i * 37))
      const signature = signDetached(message, pair.privateKey)
      expect(Buffer.from(signature).equals(Buffer.from(sodium.crypto_sign_detached(message, pair.privateKey)))).toBe(
        true
      )
      // the key object is kept per secret key: the second signature is made with it, and is the same
      expect(Buffer.from(signDetached(message, pair.privateKey)).equals(Buffer.from(signature))).toBe(true)
      expect(sodium.crypto_sign_verify_detached(signature, message, pair.publicKey)).toBe(true)
      seen.add(Buffer.from(pair.publicKey).toString("hex"))
    }
    expect(seen.size).toBe(20)
  })
})

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
    const [before, rotated, after, current] = await withKeys(kek, 2, ([a, b]) =>
      Effect.gen(function*() {
        const before = yield* a!.current
        const rotated = yield* a!.rotate
        const after = yield* b!.published
        // the other host signs with the new key once its watch of the pointer has the change
        const current = yield* signsWith(b!, rotated.keyId)
        return [before, rotated, after, current] as const
      }))
    expect(rotated.keyId).not.toBe(before.keyId)
    expect(current.keyId).toBe(rotated.keyId)
    expect(after.find((k) => k.keyId === before.keyId)?.retiredAt).toBeDefined()
    expect(after.find((k) => k.keyId === rotated.keyId)?.retiredAt).toBeUndefined()
  })

  it("a rotation on one host reaches another's signing within moments, and signing reads nothing from the bus", async () => {
    const { reads, before, rotated, after } = await Effect.gen(function*() {
      yield* Topology.apply
      // two hosts, each with its own connection, as two processes would be
      const a = yield* host(kek, "lantern-keys-a")
      const b = yield* host(kek, "lantern-keys-b")
      const before = yield* signsWith(b.keys, (yield* a.keys.current).keyId)
      // until its watch has the pointer, a fresh host reads it: wait for one call that sends nothing
      const deadline = Date.now() + 5_000
      for (let sent = -1; sent !== b.nc.stats().outMsgs && Date.now() < deadline;) {
        sent = b.nc.stats().outMsgs
        yield* b.keys.current
        yield* Effect.sleep("10 millis")
      }
      const sent = b.nc.stats().outMsgs
      for (let i = 0; i < 20; i++) yield* b.keys.current
      const reads = b.nc.stats().outMsgs - sent
      const rotated = yield* a.keys.rotate
      const after = yield* signsWith(b.keys, rotated.keyId)
      return { reads, before, rotated, after }
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.fresh(Nats.layerUrl(nats.handle.url, "lantern-keys-test"))),
      Effect.runPromise
    )
    expect(reads).toBe(0)
    expect(rotated.keyId).not.toBe(before.keyId)
    expect(after.keyId).toBe(rotated.keyId)
  })

  it("a burst of receipts on a host that has not opened the current key yet reads it once", async () => {
    const sniffer = await connect({ servers: nats.handle.url })
    try {
      const { reads, ids } = await Effect.gen(function*() {
        yield* Topology.apply
        const a = yield* host(kek, "lantern-keys-burst-a")
        const keyId = (yield* a.keys.current).keyId
        // every read of that key's entry, by any host (a KV get is a direct get naming the key's subject)
        let reads = 0
        sniffer.subscribe("$JS.API.DIRECT.GET.>", {
          callback: (_e, m) => void (m.subject.endsWith(`.key.${keyId}`) && reads++)
        })
        yield* Effect.promise(() => sniffer.flush())
        const b = yield* host(kek, "lantern-keys-burst-b")
        const keys = yield* Effect.all(Array.from({ length: 40 }, () => b.keys.current), { concurrency: "unbounded" })
        yield* Effect.promise(() => sniffer.flush())
        return { reads, ids: [...new Set(keys.map((k) => k.keyId)), keyId] }
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.fresh(Nats.layerUrl(nats.handle.url, "lantern-keys-test"))),
        Effect.runPromise
      )
      expect(new Set(ids).size).toBe(1)
      expect(reads).toBe(1)
    } finally {
      await sniffer.close()
    }
  })

  it("a host with another KEK cannot sign and says which KEK sealed the key", async () => {
    const failure = await withKeys(new Uint8Array(randomBytes(32)), 1, ([h]) => Effect.flip(h!.current))
    expect(failure._tag).toBe("SigningKeyUnavailable")
    expect(failure.message).toMatch(/sealed under KEK [0-9a-f]{16}, this host has KEK [0-9a-f]{16}: set LANTERN_KEK/)
  })
})
