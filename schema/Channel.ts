// The language of channels (ADR 0050): a connection of one platform (Slack, Discord, Telegram, WhatsApp, Twilio
// SMS, email, webchat) to an agent, its secrets by reference only, and the events of its journal and of the
// journals of its conversations (sessions). No I/O.
import { Schema } from "effect"
import { AgentName } from "./Ids.ts"

export const KINDS = ["slack", "discord", "telegram", "whatsapp", "twilio", "email", "webchat"] as const
export const ChannelKind = Schema.Literals(KINDS)
export type ChannelKind = typeof ChannelKind.Type

/** A channel id: `ch_` and 26 base32 characters; a subject token and the last segment of its webhook URL. */
export const ChannelId = Schema.String.check(
  Schema.isPattern(/^ch_[0-9a-z]{26}$/u, { message: "Expected a channel id like ch_01j…" })
)
/** A session id: `ses_` and 32 hex characters (derived from channel and thread, or random for API sessions). */
export const SessionId = Schema.String.check(
  Schema.isPattern(/^ses_[0-9a-f]{32}$/u, { message: "Expected a session id like ses_0f3a…" })
)

const SecretRef = Schema.String.check(
  Schema.isPattern(/^lantern\.secret:\/\/[a-z0-9][a-z0-9_.-]{0,62}$/u, {
    message: "Expected a secret reference lantern.secret://<name> (store the value with POST /v1/secrets first)"
  })
)

/** The names of the secrets a connection may reference; which ones each kind needs is `REQUIRED`. */
export const SECRET_NAMES = [
  "signingSecret",
  "botToken",
  "appSecret",
  "verifyToken",
  "publicKey",
  "authToken",
  "secretToken",
  "smtpPassword"
] as const
export type SecretName = typeof SECRET_NAMES[number]

export const ChannelSecrets = Schema.Struct({
  signingSecret: Schema.optionalKey(SecretRef),
  botToken: Schema.optionalKey(SecretRef),
  appSecret: Schema.optionalKey(SecretRef),
  verifyToken: Schema.optionalKey(SecretRef),
  publicKey: Schema.optionalKey(SecretRef),
  authToken: Schema.optionalKey(SecretRef),
  secretToken: Schema.optionalKey(SecretRef),
  /** Email: the SMTP server's password for `config.smtpUser`. */
  smtpPassword: Schema.optionalKey(SecretRef)
})
export type ChannelSecrets = typeof ChannelSecrets.Type

const Url = Schema.String.check(
  Schema.isPattern(/^https?:\/\/[^\s]{1,2000}$/u, { message: "Expected an http(s) URL" })
)
const Token = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e]{1,200}$/u, { message: "Expected 1-200 printable ASCII characters" })
)

