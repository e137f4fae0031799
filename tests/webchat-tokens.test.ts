// The webchat widget's live answer (ADR 0061) in real headless Chromium: the agent's model is a local
// OpenAI-compatible server that streams its answer a word at a time and holds the end until the test lets it go,
// so the page must show the answer growing (a partial answer, token by token) before the final, journaled answer
// replaces it.
import { existsSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { readBody } from "./support/FakeOpenAi.ts"
import { api, eventually, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

const CHROMIUM = [process.env["LANTERN_CHROMIUM"], "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .find((p): p is string => p !== undefined && p !== "" && existsSync(p))

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
let model: Server
let page: Server
let site: string
let release: () => void = () => undefined
/** The answer's text as streamed so far. */
let streamed = ""

/**
 * A model that streams "word1 word2 …" every 50 ms until released (or 600 words), then ends the answer with
 * " done." and its usage.
 */
const slowModel = async (): Promise<string> => {
  model = createServer(async (req, res) => {
    await readBody(req)
    res.writeHead(200, { "content-type": "text/event-stream" })
    const chunk = (delta: object, finish: string | null = null, extra: object = {}) =>
      res.write(`data: ${
        JSON.stringify({
          id: "c",
          object: "chat.completion.chunk",
          created: 0,
          model: "fake-1",
          choices: [{ index: 0, delta, finish_reason: finish }],
          ...extra
        })
      }\n\n`)
    let released = false
    const done = new Promise<void>((r) => {
      release = () => {
        released = true
        r()
      }
    })
    streamed = ""
    chunk({ role: "assistant", content: "" })
    for (let i = 1; i <= 600 && !released && !res.destroyed; i++) {
      const text = `${i === 1 ? "" : " "}word${i}`
      streamed += text
      chunk({ content: text })
      await Promise.race([done, new Promise((r) => setTimeout(r, 50))])
    }
    streamed += " done."
    chunk({ content: " done." })
    chunk({}, "stop")
    res.write(
      `data: ${
        JSON.stringify({ id: "c", model: "fake-1", choices: [], usage: { prompt_tokens: 5, completion_tokens: 5 } })
      }\n\n`
    )
    res.end("data: [DONE]\n\n")
  })
  await new Promise<void>((r) => model.listen(0, "127.0.0.1", r))
  return `http://127.0.0.1:${(model.address() as AddressInfo).port}/v1`
}

beforeAll(async () => {
  nats = await startServer("lantern-webchat-tokens")
  const url = await slowModel()
  stack = await startStack({
    natsUrl: nats.handle.url,
    env: { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: url, LANTERN_OPENAI_MODEL: "fake-1" }
  })
  call = api(stack)
  expect((await call("POST", "/v1/agents", { name: "talker", spec: { systemPrompt: "You talk." } })).status).toBe(201)
  page = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" })
    res.end(`<!doctype html><html><head><title>shop</title></head><body><h1>Shop</h1>
<script src="${stack.url}/chat/${channel.id}/widget.js" data-key="${channel.config.widgetKey}"></script>
</body></html>`)
  })
  await new Promise<void>((r) => page.listen(0, "127.0.0.1", r))
  site = `http://127.0.0.1:${(page.address() as AddressInfo).port}`
  const created = await call("POST", "/v1/channels", {
    kind: "webchat",
    name: "live chat",
    agentName: "talker",
    config: { allowedOrigins: [site] }
  })
  expect(created.status, created.text).toBe(201)
  channel = created.json
}, 180_000)
let channel: { id: string; config: { widgetKey: string } }

afterAll(async () => {
  release()
  await new Promise((r) => page?.close(r))
  model?.closeAllConnections()
  await new Promise((r) => model?.close(r))
  await stopStack(stack, nats)
})

describe.skipIf(CHROMIUM === undefined)(
  `the widget's live answer in headless Chromium${CHROMIUM === undefined ? " (skipped: no chromium)" : ""}`,
  () => {
    let browser: Browser
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] })
    })
    afterAll(async () => {
      await browser?.close()
    })

    it("shows the answer growing token by token, then the final answer in its place", async () => {
      const tab = await browser.newPage()
      const errors: Array<string> = []
      tab.on("pageerror", (e) => errors.push(e.message))
      await tab.goto(site)
      await tab.getByTestId("lantern-input").fill("tell me something long")
      await tab.getByTestId("lantern-send").click()
      const partial = tab.locator("[data-testid=\"lantern-messages\"] li[data-role=\"assistant-partial\"]")
      // two different partial texts seen in turn: the answer grows while the model streams
      const first = await eventually(
        async () => {
          const t = (await partial.count()) === 1 ? await partial.textContent() : null
          return t !== null && /word\d+/.test(t) ? t : null
        },
        30_000,
        "a partial answer"
      )
      const later = await eventually(
        async () => {
          const t = (await partial.count()) === 1 ? await partial.textContent() : null
          return t !== null && t.length > first.length ? t : null
        },
        15_000,
        "the partial answer to grow"
      )
      expect(later.startsWith(first)).toBe(true)
      expect(await tab.locator("li[data-role=\"assistant\"]").count()).toBe(0)
      release()
      const answer = tab.locator("[data-testid=\"lantern-messages\"] li[data-role=\"assistant\"]")
      await answer.first().waitFor({ timeout: 30_000 })
      expect(await answer.first().textContent()).toBe(`Agent: ${streamed}`)
      // the partial answer became the final one: one answer, nothing partial left
      expect(await partial.count()).toBe(0)
      expect(await answer.count()).toBe(1)
      expect(errors).toEqual([])
      await tab.close()
    })
  }
)
