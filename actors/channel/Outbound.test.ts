// The send requests of each platform as their APIs document them, and the Retry-After a 429 asks for.
import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import type { Channel } from "./Channels.ts"
import * as Outbound from "./Outbound.ts"

const channel = (kind: Channel["kind"], config: Channel["config"] = {}): Channel => ({
  id: "ch_x",
  tenant: "acme",
  kind,
  name: "n",
  agentName: "a",
  config,
  secrets: {},
  createdAt: "",
  updatedAt: ""
})
const send = (c: Channel, reply: Record<string, string>): Outbound.Send => ({
  channel: c,
  secret: (name) => Redacted.make(name === "botToken" ? "bot-token" : "auth-token"),
  reply,
  text: "hello",
  idempotencyKey: "ses_1:1"
})

describe("send requests", () => {
  it("Slack chat.postMessage in the thread, with the bot token", () => {
    const r = Outbound.requestOf(send(channel("slack"), { channel: "C1", thread_ts: "1.2" }))!
    expect(r.url).toBe("https://slack.com/api/chat.postMessage")
    expect(r.headers).toMatchObject({ authorization: "Bearer bot-token", "idempotency-key": "ses_1:1" })
    expect(JSON.parse(r.body)).toEqual({ channel: "C1", text: "hello", thread_ts: "1.2" })
  })

  it("Discord's follow-up webhook, Telegram sendMessage, WhatsApp messages, Twilio Messages.json", () => {
    const d = Outbound.requestOf(send(channel("discord", { applicationId: "42" }), { token: "tok" }))!
    expect(d.url).toBe("https://discord.com/api/v10/webhooks/42/tok")
    expect(JSON.parse(d.body)).toEqual({ content: "hello" })
    const t = Outbound.requestOf(send(channel("telegram", { apiBaseUrl: "http://fake/" }), { chat_id: "7" }))!
    expect(t.url).toBe("http://fake/botbot-token/sendMessage")
    expect(JSON.parse(t.body)).toEqual({ chat_id: "7", text: "hello" })
    const w = Outbound.requestOf(send(channel("whatsapp", { phoneNumberId: "99" }), { to: "1555" }))!
    expect(w.url).toBe("https://graph.facebook.com/v21.0/99/messages")
    expect(JSON.parse(w.body)).toMatchObject({ messaging_product: "whatsapp", to: "1555", text: { body: "hello" } })
    const s = Outbound.requestOf(send(channel("twilio", { accountSid: "AC1", from: "+1" }), { to: "+2" }))!
    expect(s.url).toBe("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json")
    expect(s.headers["authorization"]).toBe(`Basic ${Buffer.from("AC1:auth-token").toString("base64")}`)
    expect(Object.fromEntries(new URLSearchParams(s.body))).toEqual({ To: "+2", From: "+1", Body: "hello" })
  })

  it("no request for channels answered in place; a typing indicator only where the platform has one", () => {
    expect(Outbound.requestOf(send(channel("webchat"), {}))).toBeNull()
    expect(Outbound.typingOf(send(channel("telegram"), { chat_id: "7" }))?.url).toMatch(/sendChatAction$/)
    expect(Outbound.typingOf(send(channel("slack"), { channel: "C1" }))).toBeNull()
  })

  it("reads Retry-After in seconds, capped, and nothing else", () => {
    expect(Outbound.retryAfterMs("2")).toBe(2000)
    expect(Outbound.retryAfterMs("0.5")).toBe(500)
    expect(Outbound.retryAfterMs("3600")).toBe(Outbound.MAX_RETRY_AFTER_MS)
    expect(Outbound.retryAfterMs("Wed, 21 Oct 2026 07:28:00 GMT")).toBeNull()
    expect(Outbound.retryAfterMs(null)).toBeNull()
  })
})
