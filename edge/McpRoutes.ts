// MCP servers over HTTP (actors/tools/Mcp.ts, ADR 0044), and the pinning of their tools into an agent's version:
// a spec's `mcp: [{server, tools?}]` becomes tools of their own (`<server>__<tool>`, the server's input schema),
// checked against the servers the tenant registered.
import { Effect, Option } from "effect"
import { McpServerNotFound, McpServers, toolName } from "../actors/tools/Mcp.ts"
import * as McpCatalog from "../actors/tools/McpCatalog.ts"
import type { AgentSpec } from "../schema/AgentSpec.ts"
import { BadRequest } from "./Http.ts"
import { handlers, reply } from "./Serve.ts"

/** `spec` with the tools of its attached MCP servers pinned in (replacing any pinned before); 400 naming the field. */
export const pinMcpTools = (tenant: string, spec: AgentSpec) =>
  Effect.gen(function*() {
    if (spec.mcp === undefined || spec.mcp.length === 0) return spec
    const servers = yield* McpServers
    const own = (spec.tools ?? []).filter((t) => t.mcp === undefined)
    const pinned: Array<NonNullable<AgentSpec["tools"]>[number]> = []
    const issues: Array<{ field: string; message: string }> = []
    for (const [i, attach] of spec.mcp.entries()) {
      const server = yield* servers.get(tenant, attach.server)
      if (Option.isNone(server)) {
        issues.push({ field: `spec.mcp[${i}].server`, message: `no MCP server '${attach.server}' is registered` })
        continue
      }
      const offered = server.value.tools
      for (const [j, name] of (attach.tools ?? []).entries()) {
        if (!offered.some((t) => t.name === name)) {
          issues.push({ field: `spec.mcp[${i}].tools[${j}]`, message: `${attach.server} has no tool '${name}'` })
        }
      }
      for (const [j, name] of (attach.approval ?? []).entries()) {
        const attached = attach.tools === undefined || attach.tools.includes(name)
        if (!offered.some((t) => t.name === name) || !attached) {
          issues.push({
            field: `spec.mcp[${i}].approval[${j}]`,
            message: `${attach.server} has no attached tool '${name}'`
          })
        }
      }
      for (const t of offered) {
        if (attach.tools !== undefined && !attach.tools.includes(t.name)) continue
        pinned.push({
          name: toolName(attach.server, t.name),
          description: t.description.slice(0, 1024),
          parameters: t.inputSchema,
          mcp: { server: attach.server, tool: t.name },
          // a call of it waits for a human, as a declared tool's approval makes it
          ...(attach.approval?.includes(t.name) === true
            ? { approval: { expiresInSeconds: attach.approvalExpiresInSeconds ?? 86_400 } }
            : {})
        })
      }
    }
    for (const t of pinned) {
      if (own.some((o) => o.name === t.name)) {
        issues.push({ field: "spec.tools", message: `a tool named ${t.name} clashes with an MCP tool` })
      }
    }
    if (issues.length > 0) return yield* new BadRequest({ issues })
    return { ...spec, tools: [...own, ...pinned] }
  })

export const mcpHandlers = handlers({
  registerMcpServer: ({ tenant, body }) =>
    Effect.map(McpServers.use((s) => s.register(tenant, body)), (view) => reply(201, view)),
  listMcpServers: ({ tenant }) => Effect.map(McpServers.use((s) => s.list(tenant)), (items) => ({ items })),
  mcpServerTools: ({ tenant, params }) =>
    Effect.gen(function*() {
      const server = yield* McpServers.use((s) => s.get(tenant, params.name))
      if (Option.isNone(server)) return yield* new McpServerNotFound({ name: params.name })
      return { items: server.value.tools }
    }),
  listMcpCatalog: () => Effect.map(McpCatalog.load, (items) => ({ items })),
  attachMcpCatalogEntry: ({ tenant, params, body }) =>
    Effect.gen(function*() {
      const entry = (yield* McpCatalog.load).find((e) => e.id === params.id)
      if (entry === undefined) return yield* new McpCatalog.McpCatalogEntryNotFound({ id: params.id })
      const made = McpCatalog.serverOf(entry, body)
      if ("issues" in made) return yield* new BadRequest({ issues: made.issues })
      return reply(201, yield* McpServers.use((s) => s.register(tenant, made.server)))
    }),
  deleteMcpServer: ({ tenant, params }) =>
    Effect.gen(function*() {
      const removed = yield* McpServers.use((s) => s.remove(tenant, params.name))
      if (!removed) return yield* new McpServerNotFound({ name: params.name })
      return null
    })
})
