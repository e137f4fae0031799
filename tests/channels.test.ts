// Channels (ADR 0050) against a real stack: `lantern serve` on a real nats-server, platforms played by a local
// server speaking their send APIs (tests/support/FakePlatforms.ts). Each platform's webhook is signed here as the
// platform documents it (independently of actors/channel/Verify.ts): a signed message becomes one run of the
// bound agent and one reply at the fake; a wrong, stale, future or missing signature is 401 and audited; a
// redelivery starts nothing and sends nothing. Connections fail closed; sessions keep context across turns and
// survive a kill -9 of the host between turns.
import { createHmac, generateKeyPairSync, sign } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startServer, type TestServer } from "./support/Bus.ts"
import * as Fake from "./support/FakePlatforms.ts"
import * as FakeSmtp from "./support/FakeSmtp.ts"
import { api, eventually, spawnLantern, type StackProcess, startStack } from "./support/Stack.ts"

let nats: TestServer
let dir: string
let stack: StackProcess
let call: ReturnType<typeof api>
let fake: Fake.FakePlatforms
let smtp: FakeSmtp.FakeSmtp

const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
const TELEGRAM_SECRET = "tg-secret-token-123"
const WHATSAPP_APP_SECRET = "wa-app-secret"
const WHATSAPP_VERIFY = "wa-verify-token"
const TWILIO_TOKEN = "12345678901234567890123456789012"
const TWILIO_URL = "https://sms.example.com/lantern/hooks/twilio?tenant=demo"
const EMAIL_SECRET = "postmark-basic-secret"
const discordKeys = generateKeyPairSync("ed25519")
const DISCORD_PUBLIC = discordKeys.publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("hex")

const home = () => join(dir, "home")

beforeAll(async () => {
  nats = await startServer("lantern-channels")
  dir = mkdtempSync(join(tmpdir(), "lantern-channels-"))
  fake = await Fake.start()
  smtp = await FakeSmtp.start()
  stack = await startStack({ natsUrl: nats.handle.url, home: home() })
  call = api(stack)
  for (
    const agent of [
      { name: "helper", spec: { systemPrompt: "You help." } },
      {
        name: "careful",
        spec: {
          systemPrompt: "You echo with care.",
          maxTurns: 4,
          tools: [{
            name: "echo",
            description: "echo",
            parameters: { type: "object", properties: {} },
            approval: { expiresInSeconds: 600 }
          }]
        }
      }
    ]
  ) {
    expect((await call("POST", "/v1/agents", agent)).status).toBe(201)
  }
  for (
    const [name, value] of [
      ["slack-signing", SLACK_SECRET],
      ["slack-bot", "xoxb-bot-token"],
      ["tg-secret", TELEGRAM_SECRET],
      ["tg-bot", "123456:ABC-DEF"],
      ["wa-app", WHATSAPP_APP_SECRET],
      ["wa-verify", WHATSAPP_VERIFY],
      ["wa-token", "EAAG-access-token"],
      ["discord-key", DISCORD_PUBLIC],
      ["twilio-token", TWILIO_TOKEN],
      ["postmark-hook", EMAIL_SECRET],
      ["smtp-pass", "relay-password"]
    ]
  ) {
    expect((await call("POST", "/v1/secrets", { name, value })).status).toBe(201)
  }
}, 180_000)

