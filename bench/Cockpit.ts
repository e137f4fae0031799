// The cockpit (ui/, issue 18) in a real headless Chromium (Debian's, through playwright-core): event-to-screen latency
// of the runs view at 50 events/s, from the time stamped in each frame of `GET /v1/stream` to the row's status changed
// in the DOM (a MutationObserver in the page), with 100 and with 10,000 runs listed; and the longest task the page ran
// meanwhile. The edge is a local stand-in serving the built cockpit under its policy and a scripted tenant stream, so
// the figure is the page's own (parse, reconcile of the whole list, render), not the journal's.
import { existsSync, readFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { extname, join, resolve } from "node:path"
import { Effect } from "effect"
import { chromium } from "playwright-core"
import { CSP } from "../edge/Cockpit.ts"
import * as Sse from "../schema/Sse.ts"
import type { RunView } from "../schema/Run.ts"
import { table } from "./Report.ts"
import * as Stats from "./Stats.ts"

const RATE = 50
const EVENTS = 300
/** Frames go to the first rows (in view), each row again only after this many others: a change is never overtaken. */
const ROWS_CYCLED = 20
const DIST = resolve(import.meta.dirname, "..", "ui", "dist")
const CHROMIUM = [process.env["LANTERN_CHROMIUM"], "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .find((p): p is string => p !== undefined && p !== "" && existsSync(p))

export interface Scenario {
  readonly runs: number
  readonly latency: Stats.Summary
  /** Frames sent whose change never showed (should be 0). */
  readonly missed: number
  /** The longest main-thread task of the page while the frames came (PerformanceObserver longtask; 0 when none over 50 ms). */
  readonly longestTaskMs: number
}

export interface Result {
  readonly chromium: string
  readonly rate: number
  readonly scenarios: ReadonlyArray<Scenario>
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: cockpit: ${text}\n`))

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml"
}

const runOf = (i: number, base: number): RunView => {
  const at = new Date(base - i * 1000).toISOString()
  return {
    id: `run_${String(1e6 - i).padStart(26, "0")}`,
    status: "running",
    agentName: "bench",
    agentVersion: 1,
    input: "",
    output: null,
    error: null,
    steps: 1,
    tokensIn: 10,
    tokensOut: 20,
    costUsd: 0,
    createdAt: at,
    updatedAt: at,
    finishedAt: null,
    waiting: null
  } as unknown as RunView
}

/** A stand-in edge: the build at `/`, the runs, one run, and a tenant stream the bench writes frames to. */
const standIn = async (count: number) => {
  const base = Date.now()
  const runs = Array.from({ length: count }, (_, i) => runOf(i, base))
  const byId = new Map(runs.map((r) => [r.id, r]))
  const streams = new Set<ServerResponse>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://bench")
    const json = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify(body))
    }
    if (url.pathname === "/" || url.pathname.startsWith("/assets/")) {
      const file = join(DIST, url.pathname === "/" ? "index.html" : url.pathname)
      if (!file.startsWith(DIST) || !existsSync(file)) return void res.writeHead(404).end()
      res.writeHead(200, {
        "content-type": TYPES[extname(file)] ?? "application/octet-stream",
        "content-security-policy": CSP
      })
      return void res.end(readFileSync(file))
    }
    if (url.pathname === "/v1/stream") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      res.write(Sse.encode({ id: "0", event: "ready", data: JSON.stringify({ after: 0 }) }))
      streams.add(res)
      req.on("close", () => streams.delete(res))
      return
    }
    // every run in one page: the view holds them all, as it would after scrolling through them
    if (url.pathname === "/v1/runs") return json({ items: runs, nextCursor: null })
    if (url.pathname.startsWith("/v1/runs/")) return json(byId.get(url.pathname.slice("/v1/runs/".length)))
    if (url.pathname === "/v1/agents") return json({ items: [] })
    res.writeHead(404, { "content-type": "application/json" })
    res.end(JSON.stringify({ error: { code: "not_found", message: url.pathname } }))
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  let seq = 0
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    runs,
    /** The run's status changed now: its frame, stamped with the time it is sent. */
    send: (run: RunView, status: RunView["status"]): number => {
      const at = Date.now()
      byId.set(run.id, { ...run, status, updatedAt: new Date(at).toISOString() })
      seq++
      const frame = Sse.encode({
        id: String(seq),
        event: status === "running" ? "StepStarted" : "RunSucceeded",
        data: JSON.stringify({ seq, runId: run.id, type: "x", at: new Date(at).toISOString(), status, stepId: null })
      })
      for (const s of streams) s.write(frame)
      return at
    },
    connected: () => streams.size > 0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of streams) s.end()
        server.close(() => r())
        server.closeAllConnections()
      })
  }
}

const scenario = (count: number, events: number) =>
  Effect.promise(async (): Promise<Scenario> => {
    const edge = await standIn(count)
    const browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] })
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
      await page.addInitScript(() => sessionStorage.setItem("lantern.apiKey", "lt_bench"))
      await page.goto(`${edge.url}/#/runs`)
      await page.locator(`tr[data-run-id="${edge.runs[0]!.id}"]`).waitFor({ timeout: 60_000 })
      const hint = await page.locator(".hint").last().textContent()
      if (!hint?.startsWith(`${count} runs listed`)) throw new Error(`the page lists ${hint}, not ${count} runs`)
      // in the page (a string: the bench compiles without the DOM's types): each status change as [run, status, ms]
      await page.evaluate(`(() => {
        globalThis.seen = []
        globalThis.longest = 0
        new MutationObserver((records) => {
          const t = Date.now()
          for (const r of records) {
            globalThis.seen.push([r.target.getAttribute("data-run-id") ?? "", r.target.getAttribute("data-status") ?? "", t])
          }
        }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-status"] })
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) globalThis.longest = Math.max(globalThis.longest, e.duration)
        }).observe({ type: "longtask", buffered: false })
      })()`)
      const sent: Array<{ id: string; status: string; at: number }> = []
      const began = performance.now()
      const statuses = new Map<string, RunView["status"]>()
      for (let i = 0; i < events; i++) {
        // paced by the clock, not by sleeps adding up: frame i leaves at began + i / RATE
        const due = began + (i * 1000) / RATE
        const wait = due - performance.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        const run = edge.runs[i % ROWS_CYCLED]!
        const next = statuses.get(run.id) === "succeeded" ? "running" : "succeeded"
        statuses.set(run.id, next)
        sent.push({ id: run.id, status: next, at: edge.send(run, next) })
      }
      const wallMs = performance.now() - began
      // the last change shown (or a deadline): then every frame is matched to the first change after it
      const last = sent.at(-1)!
      const deadline = Date.now() + 10_000
      for (;;) {
        const shown = await page.evaluate(
          ([id, status]) =>
            (globalThis as unknown as { seen: Array<[string, string, number]> }).seen.some((s) =>
              s[0] === id && s[1] === status
            ),
          [last.id, last.status] as const
        )
        if (shown || Date.now() > deadline) break
        await page.waitForTimeout(20)
      }
      const { seen, longest } = await page.evaluate(() => {
        const w = globalThis as unknown as { seen: Array<[string, string, number]>; longest: number }
        return { seen: w.seen, longest: w.longest }
      })
      const latencies: Array<number> = []
      let missed = 0
      for (const s of sent) {
        const hit = seen.find((x) => x[0] === s.id && x[1] === s.status && x[2] >= s.at)
        if (hit === undefined) missed++
        else latencies.push(hit[2] - s.at)
      }
      return { runs: count, latency: Stats.summarize(latencies, wallMs), missed, longestTaskMs: longest }
    } finally {
      await browser.close()
      await edge.close()
    }
  })

