// Recording scenarios for the model router: a models file naming two OpenAI-compatible providers, the first
// answering HTTP 500 to everything, so every model step fails over and journals its route.
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import * as FakeOpenAi from "../../tests/support/FakeOpenAi.ts"
import { api, type StackProcess, startStack } from "../../tests/support/Stack.ts"
import { must, type Recording, runSubject, startRun, waitStatus } from "./Drive.ts"
import type { Provider } from "./Provider.ts"

/**
 * `primary` is a FakeOpenAi that is down; `backup` is the scripted provider (`[usage-details]` reports cached
 * and reasoning tokens, `[fail-hard]` refuses with a 400). The breaker threshold is out of reach, so every
 * step tries the primary first and journals the same failed attempt.
 */
export const record = async (
  natsUrl: string,
  home: string,
  dir: string,
  backup: Provider,
  stacks: Array<StackProcess>
): Promise<ReadonlyArray<Recording>> => {
  const primary = await FakeOpenAi.start()
  try {
    primary.failAll({ status: 500, message: "primary is down" })
    const models = join(dir, "models.json")
    writeFileSync(
      models,
      JSON.stringify({
        providers: {
          primary: { api: "openai", baseUrl: primary.url, apiKeyEnv: "RECORD_MODEL_KEY", timeoutMs: 5000 },
          backup: { api: "openai", baseUrl: backup.url, apiKeyEnv: "RECORD_MODEL_KEY", timeoutMs: 5000 }
        },
        aliases: { auto: ["primary/gpt-4o-mini", "backup/gpt-4o-mini"] },
        strategy: "best"
      })
    )
    const stack = await startStack({
      natsUrl,
      home,
      env: {
        LANTERN_MODELS_FILE: models,
        RECORD_MODEL_KEY: "test-key",
        LANTERN_BREAKER_FAILURES: "1000",
        LANTERN_WATCHDOG_INTERVAL: "200 millis"
      }
    })
    stacks.push(stack)
    const call = api(stack)
    await must(call, "POST", "/v1/agents", 201, {
      name: "routed",
      spec: { systemPrompt: "Answer briefly.", maxTurns: 3 }
    })
    const failover = await startRun(call, "routed", "[usage-details] answer through the router")
    await waitStatus(call, failover, "succeeded")
    const refused = await startRun(call, "routed", "[fail-hard] refused after a failover")
    await waitStatus(call, refused, "failed")
    await stack.stop()
    return [
      { name: "run-routed-failover", subject: runSubject(failover) },
      { name: "run-routed-failover-then-refused", subject: runSubject(refused) }
    ]
  } finally {
    await primary.close()
  }
}