afterAll(async () => {
  await stack?.kill()
  await fake?.close()
  await smtp?.close()
  await nats?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const connect = async (body: Record<string, unknown>) => {
  const r = await call("POST", "/v1/channels", body)
  expect(r.status, r.text).toBe(201)
  return r.json as { id: string; webhookUrl: string; kind: string }
}

const hook = (id: string, body: string | Uint8Array, headers: Record<string, string>, method = "POST") =>
  fetch(`${stack.url}/v1/hooks/${id}`, { method, headers, body })

const runsOf = async (
  agentName: string
) => ((await call("GET", `/v1/runs?agentName=${agentName}&limit=100`)).json.items as Array<{ id: string }>)

const sessions = async () => (await call("GET", "/v1/sessions")).json.items as Array<any>

/** Runs of `agentName` no session turn started (the run list is a projection: each turn's run is waited for). */
const orphanRuns = async (agentName: string) => {
  const owned = new Set((await sessions()).flatMap((s) => s.runs as Array<string>))
  await eventually(
    async () => {
      const listed = new Set((await runsOf(agentName)).map((r) => r.id))
      return [...owned].every((id) => listed.has(id)) ? true : null
    },
    15_000,
    "the runs to be projected"
  )
  return (await runsOf(agentName)).filter((r) => !owned.has(r.id))
}

/** Waits until the session of `channelId` has answered and delivered `turns` turns; returns it. */
const delivered = (channelId: string, turns: number) =>
  eventually(
    async () => {
      const s = (await sessions()).find((x) => x.channelId === channelId)
      return s !== undefined && s.turns.length >= turns && s.turns.every((t: any) => t.delivery !== null) ? s : null
    },
    30_000,
    `channel ${channelId} to deliver ${turns} turn(s)`
  )

/**
 * Waits until `n` redeliveries to `channelId` were recognised as such (audited hook.deduplicated): after that, and
 * once the turn is delivered, nothing more can come of them, so "sent once" is checked without waiting blind.
 */
const deduplicated = (channelId: string, n = 1) =>
  eventually(
    async () => {
      const items = (await call("GET", "/v1/audit?action=hook.deduplicated&limit=200")).json.items as Array<any>
      const mine = items.filter((e) => e.target === `channel:${channelId}`)
      return mine.length >= n ? mine : null
    },
    30_000,
    `${n} redelivery(ies) to ${channelId} to be audited as deduplicated`
  )

const slackSign = (body: string, ts = Math.floor(Date.now() / 1000)) => ({
  "content-type": "application/json",
  "x-slack-request-timestamp": String(ts),
  "x-slack-signature": "v0=" + createHmac("sha256", SLACK_SECRET).update(`v0:${ts}:${body}`).digest("hex")
})

const audited = async (channelId: string) =>
  ((await call("GET", "/v1/audit?action=hook.rejected&limit=200")).json.items as Array<any>).filter((e) =>
    e.target === `channel:${channelId}`
  )

describe("connections", () => {
  it("refuses a connection without its verification material, naming the field (fail-closed)", async () => {
    const r = await call("POST", "/v1/channels", {
      kind: "slack",
      name: "no secret",
      agentName: "helper",
      secrets: { botToken: "lantern.secret://slack-bot" }
    })
    expect(r.status).toBe(400)
    expect(r.json.error.issues).toEqual([expect.objectContaining({ field: "secrets.signingSecret" })])
    const twilio = await call("POST", "/v1/channels", {
      kind: "twilio",
      name: "no url",
      agentName: "helper",
      config: { accountSid: "AC1", from: "+15550000000" },
      secrets: { authToken: "lantern.secret://twilio-token" }
    })
    expect(twilio.status).toBe(400)
    expect(twilio.json.error.issues.map((i: any) => i.field)).toEqual(["config.publicUrl"])
  })

  it("refuses a secret given as a value or naming no stored secret, and an unknown agent", async () => {
    const literal = await call("POST", "/v1/channels", {
      kind: "telegram",
      name: "literal",
      agentName: "helper",
      secrets: { secretToken: TELEGRAM_SECRET, botToken: "lantern.secret://tg-bot" }
    })
    expect(literal.status).toBe(400)
    expect(literal.json.error.issues[0].field).toBe("secrets.secretToken")
    expect(literal.text).not.toContain(TELEGRAM_SECRET)
    const absent = await call("POST", "/v1/channels", {
      kind: "telegram",
      name: "absent",
      agentName: "helper",
      secrets: { secretToken: "lantern.secret://nope", botToken: "lantern.secret://tg-bot" }
    })
    expect(absent.status).toBe(400)
    expect(absent.json.error.issues[0].field).toBe("secrets.secretToken")
    const agent = await call("POST", "/v1/channels", {
      kind: "telegram",
      name: "x",
      agentName: "nobody",
      secrets: { secretToken: "lantern.secret://tg-secret", botToken: "lantern.secret://tg-bot" }
    })
    expect(agent.status).toBe(404)
  })

  it("creates, lists, reads, replaces and deletes a connection; scopes channels:read and channels:write", async () => {
    const made = await connect({
      kind: "telegram",
      name: "crud",
      agentName: "helper",
      config: { apiBaseUrl: fake.url },
      secrets: { secretToken: "lantern.secret://tg-secret", botToken: "lantern.secret://tg-bot" }
    })
    expect(made.id).toMatch(/^ch_[0-9a-z]{26}$/)
    expect(made.webhookUrl).toBe(`${stack.url}/v1/hooks/${made.id}`)
    expect((await call("GET", "/v1/channels")).json.items.map((c: any) => c.id)).toContain(made.id)
    const got = await call("GET", `/v1/channels/${made.id}`)
    expect(got.json.secrets).toEqual({ secretToken: "lantern.secret://tg-secret", botToken: "lantern.secret://tg-bot" })
    const put = await call("PUT", `/v1/channels/${made.id}`, {
      name: "renamed",
      agentName: "helper",
      secrets: { botToken: "lantern.secret://tg-bot" }
    })
    expect(put.status).toBe(400)
    expect(put.json.error.issues[0].field).toBe("secrets.secretToken")
    const renamed = await call("PUT", `/v1/channels/${made.id}`, {
      name: "renamed",
      agentName: "helper",
      config: { apiBaseUrl: fake.url },
      secrets: { secretToken: "lantern.secret://tg-secret", botToken: "lantern.secret://tg-bot" }
    })
    expect(renamed.status).toBe(200)
    expect(renamed.json.name).toBe("renamed")

    const reader = await call("POST", "/v1/api-keys", { name: "reader", scopes: ["channels:read"] })
    expect(reader.status).toBe(201)
    const asReader = api({ url: stack.url, token: reader.json.key })
    expect((await asReader("GET", "/v1/channels")).status).toBe(200)
    const denied = await asReader("DELETE", `/v1/channels/${made.id}`)
    expect(denied.status).toBe(403)
    expect(denied.json.error.missingScope).toBe("channels:write")

    expect((await call("DELETE", `/v1/channels/${made.id}`)).status).toBe(204)
    expect((await call("GET", `/v1/channels/${made.id}`)).status).toBe(404)
    const after = await hook(made.id, JSON.stringify({ update_id: 1 }), {
      "content-type": "application/json",
      "x-telegram-bot-api-secret-token": TELEGRAM_SECRET
    })
    expect(after.status).toBe(404)
  })
})

describe("slack", () => {
  let id: string
  beforeAll(async () => {
    id = (await connect({
      kind: "slack",
      name: "slack",
      agentName: "helper",
      config: { apiBaseUrl: fake.url },
      secrets: { signingSecret: "lantern.secret://slack-signing", botToken: "lantern.secret://slack-bot" }
    })).id
  })

  const message = (eventId: string, text: string) =>
    JSON.stringify({
      token: "legacy",
      team_id: "T1",
      api_app_id: "A1",
      type: "event_callback",
      event_id: eventId,
      event_time: Math.floor(Date.now() / 1000),
      event: { type: "message", channel: "C0SLACK", user: "U1", text, ts: "1700000000.000100" }
    })

  it("answers url_verification with the challenge, signed", async () => {
    const body = JSON.stringify({
      token: "t",
      challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
      type: "url_verification"
    })
    const r = await hook(id, body, slackSign(body))
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" })
  })

  it("turns a signed message into one run and one reply; a redelivery starts and sends nothing", async () => {
    const body = message("Ev0SLACK1", "hello from slack")
    const r = await hook(id, body, slackSign(body))
    expect(r.status).toBe(200)
    const session = await delivered(id, 1)
    expect(session.turns[0]).toMatchObject({ text: "hello from slack", status: "succeeded", delivery: "sent" })
    const posts = fake.to("/chat.postMessage")
    expect(posts).toHaveLength(1)
    expect(posts[0]!.headers["authorization"]).toBe("Bearer xoxb-bot-token")
    expect(posts[0]!.headers["idempotency-key"]).toBe(`${session.id}:1`)
    const sent = JSON.parse(posts[0]!.body)
    expect(sent).toMatchObject({ channel: "C0SLACK", thread_ts: "1700000000.000100" })
    expect(sent.text).toContain("hello from slack")
    // Slack retries with X-Slack-Retry-Num and a fresh signature: same event_id
    const again = await hook(id, body, {
      ...slackSign(body),
      "x-slack-retry-num": "1",
      "x-slack-retry-reason": "http_timeout"
    })
    expect(again.status).toBe(200)
    await deduplicated(id)
    expect(fake.to("/chat.postMessage")).toHaveLength(1)
    expect((await sessions()).find((s) => s.channelId === id).turns).toHaveLength(1)
    expect(await orphanRuns("helper")).toEqual([])
    // the redelivery is on the record
    const deduped = await eventually(
      async () => {
        const items = (await call("GET", "/v1/audit?action=hook.deduplicated")).json.items as Array<any>
        return items.find((e) => e.target === `channel:${id}`)
      },
      15_000,
      "the redelivery to be audited"
    )
    expect(deduped).toMatchObject({ outcome: "allowed", detail: { eventId: "Ev0SLACK1", session: session.id } })
  })

  it("refuses wrong, stale, future and missing signatures with 401, audited, and starts nothing", async () => {
    const body = message("Ev0SLACKBAD", "forged")
    const now = Math.floor(Date.now() / 1000)
    const cases: Array<Record<string, string>> = [
      { ...slackSign(body), "x-slack-signature": "v0=" + "0".repeat(64) },
      slackSign(body, now - 330),
      slackSign(body, now + 330),
      { "content-type": "application/json", "x-slack-request-timestamp": String(now) },
      { "content-type": "application/json" },
      // signed over another body
      slackSign(message("Ev0SLACKBAD", "something else"))
    ]
    for (const headers of cases) {
      const r = await hook(id, body, headers)
      expect(r.status).toBe(401)
      const text = await r.text()
      expect(text).not.toContain(SLACK_SECRET)
    }
    // within the window, either way, is accepted
    const edge = message("Ev0SLACKEDGE", "edge of the window")
    expect((await hook(id, edge, slackSign(edge, now - 290))).status).toBe(200)
    const entries = await eventually(
      async () => {
        const e = await audited(id)
        return e.length >= cases.length ? e : null
      },
      15_000,
      "the rejections to be audited"
    )
    expect(entries.map((e) => e.outcome)).toEqual(Array(entries.length).fill("denied"))
    expect(entries.map((e) => e.detail.reason).join(" ")).toMatch(/timestamp/)
    expect(JSON.stringify(entries)).not.toContain(SLACK_SECRET)
    const session = await delivered(id, 2)
    expect(session.turns.map((t: any) => t.text)).toEqual(["hello from slack", "edge of the window"])
    expect(await orphanRuns("helper")).toEqual([])
  })

  it("refuses a body over the limit with 413", async () => {
    const big = JSON.stringify({ type: "event_callback", pad: "x".repeat(300 * 1024) })
    const r = await hook(id, big, slackSign(big))
    expect(r.status).toBe(413)
  })

  it("an Approve button on a tool call waiting for approval resolves it", async () => {
    const careful = (await connect({
      kind: "slack",
      name: "careful",
      agentName: "careful",
      config: { apiBaseUrl: fake.url },
      secrets: { signingSecret: "lantern.secret://slack-signing", botToken: "lantern.secret://slack-bot" }
    })).id
    const body = JSON.stringify({
      type: "event_callback",
      event_id: "Ev0APPROVE",
      event: {
        type: "app_mention",
        channel: "C0CAREFUL",
        user: "U2",
        text: "please echo this",
        ts: "1700000001.000200"
      }
    })
    expect((await hook(careful, body, slackSign(body))).status).toBe(200)
    // the worker posts the approval request with the buttons
    const ask = await eventually(
      async () =>
        fake.to("/chat.postMessage").map((p) => JSON.parse(p.body)).find((b) => b.channel === "C0CAREFUL" && b.blocks),
      30_000,
      "the approval message"
    )
    const approve = ask.blocks[1].elements.find((e: any) => e.action_id === "lantern_approve")
    const [runId, stepId] = approve.value.split("|")
    expect((await call("GET", `/v1/runs/${runId}`)).json.waiting).toMatchObject({ kind: "approval", stepId })
    const payload = JSON.stringify({
      type: "block_actions",
      user: { id: "U2", username: "alice" },
      actions: [{ action_id: "lantern_approve", block_id: "b", value: approve.value, type: "button" }]
    })
    const form = new URLSearchParams({ payload }).toString()
    const ts = Math.floor(Date.now() / 1000)
    const forged = await hook(careful, form, {
      "content-type": "application/x-www-form-urlencoded",
      "x-slack-request-timestamp": String(ts),
      "x-slack-signature": "v0=" + createHmac("sha256", "wrong").update(`v0:${ts}:${form}`).digest("hex")
    })
    expect(forged.status).toBe(401)
    expect((await call("GET", `/v1/runs/${runId}`)).json.status).toBe("running")
    const clicked = await hook(careful, form, {
      ...slackSign(form, ts),
      "content-type": "application/x-www-form-urlencoded"
    })
    expect(clicked.status).toBe(200)
    const session = await delivered(careful, 1)
    expect(session.turns[0].status).toBe("succeeded")
    const events = (await call("GET", `/v1/runs/${runId}/events`)).json.items as Array<any>
    const decision = events.find((e) => e.type === "StepCompleted" && e.payload.stepId === stepId)
    expect(decision.payload.result).toMatchObject({ _tag: "approval", approved: true, by: "slack:alice" })
    const answers = fake.to("/chat.postMessage").map((p) => JSON.parse(p.body)).filter((b) =>
      b.channel === "C0CAREFUL" && !b.blocks
    )
    expect(answers).toHaveLength(1)
  })
})

describe("telegram", () => {
  let id: string
  beforeAll(async () => {
    id = (await connect({
      kind: "telegram",
      name: "telegram",
      agentName: "helper",
      config: { apiBaseUrl: fake.url },
      secrets: { secretToken: "lantern.secret://tg-secret", botToken: "lantern.secret://tg-bot" }
    })).id
  })
  const update = (updateId: number, text: string) =>
    JSON.stringify({
      update_id: updateId,
      message: {
        message_id: 10,
        from: { id: 42, is_bot: false, first_name: "Ada", username: "ada" },
        chat: { id: 4242, type: "private" },
        date: Math.floor(Date.now() / 1000),
        text
      }
    })
  const headers = (token?: string) => ({
    "content-type": "application/json",
    ...(token === undefined ? {} : { "x-telegram-bot-api-secret-token": token })
  })

  it("refuses an absent or wrong secret token with 401", async () => {
    expect((await hook(id, update(1, "x"), headers())).status).toBe(401)
    expect((await hook(id, update(1, "x"), headers("wrong"))).status).toBe(401)
    expect((await hook(id, update(1, "x"), headers(TELEGRAM_SECRET.slice(0, -1)))).status).toBe(401)
  })

  it("answers through sendMessage once, after waiting out a 429's Retry-After; a redelivered update_id does nothing", async () => {
    fake.limit("/sendMessage", 1, 1)
    const sentAt = Date.now()
    expect((await hook(id, update(900, "hi telegram"), headers(TELEGRAM_SECRET))).status).toBe(200)
    expect((await hook(id, update(900, "hi telegram"), headers(TELEGRAM_SECRET))).status).toBe(200)
    const session = await delivered(id, 1)
    expect(session.turns).toHaveLength(1)
    const sends = fake.to("/bot123456:ABC-DEF/sendMessage")
    expect(sends).toHaveLength(2)
    expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(950)
    expect(sends[1]!.at).toBeGreaterThan(sentAt)
    expect(sends[0]!.headers["idempotency-key"]).toBe(sends[1]!.headers["idempotency-key"])
    expect(JSON.parse(sends[1]!.body)).toMatchObject({ chat_id: "4242" })
    expect(JSON.parse(sends[1]!.body).text).toContain("hi telegram")
    // a typing indicator went out while the agent worked
    expect(fake.to("/sendChatAction").length).toBeGreaterThanOrEqual(1)
    await deduplicated(id)
    expect(fake.to("/bot123456:ABC-DEF/sendMessage")).toHaveLength(2)
  })
})

describe("whatsapp", () => {
  let id: string
  beforeAll(async () => {
    id = (await connect({
      kind: "whatsapp",
      name: "whatsapp",
      agentName: "helper",
      config: { apiBaseUrl: fake.url, phoneNumberId: "106540352242922" },
      secrets: {
        appSecret: "lantern.secret://wa-app",
        verifyToken: "lantern.secret://wa-verify",
        botToken: "lantern.secret://wa-token"
      }
    })).id
  })

  it("echoes hub.challenge for the verify token, and refuses another token", async () => {
    const ok = await fetch(
      `${stack.url}/v1/hooks/${id}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${WHATSAPP_VERIFY}`
    )
    expect(ok.status).toBe(200)
    expect(await ok.text()).toBe("1158201444")
    const bad = await fetch(`${stack.url}/v1/hooks/${id}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope`)
    expect(bad.status).toBe(401)
  })

  it("takes a message signed with X-Hub-Signature-256 and answers through /{phone-number-id}/messages", async () => {
    const body = JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{
        id: "102290129340398",
        changes: [{
          field: "messages",
          value: {
            messaging_product: "whatsapp",
            metadata: { display_phone_number: "15550783881", phone_number_id: "106540352242922" },
            contacts: [{ profile: { name: "Kerry" }, wa_id: "16505551234" }],
            messages: [{
              from: "16505551234",
              id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
              timestamp: "1749416383",
              type: "text",
              text: { body: "hello whatsapp" }
            }]
          }
        }]
      }]
    })
    const signature = "sha256=" + createHmac("sha256", WHATSAPP_APP_SECRET).update(body).digest("hex")
    expect((await hook(id, body, { "content-type": "application/json", "x-hub-signature-256": "sha256=00" })).status)
      .toBe(401)
    expect((await hook(id, body, { "content-type": "application/json" })).status).toBe(401)
    for (let i = 0; i < 2; i++) {
      expect((await hook(id, body, { "content-type": "application/json", "x-hub-signature-256": signature })).status)
        .toBe(200)
    }
    await delivered(id, 1)
    await deduplicated(id)
    const sends = fake.to("/106540352242922/messages")
    expect(sends).toHaveLength(1)
    expect(sends[0]!.headers["authorization"]).toBe("Bearer EAAG-access-token")
    expect(JSON.parse(sends[0]!.body)).toMatchObject({
      messaging_product: "whatsapp",
      to: "16505551234",
      type: "text",
      text: { body: expect.stringContaining("hello whatsapp") }
    })
  })
})

