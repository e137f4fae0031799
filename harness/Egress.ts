// The harness's egress gate (ADR 0046): an HTTP proxy on a Unix socket, the only way out of a sandbox. It allows a
// CONNECT (or an absolute-form plain-HTTP request) only to a host and port the workload's spec lists, refuses IP
// literals the spec does not list, resolves names itself and refuses private, loopback, link-local and metadata
// answers (then connects to the very address it checked, so a second DNS answer cannot rebind it), and reports
// every decision. Default deny: no rules, no egress. Plain Node; imports nothing of Lantern's but schema/Addresses.
import { lookup } from "node:dns/promises"
import { createServer, type IncomingMessage, request as httpRequest, type Server } from "node:http"
import { connect, isIP, type Socket } from "node:net"
import type { Duplex } from "node:stream"
import { isPrivate } from "../schema/Addresses.ts"

export interface Rule {
  readonly host: string
  readonly ports?: ReadonlyArray<number>
}

export interface Decision {
  readonly host: string
  readonly port: number
  readonly allowed: boolean
  /** The address connected to, or why the connection was refused. */
  readonly detail: string
}

export interface Policy {
  readonly rules: ReadonlyArray<Rule>
  /** Private addresses the deployment lets sandboxes reach anyway (a local API in development and tests). */
  readonly allowPrivate: ReadonlyArray<string>
}

const bare = (host: string) => host.toLowerCase().replace(/^\[|\]$/g, "")

/** The rule that lets `host:port` out, if any: exact names and literals, `*.domain` for subdomains only. */
export const ruleFor = (rules: ReadonlyArray<Rule>, host: string, port: number): Rule | undefined => {
  const h = bare(host)
  return rules.find((r) => {
    const pattern = bare(r.host)
    const hostOk = pattern.startsWith("*.")
      ? h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1
      : h === pattern
    return hostOk && (r.ports ?? [443]).includes(port)
  })
}

/**
 * Where `host:port` may be reached, or why not: the address to connect to (checked) or a refusal. `resolve` is
 * the DNS lookup (all answers), injectable for tests.
 */
export const decide = async (
  policy: Policy,
  host: string,
  port: number,
  resolve: (host: string) => Promise<ReadonlyArray<string>> = async (h) =>
    (await lookup(h, { all: true, verbatim: true })).map((a) => a.address)
): Promise<
  { readonly allowed: true; readonly address: string } | { readonly allowed: false; readonly reason: string }
> => {
  const h = bare(host)
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return { allowed: false, reason: "bad port" }
  if (ruleFor(policy.rules, h, port) === undefined) {
    return {
      allowed: false,
      reason: policy.rules.length === 0 ? "no egress rules (default deny)" : "not on the spec's egress rules"
    }
  }
  const privateOk = (a: string) => !isPrivate(a) || policy.allowPrivate.includes(a)
  if (isIP(h) !== 0) {
    return privateOk(h) ? { allowed: true, address: h } : { allowed: false, reason: `${h} is a private address` }
  }
  let answers: ReadonlyArray<string>
  try {
    answers = await resolve(h)
  } catch (e) {
    return { allowed: false, reason: `DNS: ${e instanceof Error ? e.message : String(e)}` }
  }
  if (answers.length === 0) return { allowed: false, reason: "DNS: no address" }
  // every answer must pass: a name that may resolve to a private address is refused, whatever it answered first
  const bad = answers.find((a) => !privateOk(a))
  if (bad !== undefined) return { allowed: false, reason: `${h} resolves to the private address ${bad}` }
  return { allowed: true, address: answers[0]! }
}

const splitHostPort = (authority: string, defaultPort: number): { host: string; port: number } | null => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(authority)
  if (m === null) return null
  return { host: bare(m[1]!), port: m[2] === undefined ? defaultPort : Number(m[2]) }
}

const refuse = (socket: Duplex, status: string, reason: string) => {
  socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\negress refused: ${reason}\n`)
}

/** The gate as an HTTP proxy server; `onDecision` hears every allow and deny (the harness journals them). */
export const server = (policy: Policy, onDecision: (d: Decision) => void): Server => {
  const gate = async (host: string, port: number) => {
    const verdict = await decide(policy, host, port)
    onDecision(
      verdict.allowed
        ? { host, port, allowed: true, detail: verdict.address }
        : { host, port, allowed: false, detail: verdict.reason }
    )
    return verdict
  }

  const s = createServer(async (req: IncomingMessage, res) => {
    // absolute-form plain HTTP through the proxy
    let url: URL
    try {
      url = new URL(req.url ?? "")
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end(
        "egress refused: a proxy request needs an absolute URL\n"
      )
      return
    }
    if (url.protocol !== "http:") {
      res.writeHead(400, { "content-type": "text/plain" }).end("egress refused: use CONNECT for https\n")
      return
    }
    const port = url.port === "" ? 80 : Number(url.port)
    const verdict = await gate(bare(url.hostname), port)
    if (!verdict.allowed) {
      res.writeHead(403, { "content-type": "text/plain" }).end(`egress refused: ${verdict.reason}\n`)
      return
    }
    const headers: Record<string, string | Array<string> | undefined> = { ...req.headers, host: url.host }
    delete headers["proxy-connection"]
    delete headers["proxy-authorization"]
    const upstream = httpRequest(
      { host: verdict.address, port, method: req.method, path: `${url.pathname}${url.search}`, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      }
    )
    upstream.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" })
      res.end(`egress failed: ${e.message}\n`)
    })
    req.pipe(upstream)
  })

  s.on("connect", async (req: IncomingMessage, client: Duplex, head: Buffer) => {
    client.on("error", () => {})
    const target = splitHostPort(req.url ?? "", 443)
    if (target === null) return refuse(client, "400 Bad Request", "CONNECT needs host:port")
    const verdict = await gate(target.host, target.port)
    if (!verdict.allowed) return refuse(client, "403 Forbidden", verdict.reason)
    const upstream: Socket = connect({ host: verdict.address, port: target.port })
    upstream.on("error", (e) => refuse(client, "502 Bad Gateway", e.message))
    upstream.on("connect", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      if (head.length > 0) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    client.on("close", () => upstream.destroy())
  })
  return s
}
