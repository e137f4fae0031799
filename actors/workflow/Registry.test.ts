// The workflow registry on a real nats-server, as two hosts see it: a start reads a workflow's current version from
// memory, kept by a watch of the registrations, instead of asking the bus each time; a deploy on one host reaches the
// other through that watch; a name no host registered is asked of the bus, and is none.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ConfigProvider, Context, Effect, Exit, Layer, Option, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Nats } from "../../bus/Nats.ts"
import { startServer, type TestServer } from "../../tests/support/Bus.ts"
import { ROOT } from "../../tests/support/Stack.ts"
import { Registry, WORKFLOWS_BUCKET } from "./Registry.ts"

const V1 = join(ROOT, "tests/fixtures/workflows/v1.ts")
const V2 = join(ROOT, "tests/fixtures/workflows/v2.ts")

let nats: TestServer
let dir: string

beforeAll(async () => {
  nats = await startServer("lantern-registry")
  dir = mkdtempSync(join(tmpdir(), "lantern-registry-"))
}, 30_000)

afterAll(async () => {
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

/** A host's registry: its own connection and home, until `stop`. */
const host = (name: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const layer = Registry.layer.pipe(
      Layer.provide(Nats.layerUrl(nats.handle.url, `lantern-registry-test-${name}`)),
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ LANTERN_HOME: join(dir, name) })))
    )
    const built = yield* Layer.buildWithScope(layer, scope).pipe(Effect.orDie)
    return { registry: Context.get(built, Registry), stop: Scope.close(scope, Exit.void) }
  })

/** Polls `f` until it returns a value that is not undefined, for at most `ms`. */
const until = <A>(f: Effect.Effect<A | undefined, unknown>, ms: number, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* f
      if (a !== undefined) return a
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

describe("the workflow registry", () => {
  it(
    "answers a start from what its watch saw: no bus read, and another host's deploy arrives by the watch",
    () =>
      Effect.gen(function*() {
        const { nc } = yield* Nats
        // every read of a registration from the bus is a direct get on the bucket's stream
        const reads: Array<string> = []
        const sub = nc.subscribe(`$JS.API.DIRECT.GET.KV_${WORKFLOWS_BUCKET}`, {
          callback: (_e, m) => void reads.push(m.subject)
        })
        const sub2 = nc.subscribe(`$JS.API.DIRECT.GET.KV_${WORKFLOWS_BUCKET}.>`, {
          callback: (_e, m) => void reads.push(m.subject)
        })
        yield* Effect.promise(() => nc.flush())

        const a = yield* host("a")
        const b = yield* host("b")
        const names = yield* a.registry.register(V1)
        expect(names).toContain("versioned")
        const v1 = yield* until(
          Effect.map(b.registry.current("versioned"), Option.getOrUndefined),
          20_000,
          "host b to see versioned"
        )
        // b knows it now: asking again, many times, reads nothing from the bus
        yield* Effect.promise(() => nc.flush())
        reads.length = 0
        for (let i = 0; i < 20; i++) expect(yield* b.registry.current("versioned")).toEqual(Option.some(v1))
        expect(yield* a.registry.current("versioned")).toEqual(Option.some(v1))
        yield* Effect.promise(() => nc.flush())
        expect(reads).toEqual([])

        // a deploy of new code on host a: b's next starts take it once its watch has delivered it
        yield* a.registry.register(V2)
        const v2 = yield* until(
          Effect.map(
            b.registry.current("versioned"),
            (o) => Option.isSome(o) && o.value.digest !== v1.digest ? o.value : undefined
          ),
          20_000,
          "host b to see the new version"
        )
        expect(v2.name).toBe("versioned")
        expect(yield* a.registry.current("versioned")).toEqual(Option.some(v2))

        // a name nobody registered: asked of the bus, none
        expect(yield* b.registry.current("nobody-registered-this")).toEqual(Option.none())
        yield* Effect.promise(() => nc.flush())
        expect(reads.length).toBeGreaterThan(0)

        yield* a.stop
        yield* b.stop
        sub.unsubscribe()
        sub2.unsubscribe()
      }).pipe(
        Effect.provide(Nats.layerUrl(nats.handle.url, "lantern-registry-test")),
        Effect.runPromise
      ),
    120_000
  )
})
