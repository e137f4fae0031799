// Replies to the platforms, through each one's send API (ADR 0050): Slack chat.postMessage, Discord's
// interaction follow-up webhook, Telegram sendMessage, WhatsApp Cloud /{phone-number-id}/messages and Twilio
// Messages.json, at the connection's apiBaseUrl (a local fake in tests). Every request of one (session, turn)
// carries the same Idempotency-Key; failures are retried with backoff and a 429's Retry-After is honoured.
import { Duration, Effect, Redacted } from "effect"
import type { Channel } from "./Channels.ts"
import * as Smtp from "./Smtp.ts"

/** What a send needs: the channel, its secrets resolved, where the message came from, the text. */
export interface Send {
  readonly channel: Channel
  readonly secret: (name: "botToken" | "authToken") => Redacted.Redacted<string> | null
  readonly reply: Readonly<Record<string, string>>
  readonly text: string
  readonly idempotencyKey: string
  /** Slack: approve/deny buttons for a step waiting for approval (`<runId>|<stepId>`). */
  readonly approval?: string
}

export interface Request {
  readonly url: string
  readonly headers: Record<string, string>
  readonly body: string
}

/** Retries of one send: attempts in all, and the longest a Retry-After is waited for. */
export const MAX_ATTEMPTS = 5
export const MAX_RETRY_AFTER_MS = 30_000

const DEFAULT_BASE: Record<string, string> = {
  slack: "https://slack.com/api",
  discord: "https://discord.com/api/v10",
  telegram: "https://api.telegram.org",
  whatsapp: "https://graph.facebook.com/v21.0",
  twilio: "https://api.twilio.com"
}

const base = (c: Channel) => (c.config.apiBaseUrl ?? DEFAULT_BASE[c.kind] ?? "").replace(/\/+$/u, "")
const json = (key: string, extra: Record<string, string> = {}) => ({
  "content-type": "application/json; charset=utf-8",
  "idempotency-key": key,
  ...extra
})
const reveal = (r: Redacted.Redacted<string> | null) => (r === null ? "" : Redacted.value(r))

/** The platform request that sends `text`, or null for channels that answer otherwise (webchat, API sessions). */
export const requestOf = (s: Send): Request | null => {
  const c = s.channel
  switch (c.kind) {
    case "slack": {
      const blocks = s.approval === undefined ? {} : {
        blocks: [
          { type: "section", text: { type: "mrkdwn", text: s.text } },
          {
            type: "actions",
            elements: [
              {
                type: "button",
                action_id: "lantern_approve",
                text: { type: "plain_text", text: "Approve" },
                value: s.approval,
                style: "primary"
              },
              {
                type: "button",
                action_id: "lantern_deny",
                text: { type: "plain_text", text: "Deny" },
                value: s.approval,
                style: "danger"
              }
            ]
          }
        ]
      }
      return {
        url: `${base(c)}/chat.postMessage`,
        headers: json(s.idempotencyKey, { authorization: `Bearer ${reveal(s.secret("botToken"))}` }),
        body: JSON.stringify({
          channel: s.reply["channel"] ?? "",
          text: s.text,
          ...(s.reply["thread_ts"] === undefined ? {} : { thread_ts: s.reply["thread_ts"] }),
          ...blocks
        })
      }
    }
    case "discord":
      return {
        url: `${base(c)}/webhooks/${c.config.applicationId ?? ""}/${s.reply["token"] ?? ""}`,
        headers: json(s.idempotencyKey),
        body: JSON.stringify({ content: s.text.slice(0, 2000) })
      }
    case "telegram":
      return {
        url: `${base(c)}/bot${reveal(s.secret("botToken"))}/sendMessage`,
        headers: json(s.idempotencyKey),
        body: JSON.stringify({ chat_id: s.reply["chat_id"] ?? "", text: s.text.slice(0, 4096) })
      }
    case "whatsapp":
      return {
        url: `${base(c)}/${c.config.phoneNumberId ?? ""}/messages`,
        headers: json(s.idempotencyKey, { authorization: `Bearer ${reveal(s.secret("botToken"))}` }),
        body: JSON.stringify({
          messaging_product: "whatsapp",
          recipient_type: "individual",
          to: s.reply["to"] ?? "",
          type: "text",
          text: { body: s.text.slice(0, 4096) }
        })
      }
    case "twilio": {
      const sid = c.config.accountSid ?? ""
      return {
        url: `${base(c)}/2010-04-01/Accounts/${sid}/Messages.json`,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "idempotency-key": s.idempotencyKey,
          authorization: `Basic ${Buffer.from(`${sid}:${reveal(s.secret("authToken"))}`).toString("base64")}`
        },
        body: new URLSearchParams({ To: s.reply["to"] ?? "", From: c.config.from ?? "", Body: s.text.slice(0, 1600) })
          .toString()
      }
    }
    default:
      return null
  }
}

