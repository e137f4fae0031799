// How soon a single host's runs move again after the whole stack died: `lantern serve` on its nats-server, runs in
// flight, serve SIGKILLs itself mid-run (a failpoint) and the bench SIGKILLs nats-server; both are started again on
// the same store, home and port, default settings, and each run that was cut is timed from the new serve's
// readiness to its first event after the crash (issue 11: within 1 s of ready), with no step completed twice.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import * as Tools from "../actors/model/Tools.ts"
import * as NatsServer from "../bus/NatsServer.ts"
import * as Completions from "../schema/Completions.ts"
import { type LanternProcess, spawnLantern } from "../tests/support/Stack.ts"
import { table } from "./Report.ts"
import * as Serve from "./Serve.ts"
import * as Stats from "./Stats.ts"

/** Where the first serve kills itself: the first run to start its second model call. */
export const FAILPOINT = "after-step-start:turn-2"
/** Runs started at once at BENCH_SCALE=1 (each round), and rounds. */
const RUNS = 30
const ROUNDS = 2
/** The goal: every cut run's first event after the crash within this long of the new serve being ready. */
export const TARGET_MS = 1_000

const AGENT = "bench-restart"
/** The built-in tools the agent declares; the offline model calls each one the input names, then answers. */
const TOOLS = Tools.builtins
const INPUT = `Use ${TOOLS.map((t) => t.name).join(", ")} on: (17 + 25) * 3`

export interface Round {
  /** SIGKILL of nats-server after serve's own death to its restart being ready, and serve's spawn to /readyz 200. */
  readonly natsRestartMs: number
  readonly serveReadyMs: number
  /** Per cut run: its first event's `at` after the crash minus the new serve's readiness (ms; negative: before it). */
  readonly resumeMs: ReadonlyArray<number>
  /** Runs whose start was answered, and of them those cut (an event after the crash), those that succeeded. */
  readonly started: number
  readonly cut: number
  readonly succeeded: number
  /** Steps completed more than once across every answered run (exactly-once: 0). */
  readonly completedTwice: number
}

export interface Result {
  readonly rounds: ReadonlyArray<Round>
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: restart: ${text}\n`))

/** `poll`'s first answer, asked every `everyMs` until `ms` have passed. */
const deadline = async <A>(
  what: string,
  ms: number,
  everyMs: number,
  poll: () => Promise<A | undefined>
): Promise<A> => {
  const end = Date.now() + ms
  for (;;) {
    const value = await poll().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > end) throw new Error(`restart bench: ${what} not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

const call = (url: string, method: string, path: string, body?: unknown) => Serve.callOf(url)(method, path, body)

const serve = (natsUrl: string, home: string, port: number, env: Record<string, string>) =>
  spawnLantern(["serve", "--port", String(port)], {
    NATS_URL: natsUrl,
    LANTERN_HOME: home,
    LANTERN_API_TOKEN: Serve.TOKEN,
    LANTERN_CHECK_RESPONSES: "false",
    ...env
  })

/** Date.now() once `/readyz` answers 200 (polled every few ms), or an error with the process's output. */
const ready = (p: LanternProcess, url: string) =>
  deadline("lantern serve ready", 120_000, 5, async () => {
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`lantern serve exited before it was ready:\n${p.output()}`)
    const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })
    return r.status === 200 ? Date.now() : undefined
  })

/** One round: a fresh store and home, runs cut by the crash, the stack started again, each cut run timed. */
const round = (runs: number) =>
  Effect.promise(async (): Promise<Round> => {
    const dir = mkdtempSync(join(tmpdir(), "lantern-bench-restart-"))
    const stops: Array<() => Promise<unknown>> = []
    try {
      const storeDir = join(dir, "js")
      const home = join(dir, "home")
      let nats = await NatsServer.start({ storeDir })
      stops.push(() => nats.stop())
      const port = await NatsServer.freePort()
      const url = `http://127.0.0.1:${port}`
      const first = serve(nats.url, home, port, { LANTERN_FAILPOINTS: FAILPOINT })
      stops.push(() => first.kill())
      await ready(first, url)
      await call(url, "POST", "/v1/agents", {
        name: AGENT,
        spec: {
          systemPrompt: "Call the tools the user names, then report their results.",
          model: "auto",
          maxTurns: 4,
          tools: TOOLS.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters }))
        }
      })
      // every start at once: the first run to reach its second model call kills serve while the others are cut
      // wherever they are; a start the crash cut before its answer is not counted
      const answered = await Promise.all(Array.from({ length: runs }, () =>
        call(url, "POST", "/v1/runs", {
          agentName: AGENT,
          input: INPUT
        }).then((r) => r.id as string, () => null)))
      const ids = answered.filter((id): id is string => id !== null)
      const exit = await first.exited
      if (first.child.signalCode !== "SIGKILL")
        throw new Error(`the armed serve exited with ${exit ?? first.child.signalCode}:\n${first.output()}`)
      const crashedAt = Date.now()
      // the rest of the stack dies too, as a power cut would take it
      await nats.kill()
      const natsAgain = Date.now()
      nats = await NatsServer.start({ storeDir, port: nats.port })
      const natsRestartMs = Date.now() - natsAgain
      const second = serve(nats.url, home, port, {})
      stops.push(() => second.stop())
      const spawned = Date.now()
      const readyAt = await ready(second, url)
      type Event = { type: string; at: string; payload: unknown }
      const journals = await Promise.all(ids.map((id) =>
        // not often: the timing is the journal's, and a request every few ms per run would slow the host timed
        deadline(`run ${id} to end after the restart`, 60_000, 250, async () => {
          const events = (await call(url, "GET", `/v1/runs/${id}/events`)).items as ReadonlyArray<Event>
          const last = events.at(-1)?.type
          return last === "RunSucceeded" || last === "RunFailed" || last === "RunCanceled" ? events : undefined
        })
      ))
      const resumeMs: Array<number> = []
      let succeeded = 0
      let completedTwice = 0
      for (const events of journals) {
        if (events.at(-1)?.type === "RunSucceeded")
          succeeded++
        const after = events.find((e) => Date.parse(e.at) >= crashedAt - 1)
        if (after !== undefined) resumeMs.push(Date.parse(after.at) - readyAt)
        const completed = events.flatMap((e) => Completions.payloadsOf(e.type, e.payload))
          .map((p) => JSON.stringify([p["stepId"], p["attempt"]]))
        completedTwice += completed.length - new Set(completed).size
      }
      return {
        natsRestartMs,
        serveReadyMs: readyAt - spawned,
        resumeMs,
        started: ids.length,
        cut: resumeMs.length,
        succeeded,
        completedTwice
      }
    } finally {
      for (const stop of stops.reverse()) await stop().catch(() => undefined)
      rmSync(dir, { recursive: true, force: true })
    }
  })

