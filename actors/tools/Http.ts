// HTTP tools (ADR 0043): a tool call answered by an HTTP API the agent's spec declares. The arguments are checked
// against the tool's JSON Schema first; the host must be on the tenant's egress allowlist and resolve to no
// private, loopback, link-local or metadata address (checked on the address the socket connects to, so a DNS
// answer cannot swap it after the check); secrets are resolved for this call only and never appear in the output,
// the journal or an error. Every call carries `Idempotency-Key: runId:stepId:attempt`. Whatever goes wrong comes
// back as the tool's output (`error: …`), for the model to read: a tool never fails a run by itself.
import { lookup as dnsLookup } from "node:dns"
import { request as httpRequest, type IncomingMessage } from "node:http"
import { request as httpsRequest } from "node:https"
import { isIP, type LookupFunction } from "node:net"
import { Config, Context, Effect, Layer, Redacted } from "effect"
import type { A2aCall, HttpCall, ToolSpec } from "../../schema/AgentSpec.ts"
import type { ToolCall } from "../../schema/StepOutcome.ts"
import { Secrets } from "../secrets/Secrets.ts"
import { isPrivate } from "../../schema/Addresses.ts"
import { Egress, hostAllowed } from "./Egress.ts"
import { validate } from "./JsonSchema.ts"

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_MAX_RESPONSE_BYTES = 16_384

/** `{name}` in `template` replaced by the argument `name`, through `encode`; null names a missing argument. */
export const expand = (
  template: string,
  args: Record<string, unknown>,
  encode: (s: string) => string
): { readonly ok: true; readonly text: string } | { readonly ok: false; readonly missing: string } => {
  let missing: string | null = null
  const text = template.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const v = args[name]
    if (v === undefined || v === null) {
      missing ??= name
      return ""
    }
    return encode(typeof v === "string" ? v : JSON.stringify(v))
  })
  return missing === null ? { ok: true, text } : { ok: false, missing }
}

/** The part of a JSON value a dot path names (`items.0.name`), or undefined. */
export const pick = (value: unknown, path: string): unknown =>
  path.split(".").filter((p) => p !== "").reduce<unknown>(
    (v, key) => v === null || typeof v !== "object" ? undefined : (v as Record<string, unknown>)[key],
    value
  )

/** A remote A2A agent's endpoint as an HTTP call: a JSON-RPC POST (ADR 0045). */
const a2aCall = (a2a: A2aCall): HttpCall => ({
  method: "POST",
  url: a2a.url,
  ...(a2a.auth === undefined ? {} : { auth: a2a.auth }),
  timeoutMs: a2a.timeoutMs ?? 60_000,
  maxResponseBytes: 1_048_576
})

/** `message/send` of the call's `text` (or its arguments as JSON), and the task's answer as the tool's output. */
const a2aExchange = {
  body: (args: Record<string, unknown>, key: string) =>
    JSON.stringify({
      jsonrpc: "2.0",
      id: key,
      method: "message/send",
      params: {
        message: {
          kind: "message",
          role: "user",
          messageId: key,
          parts: [{ kind: "text", text: typeof args["text"] === "string" ? args["text"] : JSON.stringify(args) }]
        }
      }
    }),
  read: (text: string): string => {
    let answer: { result?: any; error?: { code?: number; message?: string } }
    try {
      answer = JSON.parse(text)
    } catch {
      return "error: the A2A agent did not answer JSON-RPC"
    }
    if (answer.error !== undefined) return `error: A2A ${answer.error.code ?? ""} ${answer.error.message ?? ""}`.trim()
    const task = answer.result ?? {}
    const partsText = (parts: ReadonlyArray<any> | undefined) =>
      (parts ?? []).map((p) => (p?.kind === "text" ? p.text : JSON.stringify(p?.data ?? p))).join("\n")
    if (task.kind === "message") return partsText(task.parts)
    const state = task.status?.state
    if (state === "failed" || state === "canceled" || state === "rejected") {
      return `error: the A2A task ${state}: ${partsText(task.status?.message?.parts)}`
    }
    const out = (task.artifacts ?? []).map((a: any) => partsText(a.parts)).join("\n")
    return state === "completed"
      ? out
      : `the A2A task is ${state ?? "unknown"} (task ${task.id ?? "?"})${out === "" ? "" : `: ${out}`}`
  }
}

interface Answer {
  readonly status: number
  readonly body: Buffer
  readonly truncated: number
}

