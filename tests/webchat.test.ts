// The webchat channel (ADR 0053) in real headless Chromium: a page on an allowed origin (another port than the edge,
// so another origin) embeds /chat/{channelId}/widget.js, a visitor sends a message and the agent's answer appears,
// streamed over SSE; the same widget on a page of an origin the channel does not allow is refused by the edge (no
// CORS grant, audited) and no conversation starts. The same rules are checked over plain HTTP too.
import { existsSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { api, eventually, type StackProcess, startStack } from "./support/Stack.ts"

/** Debian's chromium, or the one LANTERN_CHROMIUM names; browsers are never downloaded. */
const CHROMIUM = [process.env["LANTERN_CHROMIUM"], "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .find((p): p is string => p !== undefined && p !== "" && existsSync(p))

let nats: TestServer
let stack: StackProcess
let call: ReturnType<typeof api>
const pages: Array<Server> = []
let allowed: string
let other: string
let channel: { id: string; config: { widgetKey: string } }

/** A site of its own origin whose page embeds the chat widget. */
const site = async (): Promise<string> => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" })
    res.end(`<!doctype html><html><head><title>shop</title></head><body><h1>Shop</h1>
<script src="${stack.url}/chat/${channel.id}/widget.js" data-key="${channel.config.widgetKey}"></script>
</body></html>`)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  pages.push(server)
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

beforeAll(async () => {
  nats = await startServer("lantern-webchat")
  stack = await startStack({ natsUrl: nats.handle.url })
  call = api(stack)
  expect((await call("POST", "/v1/agents", { name: "helper", spec: { systemPrompt: "You help." } })).status).toBe(201)
  // the origins are known once the sites listen; the channel is connected for the first, then the page is served
  const placeholder = await call("POST", "/v1/channels", {
    kind: "webchat",
    name: "shop chat",
    agentName: "helper",
    config: { allowedOrigins: ["https://placeholder.example"] }
  })
  expect(placeholder.status, placeholder.text).toBe(201)
  channel = placeholder.json
  allowed = await site()
  other = await site()
  const put = await call("PUT", `/v1/channels/${channel.id}`, {
    name: "shop chat",
    agentName: "helper",
    config: { allowedOrigins: [allowed] }
  })
  expect(put.status, put.text).toBe(200)
  // the key stays the same across the update
  expect(put.json.config.widgetKey).toBe(channel.config.widgetKey)
}, 180_000)

afterAll(async () => {
  for (const p of pages) await new Promise((r) => p.close(r))
  await stack?.kill()
  await nats?.cleanup()
})

const post = (origin: string | null, body: unknown) =>
  fetch(`${stack.url}/chat/${channel.id}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(origin === null ? {} : { origin }) },
    body: JSON.stringify(body)
  })

describe("the webchat edge", () => {
  it("refuses a connection without an origin allowlist, naming the field", async () => {
    const r = await call("POST", "/v1/channels", { kind: "webchat", name: "x", agentName: "helper" })
    expect(r.status).toBe(400)
    expect(r.json.error.issues[0].field).toBe("config.allowedOrigins")
    const path = await call("POST", "/v1/channels", {
      kind: "webchat",
      name: "x",
      agentName: "helper",
      config: { allowedOrigins: ["https://shop.example/path"] }
    })
    expect(path.json.error.issues[0].field).toBe("config.allowedOrigins[0]")
  })

  it("grants CORS to an allowed origin only, and wants the widget key", async () => {
    const pre = await fetch(`${stack.url}/chat/${channel.id}/messages`, {
      method: "OPTIONS",
      headers: { origin: allowed, "access-control-request-method": "POST" }
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get("access-control-allow-origin")).toBe(allowed)
    const denied = await fetch(`${stack.url}/chat/${channel.id}/messages`, {
      method: "OPTIONS",
      headers: { origin: other, "access-control-request-method": "POST" }
    })
    expect(denied.status).toBe(403)
    expect(denied.headers.get("access-control-allow-origin")).toBeNull()
    const visitor = "0123456789abcdef0123"
    expect((await post(other, { key: channel.config.widgetKey, visitor, text: "hi" })).status).toBe(403)
    expect((await post(null, { key: channel.config.widgetKey, visitor, text: "hi" })).status).toBe(403)
    expect((await post(allowed, { key: "wk_" + "0".repeat(32), visitor, text: "hi" })).status).toBe(401)
    const bad = await post(allowed, { key: channel.config.widgetKey, visitor: "X", text: "hi" })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as any).error.issues[0].field).toBe("visitor")
    // audited (the log is a projection: it catches up)
    await eventually(
      async () => {
        const audit = (await call("GET", "/v1/audit?action=hook.rejected")).json.items as Array<any>
        return audit.filter((e) => e.target === `channel:${channel.id}`).length >= 4 ? true : null
      },
      15_000,
      "the refusals to be audited"
    )
    expect((await call("GET", "/v1/sessions")).json.items).toEqual([])
  })
})

describe.skipIf(CHROMIUM === undefined)(
  `the widget in headless Chromium${CHROMIUM === undefined ? " (skipped: no chromium; apt-get install chromium)" : ""}`,
  () => {
    let browser: Browser
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] })
    })
    afterAll(async () => {
      await browser?.close()
    })

    it("on an allowed origin: sends a message and shows the agent's answer", async () => {
      const page = await browser.newPage()
      const errors: Array<string> = []
      page.on("pageerror", (e) => errors.push(e.message))
      await page.goto(allowed)
      await page.getByTestId("lantern-input").fill("hello from the widget")
      await page.getByTestId("lantern-send").click()
      const answer = page.locator("[data-testid=\"lantern-messages\"] li[data-role=\"assistant\"]")
      await answer.first().waitFor({ timeout: 30_000 })
      expect(await answer.first().textContent()).toContain("hello from the widget")
      expect(await page.locator("li[data-role=\"user\"]").first().textContent()).toBe("You: hello from the widget")
      expect(errors).toEqual([])
      // the widget shows the answer from the run's events; the session's turn records its delivery a moment later
      const sessions = await eventually(
        async () => {
          const items = (await call("GET", "/v1/sessions")).json.items as Array<any>
          return items[0]?.turns?.[0]?.delivery != null ? items : null
        },
        15_000,
        "the turn's delivery to be recorded"
      )
      expect(sessions).toHaveLength(1)
      expect(sessions[0]).toMatchObject({ kind: "webchat", channelId: channel.id })
      expect(sessions[0].turns[0]).toMatchObject({
        text: "hello from the widget",
        status: "succeeded",
        delivery: "none"
      })

      // a second message in the same conversation, after a reload (the visitor is remembered)
      await page.reload()
      await page.getByTestId("lantern-input").fill("and a second one")
      await page.getByTestId("lantern-send").click()
      await eventually(async () => (await answer.count()) >= 2 ? true : null, 30_000, "the second answer")
      expect(await answer.nth(1).textContent()).toContain("and a second one")
      const after = (await call("GET", "/v1/sessions")).json.items as Array<any>
      expect(after).toHaveLength(1)
      expect(after[0].turns).toHaveLength(2)
      await page.close()
    })

    it("on another origin: the edge refuses it and nothing starts", async () => {
      const page = await browser.newPage()
      const refused: Array<number> = []
      page.on("response", (r) => {
        if (r.url().endsWith("/messages")) refused.push(r.status())
      })
      await page.goto(other)
      await page.getByTestId("lantern-input").fill("let me in")
      await page.getByTestId("lantern-send").click()
      await eventually(
        async () => ((await page.getByTestId("lantern-status").textContent()) ?? "") !== "" ? true : null,
        15_000,
        "the widget to report the refusal"
      )
      expect(await page.getByTestId("lantern-status").textContent()).toMatch(/Could not send/)
      expect(await page.locator("li[data-role=\"assistant\"]").count()).toBe(0)
      const sessions = (await call("GET", "/v1/sessions")).json.items as Array<any>
      expect(sessions.flatMap((s: any) => s.turns.map((t: any) => t.text))).not.toContain("let me in")
      await page.close()
    })
  }
)
