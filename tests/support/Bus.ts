// Test support: a fresh real nats-server per suite, on a free port with a temporary store, torn down after.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Layer } from "effect"
import * as NatsServer from "../../bus/NatsServer.ts"
import { Nats } from "../../bus/Nats.ts"
import { Journal } from "../../bus/Journal.ts"
import { Snapshots } from "../../bus/Snapshots.ts"

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
