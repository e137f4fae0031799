import { Effect } from "effect"
import { Tiktoken } from "js-tiktoken/lite"
import o200k from "js-tiktoken/ranks/o200k_base"
import { beforeAll, describe, expect, it } from "vitest"
import type { ToolSpec } from "../../schema/AgentSpec.ts"
import type { Message } from "../run/Plan.ts"
import * as Tokenizer from "./Tokenizer.ts"

/** The library itself, unsliced: the reference the module must agree with on ordinary text. */
let reference: Tiktoken
beforeAll(async () => {
  const started = performance.now()
  await Effect.runPromise(Tokenizer.warm)
  console.log(`o200k_base encoder loaded in ${(performance.now() - started).toFixed(0)} ms`)
  reference = new Tiktoken(o200k)
})
const exact = (text: string) => reference.encode(text, [], []).length

const prose = [
  "Lantern runs AI agents durably: every step is journaled before it runs and after it completes,",
  "so a host that dies mid-run is replaced by another that continues from the last completed step.",
  "Budgets reserve the worst-case cost of a model call before it is made, and settle to the actual cost after."
].join(" ")

describe("Tokenizer.count (o200k_base)", () => {
  it("counts known strings as the encoding does", () => {
    expect(Tokenizer.count("hello world")).toBe(2)
    expect(Tokenizer.count("Hello, world!")).toBe(4)
    expect(Tokenizer.count("The quick brown fox jumps over the lazy dog.")).toBe(10)
    expect(Tokenizer.count("日本語のテキスト")).toBe(6)
    expect(Tokenizer.count("")).toBe(0)
    expect(Tokenizer.count(" ")).toBe(1)
    for (const role of ["system", "user", "assistant", "tool"]) expect(Tokenizer.count(role)).toBe(1)
  })

  it("agrees exactly with the library on ordinary text, code and JSON", () => {
    const samples = [
      prose,
      "function add(a: number, b: number): number {\n  return a + b\n}\n",
      JSON.stringify({
        type: "object",
        properties: { city: { type: "string", description: "City name" } },
        required: ["city"]
      }),
      "Ünïcödé, emoji 🎉🚀 and numbers 1234567890 — mixed.\n\n\tindented",
      "supercalifragilisticexpialidocious antidisestablishmentarianism"
    ]
    for (const s of samples) expect(Tokenizer.count(s)).toBe(exact(s))
  })

  it("counts special-token text in user content as ordinary text instead of throwing", () => {
    const s = "ignore this <|endoftext|> and <|endofprompt|>"
    expect(() => reference.encode(s)).toThrow(/special token/)
    expect(Tokenizer.count(s)).toBe(exact(s))
  })

  it("counts long unbroken runs in slices: quickly, and close to the exact count", () => {
    // exact BPE of one 20,000-letter piece takes minutes in js-tiktoken; sliced it is milliseconds
    const started = performance.now()
    expect(Tokenizer.count("a".repeat(20_000))).toBe(2500)
    const aMs = performance.now() - started
    // Chinese prose has no spaces: one piece per sentence run
    const chinese =
      "东京是日本的首都也是世界上人口最多的城市之一这里有很多历史悠久的寺庙和现代化的高楼大厦每年吸引大量游客前来观光旅游"
    const run = chinese.repeat(2)
    const sliced = Tokenizer.count(run)
    const truth = exact(run)
    expect(sliced).toBeGreaterThanOrEqual(truth)
    expect(sliced).toBeLessThanOrEqual(Math.ceil(truth * 1.05))
    const t0 = performance.now()
    const big = Tokenizer.count(chinese.repeat(200))
    console.log(
      `long runs: 20,000 × 'a' in ${
        aMs.toFixed(1)
      } ms; ${run.length} Chinese characters ${sliced} tokens sliced vs ${truth} exact; ${
        chinese.repeat(200).length
      } characters (${big} tokens) in ${(performance.now() - t0).toFixed(0)} ms`
    )
    // slicing only touches long pieces: text around a long run still counts exactly
    const mixed = `${prose} ${"=".repeat(200)} ${prose}`
    expect(Math.abs(Tokenizer.count(mixed) - exact(mixed))).toBeLessThanOrEqual(2)
  })

  it("never counts fewer tokens for a longer text made of more words", () => {
    const words = prose.split(" ")
    let previous = 0
    for (let n = 1; n <= words.length; n++) {
      const c = Tokenizer.count(words.slice(0, n).join(" "))
      expect(c).toBeGreaterThanOrEqual(previous)
      previous = c
    }
    expect(Tokenizer.count(prose.repeat(4))).toBeGreaterThan(3 * Tokenizer.count(prose))
  })
})

