// The agents shell's cache against a real nats-server, with two hosts: a run's start reads its agent without a
// request, yet a new version published on one host is what the other host's next start reads.
import { connect } from "@nats-io/transport-node"
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
  it("a burst of starts on a host that has not read the agent yet reads it once", async () => {
    await a.runPromise(Agents.use((s) => s.create("t1", { name: "burst", spec: spec("burst") })))
    const fresh = host(server.handle.url)
    const sniffer = await connect({ servers: server.handle.url })
    try {
      // the fresh host's watch is current before the burst (its cache answers nothing yet)
      await fresh.runPromise(Agents.use((s) => s.version("t1", "cached")))
      let requests = 0
      const sub = sniffer.subscribe("$JS.API.*.*.LANTERN_AGENTS", { callback: () => void requests++ })
      await sniffer.flush()
      const burst = await fresh.runPromise(
        Effect.all(Array.from({ length: 50 }, () => Agents.use((s) => s.version("t1", "burst"))), {
          concurrency: "unbounded"
        })
      )
      expect(burst.map((v) => v.spec.systemPrompt)).toEqual(Array(50).fill("burst"))
      // one read of the journal (its last sequence, then one batched get), not fifty
      await sniffer.flush()
      expect(requests).toBeGreaterThan(0)
      expect(requests).toBeLessThanOrEqual(4)
      // a missing agent: every start of the burst is told so
      const missing = await fresh.runPromise(
        Effect.all(
          Array.from({ length: 20 }, () => Effect.flip(Agents.use((s) => s.version("t1", "no-such-agent")))),
          { concurrency: "unbounded" }
        )
      )
      expect(missing.map((e) => e._tag)).toEqual(Array(20).fill("AgentNotFound"))
      sub.unsubscribe()
    } finally {
      await sniffer.close()
      await fresh.dispose()
    }
  })
})
