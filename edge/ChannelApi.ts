// The declared endpoints of channels and sessions (ADR 0050), spread into the API's table (edge/Api.ts): channel
// connections (`channels:write` to change, `channels:read` to read) and the conversations they hold.
import { Schema } from "effect"
import type { ChannelNotFound } from "../actors/channel/Decider.ts"
import type { SessionNotFound } from "../actors/channel/Session.ts"
import * as Api from "../schema/Api.ts"
import * as Channel from "../schema/Channel.ts"
import { body, failure, Json, make, Media, None } from "./Endpoint.ts"
import * as F from "./Failures.ts"

export const ChannelMissing = failure<ChannelNotFound>(
  "ChannelNotFound",
  404,
  "channel_not_found",
  "No such channel"
)
export const SessionMissing = failure<SessionNotFound>(
  "SessionNotFound",
  404,
  "session_not_found",
  "No such session"
)

const ByChannel = Schema.Struct({ id: Channel.ChannelId })
const BySession = Schema.Struct({ id: Channel.SessionId })
const list = <S extends Schema.Top>(s: S) => Schema.Struct({ items: Schema.Array(s) })

export const Turn = Schema.Struct({ sessionId: Schema.String, turn: Schema.Int, duplicate: Schema.Boolean })

export const endpoints = [
  make("createChannel", {
    method: "POST",
    path: "/v1/channels",
    scope: "channels:write",
    summary:
      "Connect a platform (slack, discord, telegram, whatsapp, twilio, email, webchat) to an agent. Secrets are `lantern.secret://` references; a connection without the material to verify its webhooks is refused (400 naming the field). The answer's webhookUrl is what to paste into the platform",
    body: body(Channel.NewChannel),
    success: { 201: Json(Channel.ChannelView, "Connected") },
    failures: [F.AgentNotFound, F.SecretDown, ChannelMissing]
  }),
  make("listChannels", {
    method: "GET",
    path: "/v1/channels",
    scope: "channels:read",
    summary: "The tenant's channel connections (secrets as references only)",
    success: { 200: Json(list(Channel.ChannelView), "Channels") }
  }),
  make("getChannel", {
    method: "GET",
    path: "/v1/channels/:id",
    scope: "channels:read",
    summary: "A channel connection",
    params: ByChannel,
    success: { 200: Json(Channel.ChannelView, "Channel") },
    failures: [ChannelMissing]
  }),
  make("updateChannel", {
    method: "PUT",
    path: "/v1/channels/:id",
    scope: "channels:write",
    summary: "Replace a connection's name, agent, config and secrets (its kind is fixed), checked as at creation",
    params: ByChannel,
    body: body(Channel.ChannelUpdate),
    success: { 200: Json(Channel.ChannelView, "Channel") },
    failures: [ChannelMissing, F.AgentNotFound, F.SecretDown]
  }),
  make("deleteChannel", {
    method: "DELETE",
    path: "/v1/channels/:id",
    scope: "channels:write",
    summary: "Delete a connection: its webhook answers 404 from now on",
    params: ByChannel,
    success: { 204: None("Deleted") },
    failures: [ChannelMissing]
  }),
  make("createSession", {
    method: "POST",
    path: "/v1/sessions",
    scope: "channels:write",
    summary: "Open an API session with an agent: a conversation driven by POST /v1/sessions/{id}/messages",
    body: body(Channel.NewSession),
    success: { 201: Json(Channel.SessionView, "Opened") },
    failures: [F.AgentNotFound, SessionMissing]
  }),
  make("listSessions", {
    method: "GET",
    path: "/v1/sessions",
    scope: "channels:read",
    summary: "The tenant's conversations, most recently active first: every channel thread and API session",
    success: { 200: Json(list(Channel.SessionView), "Sessions") }
  }),
  make("getSession", {
    method: "GET",
    path: "/v1/sessions/:id",
    scope: "channels:read",
    summary: "A conversation: its turns (message, run, answer, delivery), its runs and their cost",
    params: BySession,
    success: { 200: Json(Channel.SessionView, "Session") },
    failures: [SessionMissing]
  }),
  make("sendSessionMessage", {
    method: "POST",
    path: "/v1/sessions/:id/messages",
    scope: "channels:write",
    summary:
      "An API-driven turn: the agent answers with the conversation so far (read it from the session or its stream); the channel's own reply goes out as for a platform's message",
    params: BySession,
    headers: [{
      name: "Idempotency-Key",
      schema: Api.IdempotencyKey,
      description: "The same key again is the same turn (200, duplicate: true), never a second run"
    }],
    body: body(Channel.SessionMessage),
    success: { 202: Json(Turn, "Queued"), 200: Json(Turn, "Already received with this Idempotency-Key") },
    failures: [SessionMissing]
  }),
  make("sessionStream", {
    method: "GET",
    path: "/v1/sessions/:id/stream",
    scope: "channels:read",
    summary:
      "The session's journal as Server-Sent Events, from its first event on, live (turns, runs, answers, deliveries); resume with Last-Event-ID",
    params: BySession,
    headers: [{
      name: "Last-Event-ID",
      schema: Api.LastEventId,
      description: "The `id` of the last event received: the stream resumes after it",
      emptyIsAbsent: true
    }],
    success: { 200: Media("text/event-stream", "text/event-stream") },
    failures: [SessionMissing]
  })
] as const
