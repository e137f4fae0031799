// Hot reload of the cockpit under `lantern dev` (issue 18): the page served there names its reload stream in a meta
// tag (the Content-Security-Policy unchanged), a change under ui/src rebuilds the cockpit, and the open page reloads
// itself in Chromium. `lantern serve` has neither the tag nor the route.
import { spawnSync } from "node:child_process"
import { existsSync, utimesSync } from "node:fs"
import { join } from "node:path"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import { eventually, ROOT, type StackProcess, startStack, stopStack } from "./support/Stack.ts"

const CHROMIUM = [process.env["LANTERN_CHROMIUM"], "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .find((p): p is string => p !== undefined && p !== "" && existsSync(p))

let bus: TestServer
let dev: StackProcess

beforeAll(async () => {
  const built = spawnSync(join(ROOT, "node_modules/.bin/node"), [join(ROOT, "scripts/build-ui.mjs"), "--quiet"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"]
  })
  if (built.status !== 0) throw new Error(`building the cockpit failed (exit ${built.status ?? built.signal})`)
  bus = await startServer("lantern-cockpit-reload")
  dev = await startStack({ natsUrl: bus.handle.url, command: "dev", token: "lt_dev_reload_token" })
}, 240_000)

afterAll(() => stopStack(dev, bus))

describe("lantern dev's hot reload", () => {
  it("names the reload stream in the page, under the same policy, and streams from it", async () => {
    const r = await fetch(`${dev.url}/`)
    const csp = r.headers.get("content-security-policy") ?? ""
    expect(csp).toContain("script-src 'self'")
    expect(csp).not.toContain("unsafe-inline")
    expect(csp).not.toContain("unsafe-eval")
    const html = await r.text()
    expect(html).toContain("<meta name=\"lantern-dev-reload\" content=\"/__dev/reload\" />")
    expect(html).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/)
    const controller = new AbortController()
    const stream = await fetch(`${dev.url}/__dev/reload`, { signal: controller.signal })
    expect(stream.status).toBe(200)
    expect(stream.headers.get("content-type")).toContain("text/event-stream")
    controller.abort()
  })

  it.skipIf(CHROMIUM === undefined)("reloads an open page once a change under ui/src is rebuilt", async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] })
    try {
      const page = await browser.newPage()
      const problems: Array<string> = []
      page.on("pageerror", (e) => problems.push(e.message))
      const listening = page.waitForResponse((res) => res.url().endsWith("/__dev/reload"))
      await page.goto(`${dev.url}/`)
      expect((await listening).status()).toBe(200)
      await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1))
      // a save that changes nothing but the time: the watcher sees it, the build is the same, the page reloads
      const file = join(ROOT, "ui/src/format.ts")
      const now = new Date()
      utimesSync(file, now, now)
      await eventually(
        async () =>
          (await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker).catch(() => 1)) ===
            undefined,
        60_000,
        "the page to reload"
      )
      await page.getByRole("button", { name: "Use this machine's dev token" }).waitFor()
      expect(problems).toEqual([])
    } finally {
      await browser.close()
    }
  }, 90_000)
})