describe("discord", () => {
  let id: string
  beforeAll(async () => {
    id = (await connect({
      kind: "discord",
      name: "discord",
      agentName: "helper",
      config: { apiBaseUrl: fake.url, applicationId: "1100000000000000001" },
      secrets: { publicKey: "lantern.secret://discord-key" }
    })).id
  })
  const signed = (body: string, key = discordKeys.privateKey) => {
    const timestamp = String(Math.floor(Date.now() / 1000))
    return {
      "content-type": "application/json",
      "x-signature-timestamp": timestamp,
      "x-signature-ed25519": sign(null, Buffer.from(timestamp + body), key).toString("hex")
    }
  }

  it("answers PING with {type: 1}, and refuses a bad signature", async () => {
    const ping = JSON.stringify({ id: "1", application_id: "1100000000000000001", type: 1, token: "t", version: 1 })
    const r = await hook(id, ping, signed(ping))
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ type: 1 })
    const other = generateKeyPairSync("ed25519").privateKey
    expect((await hook(id, ping, signed(ping, other))).status).toBe(401)
    const headers = signed(ping)
    expect((await hook(id, ping.replace("\"t\"", "\"u\""), headers)).status).toBe(401)
  })

  it("defers an interaction ({type: 5}) and answers once through the follow-up webhook", async () => {
    const interaction = JSON.stringify({
      id: "1200000000000000077",
      application_id: "1100000000000000001",
      type: 2,
      token: "aW50ZXJhY3Rpb24tdG9rZW4",
      version: 1,
      channel_id: "1300000000000000001",
      member: { user: { id: "1400000000000000001", username: "bob" } },
      data: { id: "5", name: "ask", type: 1, options: [{ name: "question", type: 3, value: "hello discord" }] }
    })
    for (let i = 0; i < 2; i++) {
      const r = await hook(id, interaction, signed(interaction))
      expect(r.status).toBe(200)
      expect(await r.json()).toEqual({ type: 5 })
    }
    await delivered(id, 1)
    await deduplicated(id)
    const followUps = fake.to("/webhooks/1100000000000000001/aW50ZXJhY3Rpb24tdG9rZW4")
    expect(followUps).toHaveLength(1)
    expect(JSON.parse(followUps[0]!.body).content).toContain("hello discord")
  })
})

