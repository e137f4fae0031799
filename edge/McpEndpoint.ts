// Lantern as an MCP server (ADR 0044): `/mcp` speaks MCP's streamable HTTP transport (stateless: each request is a
// server of its own, so any host answers any request) with the official SDK's web-standard transport, behind the
// same bearer keys and scopes as the API. Its tools list agents, start a run, read a run and decide an approval, so
// Claude Desktop, IDEs and other agents drive Lantern. A tool the key's scopes do not allow answers an error result.
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Runs } from "../actors/run/Runs.ts"
import * as Queries from "../projections/Queries.ts"
import { Sql } from "../projections/Sql.ts"
import { Auth } from "./Auth.ts"
import { holds, type Scope } from "./Scopes.ts"

interface Tool {
  readonly name: string
  readonly description: string
  readonly scope: Scope
  readonly inputSchema: Record<string, unknown>
}

export const TOOLS: ReadonlyArray<Tool> = [
  {
    name: "list_agents",
    description: "The tenant's agents: name, latest version and model.",
    scope: "agents:read",
    inputSchema: { type: "object", properties: {} }
  },
  {
    name: "start_run",
    description: "Start a run of an agent (its latest version) with an input; answers the run's id and status.",
    scope: "runs:write",
    inputSchema: {
      type: "object",
      properties: { agentName: { type: "string" }, input: {} },
      required: ["agentName"]
    }
  },
  {
    name: "get_run",
    description: "A run's status, output or error, cost, and what it waits for.",
    scope: "runs:read",
    inputSchema: { type: "object", properties: { runId: { type: "string" } }, required: ["runId"] }
  },
  {
    name: "approve_step",
    description: "Approve or reject a step of a run that waits for a human decision.",
    scope: "runs:write",
    inputSchema: {
      type: "object",
      properties: {
        runId: { type: "string" },
        stepId: { type: "string" },
        approved: { type: "boolean" },
        reason: { type: "string" }
      },
      required: ["runId", "stepId", "approved"]
    }
  }
]

const text = (value: unknown, isError = false) => ({
  content: [{ type: "text" as const, text: typeof value === "string" ? value : JSON.stringify(value) }],
  ...(isError ? { isError: true } : {})
})

const str = (args: Record<string, unknown>, name: string) => typeof args[name] === "string" ? args[name] as string : ""

const handle = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const principal = yield* (yield* Auth).principal.pipe(Effect.result)
  if (principal._tag === "Failure") {
    return HttpServerResponse.jsonUnsafe({
      jsonrpc: "2.0",
      error: { code: -32001, message: `unauthorized: ${principal.failure.message}` },
      id: null
    }, { status: 401, headers: { "www-authenticate": "Bearer" } })
  }
  const who = principal.success
  const sql = yield* Sql
  const runs = yield* Runs
  const context = yield* Effect.context<never>()
  const run = <A>(e: Effect.Effect<A, unknown>) => Effect.runPromiseWith(context)(e)

  const call = (name: string, args: Record<string, unknown>) => {
    const tool = TOOLS.find((t) => t.name === name)
    if (tool === undefined) return Promise.resolve(text(`unknown tool ${name}`, true))
    if (!holds(who, tool.scope)) return Promise.resolve(text(`forbidden: this key lacks the scope ${tool.scope}`, true))
    const answer = (() => {
      switch (name) {
        case "list_agents":
          return Effect.map(
            Queries.listAgents(who.tenant).pipe(Effect.provideService(Sql, sql)),
            (items) =>
              items.map((a) => ({ name: a.name, latestVersion: a.latestVersion, model: a.spec.model ?? "auto" }))
          )
        case "start_run":
          return Effect.map(
            runs.start(who.tenant, { agentName: str(args, "agentName"), input: args["input"] ?? null }, null),
            ({ run: r }) => ({ runId: r.id, status: r.status })
          )
        case "get_run":
          return runs.get(who.tenant, str(args, "runId"))
        default:
          return runs.approve(who.tenant, str(args, "runId"), str(args, "stepId"), {
            approved: args["approved"] === true,
            by: `mcp:${who.keyId ?? "key"}`,
            ...(typeof args["reason"] === "string" ? { reason: args["reason"] } : {})
          })
      }
    })() as Effect.Effect<unknown, { readonly message?: string }>
    return run(Effect.result(answer)).then((r) =>
      r._tag === "Success" ? text(r.success) : text(`error: ${r.failure.message ?? String(r.failure)}`, true)
    )
  }

  const server = new Server({ name: "lantern", version: "0.1.0" }, { capabilities: { tools: {} } })
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: TOOLS.map(({ name, description, inputSchema }) => ({ name, description, inputSchema }))
  }))
  server.setRequestHandler(
    CallToolRequestSchema,
    async (r) => call(r.params.name, (r.params.arguments ?? {}) as Record<string, unknown>)
  )
  const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true })
  const web = yield* HttpServerRequest.toWeb(request)
  const response = yield* Effect.promise(async () => {
    await server.connect(transport)
    try {
      return await transport.handleRequest(web)
    } finally {
      await server.close().catch(() => undefined)
    }
  })
  return HttpServerResponse.fromWeb(response)
})

/** `/mcp`: POST carries the JSON-RPC messages; GET (a server-sent stream) and DELETE are not offered statelessly. */
export const routes = Layer.mergeAll(
  HttpRouter.add("POST", "/mcp", handle),
  HttpRouter.add(
    "GET",
    "/mcp",
    Effect.succeed(HttpServerResponse.empty({ status: 405, headers: { allow: "POST" } }))
  ),
  HttpRouter.add(
    "DELETE",
    "/mcp",
    Effect.succeed(HttpServerResponse.empty({ status: 405, headers: { allow: "POST" } }))
  )
)
