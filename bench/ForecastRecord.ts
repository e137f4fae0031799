// Records the runs the cost-forecast bench replays (bench/fixtures/forecast-runs.jsonl): four agents run
// against a real `lantern serve` whose OpenAI-compatible provider is a seeded fake with realistic usage.
// Run once: `node --import tsx bench/ForecastRecord.ts`; the fixture is committed so every bench replays it.
import { createHash } from "node:crypto"
import { writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import * as Tokenizer from "../actors/model/Tokenizer.ts"
import type { Message } from "../actors/run/Plan.ts"
import { freePort } from "../bus/NatsServer.ts"
import type { ToolSpec } from "../schema/AgentSpec.ts"
import { FIXTURE } from "./Forecast.ts"
import { startServer } from "../tests/support/Bus.ts"
import { readBody, streamOf } from "../tests/support/FakeOpenAi.ts"
import { api, eventually, startStack } from "../tests/support/Stack.ts"

const SEED = 20261121

/** A small deterministic PRNG (mulberry32). */
export const rng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const seedOf = (text: string) => createHash("sha256").update(text).digest().readUInt32LE(0)

/** A standard normal draw (Box-Muller). */
const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
const logNormal = (r: () => number, sigma: number) => Math.exp(sigma * normal(r))
const between = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))

const WORDS = (
  "the of and to in is for that on with as by at from this be are was it an or have not which their has but more can "
  + "system data report customer order price value market service product team project model result process time year "
  + "growth revenue cost risk plan change support network issue account payment delivery contract policy quality "
  + "analysis review update request response error release version budget schedule supplier region sales margin "
  + "forecast demand inventory capacity storage latency outage incident ticket refund invoice shipment warehouse "
  + "quarterly annual regional global internal external critical minor urgent routine detailed summary overview"
).split(" ")

const words = (r: () => number, n: number) =>
  Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]!).join(" ")

/** Text of about `tokens` tokens (most of the vocabulary is one token a word). */
const prose = (r: () => number, tokens: number) => {
  const out: Array<string> = []
  let left = Math.max(1, Math.round(tokens))
  while (left > 0) {
    const n = Math.min(left, between(r, 6, 18))
    out.push(`${words(r, n)}.`)
    left -= n + 1
  }
  return out.join(" ")
}

// ---- the agents and their inputs ----

const tool = (name: string, description: string, arg: string): ToolSpec => ({
  name,
  description,
  parameters: { type: "object", properties: { [arg]: { type: "string" } }, required: [arg] }
})

export const AGENTS = [
  {
    name: "summarize",
    spec: {
      systemPrompt: `[agent:summarize] You summarise documents for busy readers. ${prose(rng(1), 120)}`,
      model: "gpt-4o-mini",
      maxTokens: 1024
    }
  },
  {
    name: "research",
    spec: {
      systemPrompt: `[agent:research] You research each topic with the echo tool, then write a brief. ${
        prose(rng(2), 380)
      }`,
      model: "gpt-4o",
      maxTurns: 8,
      maxTokens: 800,
      tools: [
        tool("echo", "Looks a query up and returns the notes found.", "text"),
        tool("word_count", "Counts words.", "text")
      ]
    }
  },
  {
    name: "calc",
    spec: {
      systemPrompt: `[agent:calc] You solve word problems with the calculator, one expression per call. ${
        prose(rng(3), 60)
      }`,
      model: "gpt-4.1-mini",
      maxTurns: 6,
      maxTokens: 400,
      tools: [tool("calculator", "Evaluates an arithmetic expression.", "expression")]
    }
  },
  {
    name: "triage",
    spec: {
      systemPrompt: `[agent:triage] You classify support tickets into a queue and a priority. ${prose(rng(4), 200)}`,
      model: "gpt-4.1",
      maxTokens: 120
    }
  }
] as const

/** research's second version: a longer prompt asking for one more check per brief (history restarts). */
export const RESEARCH_V2 = {
  ...AGENTS[1].spec,
  systemPrompt: `${AGENTS[1].spec.systemPrompt} Verify the brief's figures once more before answering. ${
    prose(rng(5), 150)
  }`
}

const inputOf = (agent: string, r: () => number): string => {
  switch (agent) {
    case "summarize":
      return `Summarise:\n${prose(r, Math.round(Math.exp(5.5 + 1.0 * normal(r))))}`
    case "research": {
      const topics = between(r, 1, 5)
      const list = Array.from({ length: topics }, (_, i) => `${i + 1}) ${words(r, between(r, 2, 6))}`).join("\n")
      return `Research these topics and write a brief:\n${list}\nContext: ${prose(r, between(r, 10, 250))}`
    }
    case "calc": {
      const n = between(r, 1, 4)
      const exprs = Array.from(
        { length: n },
        () => `(${between(r, 2, 99)} + ${between(r, 2, 99)}) * ${between(r, 2, 9)}`
      )
      return `${prose(r, between(r, 10, 60))}\nCompute: ${exprs.join("; ")}`
    }
    default:
      return `Ticket: ${prose(r, Math.round(Math.exp(4.2 + 0.8 * normal(r))))}`
  }
}

