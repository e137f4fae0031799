// Secrets against a real nats-server: values round-trip sealed, a host with another KEK refuses clearly, a KEK
// rotation opens old secrets through LANTERN_KEK_PREVIOUS until a rewrap, and a ciphertext cannot be moved.
import { randomBytes } from "node:crypto"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Kv from "../../bus/Kv.ts"
import { Nats } from "../../bus/Nats.ts"
import * as Topology from "../../bus/Topology.ts"
import { startServer, type TestServer } from "../../tests/support/Bus.ts"
import { Audit, type AuditEntry } from "../audit/Audit.ts"
import { type Keks, Secrets } from "./Secrets.ts"

let nats: TestServer
const audited: Array<AuditEntry> = []
const recording = Layer.succeed(Audit, Audit.of({ record: (e) => Effect.sync(() => void audited.push(e)) }))

beforeAll(async () => {
  nats = await startServer("lantern-secrets")
}, 30_000)

afterAll(async () => {
  await nats?.cleanup()
})

const kek = () => new Uint8Array(randomBytes(32))

const withSecrets = <A, E>(keks: Keks, f: (s: Secrets["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    yield* Topology.apply
    return yield* f(yield* Secrets.make(keks))
  }).pipe(
    Effect.scoped,
    Effect.provide(recording),
    Effect.provide(Layer.fresh(Nats.layerUrl(nats.handle.url, "lantern-secrets-test"))),
    Effect.runPromise
  )

/** The secrets bucket as stored text, whatever it holds. */
const rawBucket = Kv.bucket({ name: Topology.SECRETS_BUCKET, value: Schema.String })

/** The raw KV entry of a secret. */
const raw = (key: string) =>
  Effect.gen(function*() {
    const kv = yield* Kv.open(rawBucket)
    const entry = Option.getOrNull(yield* kv.get(key))
    return entry === null ? null : { ...entry, string: () => entry.value }
  }).pipe(Effect.provide(Layer.fresh(Nats.layerUrl(nats.handle.url, "lantern-secrets-raw"))), Effect.runPromise)

const rawPut = (key: string, text: string) =>
  Effect.gen(function*() {
    const kv = yield* Kv.open(rawBucket)
    yield* kv.put(key, text)
  }).pipe(Effect.provide(Layer.fresh(Nats.layerUrl(nats.handle.url, "lantern-secrets-raw"))), Effect.runPromise)

describe("Secrets", () => {
  const keks: Keks = { current: kek(), previous: [] }

  it("seals a value at rest and opens it again; versions count up; lists show metadata only", async () => {
    const value = `sk-${randomBytes(16).toString("hex")}`
    const [first, second, resolved, listed] = await withSecrets(keks, (s) =>
      Effect.all([
        s.put("t-a", "openai.key", Redacted.make("old")),
        s.put("t-a", "openai.key", Redacted.make(value)),
        s.resolve("t-a", "lantern.secret://openai.key", "run:run_1"),
        s.list("t-a")
      ]))
    expect(first).toMatchObject({ created: true, secret: { name: "openai.key", version: 1 } })
    expect(second).toMatchObject({ created: false, secret: { name: "openai.key", version: 2 } })
    expect(Redacted.value(resolved)).toBe(value)
    expect(listed).toEqual([second.secret])
    const entry = await raw("t-a.openai.key")
    expect(entry?.string()).not.toContain(value)
    expect(entry?.string()).not.toContain(Buffer.from(value).toString("base64"))
    expect(JSON.parse(entry!.string())).toMatchObject({
      name: "openai.key",
      version: 2,
      kekId: expect.stringMatching(/^[0-9a-f]{16}$/)
    })
    expect(audited.find((e) => e.action === "secret.accessed" && e.target === "openai.key")).toMatchObject({
      tenant: "t-a",
      actor: "run:run_1",
      outcome: "allowed",
      detail: {}
    })
  })

  it("refuses bad URIs and unknown names; another tenant's secret is not found; delete removes it", async () => {
    const [badUri, otherTenant, afterDelete] = await withSecrets(keks, (s) =>
      Effect.gen(function*() {
        yield* s.put("t-a", "gone", Redacted.make("v"))
        const badUri = yield* Effect.flip(s.resolve("t-a", "lantern.secret://Bad Name"))
        const otherTenant = yield* Effect.flip(s.resolve("t-b", "lantern.secret://gone"))
        yield* s.remove("t-a", "gone")
        return [badUri, otherTenant, yield* Effect.flip(s.get("t-a", "gone"))] as const
      }))
    expect(badUri._tag).toBe("InvalidSecretUri")
    expect(otherTenant._tag).toBe("SecretNotFound")
    expect(afterDelete._tag).toBe("SecretNotFound")
    // purged: no live value is left
    expect(await raw("t-a.gone")).toBeNull()
  })

  it("a host with another KEK refuses, naming the KEK that sealed it", async () => {
    await withSecrets(keks, (s) => s.put("t-a", "sealed", Redacted.make("v")))
    const failure = await withSecrets(
      { current: kek(), previous: [] },
      (s) => Effect.flip(s.resolve("t-a", "lantern.secret://sealed"))
    )
    expect(failure._tag).toBe("SecretUnavailable")
    expect(failure.message).toMatch(/sealed under KEK [0-9a-f]{16}, this host has KEK [0-9a-f]{16}: set LANTERN_KEK/)
    expect(failure.message).not.toContain("\"v\"")
  })

  it("rotation: the new KEK opens old secrets through previous ones, and rewrap re-seals them all", async () => {
    const old = kek()
    await withSecrets(
      { current: old, previous: [] },
      (s) => Effect.all([s.put("t-r", "one", Redacted.make("1")), s.put("t-s", "two", Redacted.make("2"))])
    )
    const rotated: Keks = { current: kek(), previous: [old] }
    const [before, rewrap, again] = await withSecrets(
      rotated,
      (s) => Effect.all([s.resolve("t-r", "lantern.secret://one"), s.rewrap, s.rewrap])
    )
    expect(Redacted.value(before)).toBe("1")
    expect(rewrap.rewrapped).toBeGreaterThanOrEqual(2)
    expect(again.rewrapped).toBe(0)
    // the old KEK is no longer needed
    const [one, two] = await withSecrets(
      { current: rotated.current, previous: [] },
      (s) => Effect.all([s.resolve("t-r", "lantern.secret://one"), s.resolve("t-s", "lantern.secret://two")])
    )
    expect([Redacted.value(one), Redacted.value(two)]).toEqual(["1", "2"])
  })

  it("a ciphertext copied to another name or tenant fails authentication", async () => {
    await withSecrets(keks, (s) => s.put("t-a", "original", Redacted.make("top")))
    const text = (await raw("t-a.original"))!.string()
    await rawPut("t-a.copy", JSON.stringify({ ...JSON.parse(text), name: "copy" }))
    await rawPut("t-b.original", text)
    const [renamed, moved] = await withSecrets(
      keks,
      (s) =>
        Effect.all([
          Effect.flip(s.resolve("t-a", "lantern.secret://copy")),
          Effect.flip(s.resolve("t-b", "lantern.secret://original"))
        ])
    )
    for (const failure of [renamed, moved]) {
      expect(failure._tag).toBe("SecretUnavailable")
      expect(failure.message).toMatch(/fails authentication: it was altered or copied/)
    }
  })
})