describe("twilio", () => {
  let id: string
  beforeAll(async () => {
    id = (await connect({
      kind: "twilio",
      name: "sms",
      agentName: "helper",
      config: { apiBaseUrl: fake.url, publicUrl: TWILIO_URL, accountSid: "AC0123", from: "+15557654321" },
      secrets: { authToken: "lantern.secret://twilio-token" }
    })).id
  })
  // Twilio's algorithm, as documented: the URL, then each parameter name and value, sorted by name (then value)
  const twilioSign = (url: string, pairs: ReadonlyArray<[string, string]>) => {
    const data = url + [...pairs].sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
      .map(([k, v]) => k + v).join("")
    return createHmac("sha1", TWILIO_TOKEN).update(data).digest("base64")
  }
  const pairs: Array<[string, string]> = [
    ["ToCountry", "US"],
    ["MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"],
    ["From", "+15551234567"],
    ["To", "+15557654321"],
    ["Body", "hello sms"],
    ["NumMedia", "2"],
    ["MediaUrl", "https://api.twilio.com/b"],
    ["MediaUrl", "https://api.twilio.com/a"],
    ["AccountSid", "AC0123"]
  ]
  const form = new URLSearchParams(pairs).toString()

  it("verifies over the exact public URL with repeated parameters, answers TwiML, replies once via Messages.json", async () => {
    const signature = twilioSign(TWILIO_URL, pairs)
    // signed over the edge's own URL instead of the configured public one: refused
    const wrongUrl = twilioSign(`${stack.url}/v1/hooks/${id}`, pairs)
    const headers = (s: string) => ({ "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": s })
    expect((await hook(id, form, headers(wrongUrl))).status).toBe(401)
    // the repeated parameters in the other order sign differently when not sorted by value: still verifies
    const r = await hook(id, form, headers(signature))
    expect(r.status).toBe(200)
    expect(r.headers.get("content-type")).toContain("text/xml")
    expect(await r.text()).toContain("<Response>")
    expect((await hook(id, form, headers(signature))).status).toBe(200)
    await delivered(id, 1)
    await deduplicated(id)
    const sends = fake.to("/2010-04-01/Accounts/AC0123/Messages.json")
    expect(sends).toHaveLength(1)
    expect(sends[0]!.headers["authorization"]).toBe(`Basic ${Buffer.from(`AC0123:${TWILIO_TOKEN}`).toString("base64")}`)
    const sent = new URLSearchParams(sends[0]!.body)
    expect(sent.get("To")).toBe("+15551234567")
    expect(sent.get("From")).toBe("+15557654321")
    expect(sent.get("Body")).toContain("hello sms")
    // a body tampered after signing (one repeated value dropped) is refused
    const tampered = new URLSearchParams(pairs.filter(([, v]) => v !== "https://api.twilio.com/a")).toString()
    expect((await hook(id, tampered, headers(signature))).status).toBe(401)
  })
})