// ---- the fake provider ----

interface WireMessage {
  readonly role: Message["role"]
  readonly content: string | null
  readonly tool_calls?: ReadonlyArray<
    { readonly id: string; readonly function: { readonly name: string; readonly arguments: string } }
  >
  readonly tool_call_id?: string
}

const toMessage = (m: WireMessage): Message => ({
  role: m.role,
  content: m.content,
  ...(m.tool_calls === undefined
    ? {}
    : {
      toolCalls: m.tool_calls.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: JSON.parse(c.function.arguments) as unknown
      }))
    }),
  ...(m.tool_call_id === undefined ? {} : { toolCallId: m.tool_call_id })
})

interface Answer {
  readonly content: string | null
  readonly calls: ReadonlyArray<{ readonly name: string; readonly arguments: Record<string, string> }>
}

/**
 * What the fake model answers at this point of a conversation: a pure function of the agent, the input and the
 * number of tool results so far, so a replayed step gets the same answer. Tool turns depend on what the input
 * asks for (topics, expressions) plus seeded detours; answer lengths on the input's size with log-normal noise.
 */
const answerOf = (agent: string, input: string, toolResults: number, turn: number, maxTokens: number): Answer => {
  const plan = rng(seedOf(`plan:${input}`))
  const r = rng(seedOf(`turn:${turn}:${input}`))
  const cap = (n: number) => Math.max(3, Math.min(maxTokens - 8, Math.round(n)))
  switch (agent) {
    case "summarize": {
      const size = Tokenizer.count(input)
      return { content: prose(r, cap((0.1 * size + 40) * logNormal(plan, 0.35))), calls: [] }
    }
    case "research": {
      const topics = input.split("\n").filter((l) => /^\d+\) /.test(l)).length
      const detours = plan() < 0.6 ? 0 : plan() < 0.75 ? 1 : 2
      const wanted = topics + detours
      if (toolResults < wanted) {
        const parallel = wanted - toolResults >= 2 && r() < 0.3 ? 2 : 1
        return {
          content: null,
          calls: Array.from(
            { length: parallel },
            () => ({ name: "echo", arguments: { text: prose(r, between(r, 20, 150)) } })
          )
        }
      }
      return { content: prose(r, cap(110 * topics * logNormal(plan, 0.3))), calls: [] }
    }
    case "calc": {
      const expressions = (input.split("Compute: ")[1] ?? "").split("; ").filter((e) => e !== "")
      const retries = plan() < 0.85 ? 0 : 1
      if (toolResults < expressions.length + retries) {
        const e = expressions[Math.min(toolResults, expressions.length - 1)] ?? "1+1"
        return { content: null, calls: [{ name: "calculator", arguments: { expression: e } }] }
      }
      return { content: prose(r, cap((25 + 12 * expressions.length) * logNormal(plan, 0.3))), calls: [] }
    }
    default:
      return { content: prose(r, cap(between(plan, 8, 50))), calls: [] }
  }
}

const startFake = async () => {
  const port = await freePort()
  let n = 0
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.parse(await readBody(req)) as {
      model: string
      messages: ReadonlyArray<WireMessage>
      tools?: ReadonlyArray<{ function: ToolSpec }>
    }
    const system = body.messages[0]?.content ?? ""
    const agent = /^\[agent:([a-z]+)\]/.exec(system)?.[1] ?? "triage"
    const input = body.messages[1]?.content ?? ""
    const toolResults = body.messages.filter((m) => m.role === "tool").length
    const turn = body.messages.filter((m) => m.role === "assistant").length + 1
    const spec = AGENTS.find((a) => a.name === agent)!.spec
    const answer = answerOf(agent, input, toolResults, turn, spec.maxTokens)
    // research v2 asks for one more check: one extra tool round before the brief
    const v2Extra = agent === "research" && system.includes("figures once more") && answer.calls.length === 0 &&
      !body.messages.some((m) => m.role === "tool" && m.content?.startsWith("check:"))
    const final: Answer = v2Extra
      ? { content: null, calls: [{ name: "echo", arguments: { text: `check: ${prose(rng(seedOf(input)), 40)}` } }] }
      : answer
    const calls = final.calls.map((c, i) => ({
      id: `call_${turn}_${i}`,
      type: "function",
      function: { name: c.name, arguments: JSON.stringify(c.arguments) }
    }))
    // usage as a vendor reports it: its own count (a few per cent off Lantern's tokenizer), prompt caching on later turns
    const r = rng(seedOf(`usage:${turn}:${input}`))
    const counted = Tokenizer.estimatePrompt(body.messages.map(toMessage), (body.tools ?? []).map((t) => t.function))
    const prompt = Math.round(counted * (0.94 + 0.04 * r()))
    const cached = turn > 1 && prompt >= 1024 && r() < 0.8 ? Math.floor((0.85 * prompt) / 128) * 128 : 0
    const completion = Tokenizer.count(final.content ?? "") +
      calls.reduce((s, c) => s + 4 + Tokenizer.count(c.function.name) + Tokenizer.count(c.function.arguments), 0)
    const completionJson = JSON.stringify({
      id: `chatcmpl-${++n}`,
      object: "chat.completion",
      created: 0,
      model: body.model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: final.content, ...(calls.length > 0 ? { tool_calls: calls } : {}) },
        finish_reason: calls.length > 0 ? "tool_calls" : "stop"
      }],
      usage: {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: { cached_tokens: cached }
      }
    })
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" })
    for (const e of streamOf(completionJson)) res.write(e)
    res.end()
  })
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return { url: `http://127.0.0.1:${port}/v1`, close: () => new Promise<void>((r) => server.close(() => r())) }
}

