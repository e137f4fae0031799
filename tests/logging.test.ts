// The edge's access log and LANTERN_LOG_LEVEL (ADR 0080): a request answered below 500 is logged at debug, so a
// serve at the default level writes no line per request; LANTERN_LOG_LEVEL=debug shows them; a bad level exits 2.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, spawnLantern, startStack, type StackProcess } from "./support/Stack.ts"

describe("LANTERN_LOG_LEVEL and the access log", () => {
  let nats: TestServer
  let quiet: StackProcess
  let verbose: StackProcess

  beforeAll(async () => {
    nats = await startServer("lantern-logging")
    ;[quiet, verbose] = await Promise.all([
      startStack({ natsUrl: nats.handle.url }),
      startStack({ natsUrl: nats.handle.url, env: { LANTERN_LOG_LEVEL: "debug" } })
    ])
  }, 120_000)
  afterAll(async () => {
    try {
      await Promise.all([quiet?.stop(), verbose?.stop()])
    } finally {
      await nats?.cleanup()
    }
  })

  it("logs requests answered below 500 at debug: shown with LANTERN_LOG_LEVEL=debug, not by default", async () => {
    for (const stack of [quiet, verbose]) {
      expect((await api(stack)("GET", "/v1/agents?limit=1")).status).toBe(200)
      expect((await api(stack)("GET", "/v1/nope")).status).toBe(404)
    }
    const lines = (s: StackProcess) => s.output().split("\n").filter((l) => l.includes("Sent HTTP response"))
    // the debug host's lines for both requests are there: the default host's would have been written as soon
    const seen = await eventually(
      async () => {
        const ls = lines(verbose)
        return ls.some((l) => l.includes("/v1/nope") && l.includes("404")) &&
            ls.some((l) => l.includes("/v1/agents") && l.includes("200"))
          ? ls
          : null
      },
      30_000,
      "the debug host's access log lines"
    )
    // the query is not logged (a cursor or a token may ride in it)
    expect(seen.filter((l) => l.includes("limit=1"))).toEqual([])
    expect(lines(quiet)).toEqual([])
  }, 60_000)

  it("refuses a level it does not know: exit 2, naming the setting and the levels", async () => {
    const p = spawnLantern(["serve", "--port", "0"], {
      NATS_URL: nats.handle.url,
      LANTERN_API_TOKEN: "lt_test_owner_token",
      LANTERN_LOG_LEVEL: "verbose"
    })
    expect(await p.exited).toBe(2)
    expect(p.output()).toMatch(/LANTERN_LOG_LEVEL: expected one of debug, info, warning, error, got 'verbose'/)
  }, 60_000)
})