describe("email (Postmark inbound, SMTP outbound)", () => {
  let id: string
  beforeAll(async () => {
    id = (await connect({
      kind: "email",
      name: "support inbox",
      agentName: "helper",
      config: { smtpUrl: smtp.url, smtpUser: "relay", from: "agent@shop.example" },
      secrets: { signingSecret: "lantern.secret://postmark-hook", smtpPassword: "lantern.secret://smtp-pass" }
    })).id
  })
  // Postmark's inbound JSON, as its documentation shows it
  const inbound = JSON.stringify({
    FromName: "Ada Lovelace",
    MessageStream: "inbound",
    From: "ada@example.org",
    FromFull: { Email: "ada@example.org", Name: "Ada Lovelace", MailboxHash: "" },
    To: "support@inbound.shop.example",
    Subject: "Order question",
    MessageID: "73e6d360-66eb-11e1-8e72-a8904824019b",
    Date: "Thu, 3 Dec 2026 08:00:00 +0000",
    TextBody: "Where is my order 1001?\n\nOn Tue, someone wrote:\n> earlier",
    StrippedTextReply: "Where is my order 1001?",
    Headers: [{ Name: "Message-ID", Value: "<CAF=abc123@mail.example.org>" }],
    Attachments: []
  })
  const basic = (secret: string) => ({
    "content-type": "application/json",
    authorization: `Basic ${Buffer.from(`lantern:${secret}`).toString("base64")}`
  })

  it("refuses a request without or with other Basic credentials", async () => {
    expect((await hook(id, inbound, { "content-type": "application/json" })).status).toBe(401)
    expect((await hook(id, inbound, basic("guess"))).status).toBe(401)
  })

  it("answers by SMTP once, in reply to the Message-ID, after a 451; a redelivery sends nothing", async () => {
    smtp.defer(1)
    expect((await hook(id, inbound, basic(EMAIL_SECRET))).status).toBe(200)
    expect((await hook(id, inbound, basic(EMAIL_SECRET))).status).toBe(200)
    const session = await delivered(id, 1)
    expect(session.turns[0]).toMatchObject({ text: "Where is my order 1001?", delivery: "sent" })
    await deduplicated(id)
    expect(smtp.messages).toHaveLength(1)
    const [mail] = smtp.messages
    expect(mail).toMatchObject({ from: "agent@shop.example", to: ["ada@example.org"], auth: "\0relay\0relay-password" })
    expect(mail!.data).toContain("Subject: Re: Order question")
    expect(mail!.data).toContain("In-Reply-To: <CAF=abc123@mail.example.org>")
    expect(mail!.data).toMatch(/Message-ID: <ses_[0-9a-f]{32}\.1@shop\.example>/)
    expect(mail!.data).toContain("Where is my order 1001?")
  })
})

