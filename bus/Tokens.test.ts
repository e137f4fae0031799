// The live-token port on a real nats-server: a followed run gets the frames published after `follow` returns, and a
// subscription whose stream is never run (its HTTP client went away first) does not outlive UNCLAIMED_MS.
import { Effect, Layer, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "../tests/support/Bus.ts"
import { Nats } from "./Nats.ts"
import { Tokens } from "./Tokens.ts"

let server: TestServer
beforeAll(async () => {
  server = await startServer("lantern-tokens")
})
afterAll(async () => {
  await server?.cleanup()
})

/** The client's live subscriptions (nats.js keeps them in its protocol handler). */
const subscriptionsOf = (nc: unknown) =>
  (nc as { protocol: { subscriptions: { size(): number } } }).protocol.subscriptions.size()

const withTokens = <A>(
  f: (t: typeof Tokens.Service, subscriptions: () => number) => Effect.Effect<A, unknown>,
  unclaimedMs = 30_000
) =>
  Effect.gen(function*() {
    const tokens = yield* Tokens
    const { nc } = yield* Nats
    return yield* f(tokens, () => subscriptionsOf(nc))
  }).pipe(
    Effect.provide(Tokens.layerWith({ unclaimedMs }).pipe(Layer.provideMerge(Nats.layerUrl(server.handle.url)))),
    Effect.scoped
  )

describe("Tokens", () => {
  it("delivers every frame published after follow returns, in order", async () => {
    const frames = await Effect.runPromise(withTokens((t) =>
      Effect.gen(function*() {
        const live = yield* t.follow("dev", "run_a")
        for (let i = 0; i < 3; i++) t.publish("dev", "run_a", { stepId: "s", attempt: 1, seq: i, text: `w${i} ` })
        return yield* Stream.runCollect(Stream.take(live, 3))
      })
    ))
    expect(frames.map((f) => ("text" in f ? f.text : "reset"))).toEqual(["w0 ", "w1 ", "w2 "])
  })

  it("drops a subscription whose stream is never run, and ends a run stream's subscription with it", async () => {
    const counts = await Effect.runPromise(withTokens((t, subscriptions) =>
      Effect.gen(function*() {
        const before = subscriptions()
        // followed, then abandoned: the client went away before the response began
        yield* t.follow("dev", "run_gone")
        const abandoned = subscriptions()
        for (let i = 0; i < 200 && subscriptions() > before; i++) yield* Effect.sleep("25 millis")
        const dropped = subscriptions()
        // followed and run: the subscription ends when the stream does
        const live = yield* t.follow("dev", "run_b")
        t.publish("dev", "run_b", { stepId: "s", attempt: 1, seq: 1, text: "x" })
        yield* Stream.runCollect(Stream.take(live, 1))
        return { before, abandoned, dropped, after: subscriptions() }
      }), 200))
    expect(counts.abandoned).toBe(counts.before + 1)
    expect(counts.dropped).toBe(counts.before)
    expect(counts.after).toBe(counts.before)
  })
})