export const run = (scale: number) =>
  Effect.gen(function*() {
    if (CHROMIUM === undefined) {
      return yield* Effect.die(
        new Error("the cockpit bench needs chromium (apt-get install chromium, or LANTERN_CHROMIUM)")
      )
    }
    if (!existsSync(join(DIST, "index.html"))) return yield* Effect.die(new Error("ui/dist is not built"))
    const events = Math.max(50, Math.round(EVENTS * scale))
    const scenarios: Array<Scenario> = []
    for (const count of [100, 10_000]) {
      yield* progress(`${count} runs listed, ${events} frames at ${RATE}/s`)
      scenarios.push(yield* scenario(count, events))
    }
    return { chromium: CHROMIUM, rate: RATE, scenarios } satisfies Result
  })

const ms = (x: number) => x.toFixed(1)

export const render = (r: Result): string =>
  [
    `Cockpit (bench/Cockpit.ts, issue 18): the runs view in headless Chromium (${r.chromium}), ${r.rate} frames/s of GET /v1/stream`,
    "   latency = the time stamped in a frame to its row's status changed in the DOM (MutationObserver), same machine clock;",
    "   longest task = the page's longest main-thread task meanwhile (longtask entries are those over 50 ms; 0: none)",
    table(
      ["runs listed", "frames", "p50 ms", "p99 ms", "max ms", "missed", "longest task ms"],
      r.scenarios.map((s) => [
        String(s.runs),
        String(s.latency.count + s.missed),
        ms(s.latency.medianMs),
        ms(s.latency.p99Ms),
        ms(s.latency.maxMs),
        String(s.missed),
        ms(s.longestTaskMs)
      ])
    )
  ].join("\n")

export const json = (r: Result): string => JSON.stringify({ section: "cockpit", ...r })
