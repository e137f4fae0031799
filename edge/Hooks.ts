// Platforms' webhooks (ADR 0050): `POST /v1/hooks/{channelId}` (and WhatsApp's `GET` subscription check). No
// bearer token: the platform's signature over the raw body is the authentication, checked before anything is
// parsed; a failure is 401 and audited as `hook.rejected` in the channel's tenant. A verified message becomes a
// turn of its thread's session (a redelivery, by the platform's event id, becomes nothing), answered in the
// background; the webhook answers at once, as each platform wants.
import { ByteSize, Clock, Effect, Layer, Option, Redacted } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Audit } from "../actors/audit/Audit.ts"
import { type Channel, Channels } from "../actors/channel/Channels.ts"
import { type Inbound, Sessions } from "../actors/channel/Sessions.ts"
import * as Smtp from "../actors/channel/Smtp.ts"
import * as Verify from "../actors/channel/Verify.ts"
import { Runs } from "../actors/run/Runs.ts"
import type { SecretName } from "../schema/Channel.ts"
import { errorResponse, json } from "./Http.ts"

/** The largest webhook body taken (platforms send a few KiB; Slack's biggest payloads stay far below). */
export const HOOK_MAX_BYTES = 256 * 1024

type Json = Record<string, unknown>
const record = (v: unknown): Json | null => typeof v === "object" && v !== null && !Array.isArray(v) ? v as Json : null
const str = (v: unknown): string | null => (typeof v === "string" ? v : typeof v === "number" ? String(v) : null)

/** A webhook whose content is not what the platform sends: 400 naming the field. */
const invalidResponse = (field: string, message: string) =>
  errorResponse(400, "invalid_request", "the request is invalid", [{ field, message }])
const invalid = (field: string, message: string): Parsed => ({
  _tag: "Answer",
  answer: invalidResponse(field, message)
})

const rejected = (channel: Channel, reason: string) =>
  Effect.gen(function*() {
    yield* (yield* Audit).record({
      tenant: channel.tenant,
      action: "hook.rejected",
      actor: `platform:${channel.kind}`,
      target: `channel:${channel.id}`,
      outcome: "denied",
      detail: { reason }
    })
    return errorResponse(401, "unauthorized", `the webhook's signature did not verify: ${reason}`)
  })

/** A redelivery (an event id already a turn): acknowledged to the platform, nothing started, and on the record. */
export const deduplicated = (channel: Channel, eventId: string, sessionId: string) =>
  Audit.use((audit) =>
    audit.record({
      tenant: channel.tenant,
      action: "hook.deduplicated",
      actor: `platform:${channel.kind}`,
      target: `channel:${channel.id}`,
      outcome: "allowed",
      detail: { eventId: eventId.slice(0, 200), session: sessionId }
    })
  )

const readRaw = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const declared = request.headers["content-length"]
  if (declared !== undefined && (!/^\d+$/.test(declared) || Number(declared) > HOOK_MAX_BYTES)) return null
  return yield* request.arrayBuffer.pipe(
    Effect.provideService(HttpServerRequest.MaxBodySize, ByteSize.fromInputUnsafe(HOOK_MAX_BYTES)),
    Effect.map((b) => new Uint8Array(b)),
    Effect.orElseSucceed(() => null)
  )
})

const TWIML_EMPTY = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

/** The inbound messages of a verified body, by platform; a body that is not the platform's is a 400. */
type Parsed =
  | {
    readonly _tag: "Messages"
    readonly messages: ReadonlyArray<Inbound>
    readonly answer: HttpServerResponse.HttpServerResponse
  }
  | { readonly _tag: "Answer"; readonly answer: HttpServerResponse.HttpServerResponse }
  | {
    readonly _tag: "Approval"
    readonly runId: string
    readonly stepId: string
    readonly approved: boolean
    readonly by: string
  }

const ok = () => json({ ok: true })

const parseJson = (raw: Uint8Array): Json | null => {
  try {
    return record(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw)))
  } catch {
    return null
  }
}

