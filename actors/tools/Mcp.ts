// MCP servers a tenant registers (ADR 0044): `POST /v1/mcp/servers {name, transport: "streamable-http", url,
// headers?}` connects with the official SDK's client, lists the server's tools and keeps them (KV
// `lantern-mcp-servers`, key `<tenant>.<name>`). An agent spec attaching a server (`mcp: [{server, tools?}]`) gets
// those tools pinned into its version; a run's call of one is a journaled tool step answered by `tools/call` on the
// server. The server's host is subject to the tenant's egress allowlist and the private-address rule, as HTTP
// tools are (ADR 0043); header values are secrets, resolved per connection, never stored or journaled.
import { lookup } from "node:dns/promises"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { isIP } from "node:net"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { SecretRef } from "../../schema/AgentSpec.ts"
import { Tier, type WorkloadSpec } from "../../schema/Workload.ts"
import * as Backends from "../spawner/Backends.ts"
import { settingsConfig as spawnerSettings } from "../spawner/Spawner.ts"
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

export const HttpServer = Schema.Struct({
  name: ServerName,
  transport: Schema.Literal("streamable-http"),
  url: Schema.String.check(Schema.isPattern(/^https?:\/\/\S{1,2048}$/u, { message: "Expected an http(s) URL" })),
  /** Headers sent with every request, each a `lantern.secret://` reference. */
  headers: Schema.optionalKey(Schema.Record(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9-]{1,64}$/u, { message: "Expected an HTTP header name" })),
    SecretRef
  ))
})

const EnvName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/u, { message: "Expected an environment variable name" })
)

/**
 * A server launched as a command speaking MCP on its stdin and stdout, inside the sandbox tier `isolation` (default
 * `standard`) of the spawner's configured backends (ADR 0060): one sandboxed process per connection, no network.
 * An env value that is a `lantern.secret://` reference is resolved when the process starts, never stored.
 */
export const StdioServer = Schema.Struct({
  name: ServerName,
  transport: Schema.Literal("stdio"),
  command: Schema.String.check(Schema.isBetweenLength(1, 4096)),
  args: Schema.optionalKey(Schema.Array(Schema.String.check(Schema.isMaxLength(4096))).check(Schema.isMaxLength(64))),
  env: Schema.optionalKey(Schema.Record(EnvName, Schema.String.check(Schema.isMaxLength(4096)))),
  isolation: Schema.optionalKey(Tier)
})

export const NewServer = Schema.Union([HttpServer, StdioServer])
export type NewServer = typeof NewServer.Type

export const ServerTool = Schema.Struct({
  name: Schema.String,
  description: Schema.String,
  inputSchema: Schema.Record(Schema.String, Schema.Unknown)
})
export type ServerTool = typeof ServerTool.Type

export const ServerView = Schema.Union([
  Schema.Struct({ ...HttpServer.fields, tools: Schema.Array(ServerTool), registeredAt: Schema.String }),
  Schema.Struct({ ...StdioServer.fields, tools: Schema.Array(ServerTool), registeredAt: Schema.String })
])
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
      const checked = (tenant: string, server: typeof HttpServer.Type) =>
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

      // the sandboxes a stdio server may run in: the spawner's configured backends that run a local process
      // (kubernetes and microvm backends have no stdin to speak MCP over), probed once, when a stdio server is first
      // used (not at start: most deployments have none)
      const configured = (yield* spawnerSettings).backends
      const sandboxes = yield* Effect.cached(Effect.gen(function*() {
        const usable: Array<Backends.Backend> = []
        for (const name of configured) {
          const backend = Backends.byName(name)
          if (backend !== null && (yield* backend.probe).ok) usable.push(backend)
        }
        return usable
      }))

      const secretValue = (tenant: string, server: string, uri: string, what: string) =>
        secrets.resolve(tenant, uri, `mcp:${server}`).pipe(
          Effect.map(Redacted.value),
          Effect.mapError(() => new McpUnavailable({ server, reason: `the secret of ${what} cannot be read` }))
        )

      /** The transport to the server: HTTP to its URL, or the stdio of its command in its sandbox tier. */
      const transportOf = (tenant: string, server: NewServer) =>
        Effect.gen(function*() {
          if (server.transport === "streamable-http") {
            const url = yield* checked(tenant, server)
            const headers: Record<string, string> = {}
            for (const [name, uri] of Object.entries(server.headers ?? {})) {
              headers[name] = yield* secretValue(tenant, server.name, uri, `header ${name}`)
            }
            const transport: Transport = new StreamableHTTPClientTransport(url, {
              requestInit: { headers, redirect: "error" }
            })
            return { transport, dispose: () => undefined }
          }
          const tier = server.isolation ?? "standard"
          const backend = yield* Backends.place(yield* sandboxes, tier).pipe(
            Effect.mapError((e) => new McpUnavailable({ server: server.name, reason: e.message }))
          )
          const env: Record<string, string> = { PATH: process.env["PATH"] ?? "/usr/bin:/bin" }
          for (const [name, value] of Object.entries(server.env ?? {})) {
            env[name] = value.startsWith("lantern.secret://")
              ? yield* secretValue(tenant, server.name, value, `env ${name}`)
              : value
          }
          // the backend's own command line for a workload with no network and no secrets to fetch: the command runs
          // right under the sandbox, its stdin and stdout the MCP connection
          const sockDir = mkdtempSync(join(tmpdir(), "lantern-mcp-"))
          const spec = {
            spec: { command: [server.command], args: server.args ?? [], isolation: tier, network: "none", secrets: [] }
          } as unknown as WorkloadSpec
          const argv = yield* backend.argv(spec, { sockDir }).pipe(
            Effect.mapError((e) => new McpUnavailable({ server: server.name, reason: e.message }))
          )
          const transport: Transport = new StdioClientTransport({
            command: argv[0]!,
            args: argv.slice(1),
            env,
            stderr: "ignore"
          })
          return { transport, dispose: () => rmSync(sockDir, { recursive: true, force: true }) }
        })

      /** A connected client for the span of `use`, closed after. */
      const withClient = <A>(tenant: string, server: NewServer, use: (client: Client) => Promise<A>) =>
        Effect.gen(function*() {
          const { transport, dispose } = yield* transportOf(tenant, server)
          return yield* Effect.tryPromise({
            try: async () => {
              const client = new Client({ name: "lantern", version: "0.1.0" })
              try {
                await client.connect(transport)
                return await use(client)
              } finally {
                await client.close().catch(() => undefined)
              }
            },
            catch: (e) => new McpUnavailable({ server: server.name, reason: reasonOf(e) })
          }).pipe(Effect.ensuring(Effect.sync(dispose)))
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
