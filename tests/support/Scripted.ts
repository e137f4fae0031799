// The scripted agent the fault and crash suites drive against FakeOpenAi.start(2): two echo rounds, then a final
// answer; its expected steps and usage; and per-test cleanups that run in reverse order, pass or fail.
import { afterEach } from "vitest"
import type { FakeOpenAi } from "./FakeOpenAi.ts"

export const echoer = {
  name: "echoer",
  spec: {
    systemPrompt: "Echo twice, then finish.",
    model: "auto",
    maxTurns: 5,
    tools: [{
      name: "echo",
      description: "echo",
      parameters: { type: "object", properties: { text: { type: "string" } } }
    }]
  }
}

/** The steps of one run of `echoer` against FakeOpenAi.start(2), in order; the model steps are the turns. */
export const STEPS = ["turn-1", "turn-1.tool-0", "turn-2", "turn-2.tool-0", "turn-3"]
export const MODEL_STEPS = ["turn-1", "turn-2", "turn-3"]
/** FakeOpenAi bills 10 prompt tokens per message (2, 4 and 6 messages at turns 1-3) and 7 completion tokens per answer. */
export const TOKENS_IN = 10 * (2 + 4 + 6)
export const TOKENS_OUT = 7 * 3

/** The environment pointing lantern's OpenAI-compatible provider at the fake. */
export const modelEnv = (model: FakeOpenAi) => ({
  OPENAI_API_KEY: "test-key",
  OPENAI_BASE_URL: model.url,
  LANTERN_OPENAI_MODEL: "fake-1"
})

/**
 * Registers an afterEach that runs the teardowns a test deferred as it acquired things, in reverse order,
 * pass or fail; returns `defer`. Call once at the top of a test file.
 */
export const deferrals = () => {
  const cleanups: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    const errors: Array<unknown> = []
    for (const f of cleanups.splice(0).reverse()) await f().catch((e) => errors.push(e))
    if (errors.length > 0) throw new AggregateError(errors, "cleanup failed")
  })
  return (f: () => Promise<unknown>) => cleanups.push(f)
}

/**
 * The event types of a run whose first model turn asks for built-in tools and whose second answers: the answer and
 * the calls it asked for are one StepsCompleted (ADR 0067, 0075), the final answer and the end one RunSucceeded
 * (ADR 0077).
 */
export const TOOL_TURN_JOURNAL = ["RunStarted", "StepStarted", "StepsCompleted", "StepStarted", "RunSucceeded"] as const