const slack = (raw: Uint8Array, contentType: string): Parsed => {
  if (contentType.startsWith("application/x-www-form-urlencoded")) {
    const payload = new URLSearchParams(new TextDecoder().decode(raw)).get("payload")
    if (payload === null) return invalid("payload", "Expected the interactive payload= form field")
    const p = parseJson(new TextEncoder().encode(payload))
    if (p === null) return invalid("payload", "Expected JSON")
    const action = Array.isArray(p["actions"]) ? record(p["actions"][0]) : null
    const id = str(action?.["action_id"])
    const value = str(action?.["value"])
    if (p["type"] !== "block_actions" || (id !== "lantern_approve" && id !== "lantern_deny")) {
      return { _tag: "Answer", answer: HttpServerResponse.empty({ status: 200 }) }
    }
    const [runId, stepId] = (value ?? "").split("|")
    if (runId === undefined || stepId === undefined || runId === "" || stepId === "") {
      return invalid("payload.actions[0].value", "Expected <runId>|<stepId>")
    }
    const user = record(p["user"])
    return {
      _tag: "Approval",
      runId,
      stepId,
      approved: id === "lantern_approve",
      by: `slack:${str(user?.["username"]) ?? str(user?.["id"]) ?? "unknown"}`
    }
  }
  const body = parseJson(raw)
  if (body === null) return invalid("(body)", "Expected a JSON object")
  if (body["type"] === "url_verification") {
    const challenge = str(body["challenge"])
    return challenge === null
      ? invalid("challenge", "Expected a string")
      : { _tag: "Answer", answer: json({ challenge }) }
  }
  if (body["type"] !== "event_callback") return { _tag: "Answer", answer: ok() }
  const eventId = str(body["event_id"])
  if (eventId === null) return invalid("event_id", "Expected the event's id")
  const event = record(body["event"])
  if (event === null) return invalid("event", "Expected an object")
  // the bot's own posts and edits come back as events too: answering them would loop
  if (event["bot_id"] !== undefined || event["subtype"] !== undefined) return { _tag: "Answer", answer: ok() }
  if (event["type"] !== "message" && event["type"] !== "app_mention") return { _tag: "Answer", answer: ok() }
  const channel = str(event["channel"])
  const text = str(event["text"])
  if (channel === null) return invalid("event.channel", "Expected the conversation's id")
  if (text === null) return invalid("event.text", "Expected a string")
  const threadTs = str(event["thread_ts"])
  const ts = str(event["ts"]) ?? ""
  return {
    _tag: "Messages",
    messages: [{
      eventId,
      thread: threadTs === null ? channel : `${channel}:${threadTs}`,
      text,
      from: `slack:${str(event["user"]) ?? "unknown"}`,
      reply: { channel, thread_ts: threadTs ?? ts }
    }],
    answer: ok()
  }
}

const telegram = (raw: Uint8Array): Parsed => {
  const update = parseJson(raw)
  if (update === null) return invalid("(body)", "Expected a JSON object")
  const updateId = update["update_id"]
  if (typeof updateId !== "number" || !Number.isInteger(updateId)) return invalid("update_id", "Expected an integer")
  const message = record(update["message"])
  const text = str(message?.["text"])
  if (message === null || text === null) return { _tag: "Answer", answer: ok() }
  const chat = str(record(message["chat"])?.["id"])
  if (chat === null) return invalid("message.chat.id", "Expected the chat's id")
  const from = record(message["from"])
  return {
    _tag: "Messages",
    messages: [{
      eventId: `update:${updateId}`,
      thread: chat,
      text,
      from: `telegram:${str(from?.["username"]) ?? str(from?.["id"]) ?? "unknown"}`,
      reply: { chat_id: chat }
    }],
    answer: ok()
  }
}

const whatsapp = (raw: Uint8Array): Parsed => {
  const body = parseJson(raw)
  if (body === null) return invalid("(body)", "Expected a JSON object")
  if (!Array.isArray(body["entry"])) return invalid("entry", "Expected an array")
  const messages: Array<Inbound> = []
  for (const [i, e] of body["entry"].entries()) {
    const changes = record(e)?.["changes"]
    if (!Array.isArray(changes)) return invalid(`entry[${i}].changes`, "Expected an array")
    for (const change of changes) {
      const value = record(record(change)?.["value"])
      const list = value?.["messages"]
      if (!Array.isArray(list)) continue // statuses (sent, delivered, read) carry no messages
      for (const [j, m] of list.entries()) {
        const message = record(m)
        const id = str(message?.["id"])
        const from = str(message?.["from"])
        if (id === null || from === null)
          return invalid(`entry[${i}].changes.value.messages[${j}].id`, "Expected id and from")
        const text = str(record(message?.["text"])?.["body"])
        if (text === null) continue
        messages.push({ eventId: id, thread: from, text, from: `whatsapp:${from}`, reply: { to: from } })
      }
    }
  }
  return { _tag: "Messages", messages, answer: ok() }
}

