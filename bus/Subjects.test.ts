// The subject watch against a real nats-server: subjects already there and new ones are known without a request;
// while the watch is down it answers "unknown", and it is current again once the server is back.
import { Effect, Layer, ManagedRuntime, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { busLayer, startServer, type TestServer } from "../tests/support/Bus.ts"
import { eventually } from "../tests/support/Stack.ts"
import { Nats } from "./Nats.ts"
import * as Subjects from "./Subjects.ts"
import * as Topology from "./Topology.ts"

describe("Subjects.watch (real nats-server)", () => {
  let server: TestServer
  let rt: ManagedRuntime.ManagedRuntime<Nats, unknown>
  let scope: Scope.Closeable
  beforeAll(async () => {
    server = await startServer("lantern-subjects")
    rt = ManagedRuntime.make(busLayer(server.handle.url) as Layer.Layer<Nats, unknown>)
    await rt.runPromise(Topology.apply)
    scope = await rt.runPromise(Scope.make())
  }, 60_000)
  afterAll(async () => {
    await rt.runPromise(Scope.close(scope, (await import("effect")).Exit.void))
    await rt.dispose()
    await server.cleanup()
  })

  const publish = (subject: string) =>
    rt.runPromise(Nats.use(({ js }) => Effect.promise(() => js.publish(subject, "{}"))))

  it("knows the subjects already there and each new one, and says nothing of the others", async () => {
    await publish("lantern.budget.t1._tenant")
    const present = await rt.runPromise(
      Subjects.watch("LANTERN_BUDGETS", "lantern.budget.>", "test").pipe(Scope.provide(scope))
    )
    await eventually(async () => present.has("lantern.budget.t1._tenant") === true, 30_000, "the watch to be current")
    expect(present.has("lantern.budget.t1.agent-a")).toBe(false)
    await publish("lantern.budget.t1.agent-a")
    await eventually(async () => present.has("lantern.budget.t1.agent-a"), 30_000, "the new subject")
  })

  it("knows each subject's last sequence from the messages it saw, and learns one listed before it started", async () => {
    const first = await rt.runPromise(
      Nats.use(({ js }) => Effect.promise(() => js.publish("lantern.budget.t2._tenant", "{}")))
    )
    const present = await rt.runPromise(
      Subjects.watch("LANTERN_BUDGETS", "lantern.budget.>", "test").pipe(Scope.provide(scope))
    )
    await eventually(async () => present.lastSeq("lantern.budget.t2._tenant") !== undefined, 30_000, "current")
    // listed by the stream's info, not seen: the watch cannot say its sequence
    expect(present.lastSeq("lantern.budget.t2._tenant")).toBe(null)
    expect(present.lastSeq("lantern.budget.t2.nobody")).toBe(0)
    // a lookup from before a restart is not learned; one from this generation is
    present.learn("lantern.budget.t2._tenant", first.seq, present.generation() - 1)
    expect(present.lastSeq("lantern.budget.t2._tenant")).toBe(null)
    present.learn("lantern.budget.t2._tenant", first.seq, present.generation())
    expect(present.lastSeq("lantern.budget.t2._tenant")).toBe(first.seq)
    // a message seen wins over a lookup that may be older
    const second = await rt.runPromise(
      Nats.use(({ js }) => Effect.promise(() => js.publish("lantern.budget.t2.agent-b", "{}")))
    )
    await eventually(
      async () => present.lastSeq("lantern.budget.t2.agent-b") === second.seq,
      30_000,
      "the new message's sequence"
    )
    present.learn("lantern.budget.t2.agent-b", second.seq - 1, present.generation())
    expect(present.lastSeq("lantern.budget.t2.agent-b")).toBe(second.seq)
  })
})
