// MCP servers a tenant registers (ADR 0044): `POST /v1/mcp/servers {name, transport: "streamable-http", url,
// headers?}` connects with the official SDK's client, lists the server's tools and keeps them (KV
// `lantern-mcp-servers`, key `<tenant>.<name>`). An agent spec attaching a server (`mcp: [{server, tools?}]`) gets
// those tools pinned into its version; a run's call of one is a journaled tool step answered by `tools/call` on the
// server. The server's host is subject to the tenant's egress allowlist and the private-address rule, as HTTP
// tools are (ADR 0043); header values are secrets, resolved per connection, never stored or journaled.
import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { SecretRef } from "../../schema/AgentSpec.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import { Secrets } from "../secrets/Secrets.ts"
import { Egress, hostAllowed } from "./Egress.ts"
import { isPrivate } from "../../schema/Addresses.ts"
import { settingsConfig } from "./Http.ts"

/** A registered server's name: how agents attach it and how its tools are named (`<server>__<tool>`). */
export const ServerName = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,30}$/u, {
    message: "Expected a server name: lowercase letters, digits, '-' or '_', 1-31 characters"
  })
)

export const NewServer = Schema.Struct({
  name: ServerName,
  transport: Schema.Literals(["streamable-http"]),
  url: Schema.String.check(Schema.isPattern(/^https?:\/\/\S{1,2048}$/u, { message: "Expected an http(s) URL" })),
  /** Headers sent with every request, each a `lantern.secret://` reference. */
  headers: Schema.optionalKey(Schema.Record(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9-]{1,64}$/u, { message: "Expected an HTTP header name" })),
    SecretRef
  ))
})
export type NewServer = typeof NewServer.Type

export const ServerTool = Schema.Struct({
  name: Schema.String,
  description: Schema.String,
  inputSchema: Schema.Record(Schema.String, Schema.Unknown)
})
export type ServerTool = typeof ServerTool.Type

export const ServerView = Schema.Struct({
  ...NewServer.fields,
  tools: Schema.Array(ServerTool),
  registeredAt: Schema.String
})
export type ServerView = typeof ServerView.Type

const bucket = Kv.bucket({
  name: "lantern-mcp-servers",
  value: Schema.fromJsonString(ServerView),
  what: "an MCP server"
})

/** The name a model sees for a server's tool: `<server>__<tool>`, within the 64 characters tool names allow. */
export const toolName = (server: string, tool: string) =>
  `${server}__${tool.replace(/[^A-Za-z0-9_-]/g, "_")}`.slice(0, 64)

/** The server could not be reached or refused the connection: the message says why, never a header's value. */
export class McpUnavailable extends Schema.TaggedError<McpUnavailable>()("McpUnavailable", {
  server: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `MCP server ${this.server} is unavailable: ${this.reason}`
  }
}

export class McpServerNotFound extends Schema.TaggedError<McpServerNotFound>()("McpServerNotFound", {
  name: Schema.String
}) {
  override get message() {
    return `MCP server '${this.name}' is not registered`
  }
}

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e))

