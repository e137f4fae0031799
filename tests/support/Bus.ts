// Test support: a fresh real nats-server per suite, on a free port with a temporary store, torn down after.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Layer } from "effect"
import * as NatsServer from "../../bus/NatsServer.ts"
import { Nats } from "../../bus/Nats.ts"
import { Journal } from "../../bus/Journal.ts"
import { Snapshots } from "../../bus/Snapshots.ts"
import type { Envelope } from "../../schema/Envelope.ts"

export interface TestServer {
  readonly handle: NatsServer.Handle
  readonly dir: string
  readonly cleanup: () => Promise<void>
}

export const startServer = async (name = "lantern-test"): Promise<TestServer> => {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`))
  const handle = await NatsServer.start({ storeDir: join(dir, "js") })
  return {
    handle,
    dir,
    cleanup: async () => {
      await handle.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Nats, Journal and Snapshots (every LANTERN_SNAPSHOT_EVERY events) layers connected to `url`. */
export const busLayer = (url: string) =>
  Layer.merge(Journal.layer, Snapshots.layerConfig).pipe(Layer.provideMerge(Nats.layerUrl(url, "lantern-test")))

/** A run `id` of tenant t1, as the bus's own tests address it. */
export const testRun = (id: string) => ({ type: "run" as const, tenant: "t1", id })

/** A RunSucceeded of `testRun(id)` whose idempotency key is `${id}:${key}`, carrying `payload` as its output. */
export const testEnvelope = (id: string, key: string, payload: Record<string, unknown> = {}): Envelope => ({
  eventId: `evt_${key.padEnd(26, "0").slice(0, 26)}`,
  type: "RunSucceeded",
  version: 1,
  tenant: "t1",
  actor: testRun(id),
  causationId: null,
  correlationId: id,
  traceparent: null,
  at: new Date(0).toISOString(),
  idempotencyKey: `${id}:${key}`,
  payload: { output: payload }
})