/** Telegram's typing indicator while the agent works (best effort: never retried, never fails the turn). */
export const typingOf = (s: Omit<Send, "text">): Request | null =>
  s.channel.kind === "telegram"
    ? {
      url: `${base(s.channel)}/bot${reveal(s.secret("botToken"))}/sendChatAction`,
      headers: json(`${s.idempotencyKey}:typing`),
      body: JSON.stringify({ chat_id: s.reply["chat_id"] ?? "", action: "typing" })
    }
    : null

export interface Delivered {
  readonly outcome: "sent" | "failed"
  readonly attempts: number
  /** The platform's status, never a token or a URL (Telegram's carries the bot token). */
  readonly detail: string
}

/** Whether the platform accepted it: HTTP 2xx, and Slack's and Telegram's `ok: true` in the body. */
const accepted = (kind: string, status: number, body: string) => {
  if (status < 200 || status >= 300) return false
  if (kind !== "slack" && kind !== "telegram") return true
  try {
    return (JSON.parse(body) as { ok?: unknown }).ok === true
  } catch {
    return false
  }
}

/** The delay a 429 asks for (Retry-After in seconds, or Slack's), capped. */
export const retryAfterMs = (header: string | null): number | null => {
  if (header === null || !/^\d+(\.\d+)?$/.test(header.trim())) return null
  return Math.min(MAX_RETRY_AFTER_MS, Math.ceil(Number(header.trim()) * 1000))
}

/** Sends the request, retrying failures with exponential backoff and waiting out 429s; never fails. */
export const deliver = (kind: string, request: Request): Effect.Effect<Delivered> =>
  Effect.gen(function*() {
    let detail = ""
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const answer = yield* Effect.tryPromise(async () => {
        const r = await fetch(request.url, {
          method: "POST",
          headers: request.headers,
          body: request.body,
          signal: AbortSignal.timeout(15_000)
        })
        return { status: r.status, body: await r.text(), retryAfter: r.headers.get("retry-after") }
      }).pipe(Effect.result)
      let wait = Math.min(8_000, 200 * 2 ** (attempt - 1))
      if (answer._tag === "Success") {
        const { status, body, retryAfter } = answer.success
        if (accepted(kind, status, body)) return { outcome: "sent", attempts: attempt, detail: `HTTP ${status}` }
        detail = `HTTP ${status}`
        if (status === 429) wait = retryAfterMs(retryAfter) ?? wait
        // a refusal other than a rate limit or a server error will not change on a retry
        else if (status < 500 && status !== 408) {
          return { outcome: "failed", attempts: attempt, detail }
        }
      } else {
        detail = "unreachable"
      }
      if (attempt < MAX_ATTEMPTS) yield* Effect.sleep(Duration.millis(wait))
    }
    return { outcome: "failed", attempts: MAX_ATTEMPTS, detail }
  })

/** Sends without retries and ignores the outcome (typing indicators). */
export const fire = (request: Request): Effect.Effect<void> =>
  Effect.ignore(Effect.tryPromise(() =>
    fetch(request.url, {
      method: "POST",
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(5_000)
    })
  ))

/**
 * An email reply over SMTP (ADR 0052): to the sender, `Re:` their subject, in reply to their Message-ID, with a
 * Message-ID made from the (session, turn) key, so every attempt is the same message. 4xx and connection failures
 * are retried with backoff; a 5xx is final.
 */
export const deliverEmail = (
  channel: Channel,
  password: Redacted.Redacted<string> | null,
  reply: Readonly<Record<string, string>>,
  text: string,
  idempotencyKey: string
): Effect.Effect<Delivered> =>
  Effect.gen(function*() {
    const auth = channel.config.smtpUser === undefined || password === null
      ? null
      : { user: channel.config.smtpUser, pass: Redacted.value(password) }
    const host = (channel.config.from ?? "lantern@localhost").split("@")[1] ?? "localhost"
    const mail: Smtp.Mail = {
      from: channel.config.from ?? "",
      to: reply["to"] ?? "",
      subject: reply["subject"] ?? "Re:",
      text,
      messageId: `<${idempotencyKey.replace(/[^A-Za-z0-9.:_-]/gu, "_")}@${host}>`,
      ...(reply["inReplyTo"] === undefined ? {} : { inReplyTo: reply["inReplyTo"] })
    }
    let detail = ""
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const sent = yield* Effect.tryPromise({
        try: () => Smtp.send(channel.config.smtpUrl ?? "", auth, mail),
        catch: (e) => (e instanceof Smtp.SmtpError ? e : new Smtp.SmtpError(421, "send", String(e)))
      }).pipe(Effect.result)
      if (sent._tag === "Success") return { outcome: "sent", attempts: attempt, detail: "SMTP 250" }
      detail = `SMTP ${sent.failure.code} at ${sent.failure.stage}`
      if (sent.failure.permanent) return { outcome: "failed", attempts: attempt, detail }
      if (attempt < MAX_ATTEMPTS) yield* Effect.sleep(Duration.millis(Math.min(8_000, 200 * 2 ** (attempt - 1))))
    }
    return { outcome: "failed", attempts: MAX_ATTEMPTS, detail }
  })