const discord = (raw: Uint8Array): Parsed => {
  const body = parseJson(raw)
  if (body === null) return invalid("(body)", "Expected a JSON object")
  const type = body["type"]
  if (type === 1) return { _tag: "Answer", answer: json({ type: 1 }) }
  if (type !== 2 && type !== 3) return invalid("type", "Expected an interaction type 1, 2 or 3")
  const id = str(body["id"])
  const token = str(body["token"])
  if (id === null) return invalid("id", "Expected the interaction's id")
  if (token === null) return invalid("token", "Expected the interaction's token")
  const data = record(body["data"])
  const options = Array.isArray(data?.["options"]) ? data["options"] as Array<unknown> : []
  const said = options.flatMap((o) => {
    const v = record(o)?.["value"]
    return typeof v === "string" ? [v] : []
  })
  const text = said.length > 0 ? said.join(" ") : str(data?.["name"]) ?? str(data?.["custom_id"]) ?? ""
  const user = record(record(body["member"])?.["user"]) ?? record(body["user"])
  const thread = str(body["channel_id"]) ?? str(record(body["channel"])?.["id"]) ?? `user:${str(user?.["id"]) ?? id}`
  return {
    _tag: "Messages",
    messages: [{ eventId: id, thread, text, from: `discord:${str(user?.["id"]) ?? "unknown"}`, reply: { token } }],
    // deferred: the answer follows through the follow-up webhook
    answer: json({ type: 5 })
  }
}

const twilio = (pairs: ReadonlyArray<readonly [string, string]>): Parsed => {
  const get = (name: string) => pairs.find(([k]) => k === name)?.[1] ?? null
  const sid = get("MessageSid") ?? get("SmsSid")
  const from = get("From")
  if (sid === null) return invalid("MessageSid", "Expected the message's SID")
  if (from === null) return invalid("From", "Expected the sender's number")
  const twiml = HttpServerResponse.text(TWIML_EMPTY, { contentType: "text/xml" })
  return {
    _tag: "Messages",
    messages: [{ eventId: sid, thread: from, text: get("Body") ?? "", from: `twilio:${from}`, reply: { to: from } }],
    answer: twiml
  }
}

/** Postmark's inbound webhook (ADR 0052): the message's Message-ID is its event id, the sender its thread. */
const email = (raw: Uint8Array): Parsed => {
  const body = parseJson(raw)
  if (body === null) return invalid("(body)", "Expected a JSON object")
  const fromFull = record(body["FromFull"])
  const sender = (str(fromFull?.["Email"]) ?? str(body["From"]) ?? "").trim()
  if (!Smtp.isAddress(sender)) return invalid("FromFull.Email", "Expected the sender's address")
  const headers = Array.isArray(body["Headers"]) ? body["Headers"] as Array<unknown> : []
  const messageIdHeader = headers.map(record).find((h) => str(h?.["Name"])?.toLowerCase() === "message-id")
  const messageId = str(messageIdHeader?.["Value"]) ?? str(body["MessageID"])
  if (messageId === null || messageId === "") return invalid("MessageID", "Expected the message's id")
  const text = (str(body["StrippedTextReply"]) || str(body["TextBody"]) || "").trim()
  if (text === "") return invalid("TextBody", "Expected a text body")
  const subject = str(body["Subject"]) ?? ""
  const replyTo = str(body["ReplyTo"])?.trim()
  return {
    _tag: "Messages",
    messages: [{
      eventId: messageId,
      thread: sender.toLowerCase(),
      text,
      from: `email:${sender.toLowerCase()}`,
      reply: {
        to: replyTo !== undefined && Smtp.isAddress(replyTo) ? replyTo : sender,
        subject: /^re:/iu.test(subject) ? subject : `Re: ${subject}`,
        ...(messageIdHeader === undefined ? {} : { inReplyTo: messageId })
      }
    }],
    answer: ok()
  }
}

