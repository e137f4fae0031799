// Performing a step's call with stub services: a tool call goes to whatever Tools layer is provided, a model
// call's failures become the step's error codes, and the step's timeout is kept on the test clock, not by sleeping.
import { Effect, Fiber, Layer, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import { ProviderError } from "../../schema/Errors.ts"
import type { RunEvent } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import { ModelProvider } from "../model/ModelProvider.ts"
import * as Wire from "../model/Wire.ts"
import { Tools } from "../model/Tools.ts"
import { HttpTools } from "../tools/Http.ts"
import { McpServers } from "../tools/Mcp.ts"
import { Secrets } from "../secrets/Secrets.ts"
import * as Run from "./Decider.ts"
import * as Decisions from "./Decisions.ts"
import * as Perform from "./Perform.ts"

const state = fold(
  Run.decider,
  [
    {
      _tag: "RunStarted",
      runId: "run_01",
      agentName: "helper",
      agentVersion: 1,
      agentDigest: "sha256:a",
      spec: { systemPrompt: "", model: "auto", maxTurns: 2, tools: [], stepTimeoutMs: 1_000 },
      input: "go",
      requestDigest: "sha256:r"
    },
    { _tag: "StepStarted", stepId: "turn-1", attempt: 1, request: { _tag: "model", model: "auto", turn: 1 } }
  ] satisfies ReadonlyArray<RunEvent>
)
const call = Decisions.afterStart(state, "turn-1", 0, 0) as Extract<Decisions.Call, { _tag: "CallModel" }>

const provider = (complete: ModelProvider["Service"]["complete"]) =>
  Layer.succeed(
    ModelProvider,
    ModelProvider.of({
      name: "stub",
      complete,
      quote: () => Effect.succeed({ promptTokens: 1, maxTokens: 1, worstCaseUsd: 0, models: [] })
    })
  )
const secrets = Layer.succeed(
  Secrets,
  Secrets.of({
    put: () => Effect.die("unused"),
    list: () => Effect.die("unused"),
    get: () => Effect.die("unused"),
    remove: () => Effect.die("unused"),
    resolve: () => Effect.succeed(Redacted.make("k")),
    rewrap: Effect.die("unused")
  })
)

/** HTTP tools are tested against real servers (tests/http-tools.test.ts): here no tool of the specs has `http`. */
const http = Layer.merge(
  Layer.succeed(HttpTools, HttpTools.of({ call: () => Effect.die("unused") })),
  Layer.succeed(
    McpServers,
    McpServers.of({
      register: () => Effect.die("unused"),
      list: () => Effect.die("unused"),
      get: () => Effect.die("unused"),
      remove: () => Effect.die("unused"),
      call: () => Effect.die("unused")
    })
  )
)

const run = <A, E>(
  layer: Layer.Layer<ModelProvider>,
  f: (p: Effect.Success<typeof Perform.make>) => Effect.Effect<A, E>,
  tools = Tools.layer
) =>
  Effect.runPromise(
    Effect.flatMap(Perform.make, f).pipe(
      Effect.flip,
      Effect.provide(Layer.mergeAll(layer, secrets, tools, http, TestClock.layer()))
    ) as Effect.Effect<E, A>
  )

describe("Perform", () => {
  it("answers a tool call through the Tools service provided, as a free tool result", async () => {
    const echo = Layer.succeed(Tools, Tools.of({ run: (c) => Effect.succeed(`ran ${c.name}`) }))
    const performed = await Effect.runPromise(
      Effect.flatMap(Perform.make, (p) =>
        p.perform("acme", state, {
          _tag: "CallTool",
          step: call.step,
          call: { id: "c", name: "anything", arguments: {} },
          key: "k"
        })).pipe(
          Effect.provide(Layer.mergeAll(
            provider(() => Effect.die("unused")),
            secrets,
            echo,
            http
          ))
        )
    )
    expect(performed).toEqual({
      result: { _tag: "tool", callId: "c", output: "ran anything" },
      tokensIn: 0,
      tokensOut: 0,
      costUsd: 0
    })
  })

  it("the built-in Tools layer answers an unknown tool with an error output the model reads", async () => {
    const output = await Effect.runPromise(
      Effect.flatMap(Effect.service(Tools), (t) => t.run({ id: "c", name: "nope", arguments: {} })).pipe(
        Effect.provide(Tools.layer)
      )
    )
    expect(output).toBe("error: unknown tool 'nope'")
  })

  it("files a provider's refusal under the code the retry policy names", async () => {
    const fail = (status: number | undefined, retryable: boolean) =>
      run(
        provider(() =>
          Effect.fail(
            new ProviderError({
              provider: "stub",
              kind: Wire.kindOf(status, retryable),
              reason: "no",
              retryable,
              ...(status === undefined ? {} : { status })
            })
          )
        ),
        (p) => p.perform("acme", state, call)
      )
    expect((await fail(429, true)).error.code).toBe("rate_limited")
    expect((await fail(503, true)).error.code).toBe("provider_unavailable")
    expect((await fail(400, false)).error.code).toBe("provider_error")
  })

  it("reads the provider error's kind, not its text: a provider timeout is provider_unavailable, and Retry-After travels on", async () => {
    const failure = await run(
      provider(() =>
        Effect.fail(
          new ProviderError({ provider: "stub", kind: "timeout", reason: "slow", retryable: true, retryAfterMs: 2_000 })
        )
      ),
      (p) => p.perform("acme", state, call)
    )
    expect([failure.error.code, failure.retryAfterMs]).toEqual(["provider_unavailable", 2_000])
  })

  it("fails a model call that outlives the step's timeout with code timeout, on the test clock", async () => {
    const failure = await run(provider(() => Effect.never), (p) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.flip(p.perform("acme", state, call)))
        yield* TestClock.adjust("1001 millis")
        return yield* Effect.flip(Fiber.join(fiber))
      }))
    expect(failure).toEqual({ error: { code: "timeout", message: "the step took longer than 1000 ms" } })
  })
})
