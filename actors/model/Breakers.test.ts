// Circuit breakers against a real nats-server, with time on a test clock: the state machine's decisions, a
// breaker opened by one host seen by another (and by a host started later), one trial per cooldown across
// hosts, and a trial's outcome closing or re-opening it.
import { ConfigProvider, Context, Effect, Layer, Option, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Kv from "../../bus/Kv.ts"
import { Nats } from "../../bus/Nats.ts"
import { startServer, type TestServer } from "../../tests/support/Bus.ts"
import { until } from "../../tests/support/Poll.ts"
import { afterFailure, afterSuccess, admission, Breakers, bucket, closed, decode, type State } from "./Breakers.ts"

let nats: TestServer

beforeAll(async () => {
  nats = await startServer("lantern-breakers")
}, 30_000)

afterAll(async () => {
  await nats?.cleanup()
})

const settings = { failures: 3, cooldownMs: 1000 }

describe("breaker decisions", () => {
  it("counts consecutive failures, opens at the threshold, and a success resets the count", () => {
    let s: State | undefined
    for (let i = 1; i <= 2; i++) {
      s = afterFailure(s, "closed", i, settings)
      expect(s).toMatchObject({ state: "closed", failures: i })
    }
    s = afterSuccess(s, "closed", 10)
    expect(s).toMatchObject({ state: "closed", failures: 0 })
    // a healthy provider's success writes nothing
    expect(afterSuccess(s, "closed", 11)).toBeUndefined()
    expect(afterSuccess(undefined, "closed", 11)).toBeUndefined()
    for (let i = 0; i < 3; i++) s = afterFailure(s, "closed", 100, settings)
    expect(s).toEqual({ state: "open", failures: 3, openedAt: 100, until: 1100, updatedAt: 100 })
  })

  it("refuses calls while open, offers a trial after the cooldown, and a trial's outcome decides", () => {
    const open: State = { state: "open", failures: 3, openedAt: 0, until: 1000, updatedAt: 0 }
    expect(admission(undefined, 0)).toBe("closed")
    expect(admission(open, 999)).toBe("open")
    expect(admission(open, 1000)).toBe("take_trial")
    const trial: State = { ...open, state: "half_open", until: 2000, updatedAt: 1000 }
    // someone's trial is under way: open for everyone else until it is abandoned
    expect(admission(trial, 1500)).toBe("open")
    expect(admission(trial, 2000)).toBe("take_trial")
    expect(afterSuccess(trial, "trial", 1200)).toEqual(closed(1200, 0))
    expect(afterFailure(trial, "trial", 1200, settings)).toEqual({
      state: "open",
      failures: 4,
      openedAt: 1200,
      until: 2200,
      updatedAt: 1200
    })
    // a call admitted before the breaker opened elsewhere changes nothing when it ends
    expect(afterFailure(open, "closed", 500, settings)).toBeUndefined()
    expect(afterSuccess(open, "closed", 500)).toBeUndefined()
  })

  it("decodes what it stores and nothing else", () => {
    const s: State = { state: "open", failures: 5, openedAt: 1, until: 2, updatedAt: 1 }
    expect(decode(JSON.stringify(s))).toEqual(s)
    expect(decode("{\"state\":\"ajar\"}")).toBeUndefined()
    expect(decode("not json")).toBeUndefined()
  })
})

/** Hosts' breaker services on one bus, each built as its own layer; `host()` starts one more. */
const hosts = <A, E>(
  provider: string,
  f: (
    host: () => Effect.Effect<Breakers["Service"], unknown, Nats | Scope.Scope>
  ) => Effect.Effect<A, E, Nats | Scope.Scope>
) =>
  Effect.gen(function*() {
    const env = ConfigProvider.layer(
      ConfigProvider.fromUnknown({ LANTERN_BREAKER_FAILURES: "3", LANTERN_BREAKER_COOLDOWN_MS: "1000" })
    )
    const host = () =>
      Effect.map(Layer.build(Breakers.layer([provider]).pipe(Layer.provide(env))), (c) => Context.get(c, Breakers))
    return yield* f(host)
  }).pipe(
    // the hosts' scope closes (their watches stop) before the connection does
    Effect.scoped,
    Effect.provide(Nats.layerUrl(nats.handle.url, "lantern-breakers-test")),
    Effect.provide(TestClock.layer()),
    (e) => Effect.runPromise(e as Effect.Effect<A, E>)
  )

const stored = (provider: string) =>
  Effect.gen(function*() {
    const kv = yield* Kv.open(bucket)
    return Option.getOrUndefined(Option.map(yield* Effect.orDie(kv.get(provider)), (e) => e.value))
  })

describe("Breakers on the bus", () => {
  it("a breaker one host opens is open for the others, and for a host started afterwards", () =>
    hosts("p-shared", (host) =>
      Effect.gen(function*() {
        const a = yield* host()
        const b = yield* host()
        for (let i = 0; i < 2; i++) yield* a.failed("p-shared", yield* a.admit("p-shared"))
        expect(yield* stored("p-shared")).toMatchObject({ state: "closed", failures: 2 })
        // the other host's failure continues the same count
        yield* until(() => b.current("p-shared")?.failures === 2, "host b to see 2 failures")
        yield* b.failed("p-shared", yield* b.admit("p-shared"))
        expect(yield* stored("p-shared")).toMatchObject({ state: "open", failures: 3 })
        expect(yield* b.isOpen("p-shared")).toBe(true)
        yield* until(() => a.current("p-shared")?.state === "open", "host a to see the breaker open")
        expect(yield* a.admit("p-shared")).toBe("open")
        // a host that starts now reads the state before its first call
        const late = yield* host()
        expect(yield* late.isOpen("p-shared")).toBe(true)
      })))

  it("after the cooldown exactly one host takes the trial; its success closes the breaker everywhere", () =>
    hosts("p-trial", (host) =>
      Effect.gen(function*() {
        const a = yield* host()
        const b = yield* host()
        for (let i = 0; i < 3; i++) yield* a.failed("p-trial", "closed")
        yield* until(() => b.current("p-trial")?.state === "open", "host b to see the breaker open")
        yield* TestClock.adjust("1001 millis")
        const admitted = yield* Effect.all([a.admit("p-trial"), b.admit("p-trial")], { concurrency: "unbounded" })
        expect([...admitted].sort()).toEqual(["open", "trial"])
        expect(yield* stored("p-trial")).toMatchObject({ state: "half_open" })
        const [winner, loser] = admitted[0] === "trial" ? [a, b] : [b, a]
        yield* until(() => loser.current("p-trial")?.state === "half_open", "the other host to see the trial")
        expect(yield* loser.admit("p-trial")).toBe("open")
        yield* winner.succeeded("p-trial", "trial")
        expect(yield* stored("p-trial")).toMatchObject({ state: "closed", failures: 0 })
        yield* until(() => loser.current("p-trial")?.state === "closed", "the other host to see it closed")
        expect(yield* loser.admit("p-trial")).toBe("closed")
      })))

  it("a failed trial re-opens the breaker for another cooldown; an abandoned trial is given to another caller", () =>
    hosts("p-reopen", (host) =>
      Effect.gen(function*() {
        const a = yield* host()
        for (let i = 0; i < 3; i++) yield* a.failed("p-reopen", "closed")
        yield* TestClock.adjust("1001 millis")
        expect(yield* a.admit("p-reopen")).toBe("trial")
        yield* a.failed("p-reopen", "trial")
        expect(yield* stored("p-reopen")).toMatchObject({ state: "open", failures: 4 })
        expect(yield* a.admit("p-reopen")).toBe("open")
        yield* TestClock.adjust("1001 millis")
        expect(yield* a.admit("p-reopen")).toBe("trial")
        // the trial's caller never reports back: once its deadline passes, another caller may try
        expect(yield* a.admit("p-reopen")).toBe("open")
        yield* TestClock.adjust("1001 millis")
        expect(yield* a.admit("p-reopen")).toBe("trial")
      })))

  it("a success after some failures resets the shared count; a healthy provider's success writes nothing", () =>
    hosts("p-reset", (host) =>
      Effect.gen(function*() {
        const a = yield* host()
        yield* a.succeeded("p-reset", "closed")
        expect(yield* stored("p-reset")).toBeUndefined()
        yield* a.failed("p-reset", "closed")
        yield* a.failed("p-reset", "closed")
        yield* a.succeeded("p-reset", "closed")
        expect(yield* stored("p-reset")).toMatchObject({ state: "closed", failures: 0 })
        yield* a.failed("p-reset", "closed")
        yield* a.failed("p-reset", "closed")
        expect(yield* stored("p-reset")).toMatchObject({ state: "closed", failures: 2 })
      })))
})
