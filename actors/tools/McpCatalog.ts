// The MCP catalogue (issue 13): well-known servers a tenant attaches in one call (`POST /v1/mcp/catalog/{id}/attach`),
// which registers the entry's server with the caller's values for what the entry leaves open (its `env` and
// `headers` secrets, extra args, the isolation tier). The built-in entries name servers by their published
// executables; an operator adds or replaces entries with a JSON file (LANTERN_MCP_CATALOG: `{entries: [...]}`), e.g.
// for servers installed on the deployment's hosts. Stdio servers run with no network (ADR 0060), so their
// executables must be installed on the host: the catalogue never downloads anything.
import { readFileSync } from "node:fs"
import { Config, Effect, Schema } from "effect"
import { Tier } from "../../schema/Workload.ts"
import { HttpServer, type NewServer, ServerName, StdioServer } from "./Mcp.ts"

/** No catalogue entry of that id. */
export class McpCatalogEntryNotFound
  extends Schema.TaggedError<McpCatalogEntryNotFound>()("McpCatalogEntryNotFound", { id: Schema.String }) {
  override get message() {
    return `no MCP catalogue entry '${this.id}'`
  }
}

const Text = Schema.String.check(Schema.isBetweenLength(1, 2_000))
const Requirement = Schema.Struct({ description: Text, required: Schema.Boolean })

export const CatalogEntry = Schema.Struct({
  id: ServerName,
  title: Text,
  description: Text,
  homepage: Schema.optionalKey(Schema.String),
  transport: Schema.Literals(["stdio", "streamable-http"]),
  /** stdio: the executable and its fixed arguments. */
  command: Schema.optionalKey(Schema.String.check(Schema.isBetweenLength(1, 4_096))),
  args: Schema.optionalKey(Schema.Array(Schema.String)),
  /** streamable-http: the server's URL. */
  url: Schema.optionalKey(Schema.String),
  /** Environment variables (stdio) the caller supplies, with what each is for. */
  env: Schema.optionalKey(Schema.Record(Schema.String, Requirement)),
  /** Headers (streamable-http) the caller supplies as secret references. */
  headers: Schema.optionalKey(Schema.Record(Schema.String, Requirement)),
  isolation: Schema.optionalKey(Tier)
})
export type CatalogEntry = typeof CatalogEntry.Type

export const CatalogFile = Schema.Struct({ entries: Schema.Array(CatalogEntry) })

/** What attaching an entry takes: the server's name (the entry's id by default) and the values the entry leaves open. */
export const AttachRequest = Schema.Struct({
  name: Schema.optionalKey(ServerName),
  /** Arguments appended to the entry's (a folder to serve, a repository…). */
  args: Schema.optionalKey(Schema.Array(Schema.String.check(Schema.isMaxLength(4_096))).check(Schema.isMaxLength(32))),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String.check(Schema.isMaxLength(4_096)))),
  headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String.check(Schema.isMaxLength(4_096)))),
  isolation: Schema.optionalKey(Tier)
})
export type AttachRequest = typeof AttachRequest.Type

const stdio = (
  id: string,
  title: string,
  description: string,
  command: string,
  extra: Partial<CatalogEntry> = {}
): CatalogEntry => ({ id, title, description, transport: "stdio", command, isolation: "standard", ...extra })

