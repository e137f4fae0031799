// Calls one operation of the API by its operationId (sdk/src/Api.generated.ts): fills the path, query, headers and
// body, sends the token, and answers the JSON (or text) the operation declares for its status, else a LanternError.
import { type OperationId, type Operations, operations } from "./Api.generated.ts"
import { fromAnswer, LanternError, unreachable } from "./Errors.ts"

export const DEFAULT_URL = "http://127.0.0.1:8080"
const USER_AGENT = "lantern-sdk/0.1.0"

export interface Settings {
  readonly baseUrl: string
  readonly apiKey: string | undefined
  readonly fetch: typeof globalThis.fetch
}

type Op<K extends OperationId> = Operations[K]

/** What a call sends: path parameters (when the path has some), query, headers, body (when it takes one). */
export type Input<K extends OperationId> =
  & ({} extends Op<K>["params"] ? { readonly params?: Op<K>["params"] } : { readonly params: Op<K>["params"] })
  & { readonly query?: Op<K>["query"]; readonly headers?: Op<K>["headers"]; readonly signal?: AbortSignal }
  & (Op<K>["body"] extends undefined ? {}
    : Op<K>["bodyRequired"] extends true ? { readonly body: Op<K>["body"] }
    : { readonly body?: Op<K>["body"] })

export type Output<K extends OperationId> = Op<K>["response"]

const env = (name: string): string | undefined => {
  const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name]
  return value === undefined || value === "" ? undefined : value
}

export const settingsOf = (options: {
  readonly baseUrl?: string | undefined
  readonly apiKey?: string | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
}): Settings => {
  const baseUrl = options.baseUrl ?? env("LANTERN_URL") ?? DEFAULT_URL
  let url: URL
  try {
    url = new URL(baseUrl)
  } catch {
    throw new TypeError(`Lantern: baseUrl is not a URL: '${baseUrl}'`)
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new TypeError(`Lantern: baseUrl must be an http:// or https:// URL, not '${baseUrl}'`)
  const fetch = options.fetch ?? globalThis.fetch
  if (typeof fetch !== "function") throw new TypeError("Lantern: no fetch in this runtime; pass one as `fetch`")
  return { baseUrl: baseUrl.replace(/\/+$/, ""), apiKey: options.apiKey ?? env("LANTERN_API_TOKEN"), fetch }
}

/** The operation's path with its parameters filled in, each percent-encoded. */
export const pathOf = (path: string, params: Readonly<Record<string, unknown>> | undefined): string =>
  path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(params?.[name] ?? "")))

export const urlOf = (settings: Settings, path: string, query?: Readonly<Record<string, unknown>>): string => {
  const search = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) search.set(k, String(v))
  const qs = search.toString()
  return `${settings.baseUrl}${path}${qs === "" ? "" : `?${qs}`}`
}

export const headersOf = (
  settings: Settings,
  accept: string,
  extra: Readonly<Record<string, unknown>> | undefined,
  hasBody: boolean
): Record<string, string> => {
  const h: Record<string, string> = { accept, "user-agent": USER_AGENT }
  for (const [k, v] of Object.entries(extra ?? {})) if (v !== undefined && v !== null) h[k.toLowerCase()] = String(v)
  if (hasBody) h["content-type"] = "application/json"
  if (settings.apiKey !== undefined) h["authorization"] = `Bearer ${settings.apiKey}`
  return h
}

/** Calls an operation; the answer's body as the operation declares it (JSON, text, or null for no content). */
export const call = async <K extends OperationId>(
  settings: Settings,
  id: K,
  input: Input<K>
): Promise<Output<K>> => {
  const op = operations[id]
  const { params, query, headers, body, signal } = input as {
    readonly params?: Readonly<Record<string, unknown>>
    readonly query?: Readonly<Record<string, unknown>>
    readonly headers?: Readonly<Record<string, unknown>>
    readonly body?: unknown
    readonly signal?: AbortSignal
  }
  const url = urlOf(settings, pathOf(op.path, params), query)
  const hasBody = body !== undefined
  const accept = op.answer === "text" ? "*/*" : "application/json"
  const init: RequestInit = { method: op.method, headers: headersOf(settings, accept, headers, hasBody) }
  if (hasBody) init.body = JSON.stringify(body)
  if (signal !== undefined) init.signal = signal
  let res: Response
  let text: string
  try {
    res = await settings.fetch(url, init)
    text = await res.text()
  } catch (e) {
    throw unreachable(settings.baseUrl, e)
  }
  if (!(op.success as ReadonlyArray<number>).includes(res.status) && !res.ok) {
    throw fromAnswer(res.status, res.statusText, text)
  }
  if (op.answer === "none" || res.status === 204) return null as Output<K>
  if (op.answer === "text") return text as Output<K>
  try {
    return JSON.parse(text) as Output<K>
  } catch {
    throw new LanternError(res.status, "bad_response", `${op.method} ${op.path} answered a body that is not JSON`)
  }
}
