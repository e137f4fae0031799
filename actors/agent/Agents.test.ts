// The agents shell's cache against a real nats-server, with two hosts: a run's start reads its agent without a
// request, yet a new version published on one host is what the other host's next start reads.
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Topology from "../../bus/Topology.ts"
import { busLayer, startServer, type TestServer } from "../../tests/support/Bus.ts"
import { eventually } from "../../tests/support/Stack.ts"
import { Ids } from "../kernel/Ids.ts"
import { Agents } from "./Agents.ts"

const host = (url: string) =>
  ManagedRuntime.make(
    Agents.layer.pipe(Layer.provideMerge(Layer.merge(busLayer(url), Ids.layer))) as Layer.Layer<Agents, unknown>
  )

describe("Agents (two hosts, real nats-server)", () => {
  let server: TestServer
  let a: ManagedRuntime.ManagedRuntime<Agents, unknown>
  let b: ManagedRuntime.ManagedRuntime<Agents, unknown>
  beforeAll(async () => {
    server = await startServer("lantern-agents")
    a = host(server.handle.url)
    await a.runPromise(Effect.asVoid(Topology.apply) as Effect.Effect<void, unknown, never>).catch(() => undefined)
    b = host(server.handle.url)
  }, 60_000)
  afterAll(async () => {
    await a.dispose()
    await b.dispose()
    await server.cleanup()
  })

  const spec = (systemPrompt: string) => ({ systemPrompt })
  const latest = (rt: typeof a) => rt.runPromise(Agents.use((s) => s.version("t1", "cached")))

  it("a version published on one host is the one the other host's next read gets", async () => {
    await a.runPromise(Agents.use((s) => s.create("t1", { name: "cached", spec: spec("one") })))
    expect((await latest(b)).version).toBe(1)
    // answered from b's cache now; a new version on a reaches b through its watch
    const updated = await a.runPromise(Agents.use((s) => s.update("t1", "cached", { spec: spec("two") })))
    expect(updated.latestVersion).toBe(2)
    expect((await latest(a)).version).toBe(2)
    await eventually(async () => (await latest(b)).version === 2, 30_000, "host b to read version 2")
    expect((await latest(b)).spec.systemPrompt).toBe("two")
  })
})