describe("sessions", () => {
  const turn = (sessionId: string, text: string, key?: string) =>
    call("POST", `/v1/sessions/${sessionId}/messages`, { text }, key === undefined ? {} : { "idempotency-key": key })
  const answered = (sessionId: string, turns: number) =>
    eventually(
      async () => {
        const s = (await call("GET", `/v1/sessions/${sessionId}`)).json
        return s.turns.length >= turns && s.turns.every((t: any) => t.delivery !== null) ? s : null
      },
      60_000,
      `session ${sessionId} to answer ${turns} turn(s)`
    )

  it("rejects a bad message with 400 naming the field, and an unknown session with 404", async () => {
    const opened = await call("POST", "/v1/sessions", { agentName: "helper" })
    expect(opened.status).toBe(201)
    const bad = await call("POST", `/v1/sessions/${opened.json.id}/messages`, { text: "" })
    expect(bad.status).toBe(400)
    expect(bad.json.error.issues[0].field).toBe("text")
    expect((await turn(`ses_${"0".repeat(32)}`, "hi")).status).toBe(404)
  })

  it("keeps context across turns, streams its journal, and survives a kill -9 between turns", async () => {
    const opened = await call("POST", "/v1/sessions", { agentName: "helper" })
    const sid = opened.json.id as string
    const first = await turn(sid, "my name is Ada", "turn-one")
    expect(first.status).toBe(202)
    expect(first.json).toMatchObject({ sessionId: sid, turn: 1, duplicate: false })
    const retried = await turn(sid, "my name is Ada", "turn-one")
    expect(retried.status).toBe(200)
    expect(retried.json.duplicate).toBe(true)
    const one = await answered(sid, 1)
    expect(one.turns[0].answer).toContain("my name is Ada")

    // SSE: the journal from its start
    const controller = new AbortController()
    const r = await fetch(`${stack.url}/v1/sessions/${sid}/stream`, {
      headers: { authorization: `Bearer ${stack.token}` },
      signal: controller.signal
    })
    expect(r.headers.get("content-type")).toContain("text/event-stream")
    const reader = r.body!.getReader()
    let seen = ""
    while (!seen.includes("event: TurnDelivered")) seen += new TextDecoder().decode((await reader.read()).value)
    controller.abort()
    expect(seen).toContain("event: TurnReceived")
    expect(seen).toContain("event: TurnAnswered")

    // kill -9 between turns, then a new host on the same bus and home
    await stack.kill()
    stack = await startStack({ natsUrl: nats.handle.url, home: home() })
    call = api(stack)
    expect((await turn(sid, "what is my name?", "turn-two")).status).toBe(202)
    const two = await answered(sid, 2)
    expect(two.turns.map((t: any) => t.status)).toEqual(["succeeded", "succeeded"])
    expect(two.runs).toHaveLength(2)
    const input = (await call("GET", `/v1/runs/${two.runs[1]}`)).json.input as string
    expect(input).toContain("user: my name is Ada")
    expect(input).toContain(`assistant: ${one.turns[0].answer}`)
    expect(input).toContain("user: what is my name?")
    // turn one was neither run nor answered again
    expect(two.turns[0].runId).toBe(one.turns[0].runId)
    expect(two.turns[0].answer).toBe(one.turns[0].answer)
  }, 240_000)

  it(
    "a host killed mid-turn (its run waiting for an approval) leaves the turn to another host: one run, one reply",
    async () => {
      const id = (await connect({
        kind: "telegram",
        name: "careful telegram",
        agentName: "careful",
        config: { apiBaseUrl: fake.url },
        secrets: { secretToken: "lantern.secret://tg-secret", botToken: "lantern.secret://tg-bot" }
      })).id
      const update = JSON.stringify({
        update_id: 7001,
        message: {
          message_id: 1,
          from: { id: 9, username: "grace" },
          chat: { id: 9009 },
          date: 0,
          text: "please echo me"
        }
      })
      const headers = { "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET }
      expect((await hook(id, update, headers)).status).toBe(200)
      const waiting = await eventually(
        async () => {
          const s = (await sessions()).find((x) => x.channelId === id)
          const runId = s?.turns[0]?.runId
          if (runId === undefined || runId === null) return null
          const run = (await call("GET", `/v1/runs/${runId}`)).json
          return run.waiting?.kind === "approval" ? run : null
        },
        30_000,
        "the turn's run to wait for an approval"
      )
      await stack.kill()
      stack = await startStack({ natsUrl: nats.handle.url, home: home() })
      call = api(stack)
      const approved = await call("POST", `/v1/runs/${waiting.id}/approvals/${waiting.waiting.stepId}`, {
        approved: true,
        by: "ops"
      })
      expect(approved.status, approved.text).toBe(200)
      const session = await delivered(id, 1)
      expect(session.turns[0]).toMatchObject({ runId: waiting.id, status: "succeeded", delivery: "sent" })
      expect(fake.to("/sendMessage").filter((r) => JSON.parse(r.body).chat_id === "9009")).toHaveLength(1)
      // redelivered by Telegram after the restart: still nothing new
      expect((await hook(id, update, headers)).status).toBe(200)
      await deduplicated(id)
      expect(fake.to("/sendMessage").filter((r) => JSON.parse(r.body).chat_id === "9009")).toHaveLength(1)
      const after = (await sessions()).find((x) => x.channelId === id)
      expect(after.turns).toHaveLength(1)
      expect(after.runs).toEqual([waiting.id])
    },
    240_000
  )
})

describe("lantern channels and lantern sessions", () => {
  const cli = async (args: ReadonlyArray<string>) => {
    const p = spawnLantern(args, { LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token })
    const code = await p.exited
    return { code, output: p.output() }
  }
  const telegramSecrets = JSON.stringify({
    secretToken: "lantern.secret://tg-secret",
    botToken: "lantern.secret://tg-bot"
  })
  const channelIds = async () => ((await call("GET", "/v1/channels")).json.items as Array<{ id: string; name: string }>)

  it("refuses bad usage with exit 2, naming the field, and creates nothing", async () => {
    const before = (await channelIds()).length
    // fail-closed: a Telegram connection without its secret token
    const missing = await cli([
      "channels",
      "create",
      "--kind",
      "telegram",
      "--name",
      "cli-missing",
      "--agent",
      "helper",
      "--secrets",
      JSON.stringify({ botToken: "lantern.secret://tg-bot" })
    ])
    expect(missing.code).toBe(2)
    expect(missing.output).toContain("secrets.secretToken")
    const unknown = await cli([
      "channels",
      "create",
      "--kind",
      "webchat",
      "--name",
      "cli-unknown",
      "--agent",
      "helper",
      "--config",
      JSON.stringify({ allowedOrigins: ["https://shop.example"], colour: "red" })
    ])
    expect(unknown.code).toBe(2)
    expect(unknown.output).toContain("config.colour: unknown field")
    const value = await cli([
      "channels",
      "create",
      "--kind",
      "telegram",
      "--name",
      "cli-value",
      "--agent",
      "helper",
      "--secrets",
      JSON.stringify({ secretToken: "the-actual-secret", botToken: "lantern.secret://tg-bot" })
    ])
    expect(value.code).toBe(2)
    expect(value.output).toContain("secrets.secretToken")
    expect(value.output).not.toContain("the-actual-secret")
    expect((await cli(["channels", "get", "not-an-id"])).code).toBe(2)
    expect((await cli(["sessions", "send", `ses_${"0".repeat(32)}`, ""])).code).toBe(2)
    expect((await channelIds()).length).toBe(before)
  })

  it("creates, lists, reads, updates and deletes a connection", async () => {
    const dir2 = mkdtempSync(join(tmpdir(), "lantern-channels-cli-"))
    try {
      const created = await cli([
        "channels",
        "create",
        "--kind",
        "telegram",
        "--name",
        "cli-telegram",
        "--agent",
        "helper",
        "--config",
        JSON.stringify({ apiBaseUrl: fake.url }),
        "--secrets",
        telegramSecrets
      ])
      expect(created.code, created.output).toBe(0)
      const id = /ch_[0-9a-z]{26}/.exec(created.output)![0]
      expect(created.output).toContain(`webhook URL: ${stack.url}/v1/hooks/${id}`)
      expect(created.output).toContain("secrets.secretToken: lantern.secret://tg-secret")
      const listed = await cli(["channels", "list"])
      expect(listed.output).toMatch(new RegExp(`${id}\\s+telegram\\s+cli-telegram\\s+→ helper`))
      const renamed = await cli(["channels", "update", id, "--name", "cli-renamed"])
      expect(renamed.code, renamed.output).toBe(0)
      const got = (await call("GET", `/v1/channels/${id}`)).json
      expect(got).toMatchObject({ name: "cli-renamed", agentName: "helper", config: { apiBaseUrl: fake.url } })
      expect(got.secrets).toEqual(JSON.parse(telegramSecrets))
      // a file replaces the connection; its kind is fixed
      const file = join(dir2, "channel.yaml")
      writeFileSync(file, "kind: slack\nname: x\nagentName: helper\n")
      const kindChange = await cli(["channels", "update", id, "--file", file])
      expect(kindChange.code).toBe(2)
      expect(kindChange.output).toContain("kind")
      writeFileSync(
        file,
        `name: from-file\nagentName: helper\nsecrets:\n  secretToken: lantern.secret://tg-secret\n  botToken: lantern.secret://tg-bot\n`
      )
      expect((await cli(["channels", "update", id, "--file", file])).code).toBe(0)
      expect((await call("GET", `/v1/channels/${id}`)).json).toMatchObject({ name: "from-file", config: {} })
      const json = await cli(["channels", "get", id, "--json"])
      expect(JSON.parse(json.output)).toMatchObject({ id, kind: "telegram", name: "from-file" })
      expect((await cli(["channels", "delete", id])).code).toBe(0)
      expect((await call("GET", `/v1/channels/${id}`)).status).toBe(404)
      const gone = await cli(["channels", "get", id])
      expect(gone.code).toBe(1)
      expect(gone.output).toContain("channel_not_found")
    } finally {
      rmSync(dir2, { recursive: true, force: true })
    }
  })

  it("opens a session, sends turns that keep context, waits for each answer and reads the conversation", async () => {
    const opened = await cli(["sessions", "open", "--agent", "helper"])
    expect(opened.code, opened.output).toBe(0)
    const sid = opened.output.trim()
    expect(sid).toMatch(/^ses_[0-9a-f]{32}$/)
    const first = await cli(["sessions", "send", sid, "my name is Grace", "--wait", "--idempotency-key", "cli-1"])
    expect(first.code, first.output).toBe(0)
    expect(first.output).toContain("my name is Grace")
    // the same key again is the same turn: no second run
    const again = await cli(["sessions", "send", sid, "my name is Grace", "--idempotency-key", "cli-1"])
    expect(again.output).toContain("turn 1 (already received)")
    const second = await cli(["sessions", "send", sid, "what is my name?", "--wait"])
    expect(second.code, second.output).toBe(0)
    const got = await cli(["sessions", "get", sid])
    expect(got.output).toContain("2 turn(s), 2 run(s)")
    expect(got.output).toMatch(/#1 token:dev: my name is Grace\n\s+succeeded \(run_/)
    const session = (await call("GET", `/v1/sessions/${sid}`)).json
    const input = (await call("GET", `/v1/runs/${session.runs[1]}`)).json.input as string
    expect(input).toContain("user: my name is Grace")
    expect((await cli(["sessions", "list"])).output).toContain(sid)
  }, 120_000)
})
