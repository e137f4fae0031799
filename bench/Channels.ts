// Channels (ADR 0050): a signed Telegram webhook through a real `lantern serve`, timed to its acknowledgement (the
// turn journaled and queued) and to the reply arriving at a local server speaking Telegram's sendMessage (the run of
// an offline agent, its answer and delivery journaled), each message its own chat; beside the raw floor, one
// JetStream publish-with-ack to a stream configured like LANTERN_SESSIONS, on the same server in the same run.
import { Effect } from "effect"
import { Nats, unavailable } from "../bus/Nats.ts"
import { SESSIONS } from "../bus/Topology.ts"
import * as Fake from "../tests/support/FakePlatforms.ts"
import { table } from "./Report.ts"
import * as Serve from "./Serve.ts"
import * as Stats from "./Stats.ts"

const MESSAGES = 60
const WARMUP = 5
const FLOOR = 300
const SECRET = "bench-telegram-secret"

export interface Result {
  readonly ack: Stats.Summary
  readonly reply: Stats.Summary
  readonly raw: Stats.Summary
  readonly natsServer: string
}

const progress = (text: string) => Effect.sync(() => process.stderr.write(`bench: channels: ${text}\n`))

const measure = (stack: Serve.Stack, scale: number) =>
  Effect.gen(function*() {
    const n = Math.max(10, Math.round(MESSAGES * scale))
    const fake = yield* Effect.acquireRelease(
      Effect.promise(() => Fake.start()),
      (f) => Effect.promise(() => f.close())
    )
    const channelId = yield* Effect.promise(async () => {
      await stack.call("POST", "/v1/agents", { name: "bench-chat", spec: { systemPrompt: "You answer." } })
      await stack.call("POST", "/v1/secrets", { name: "bench-tg-secret", value: SECRET })
      await stack.call("POST", "/v1/secrets", { name: "bench-tg-bot", value: "1:bench" })
      const channel = await stack.call("POST", "/v1/channels", {
        kind: "telegram",
        name: "bench",
        agentName: "bench-chat",
        config: { apiBaseUrl: fake.url },
        secrets: { secretToken: "lantern.secret://bench-tg-secret", botToken: "lantern.secret://bench-tg-bot" }
      })
      return channel.id as string
    })
    const one = async (i: number) => {
      const chat = 100_000 + i
      const body = JSON.stringify({
        update_id: i,
        message: { message_id: i, from: { id: chat }, chat: { id: chat }, date: 0, text: `hello ${i}` }
      })
      const started = performance.now()
      const r = await fetch(`${stack.url}/v1/hooks/${channelId}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET },
        body
      })
      if (r.status !== 200) throw new Error(`webhook answered ${r.status}: ${await r.text()}`)
      const acked = performance.now()
      const chatId = String(chat)
      const deadline = Date.now() + 60_000
      while (!fake.requests.some((q) => q.path.endsWith("/sendMessage") && JSON.parse(q.body).chat_id === chatId)) {
        if (Date.now() > deadline) throw new Error(`no reply for chat ${chatId} within 60 s`)
        await new Promise((r) => setTimeout(r, 2))
      }
      return { ack: acked - started, reply: performance.now() - started }
    }
    yield* progress(`${WARMUP} warm-up and ${n} measured messages, one at a time`)
    const measured = yield* Effect.promise(async () => {
      for (let i = 0; i < WARMUP; i++) await one(i)
      const out: Array<{ ack: number; reply: number }> = []
      const began = performance.now()
      for (let i = WARMUP; i < WARMUP + n; i++) out.push(await one(i))
      return { out, wall: performance.now() - began }
    })
    const { js, jsm } = yield* Nats
    const raw = yield* Effect.tryPromise({
      try: async () => {
        const { metadata: _m, ...config } = (await jsm.streams.info(SESSIONS)).config
        await jsm.streams.add({ ...config, name: "BENCH_CHANNELS_RAW", subjects: ["bench.channelsraw.>"] })
        const samples: Array<number> = []
        const began = performance.now()
        for (let i = 0; i < FLOOR; i++) {
          const t = performance.now()
          await js.publish("bench.channelsraw.x", `{"i":${i}}`)
          samples.push(performance.now() - t)
        }
        return Stats.summarize(samples, performance.now() - began)
      },
      catch: unavailable("raw publish")
    })
    return {
      ack: Stats.summarize(measured.out.map((m) => m.ack), measured.wall),
      reply: Stats.summarize(measured.out.map((m) => m.reply), measured.wall),
      raw,
      natsServer: stack.nats.version
    } satisfies Result
  })

export const run = (scale: number) =>
  Serve.withStack("channels", {}, progress, (stack) => Effect.scoped(measure(stack, scale)))

const ms = (x: number) => x.toFixed(2)

export const render = (r: Result): string =>
  [
    `Channels (bench/Channels.ts, ADR 0050): signed Telegram webhooks through \`lantern serve\`, one at a time, nats-server ${r.natsServer}`,
    "   ack = POST /v1/hooks/{id} answered (signature checked, the turn journaled, its work queued);",
    "   reply = until sendMessage reached the local Telegram fake (the offline agent's run, answer and delivery journaled);",
    "   raw = one JetStream publish-with-ack to a stream configured like LANTERN_SESSIONS, same server, same run",
    table(["", "p50 ms", "p99 ms", "p50 / raw p50"], [
      ["raw JetStream publish", ms(r.raw.medianMs), ms(r.raw.p99Ms), "1.0"],
      ["webhook ack", ms(r.ack.medianMs), ms(r.ack.p99Ms), (r.ack.medianMs / r.raw.medianMs).toFixed(1)],
      ["reply at the platform", ms(r.reply.medianMs), ms(r.reply.p99Ms), (r.reply.medianMs / r.raw.medianMs).toFixed(1)]
    ])
  ].join("\n")

export const json = (r: Result): string => JSON.stringify({ section: "channels", ...r })