const hook = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { channelId = "" } = yield* HttpRouter.params
  const channels = yield* Channels
  const found = yield* channels.find(channelId).pipe(Effect.orElseSucceed(() => Option.none<Channel>()))
  if (Option.isNone(found)) return errorResponse(404, "channel_not_found", "no such channel")
  const channel = found.value
  const raw = yield* readRaw
  if (raw === null) {
    return errorResponse(413, "payload_too_large", `the request body exceeds ${HOOK_MAX_BYTES} bytes`, undefined, {
      connection: "close"
    })
  }
  /** The secret's value for this check, or null when it cannot be resolved (the check then fails closed). */
  const need = (name: SecretName) =>
    channels.secret(channel, name).pipe(Effect.map(Redacted.value), Effect.option, Effect.map(Option.getOrNull))
  const h = request.headers
  const contentType = (h["content-type"] ?? "").toLowerCase()
  const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
  let verdict: Verify.Verdict
  let pairs: ReadonlyArray<readonly [string, string]> = []
  switch (channel.kind) {
    case "slack": {
      const s = yield* need("signingSecret")
      verdict = s === null
        ? { ok: false, reason: "signing secret unavailable" }
        : Verify.slack(s, { signature: h["x-slack-signature"], timestamp: h["x-slack-request-timestamp"] }, raw, now)
      break
    }
    case "telegram": {
      const s = yield* need("secretToken")
      verdict = s === null
        ? { ok: false, reason: "secret token unavailable" }
        : Verify.telegram(s, h["x-telegram-bot-api-secret-token"])
      break
    }
    case "whatsapp": {
      const s = yield* need("appSecret")
      verdict = s === null
        ? { ok: false, reason: "app secret unavailable" }
        : Verify.whatsapp(s, h["x-hub-signature-256"], raw)
      break
    }
    case "discord": {
      const s = yield* need("publicKey")
      verdict = s === null
        ? { ok: false, reason: "public key unavailable" }
        : Verify.discord(s, { signature: h["x-signature-ed25519"], timestamp: h["x-signature-timestamp"] }, raw)
      break
    }
    case "twilio": {
      const s = yield* need("authToken")
      pairs = [...new URLSearchParams(new TextDecoder().decode(raw)).entries()]
      verdict = s === null || channel.config.publicUrl === undefined
        ? { ok: false, reason: "auth token unavailable" }
        : Verify.twilio(s, channel.config.publicUrl, pairs, h["x-twilio-signature"])
      break
    }
    case "email": {
      const s = yield* need("signingSecret")
      verdict = s === null
        ? { ok: false, reason: "signing secret unavailable" }
        : Verify.basic(s, h["authorization"])
      break
    }
    default:
      return errorResponse(404, "channel_not_found", `a ${channel.kind} channel takes no webhooks here`)
  }
  if (!verdict.ok) return yield* rejected(channel, verdict.reason)

  const parsed = channel.kind === "slack"
    ? slack(raw, contentType)
    : channel.kind === "telegram"
    ? telegram(raw)
    : channel.kind === "whatsapp"
    ? whatsapp(raw)
    : channel.kind === "discord"
    ? discord(raw)
    : channel.kind === "email"
    ? email(raw)
    : twilio(pairs)
  switch (parsed._tag) {
    case "Answer":
      return parsed.answer
    case "Approval": {
      const decided = yield* (yield* Runs).approve(channel.tenant, parsed.runId, parsed.stepId, {
        approved: parsed.approved,
        by: parsed.by
      }).pipe(Effect.result)
      if (decided._tag === "Failure") yield* Effect.logInfo(`slack approval not applied: ${decided.failure._tag}`)
      return HttpServerResponse.empty({ status: 200 })
    }
    case "Messages": {
      const sessions = yield* Sessions
      for (const message of parsed.messages) {
        const received = yield* sessions.receive(channel, message).pipe(Effect.result)
        // the platform retries what it does not see acknowledged: a bus outage is its cue
        if (received._tag === "Failure") {
          yield* Effect.logWarning(`webhook of ${channel.id} not journaled: ${received.failure._tag}`)
          return errorResponse(503, "unavailable", "try again", undefined, { "retry-after": "1" })
        }
        if (received.success.duplicate) yield* deduplicated(channel, message.eventId, received.success.sessionId)
      }
      return parsed.answer
    }
  }
})

/** WhatsApp's subscription check: `hub.mode=subscribe` with the verify token echoes `hub.challenge`. */
const subscribe = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { channelId = "" } = yield* HttpRouter.params
  const channels = yield* Channels
  const found = yield* channels.find(channelId).pipe(Effect.orElseSucceed(() => Option.none<Channel>()))
  if (Option.isNone(found) || found.value.kind !== "whatsapp") {
    return errorResponse(404, "channel_not_found", "no such channel")
  }
  const channel = found.value
  const query = new URL(request.url, "http://localhost").searchParams
  const mode = query.get("hub.mode")
  const token = query.get("hub.verify_token")
  const challenge = query.get("hub.challenge")
  if (mode !== "subscribe") return invalidResponse("hub.mode", "Expected subscribe")
  if (challenge === null) return invalidResponse("hub.challenge", "Expected the challenge to echo")
  const expected = yield* channels.secret(channel, "verifyToken").pipe(Effect.option)
  if (token === null || Option.isNone(expected) || !Verify.same(token, Redacted.value(expected.value))) {
    return yield* rejected(channel, token === null ? "missing hub.verify_token" : "verify token mismatch")
  }
  return HttpServerResponse.text(challenge)
})

export const routes = Layer.mergeAll(
  HttpRouter.add("POST", "/v1/hooks/:channelId", hook),
  HttpRouter.add("GET", "/v1/hooks/:channelId", subscribe)
)
