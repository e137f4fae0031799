// The bus down under a live `lantern serve` while requests write KV buckets: a secret write, a signing-key
// creation (rotation) and the first issue of a finished run's receipt each answer 503 with Retry-After, leave
// nothing half-written in their buckets, and succeed once the nats-server is back (the same process, reconnected).
// And a write the bus refuses after a successful read is an error too, never taken for another writer's win.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, Option, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Kv from "../bus/Kv.ts"
import { Nats } from "../bus/Nats.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Topology from "../bus/Topology.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

const TENANT = "dev"

let dir: string
let bus: NatsServer.Handle
let stack: StackProcess
let call: ReturnType<typeof api>

/** Sets the largest message the bucket's stream accepts (-1: no limit), so that its writes are refused. */
const limitWrites = (name: string, bytes: number) =>
  onBus(Effect.gen(function*() {
    const { jsm } = yield* Nats
    yield* Effect.promise(async () => {
      const info = await jsm.streams.info(`KV_${name}`)
      await jsm.streams.update(`KV_${name}`, { ...info.config, max_msg_size: bytes })
    })
  }))

/** A finished run of `calc` whose receipt is not issued yet: the driver issued it at the end, so take it back out. */
const finishedWithoutReceipt = async () => {
  const started = await call("POST", "/v1/runs", { agentName: "calc", input: "2+2" })
  expect(started.status, started.text).toBe(201)
  const runId = started.json.id as string
  await eventually(
    async () => (await call("GET", `/v1/runs/${runId}`)).json?.status === "succeeded",
    30_000,
    `run ${runId} to succeed`
  )
  const receiptKey = `${TENANT}.${runId}`
  await eventually(
    async () => (await contents(Topology.RECEIPTS_BUCKET))[receiptKey],
    10_000,
    "the receipt the driver issued"
  )
  await onBus(Effect.flatMap(Kv.open(raw(Topology.RECEIPTS_BUCKET)), (kv) => kv.purge(receiptKey)))
  return { runId, receiptKey }
}

/** A bucket as stored text, whatever its owner's Schema. */
const raw = (name: string) => Kv.bucket({ name, value: Schema.String })

/** Runs `f` on a fresh connection of the test's own to the bus. */
const onBus = <A, E>(f: Effect.Effect<A, E, Nats>) =>
  Effect.runPromise(f.pipe(Effect.provide(Layer.fresh(Nats.layerUrl(bus.url, "lantern-kv-outage-test")))))

/** Every live key of a bucket with its value. */
const contents = (name: string) =>
  onBus(Effect.gen(function*() {
    const kv = yield* Kv.open(raw(name))
    const keys = yield* kv.keys()
    const entries = yield* Effect.forEach(keys, (k) =>
      Effect.map(Effect.orDie(kv.get(k)), (e) => [k, Option.getOrThrow(e).value] as const))
    return Object.fromEntries(entries) as Record<string, string>
  }))

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lantern-kv-outage-"))
  bus = await NatsServer.start({ storeDir: join(dir, "js") })
  stack = await startStack({ natsUrl: bus.url })
  call = api(stack)
  const agent = await call("POST", "/v1/agents", { name: "calc", spec: { systemPrompt: "You compute.", maxTurns: 4 } })
  expect(agent.status, agent.text).toBe(201)
}, 240_000)

afterAll(async () => {
  await stack?.stop()
  await bus?.kill()
  rmSync(dir, { recursive: true, force: true })
})