/** ROUNDS (scaled) crashes of the whole stack, RUNS (scaled) runs started at once in each. */
export const run = (scale: number) =>
  Effect.gen(function*() {
    const rounds = Math.max(1, Math.round(ROUNDS * scale))
    const runs = Math.max(10, Math.round(RUNS * scale))
    yield* progress(
      `${rounds} rounds: ${runs} runs at once, serve killed at ${FAILPOINT}, nats-server killed, both restarted`
    )
    const results: Array<Round> = []
    for (let i = 0; i < rounds; i++) results.push(yield* round(runs))
    const cut = results.reduce((n, r) => n + r.cut, 0)
    if (cut === 0) return yield* Effect.die(new Error("no run was cut by the crash: nothing to time"))
    return { rounds: results } satisfies Result
  })

const all = (r: Result) => r.rounds.flatMap((x) => x.resumeMs)

export const render = (r: Result): string => {
  const resume = all(r)
  const s = Stats.summarize(resume, 0)
  const max = Math.max(...resume)
  const sum = (f: (x: Round) => number) => r.rounds.reduce((n, x) => n + f(x), 0)
  return [
    `Restart (bench/Restart.ts, issue 11): the whole single-host stack killed mid-run and started again, default settings`,
    `   lantern serve (PGlite) SIGKILLs itself at ${FAILPOINT} with runs in flight, then nats-server is SIGKILLed;`,
    "   both start again on the same store, home and port; resume = a cut run's first event after the crash (its `at`)",
    "   minus the moment the new serve's /readyz answered 200 (negative: the run moved before /readyz said so)",
    table(
      [
        "round",
        "runs answered",
        "cut",
        "succeeded",
        "nats restart ms",
        "serve ready ms",
        "resume p50 ms",
        "resume max ms"
      ],
      r.rounds.map((x, i) => {
        const q = Stats.summarize(x.resumeMs, 0)
        return [
          String(i + 1),
          String(x.started),
          String(x.cut),
          String(x.succeeded),
          x.natsRestartMs.toFixed(0),
          x.serveReadyMs.toFixed(0),
          x.cut === 0 ? "-" : q.medianMs.toFixed(0),
          x.cut === 0 ? "-" : Math.max(...x.resumeMs).toFixed(0)
        ]
      })
    ),
    `   target: every cut run moves within ${TARGET_MS} ms of ready: p50 ${s.medianMs.toFixed(0)} ms, max ${
      max.toFixed(0)
    } ms (${max <= TARGET_MS ? "met" : "NOT MET"}); steps completed twice: ${sum((x) => x.completedTwice)} (${
      sum((x) => x.completedTwice) === 0 ? "met" : "NOT MET"
    }); ${sum((x) => x.succeeded)} of ${sum((x) => x.started)} answered runs succeeded`
  ].join("\n")
}

export const json = (r: Result): string => {
  const resume = all(r)
  const s = Stats.summarize(resume, 0)
  return `BENCH_RESTART_JSON ${
    JSON.stringify({
      rounds: r.rounds.length,
      cut: resume.length,
      resumeP50Ms: Number(s.medianMs.toFixed(1)),
      resumeMaxMs: Number(Math.max(...resume).toFixed(1)),
      completedTwice: r.rounds.reduce((n, x) => n + x.completedTwice, 0),
      serveReadyMs: r.rounds.map((x) => Math.round(x.serveReadyMs)),
      natsRestartMs: r.rounds.map((x) => Math.round(x.natsRestartMs))
    })
  }`
}