const lookup: ToolSpec = {
  name: "lookup",
  description: "Looks a word up in the dictionary.",
  parameters: { type: "object", properties: { word: { type: "string" } }, required: ["word"] }
}

describe("Tokenizer.estimatePrompt (OpenAI chat accounting)", () => {
  const conversation: ReadonlyArray<Message> = [
    { role: "system", content: "You are terse." },
    { role: "user", content: "hello world" }
  ]

  it("counts 3 per message plus role and content, and 3 to prime the reply", () => {
    // system: 3 + 1 ("system") + 4 ("You are terse.") ; user: 3 + 1 + 2 ; reply: 3
    expect(Tokenizer.count("You are terse.")).toBe(4)
    expect(Tokenizer.estimatePrompt(conversation, [])).toBe(8 + 6 + 3)
    expect(Tokenizer.estimatePrompt([], [])).toBe(3)
    expect(Tokenizer.estimatePrompt([{ role: "assistant", content: null }], [])).toBe(3 + 1 + 3)
  })

  it("counts tool definitions as the JSON of the request's tools field", () => {
    const json = JSON.stringify([{
      type: "function",
      function: { name: lookup.name, description: lookup.description, parameters: lookup.parameters }
    }])
    expect(Tokenizer.estimatePrompt(conversation, [lookup])).toBe(
      Tokenizer.estimatePrompt(conversation, []) + exact(json)
    )
    // Lantern-only fields (approval, agent) never reach the provider, so they cost nothing
    expect(Tokenizer.estimatePrompt(conversation, [{ ...lookup, approval: { expiresInSeconds: 60 } }])).toBe(
      Tokenizer.estimatePrompt(conversation, [lookup])
    )
    expect(Tokenizer.estimatePrompt(conversation, [lookup, { ...lookup, name: "define" }])).toBeGreaterThan(
      Tokenizer.estimatePrompt(conversation, [lookup])
    )
  })

  it("counts tool calls (id, name, JSON arguments) and tool results", () => {
    const call = { id: "call_1", name: "lookup", arguments: { word: "lantern" } }
    const withCall: ReadonlyArray<Message> = [
      ...conversation,
      { role: "assistant", content: null, toolCalls: [call] },
      { role: "tool", content: "a lamp with a protective case", toolCallId: "call_1" }
    ]
    const expected = Tokenizer.estimatePrompt(conversation, [])
      + (3 + 1 + exact("call_1") + exact("lookup") + exact(JSON.stringify(call.arguments)))
      + (3 + 1 + exact("a lamp with a protective case") + exact("call_1"))
    expect(Tokenizer.estimatePrompt(withCall, [])).toBe(expected)
  })

  it("grows with the text: never smaller for a longer prompt", () => {
    let previous = 0
    for (let n = 0; n <= 40; n++) {
      const e = Tokenizer.estimatePrompt([{ role: "system", content: "Be brief." }, {
        role: "user",
        content: prose.slice(0, n * 8)
      }], [lookup])
      expect(e).toBeGreaterThanOrEqual(previous)
      previous = e
    }
  })

  it("times an estimate of a 10,000-token prompt once loaded (reported, not asserted)", () => {
    const paragraphs = Array.from({ length: 150 }, (_, i) => `${i}. ${prose}`)
    const messages: ReadonlyArray<Message> = [
      {
        role: "system",
        content: "You answer questions about the documents below.\n\n" + paragraphs.slice(0, 75).join("\n")
      },
      { role: "user", content: paragraphs.slice(75).join("\n") }
    ]
    Tokenizer.estimatePrompt(messages, [lookup])
    const runs = 20
    const started = performance.now()
    let tokens = 0
    for (let i = 0; i < runs; i++) tokens = Tokenizer.estimatePrompt(messages, [lookup])
    const ms = (performance.now() - started) / runs
    console.log(`estimatePrompt: ${tokens} tokens in ${ms.toFixed(2)} ms (mean of ${runs})`)
    expect(tokens).toBeGreaterThan(9500)
    expect(tokens).toBeLessThan(10500)
  })
})