describe("KV writes while the bus is down", () => {
  it("answer 503 with Retry-After, write nothing, and succeed once the bus is back", async () => {
    const { runId, receiptKey } = await finishedWithoutReceipt()

    const keysBefore = await contents(Topology.SIGNING_KEYS_BUCKET)
    expect(keysBefore["current"]).toBeDefined()
    const secretsBefore = await contents(Topology.SECRETS_BUCKET)
    const receiptsBefore = await contents(Topology.RECEIPTS_BUCKET)
    expect(receiptsBefore[receiptKey]).toBeUndefined()

    const secretWrite = () => call("POST", "/v1/secrets", { name: "outage.key", value: "s3cret-value" })
    const rotate = () => call("POST", "/v1/admin/signing-keys/rotate", {})
    const receiptIssue = () => call("GET", `/v1/runs/${runId}/receipt`)
    const requests = () => Promise.all([secretWrite(), rotate(), receiptIssue()])

    const port = bus.port
    await bus.kill()
    let during: Awaited<ReturnType<typeof requests>>
    try {
      during = await requests()
    } finally {
      bus = await NatsServer.start({ storeDir: join(dir, "js"), port })
    }
    for (const r of during) {
      expect(r.status, r.text).toBe(503)
      expect(r.json?.error?.code, r.text).toBe("bus_unavailable")
      expect(r.headers.get("retry-after")).toBe("1")
      // the bus's internals stay inside: no subject, stream or bucket named
      expect(r.text).not.toMatch(/lantern-|KV_|\$KV|\$JS/)
    }

    // nothing half-written: every bucket as it was before the outage
    expect(await contents(Topology.SECRETS_BUCKET)).toEqual(secretsBefore)
    expect(await contents(Topology.SIGNING_KEYS_BUCKET)).toEqual(keysBefore)
    expect(await contents(Topology.RECEIPTS_BUCKET)).toEqual(receiptsBefore)

    // the same requests succeed once lantern has reconnected by itself
    await eventually(
      async () => ((await (await fetch(`${stack.url}/readyz`)).json()) as { bus?: string }).bus === "ok",
      60_000,
      "lantern to see the bus again"
    )
    // one after another: the receipt is issued after the rotation, so it is signed by the new key
    const secret = await secretWrite()
    const rotated = await rotate()
    const receipt = await receiptIssue()
    expect(secret.status, secret.text).toBe(201)
    expect(secret.json).toMatchObject({ name: "outage.key", version: 1 })
    expect(rotated.status, rotated.text).toBe(200)
    expect(rotated.json.current.keyId).not.toBe(keysBefore["current"])
    expect(receipt.status, receipt.text).toBe(200)
    expect(receipt.json).toMatchObject({
      runId,
      status: "succeeded",
      partial: false,
      keyId: rotated.json.current.keyId
    })

    const secretsAfter = await contents(Topology.SECRETS_BUCKET)
    expect(Object.keys(secretsAfter).sort()).toEqual([...Object.keys(secretsBefore), `${TENANT}.outage.key`].sort())
    const keysAfter = await contents(Topology.SIGNING_KEYS_BUCKET)
    expect(keysAfter["current"]).toBe(rotated.json.current.keyId)
    // one new key, the old one retired and still there
    expect(Object.keys(keysAfter).filter((k) => k.startsWith("key.")).sort()).toEqual(
      [...Object.keys(keysBefore).filter((k) => k.startsWith("key.")), `key.${rotated.json.current.keyId}`].sort()
    )
    expect(JSON.parse(keysAfter[`key.${keysBefore["current"]}`]!)).toHaveProperty("retiredAt")
    // the receipt was issued once and kept: asking again gives the same one
    expect(JSON.parse((await contents(Topology.RECEIPTS_BUCKET))[receiptKey]!)).toEqual(receipt.json)
    expect((await call("GET", `/v1/runs/${runId}/receipt`)).json).toEqual(receipt.json)
  }, 180_000)

  it("a receipt whose write the bus refuses is a 503, not a receipt some other host stored", async () => {
    const { runId, receiptKey } = await finishedWithoutReceipt()
    // reads still answer, writes are refused (JetStream: message too large), as in a partial outage
    await limitWrites(Topology.RECEIPTS_BUCKET, 16)
    let refused: Awaited<ReturnType<typeof call>>
    try {
      refused = await call("GET", `/v1/runs/${runId}/receipt`)
    } finally {
      await limitWrites(Topology.RECEIPTS_BUCKET, -1)
    }
    // before the port, the refused create read as a lost race and a receipt stored nowhere was answered
    expect(refused.status, refused.text).toBe(503)
    expect(refused.headers.get("retry-after")).toBe("1")
    expect((await contents(Topology.RECEIPTS_BUCKET))[receiptKey]).toBeUndefined()
    const issued = await call("GET", `/v1/runs/${runId}/receipt`)
    expect(issued.status, issued.text).toBe(200)
    expect(JSON.parse((await contents(Topology.RECEIPTS_BUCKET))[receiptKey]!)).toEqual(issued.json)
  }, 120_000)
})
