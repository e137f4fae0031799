// The live-token port on a real nats-server: a followed run gets the frames published after `follow` returns, a
// subscription whose stream is never run (its HTTP client went away first) does not outlive UNCLAIMED_MS, and a run's
// frames go out only while a watcher on some host keeps its interest up (ADR 0066).
import { Context, Effect, Layer, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "../tests/support/Bus.ts"
import { until } from "../tests/support/Poll.ts"
import { Nats } from "./Nats.ts"
import * as TokenSink from "../actors/run/TokenSink.ts"
import type { Frame } from "../schema/Tokens.ts"
import { subjectOf, Tokens, watchSubjectOf } from "./Tokens.ts"

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

/** A host: its own connection and its own token port. */
const host = (name: string, options: Parameters<typeof Tokens.layerWith>[0] = { unclaimedMs: 30_000 }) =>
  Effect.map(
    Layer.build(
      Tokens.layerWith(options).pipe(Layer.provideMerge(Layer.fresh(Nats.layerUrl(server.handle.url, name))))
    ),
    (c) => ({ tokens: Context.get(c, Tokens), nc: Context.get(c, Nats).nc })
  )

const step = { stepId: "turn-1", attempt: 1 }
const textOf = (frames: Iterable<Frame>) => [...frames].map((f) => ("text" in f ? f.text : "<reset>")).join("")

/** A model step's deltas through the sink, as a run's host sends them (actors/run/Perform.ts). */
const speak = (tokens: typeof Tokens.Service, runId: string, words: ReadonlyArray<string>) => {
  const sink = TokenSink.make(step, (f) => tokens.publish("dev", runId, f), {
    watched: () => tokens.watched("dev", runId)
  })
  for (const text of words) sink.push({ _tag: "text", text })
  sink.close(false)
}

describe("Tokens: published only while watched", () => {
  it("an unwatched run publishes no frame; one watched from another host gets its whole text", async () => {
    const { quiet, heard } = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const runner = yield* host("runner")
      const viewer = yield* host("viewer")
      // every frame of any run that reaches the server (announcements have five tokens: not these)
      const subjects: Array<string> = []
      const spy = runner.nc.subscribe("lantern.tokens.*.*", {
        callback: (_, m) => void subjects.push(m.subject)
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.unsubscribe()))
      yield* Effect.promise(() => runner.nc.flush())

      speak(runner.tokens, "run_quiet", ["nobody ", "is ", "watching"])
      // one connection's messages arrive in order: once a later frame is seen, any of run_quiet's would have been
      runner.tokens.publish("dev", "run_marker", { ...step, seq: 1, text: "marker" })
      yield* until(() => subjects.includes(subjectOf("dev", "run_marker")), "the marker frame")
      const quiet = subjects.filter((s) => s === subjectOf("dev", "run_quiet"))

      const live = yield* viewer.tokens.follow("dev", "run_seen")
      yield* until(() => runner.tokens.watched("dev", "run_seen"), "the runner to hear of the watcher")
      speak(runner.tokens, "run_seen", ["hello ", "world"])
      const frames = yield* Stream.runCollect(Stream.take(live, 2))
      return { quiet, heard: textOf(frames) }
    })))
    expect(quiet).toEqual([])
    expect(heard).toBe("hello world")
  })

  it("interest lasts while renewed, ends with the watcher's stream, and lapses when a watcher goes silent", async () => {
    const { renewed, whileRenewed } = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const runner = yield* host("runner-2")
      const viewer = yield* host("viewer-2", { unclaimedMs: 30_000, renewMs: 100, interestTtlMs: 800 })

      // renewed every 100 ms, each renewal good for 800 ms: still watched well past one lifetime
      const live = yield* viewer.tokens.follow("dev", "run_kept")
      yield* until(() => runner.tokens.watched("dev", "run_kept"), "the runner to hear of the watcher")
      const since = Date.now()
      let whileRenewed = true
      yield* until(() => {
        whileRenewed &&= runner.tokens.watched("dev", "run_kept")
        return Date.now() - since > 2_000
      }, "two and a half lifetimes of an interest")

      // the viewer's stream ends (its client left): the runner stops publishing at once, without waiting out the TTL
      runner.tokens.publish("dev", "run_kept", { ...step, seq: 1, text: "last" })
      const renewed = textOf(yield* Stream.runCollect(Stream.take(live, 1)))
      yield* until(() => !runner.tokens.watched("dev", "run_kept"), "the interest to end with the stream")

      // a watcher that announced once and went (its host died): forgotten when its interest lapses
      viewer.nc.publish(watchSubjectOf("dev", "run_silent"), JSON.stringify({ watcher: "gone", ttlMs: 300 }))
      yield* until(() => runner.tokens.watched("dev", "run_silent"), "the runner to hear of the silent watcher")
      yield* until(() => !runner.tokens.watched("dev", "run_silent"), "the silent watcher's interest to lapse")
      return { renewed, whileRenewed }
    })))
    expect(whileRenewed).toBe(true)
    expect(renewed).toBe("last")
  })
})