export interface Settings {
  /** Addresses a tool may reach although they are private (a local API in development or tests). */
  readonly allowPrivate: ReadonlyArray<string>
}

export const settingsConfig = Config.all({
  allowPrivate: Config.String("LANTERN_EGRESS_ALLOW_PRIVATE").pipe(
    Config.withDefault(""),
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => x !== ""))
  )
})

export class HttpTools extends Context.Service<HttpTools, {
  /**
   * Answers `call` with the HTTP API of `tool`, for the run's step `key` (`runId:stepId:attempt`); `repeat`: the
   * step was started before (its host died mid-call), so a tool that is not idempotent is not called again.
   */
  readonly call: (
    tenant: string,
    tool: (ToolSpec & { readonly http: HttpCall }) | (ToolSpec & { readonly a2a: A2aCall }),
    call: ToolCall,
    key: string,
    repeat: boolean
  ) => Effect.Effect<string>
}>()("lantern/actors/tools/HttpTools") {
  static readonly layer = Layer.effect(
    HttpTools,
    Effect.gen(function*() {
      const secrets = yield* Secrets
      const egress = yield* Egress
      const settings = yield* settingsConfig

      /** A DNS lookup that refuses private answers: the socket connects only to an address that passed. */
      const safeLookup: LookupFunction = (hostname, options, callback) => {
        dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
          if (err) return callback(err, "", 4)
          const list = addresses as unknown as ReadonlyArray<{ address: string; family: number }>
          const ok = list.find((a) => !isPrivate(a.address) || settings.allowPrivate.includes(a.address))
          if (ok === undefined) {
            const e = Object.assign(new Error(`${hostname} resolves to a private address, which tools may not reach`), {
              code: "EPRIVATE"
            })
            return callback(e, "", 4)
          }
          if ((options as { all?: boolean }).all === true) {
            return (callback as unknown as (e: null, a: ReadonlyArray<{ address: string; family: number }>) => void)(
              null,
              [ok]
            )
          }
          callback(null, ok.address, ok.family)
        })
      }

      const send = (
        url: URL,
        method: string,
        headers: Record<string, string>,
        body: string | null,
        timeoutMs: number,
        maxBytes: number
      ) =>
        Effect.callback<Answer, Error>((resume) => {
          // a literal private address is refused before any socket (the lookup above is not asked for one)
          const host = url.hostname.replace(/^\[|\]$/g, "")
          if (isIP(host) !== 0 && isPrivate(host) && !settings.allowPrivate.includes(host)) {
            resume(Effect.fail(new Error(`${host} is a private address, which tools may not reach`)))
            return
          }
          const request = url.protocol === "https:" ? httpsRequest : httpRequest
          const req = request(
            url,
            { method, headers, lookup: safeLookup, timeout: timeoutMs },
            (res: IncomingMessage) => {
              const chunks: Array<Buffer> = []
              let size = 0
              let truncated = 0
              res.on("data", (c: Buffer) => {
                if (size >= maxBytes) {
                  truncated += c.length
                  return
                }
                const room = maxBytes - size
                chunks.push(c.length > room ? c.subarray(0, room) : c)
                if (c.length > room) truncated += c.length - room
                size += Math.min(c.length, room)
              })
              res.on(
                "end",
                () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), truncated }))
              )
              res.on("error", (e) => resume(Effect.fail(e)))
            }
          )
          req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
          req.on("error", (e) => resume(Effect.fail(e)))
          if (body !== null) req.write(body)
          req.end()
          return Effect.sync(() => req.destroy())
        })

      /** How an A2A tool differs from a plain HTTP one: its JSON-RPC body, and how its answer becomes the output. */
      interface Exchange {
        readonly body: (args: Record<string, unknown>, key: string) => string
        readonly read: (text: string) => string
      }

      const exchange = (
        tenant: string,
        tool: ToolSpec,
        spec: HttpCall,
        toolCall: ToolCall,
        key: string,
        repeat: boolean,
        custom?: Exchange
      ) =>
        Effect.gen(function*() {
          if (repeat && tool.idempotent !== true) {
            return `error: an earlier attempt of this call may have reached ${
              new URL(spec.url.replace(/\{[^}]*\}/g, "x")).host
            } before its host stopped; the tool is not idempotent, so it was not repeated (its effect is unknown)`
          }
          const args =
            typeof toolCall.arguments === "object" && toolCall.arguments !== null && !Array.isArray(toolCall.arguments)
              ? toolCall.arguments as Record<string, unknown>
              : {}
          const invalid = validate(tool.parameters, toolCall.arguments)
          if (invalid.length > 0) return `error: invalid arguments: ${invalid.join("; ")}`
          const url = expand(spec.url, args, encodeURIComponent)
          if (!url.ok) return `error: invalid arguments: ${url.missing} is required by the URL`
          let target: URL
          try {
            target = new URL(url.text)
          } catch {
            return `error: the URL ${JSON.stringify(url.text)} is not valid`
          }
          const allowed = yield* egress.hosts(tenant).pipe(Effect.orElseSucceed(() => null))
          if (allowed === null) return "error: the egress allowlist could not be read; not called"
          if (!hostAllowed(allowed, target.hostname, target.port)) {
            return `error: ${target.host} is not on this tenant's egress allowlist (PUT /v1/egress)`
          }
          const headers: Record<string, string> = {
            "user-agent": "lantern-http-tool",
            "idempotency-key": key,
            ...spec.headers
          }
          if (spec.auth !== undefined) {
            const uri = "bearer" in spec.auth
              ? spec.auth.bearer
              : "basic" in spec.auth
              ? spec.auth.basic
              : spec.auth.header.value
            const secret = yield* secrets.resolve(tenant, uri, `tool:${tool.name}`).pipe(Effect.option)
            if (secret._tag === "None") return `error: the secret ${uri} of this tool cannot be read`
            const value = Redacted.value(secret.value)
            if ("bearer" in spec.auth) headers["authorization"] = `Bearer ${value}`
            else if ("basic" in spec.auth) headers["authorization"] = `Basic ${Buffer.from(value).toString("base64")}`
            else headers[spec.auth.header.name.toLowerCase()] = value
          }
          let body: string | null = null
          if (custom !== undefined) {
            body = custom.body(args, key)
            headers["content-type"] = "application/json"
          } else if (spec.body !== undefined && spec.method !== "GET") {
            if (spec.body === "json") {
              body = JSON.stringify(args)
              headers["content-type"] ??= "application/json"
            } else if (spec.body === "form") {
              body = new URLSearchParams(
                Object.entries(args).map((
                  [k, v]
                ): [string, string] => [k, typeof v === "string" ? v : JSON.stringify(v)])
              ).toString()
              headers["content-type"] ??= "application/x-www-form-urlencoded"
            } else {
              const text = expand(spec.body, args, (s) => s)
              if (!text.ok) return `error: invalid arguments: ${text.missing} is required by the body`
              body = text.text
            }
          }
          const maxBytes = spec.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
          const answer = yield* send(
            target,
            spec.method,
            headers,
            body,
            spec.timeoutMs ?? DEFAULT_TIMEOUT_MS,
            maxBytes
          ).pipe(Effect.result)
          if (answer._tag === "Failure") return `error: ${spec.method} ${target.host} failed: ${answer.failure.message}`
          const { status, truncated } = answer.success
          let text = answer.success.body.toString("utf8")
          if (status < 200 || status >= 300) {
            return `error: HTTP ${status} from ${target.host}: ${text.slice(0, 500)}`
          }
          if (custom !== undefined) return truncated > 0 ? "error: the answer was too large to read" : custom.read(text)
          if (spec.responsePath !== undefined && truncated === 0) {
            try {
              const part = pick(JSON.parse(text), spec.responsePath)
              text = part === undefined ? "null" : typeof part === "string" ? part : JSON.stringify(part)
            } catch {
              return `error: the response of ${target.host} is not JSON, so ${spec.responsePath} cannot be read`
            }
          }
          return truncated > 0 ? `${text}\n[truncated: ${truncated} more bytes]` : text
        }).pipe(
          // a secret's value never reaches a span: only the tool and host are annotated
          Effect.withSpan("HttpTool.call", { attributes: { "lantern.tool": tool.name } }, { captureStackTrace: false })
        )

      const call: HttpTools["Service"]["call"] = (tenant, tool, toolCall, key, repeat) =>
        tool.http !== undefined
          ? exchange(tenant, tool, tool.http, toolCall, key, repeat)
          : tool.a2a !== undefined
          ? exchange(tenant, tool, a2aCall(tool.a2a), toolCall, key, repeat, a2aExchange)
          : Effect.succeed(`error: ${tool.name} names neither an HTTP API nor an A2A agent`)

      return HttpTools.of({ call })
    })
  )
}