export class McpServers extends Context.Service<McpServers, {
  /** Connects, lists the tools and stores the server (again, when the name exists: its tools are listed anew). */
  readonly register: (tenant: string, server: NewServer) => Effect.Effect<ServerView, McpUnavailable | BusUnavailable>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<ServerView>, BusUnavailable>
  readonly get: (tenant: string, name: string) => Effect.Effect<Option.Option<ServerView>, BusUnavailable>
  readonly remove: (tenant: string, name: string) => Effect.Effect<boolean, BusUnavailable>
  /** Calls `tool` of the server with `args`: the text the server answered, `error: …` for its own errors. */
  readonly call: (
    tenant: string,
    server: string,
    tool: string,
    args: unknown
  ) => Effect.Effect<string, McpUnavailable | BusUnavailable>
}>()("lantern/actors/tools/McpServers") {
  static readonly layer = Layer.effect(
    McpServers,
    Effect.gen(function*() {
      const kv = yield* Kv.open(bucket)
      const secrets = yield* Secrets
      const egress = yield* Egress
      const settings = yield* settingsConfig
      const keyOf = (tenant: string, name: string) => `${tenant}.${name}`

      /** The server's URL, checked against the tenant's allowlist and the private-address rule. */
      const checked = (tenant: string, server: NewServer) =>
        Effect.gen(function*() {
          const url = new URL(server.url)
          const hosts = yield* egress.hosts(tenant)
          if (!hostAllowed(hosts, url.hostname, url.port)) {
            return yield* new McpUnavailable({
              server: server.name,
              reason: `${url.host} is not on this tenant's egress allowlist (PUT /v1/egress)`
            })
          }
          const host = url.hostname.replace(/^\[|\]$/g, "")
          const addresses = isIP(host) !== 0
            ? [host]
            : yield* Effect.tryPromise({
              try: () => lookup(host, { all: true }).then((a) => a.map((x) => x.address)),
              catch: (e) => new McpUnavailable({ server: server.name, reason: reasonOf(e) })
            })
          if (addresses.some((a) => isPrivate(a) && !settings.allowPrivate.includes(a))) {
            return yield* new McpUnavailable({
              server: server.name,
              reason: `${url.hostname} is a private address, which tools may not reach`
            })
          }
          return url
        })

      /** A connected client for the span of `use`, closed after. */
      const withClient = <A>(tenant: string, server: NewServer, use: (client: Client) => Promise<A>) =>
        Effect.gen(function*() {
          const url = yield* checked(tenant, server)
          const headers: Record<string, string> = {}
          for (const [name, uri] of Object.entries(server.headers ?? {})) {
            const value = yield* secrets.resolve(tenant, uri, `mcp:${server.name}`).pipe(
              Effect.mapError(() =>
                new McpUnavailable({ server: server.name, reason: `the secret of header ${name} cannot be read` })
              )
            )
            headers[name] = Redacted.value(value)
          }
          return yield* Effect.tryPromise({
            try: async () => {
              const client = new Client({ name: "lantern", version: "0.1.0" })
              const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers, redirect: "error" } })
              await client.connect(transport)
              try {
                return await use(client)
              } finally {
                await client.close().catch(() => undefined)
              }
            },
            catch: (e) => new McpUnavailable({ server: server.name, reason: reasonOf(e) })
          })
        })

      const register = (tenant: string, server: NewServer) =>
        Effect.gen(function*() {
          const listed = yield* withClient(tenant, server, (c) => c.listTools())
          const view: ServerView = {
            ...server,
            tools: listed.tools.map((t) => ({
              name: t.name,
              description: t.description ?? t.name,
              inputSchema: t.inputSchema as Record<string, unknown>
            })),
            registeredAt: new Date().toISOString()
          }
          yield* kv.put(keyOf(tenant, server.name), view)
          return view
        })

      const get = (tenant: string, name: string) =>
        kv.get(keyOf(tenant, name)).pipe(
          Effect.map(Option.map((e) => e.value)),
          Effect.catchTag("CorruptValue", (e) => Effect.die(e))
        )

      const list = (tenant: string) =>
        Effect.gen(function*() {
          const keys = yield* kv.keys(`${tenant}.>`)
          const out: Array<ServerView> = []
          for (const key of keys) {
            const v = yield* get(tenant, key.slice(tenant.length + 1))
            if (Option.isSome(v)) out.push(v.value)
          }
          return out.sort((a, b) => a.name.localeCompare(b.name))
        })

      const remove = (tenant: string, name: string) =>
        Effect.gen(function*() {
          const existing = yield* get(tenant, name)
          if (Option.isNone(existing)) return false
          yield* kv.delete(keyOf(tenant, name))
          return true
        })

      const call = (tenant: string, server: string, tool: string, args: unknown) =>
        Effect.gen(function*() {
          const found = yield* get(tenant, server)
          if (Option.isNone(found)) return `error: MCP server ${server} is not registered`
          const result = yield* withClient(tenant, found.value, (c) =>
            c.callTool({
              name: tool,
              arguments: typeof args === "object" && args !== null ? args as Record<string, unknown> : {}
            }))
          const content = (result.content ?? []) as ReadonlyArray<{ type: string; text?: string }>
          const text = content.map((p) => (p.type === "text" ? p.text ?? "" : `[${p.type}]`)).join("\n")
          return result.isError === true ? `error: ${text}` : text
        }).pipe(Effect.withSpan("Mcp.call", { attributes: { "lantern.mcp.server": server, "lantern.tool": tool } }))

      return McpServers.of({ register, list, get, remove, call })
    })
  )
}
