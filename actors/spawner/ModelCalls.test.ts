// The OpenAI-compatible shapes of a workload's model calls: bodies read into the port's request (or a 400 naming the
// field), answers written back as a chat completion.
import { describe, expect, it } from "vitest"
import * as ModelCalls from "./ModelCalls.ts"

describe("a chat completions body", () => {
  it("becomes the port's request: text parts joined, developer as system, max_completion_tokens over max_tokens", () => {
    const r = ModelCalls.parse(
      {
        model: "auto",
        messages: [
          { role: "developer", content: "be brief" },
          { role: "user", content: [{ type: "text", text: "hel" }, { type: "text", text: "lo" }] }
        ],
        max_tokens: 10,
        max_completion_tokens: 20,
        temperature: 0
      },
      "acme",
      "wl_x:model:1"
    )
    expect(r).toEqual({
      _tag: "Request",
      request: {
        model: "auto",
        messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello" }],
        tools: [],
        idempotencyKey: "wl_x:model:1",
        tenant: "acme",
        maxTokens: 20,
        temperature: 0
      }
    })
  })
  it("is refused with a 400 naming what is not supported or not valid", () => {
    const param = (body: unknown) => {
      const r = ModelCalls.parse(body, "t", "k")
      return r._tag === "Invalid" ? [r.answer.status, (r.answer.body as any).error.param] : null
    }
    expect(param([])).toEqual([400, "body"])
    expect(param({ messages: [{ role: "user", content: "x" }] })).toEqual([400, "model"])
    expect(param({ model: "auto", stream: true, messages: [{ role: "user", content: "x" }] })).toEqual([400, "stream"])
    expect(param({ model: "auto", tools: [{}], messages: [{ role: "user", content: "x" }] })).toEqual([400, "tools"])
    expect(param({ model: "auto", messages: [] })).toEqual([400, "messages"])
    expect(param({ model: "auto", messages: [{ role: "tool", content: "x" }] })).toEqual([400, "messages[0].role"])
    expect(param({ model: "auto", messages: [{ role: "user", content: [{ type: "image_url" }] }] })).toEqual([
      400,
      "messages[0].content"
    ])
    expect(param({ model: "auto", messages: [{ role: "user", content: "x" }], max_tokens: 0 })).toEqual([
      400,
      "max_tokens"
    ])
  })
})