/** Settings that are not secret: where the platform signs and where replies go. */
export const ChannelConfig = Schema.Struct({
  /** The exact URL the platform calls (Twilio signs it); defaults to this deployment's webhook URL. */
  publicUrl: Schema.optionalKey(Url),
  /** The platform's API base URL for replies (tests point it at a local fake); the platform's own when absent. */
  apiBaseUrl: Schema.optionalKey(Url),
  /** Discord: the application id of the follow-up webhook. */
  applicationId: Schema.optionalKey(Token),
  /** WhatsApp: the phone number id replies are sent from. */
  phoneNumberId: Schema.optionalKey(Token),
  /** Twilio: the account SID and the number replies are sent from. */
  accountSid: Schema.optionalKey(Token),
  from: Schema.optionalKey(Token),
  /** Email: where replies are sent, `smtp://host:port` (a relay) or `smtps://host:port` (implicit TLS). */
  smtpUrl: Schema.optionalKey(
    Schema.String.check(
      Schema.isPattern(/^smtps?:\/\/[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/u, {
        message: "Expected smtp://host:port or smtps://host:port"
      })
    )
  ),
  /** Email: the SMTP user (its password is `secrets.smtpPassword`); no authentication when absent. */
  smtpUser: Schema.optionalKey(Token),
  /** Webchat: the origins whose pages may embed the widget. */
  allowedOrigins: Schema.optionalKey(Schema.Array(Url)),
  /** Webchat: the widget's public key (`data-key` of its script tag); made by Lantern when absent. */
  widgetKey: Schema.optionalKey(
    Schema.String.check(Schema.isPattern(/^wk_[0-9a-f]{32}$/u, { message: "Expected a widget key like wk_0f3a…" }))
  )
})
export type ChannelConfig = typeof ChannelConfig.Type

export const ChannelName = Schema.String.check(
  Schema.isPattern(/^[\x21-\x7e][\x20-\x7e]{0,99}$/u, {
    message: "Expected 1-100 printable ASCII characters, not starting with a space"
  })
)

export const NewChannel = Schema.Struct({
  kind: ChannelKind,
  name: ChannelName,
  agentName: AgentName,
  config: Schema.optionalKey(ChannelConfig),
  secrets: Schema.optionalKey(ChannelSecrets)
})
export type NewChannel = typeof NewChannel.Type

/** `PUT /v1/channels/{id}`: the kind is fixed; the rest is replaced and checked as at creation. */
export const ChannelUpdate = Schema.Struct({
  name: ChannelName,
  agentName: AgentName,
  config: Schema.optionalKey(ChannelConfig),
  secrets: Schema.optionalKey(ChannelSecrets)
})
export type ChannelUpdate = typeof ChannelUpdate.Type

/** What a connection needs to verify what it receives and to answer: refused at creation when missing. */
export const REQUIRED: {
  readonly [K in ChannelKind]: ReadonlyArray<`secrets.${SecretName}` | `config.${keyof ChannelConfig}`>
} = {
  slack: ["secrets.signingSecret", "secrets.botToken"],
  discord: ["secrets.publicKey", "config.applicationId"],
  telegram: ["secrets.secretToken", "secrets.botToken"],
  whatsapp: ["secrets.appSecret", "secrets.verifyToken", "secrets.botToken", "config.phoneNumberId"],
  twilio: ["secrets.authToken", "config.publicUrl", "config.accountSid", "config.from"],
  email: ["secrets.signingSecret", "config.smtpUrl", "config.from"],
  webchat: ["config.allowedOrigins"]
}

/** The fields of `REQUIRED[kind]` that `request` lacks (fail-closed: no connection without them). */
export const missing = (
  kind: ChannelKind,
  request: { readonly config?: ChannelConfig | undefined; readonly secrets?: ChannelSecrets | undefined }
): ReadonlyArray<string> =>
  REQUIRED[kind].filter((field) => {
    const [where, name] = field.split(".") as ["secrets" | "config", string]
    const value = (where === "secrets" ? request.secrets : request.config) as Record<string, unknown> | undefined
    const v = value?.[name]
    return v === undefined || (Array.isArray(v) && v.length === 0)
  })

export const ChannelView = Schema.Struct({
  id: Schema.String,
  kind: ChannelKind,
  name: Schema.String,
  agentName: Schema.String,
  config: ChannelConfig,
  /** The references, never the values. */
  secrets: ChannelSecrets,
  /** The URL to paste into the platform's settings. */
  webhookUrl: Schema.String,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type ChannelView = typeof ChannelView.Type

// ---- the channel journal: lantern.channel.<tenant>.<channelId> ----

const ChannelFields = {
  kind: ChannelKind,
  name: Schema.String,
  agentName: Schema.String,
  config: ChannelConfig,
  secrets: ChannelSecrets
}
export const ChannelConnected = Schema.TaggedStruct("ChannelConnected", ChannelFields)
export const ChannelUpdated = Schema.TaggedStruct("ChannelUpdated", ChannelFields)
export const ChannelDeleted = Schema.TaggedStruct("ChannelDeleted", { by: Schema.String })
export const ChannelEvent = Schema.Union([ChannelConnected, ChannelUpdated, ChannelDeleted])
export type ChannelEvent = typeof ChannelEvent.Type

// ---- the session journal: lantern.session.<tenant>.<sessionId>, one conversation ----

/** Where a session's messages come from and its replies go. */
export const Origin = Schema.Struct({
  /** The channel, or null for an API session (`POST /v1/sessions`). */
  channelId: Schema.NullOr(Schema.String),
  kind: Schema.Literals([...KINDS, "api"]),
  /** The platform's conversation: Slack channel (and thread), Telegram chat, phone number, Discord channel. */
  thread: Schema.String,
  agentName: Schema.String
})
export type Origin = typeof Origin.Type

export const SessionOpened = Schema.TaggedStruct("SessionOpened", { origin: Origin })
/** A message from the outside: turn `turn`, identified by the platform's event id (the redelivery dedupe). */
export const TurnReceived = Schema.TaggedStruct("TurnReceived", {
  turn: Schema.Int,
  eventId: Schema.String,
  text: Schema.String,
  from: Schema.String,
  /** What the reply needs from the message that asked (Slack thread_ts, Discord interaction token, …). */
  reply: Schema.Record(Schema.String, Schema.String)
})
export const TurnRunStarted = Schema.TaggedStruct("TurnRunStarted", { turn: Schema.Int, runId: Schema.String })
export const TurnAnswered = Schema.TaggedStruct("TurnAnswered", {
  turn: Schema.Int,
  text: Schema.String,
  status: Schema.Literals(["succeeded", "failed", "canceled"]),
  costUsd: Schema.Number
})
/** The answer reached the platform (or failed for good after its retries). */
export const TurnDelivered = Schema.TaggedStruct("TurnDelivered", {
  turn: Schema.Int,
  outcome: Schema.Literals(["sent", "failed", "none"]),
  attempts: Schema.Int,
  detail: Schema.String
})
export const SessionEvent = Schema.Union([SessionOpened, TurnReceived, TurnRunStarted, TurnAnswered, TurnDelivered])
export type SessionEvent = typeof SessionEvent.Type

export const TurnView = Schema.Struct({
  turn: Schema.Int,
  eventId: Schema.String,
  from: Schema.String,
  text: Schema.String,
  receivedAt: Schema.String,
  runId: Schema.NullOr(Schema.String),
  answer: Schema.NullOr(Schema.String),
  status: Schema.Literals(["waiting", "running", "succeeded", "failed", "canceled"]),
  delivery: Schema.NullOr(Schema.Literals(["sent", "failed", "none"])),
  costUsd: Schema.Number
})
export type TurnView = typeof TurnView.Type

export const SessionView = Schema.Struct({
  id: Schema.String,
  channelId: Schema.NullOr(Schema.String),
  kind: Schema.String,
  thread: Schema.String,
  agentName: Schema.String,
  turns: Schema.Array(TurnView),
  runs: Schema.Array(Schema.String),
  costUsd: Schema.Number,
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type SessionView = typeof SessionView.Type

export const SessionSummary = Schema.Struct({
  id: Schema.String,
  channelId: Schema.NullOr(Schema.String),
  kind: Schema.String,
  thread: Schema.String,
  agentName: Schema.String,
  turns: Schema.Int,
  updatedAt: Schema.String
})

export const NewSession = Schema.Struct({ agentName: AgentName })
export const SessionMessage = Schema.Struct({
  text: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(32_000))
})