/** Well-known servers, by their published executables (install them on the hosts that run stdio servers). */
export const BUILTIN: ReadonlyArray<CatalogEntry> = [
  stdio(
    "filesystem",
    "Filesystem",
    "Read, write and search files under the folders given as arguments",
    "mcp-server-filesystem",
    {
      homepage: "https://github.com/modelcontextprotocol/servers/tree/main/src/filesystem"
    }
  ),
  stdio("memory", "Memory", "A knowledge graph the agent keeps between calls", "mcp-server-memory", {
    homepage: "https://github.com/modelcontextprotocol/servers/tree/main/src/memory"
  }),
  stdio(
    "sequential-thinking",
    "Sequential thinking",
    "Structured step-by-step reasoning",
    "mcp-server-sequential-thinking",
    {
      homepage: "https://github.com/modelcontextprotocol/servers/tree/main/src/sequentialthinking"
    }
  ),
  stdio("git", "Git", "Read and search a local Git repository given as `--repository <path>`", "mcp-server-git", {
    homepage: "https://github.com/modelcontextprotocol/servers/tree/main/src/git"
  }),
  stdio("time", "Time", "Current time and time-zone conversions", "mcp-server-time", {
    homepage: "https://github.com/modelcontextprotocol/servers/tree/main/src/time"
  }),
  stdio("sqlite", "SQLite", "Query a SQLite database given as `--db-path <file>`", "mcp-server-sqlite", {
    homepage: "https://github.com/modelcontextprotocol/servers-archived/tree/main/src/sqlite"
  }),
  {
    id: "github",
    title: "GitHub",
    description: "Issues, pull requests and repositories through GitHub's remote MCP server",
    homepage: "https://github.com/github/github-mcp-server",
    transport: "streamable-http",
    url: "https://api.githubcopilot.com/mcp/",
    headers: { Authorization: { description: "`Bearer <token>` as a lantern.secret:// reference", required: true } }
  }
]

/** The catalogue: the built-in entries, then LANTERN_MCP_CATALOG's (an entry of the same id replaces a built-in). */
export const load = Effect.gen(function*() {
  const file = yield* Config.String("LANTERN_MCP_CATALOG").pipe(Config.withDefault(""))
  if (file === "") return BUILTIN
  const extra = yield* Effect.try({
    try: () => Schema.decodeUnknownSync(Schema.fromJsonString(CatalogFile))(readFileSync(file, "utf8")).entries,
    catch: (e) => new Error(`LANTERN_MCP_CATALOG (${file}) is not a catalogue: ${e instanceof Error ? e.message : e}`)
  })
  const ids = new Set(extra.map((e) => e.id))
  return [...BUILTIN.filter((e) => !ids.has(e.id)), ...extra].sort((a, b) => a.id.localeCompare(b.id))
}).pipe(Effect.orDie)

/** The server an entry and a request make, or the fields that are missing or not the entry's. */
export const serverOf = (
  entry: CatalogEntry,
  request: AttachRequest
): { readonly server: NewServer } | { readonly issues: ReadonlyArray<{ field: string; message: string }> } => {
  const issues: Array<{ field: string; message: string }> = []
  const check = (what: "env" | "headers", given: Record<string, string> | undefined) => {
    const wanted = entry[what] ?? {}
    for (const [key, req] of Object.entries(wanted)) {
      if (req.required && given?.[key] === undefined) issues.push({ field: `${what}.${key}`, message: req.description })
    }
    for (const key of Object.keys(given ?? {})) {
      if (wanted[key] === undefined) issues.push({ field: `${what}.${key}`, message: `${entry.id} takes no ${key}` })
    }
  }
  check(entry.transport === "stdio" ? "env" : "headers", entry.transport === "stdio" ? request.env : request.headers)
  if (entry.transport === "stdio" && request.headers !== undefined) {
    issues.push({ field: "headers", message: `${entry.id} is a stdio server: it takes env, not headers` })
  }
  if (entry.transport === "streamable-http" && (request.env !== undefined || request.args !== undefined)) {
    issues.push({ field: request.env !== undefined ? "env" : "args", message: `${entry.id} is a remote server` })
  }
  if (issues.length > 0) return { issues }
  const name = request.name ?? entry.id
  const candidate = entry.transport === "stdio"
    ? {
      name,
      transport: "stdio",
      command: entry.command,
      args: [...(entry.args ?? []), ...(request.args ?? [])],
      ...(request.env === undefined ? {} : { env: request.env }),
      isolation: request.isolation ?? entry.isolation ?? "standard"
    }
    : {
      name,
      transport: "streamable-http",
      url: entry.url,
      ...(request.headers === undefined ? {} : { headers: request.headers })
    }
  // the entry's fields and the caller's values together must make a server as POST /v1/mcp/servers takes it
  const decoded = Schema.decodeUnknownExit(entry.transport === "stdio" ? StdioServer : HttpServer)(candidate)
  return decoded._tag === "Success"
    ? { server: decoded.value }
    : { issues: [{ field: entry.transport === "stdio" ? "env" : "headers", message: String(decoded.cause) }] }
}