// ---- the recording ----

/** Runs per agent, in a seeded interleaving; research publishes v2 after half of its runs. */
const PLAN = { summarize: 60, research: 80, calc: 50, triage: 60 } as const
const CONCURRENCY = 4

const record = async () => {
  const nats = await startServer("lantern-forecast-record")
  const fake = await startFake()
  const stack = await startStack({
    natsUrl: nats.handle.url,
    env: { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: fake.url, LANTERN_OPENAI_MODEL: "gpt-4o-mini" }
  })
  const call = api(stack)
  try {
    for (const a of AGENTS) {
      const r = await call("POST", "/v1/agents", a)
      if (r.status !== 201) throw new Error(`creating ${a.name}: ${r.status} ${r.text}`)
    }
    const r = rng(SEED)
    const queue: Array<string> = Object.entries(PLAN).flatMap(([name, n]) => Array.from({ length: n }, () => name))
    for (let i = queue.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1))
      ;[queue[i], queue[j]] = [queue[j]!, queue[i]!]
    }
    const inputs = queue.map((agent) => ({ agent, input: inputOf(agent, r) }))
    const ids: Array<string> = []
    let researchSeen = 0
    // batches of CONCURRENCY, started in order; the version switch waits for the batch before it
    for (let i = 0; i < inputs.length; i += CONCURRENCY) {
      const batch = inputs.slice(i, i + CONCURRENCY)
      for (const b of batch) {
        if (b.agent === "research" && ++researchSeen === PLAN.research / 2 + 1) {
          const u = await call("PUT", "/v1/agents/research", { spec: RESEARCH_V2 })
          if (u.json?.latestVersion !== 2) throw new Error(`publishing research v2: ${u.text}`)
        }
        const started = await call("POST", "/v1/runs", { agentName: b.agent, input: b.input })
        if (started.status !== 201) throw new Error(`starting ${b.agent}: ${started.status} ${started.text}`)
        ids.push(started.json.id)
      }
      await Promise.all(
        ids.slice(i).map((id) =>
          eventually(
            async () => {
              const got = await call("GET", `/v1/runs/${id}`)
              return got.json?.status !== "running" ? got.json : null
            },
            60_000,
            `run ${id}`
          )
        )
      )
      process.stderr.write(`recorded ${Math.min(i + CONCURRENCY, inputs.length)}/${inputs.length}\n`)
    }
    const versions = await Promise.all(
      AGENTS.map(async (a) => (await call("GET", `/v1/agents/${a.name}/versions`)).json.items)
    )
    const runs = await Promise.all(ids.map(async (id) => (await call("GET", `/v1/runs/${id}`)).json))
    const lines = [
      {
        type: "meta",
        seed: SEED,
        recordedAt: new Date().toISOString(),
        provider: "fake OpenAI-compatible (bench/ForecastRecord.ts)"
      },
      ...versions.flat().map((v: { name: string; version: number; spec: unknown }) => ({
        type: "agent",
        name: v.name,
        version: v.version,
        spec: v.spec
      })),
      ...runs.map((run) => ({
        type: "run",
        id: run.id,
        agentName: run.agentName,
        agentVersion: run.agentVersion,
        status: run.status,
        input: run.input,
        steps: run.steps,
        tokensIn: run.tokensIn,
        tokensOut: run.tokensOut,
        costUsd: run.costUsd,
        createdAt: run.createdAt,
        finishedAt: run.finishedAt
      }))
    ]
    writeFileSync(FIXTURE, lines.map((l) => JSON.stringify(l)).join("\n") + "\n")
    process.stderr.write(`wrote ${runs.length} runs to ${FIXTURE}\n`)
  } finally {
    await stack.stop()
    await fake.close()
    await nats.cleanup()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await record()
