// Channel connections and sessions over HTTP (ADR 0050). A connection is checked before it is journaled: the
// material its webhooks are verified with must be there (fail-closed), each secret it references must exist, and
// its agent too. Answers show secrets as their references, never their values.
import { randomBytes } from "node:crypto"
import { Effect, Stream } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import type { Channel } from "../actors/channel/Channels.ts"
import { Channels } from "../actors/channel/Channels.ts"
import { Sessions } from "../actors/channel/Sessions.ts"
import * as Secrets from "../actors/secrets/Secrets.ts"
import * as Queries from "../projections/Queries.ts"
import {
  type ChannelConfig,
  type ChannelKind,
  type ChannelSecrets,
  type ChannelView,
  missing
} from "../schema/Channel.ts"
import { PublicUrl } from "./A2aRoutes.ts"
import { sseComment, sseFrame, sseResponse } from "./Events.ts"
import { BadRequest } from "./Http.ts"
import { actorOf, handlers, reply } from "./Serve.ts"

/** Where a channel's platform posts: the URL to paste into its settings. */
export const hookPath = (id: string) => `/v1/hooks/${id}`

export const viewOf = (base: string, c: Channel): ChannelView => ({
  id: c.id,
  kind: c.kind,
  name: c.name,
  agentName: c.agentName,
  config: c.config,
  secrets: c.secrets,
  webhookUrl: `${base}${hookPath(c.id)}`,
  createdAt: c.createdAt,
  updatedAt: c.updatedAt
})

/** Fail-closed: the fields the kind needs, every secret reference resolvable to a stored secret, the agent. */
const check = (
  tenant: string,
  kind: ChannelKind,
  request: { readonly agentName: string; readonly config?: ChannelConfig; readonly secrets?: ChannelSecrets }
) =>
  Effect.gen(function*() {
    const issues: Array<{ field: string; message: string }> = missing(kind, request).map((field) => ({
      field,
      message: `a ${kind} channel needs ${field} to verify what it receives or to answer`
    }))
    const store = yield* Secrets.Secrets
    for (const [field, uri] of Object.entries(request.secrets ?? {})) {
      const name = Secrets.nameOf(uri)
      const found = name === null ? null : yield* store.get(tenant, name).pipe(
        Effect.map(() => true),
        Effect.catchTag("SecretNotFound", () => Effect.succeed(false))
      )
      if (found !== true) {
        issues.push({ field: `secrets.${field}`, message: `no secret ${uri} in this tenant (POST /v1/secrets first)` })
      }
    }
    if (kind === "webchat") {
      for (const [i, origin] of (request.config?.allowedOrigins ?? []).entries()) {
        if (new URL(origin).origin !== origin) {
          issues.push({
            field: `config.allowedOrigins[${i}]`,
            message: "Expected an origin: scheme://host[:port], no path"
          })
        }
      }
    }
    if (issues.length > 0) return yield* new BadRequest({ issues })
    const projected = yield* Queries.getAgent(tenant, request.agentName)
    if (projected === null) yield* (yield* Agents).get(tenant, request.agentName)
  })

/** A webchat channel's widget key: the one given, else the one it had, else a new one. */
const withWidgetKey = (kind: ChannelKind, config: ChannelConfig, had: string | undefined): ChannelConfig =>
  kind !== "webchat" || config.widgetKey !== undefined
    ? config
    : { ...config, widgetKey: had ?? `wk_${randomBytes(16).toString("hex")}` }

export const channelHandlers = handlers({
  createChannel: ({ tenant, body }) =>
    Effect.gen(function*() {
      yield* check(tenant, body.kind, body)
      const channel = yield* (yield* Channels).create(tenant, {
        kind: body.kind,
        name: body.name,
        agentName: body.agentName,
        config: withWidgetKey(body.kind, body.config ?? {}, undefined),
        secrets: body.secrets ?? {}
      })
      return reply(201, viewOf((yield* PublicUrl).base, channel), { location: `/v1/channels/${channel.id}` })
    }),
  listChannels: ({ tenant }) =>
    Effect.gen(function*() {
      const { base } = yield* PublicUrl
      return { items: (yield* (yield* Channels).list(tenant)).map((c) => viewOf(base, c)) }
    }),
  getChannel: ({ tenant, params }) =>
    Effect.gen(function*() {
      return viewOf((yield* PublicUrl).base, yield* (yield* Channels).get(tenant, params.id))
    }),
  updateChannel: ({ tenant, params, body }) =>
    Effect.gen(function*() {
      const channels = yield* Channels
      const current = yield* channels.get(tenant, params.id)
      yield* check(tenant, current.kind, body)
      const channel = yield* channels.update(tenant, params.id, {
        name: body.name,
        agentName: body.agentName,
        config: withWidgetKey(current.kind, body.config ?? {}, current.config.widgetKey),
        secrets: body.secrets ?? {}
      })
      return viewOf((yield* PublicUrl).base, channel)
    }),
  deleteChannel: ({ tenant, principal, params }) =>
    Effect.as(Channels.use((c) => c.remove(tenant, params.id, actorOf(principal))), null),
  createSession: ({ tenant, body }) =>
    Effect.gen(function*() {
      const projected = yield* Queries.getAgent(tenant, body.agentName)
      if (projected === null) yield* (yield* Agents).get(tenant, body.agentName)
      const session = yield* (yield* Sessions).open(tenant, body.agentName)
      return reply(201, session, { location: `/v1/sessions/${session.id}` })
    }),
  listSessions: ({ tenant }) => Effect.map(Sessions.use((s) => s.list(tenant)), (items) => ({ items })),
  getSession: ({ tenant, params }) => Sessions.use((s) => s.get(tenant, params.id)),
  sendSessionMessage: ({ tenant, principal, params, headers, body }) =>
    Effect.gen(function*() {
      const turn = yield* (yield* Sessions).say(
        tenant,
        params.id,
        body.text,
        headers["idempotency-key"] ?? null,
        actorOf(principal)
      )
      return reply(turn.duplicate ? 200 : 202, turn)
    }),
  sessionStream: ({ tenant, params, headers }) =>
    Effect.gen(function*() {
      const sessions = yield* Sessions
      yield* sessions.get(tenant, params.id)
      // Last-Event-ID is a position in the session's journal (1…N, the ids this stream sends)
      const journaled = yield* sessions.events(tenant, params.id)
      const from = Math.min(headers["last-event-id"] ?? 0, journaled.length)
      const afterSeq = from === 0 ? 0 : journaled[from - 1]!.seq
      const events = sessions.follow(tenant, params.id, afterSeq).pipe(
        Stream.zipWithIndex,
        Stream.map(([s, i]) => sseFrame(s, from + i + 1))
      )
      return sseResponse(sseComment("lantern session stream"), events)
    })
})
