// The one error the SDK throws: the API's error envelope `{error: {code, message, issues?}}` with the HTTP status, or
// status 0 when no answer came (unreachable, a stream that kept breaking) or an answer not in the API's format.

/** One refused field of a request: its path (`spec.temperature`, `Idempotency-Key`) and the reason. */
export interface Issue {
  readonly field: string
  readonly message: string
}

export class LanternError extends Error {
  override readonly name = "LanternError"
  /** The HTTP status; 0 when there was no answer in the API's format. */
  readonly status: number
  /** The API's code (`invalid_request`, `run_not_found`, `budget_exceeded`…), or the SDK's: `unreachable`, `bad_response`. */
  readonly code: string
  /** What was refused, field by field (400, 415); empty otherwise. */
  readonly issues: ReadonlyArray<Issue>
  /** The whole `error` object as the server sent it: `budget` on a 402, `missingScope` on a 403. */
  readonly details: Readonly<Record<string, unknown>>

  constructor(
    status: number,
    code: string,
    message: string,
    issues: ReadonlyArray<Issue> = [],
    details: Readonly<Record<string, unknown>> = {},
    options?: { readonly cause?: unknown }
  ) {
    super(message, options)
    this.status = status
    this.code = code
    this.issues = issues
    this.details = details
  }
}

export const isLanternError = (e: unknown): e is LanternError => e instanceof LanternError

const isIssue = (v: unknown): v is Issue =>
  typeof v === "object" && v !== null && typeof (v as Issue).field === "string" &&
  typeof (v as Issue).message === "string"

/** The error of a failed answer: its envelope when it has one, else the status and a readable message. */
export const fromAnswer = (status: number, statusText: string, text: string): LanternError => {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  const error = typeof body === "object" && body !== null ? (body as { error?: unknown }).error : undefined
  if (typeof error === "object" && error !== null) {
    const e = error as Record<string, unknown>
    if (typeof e["code"] === "string" && typeof e["message"] === "string") {
      const issues = Array.isArray(e["issues"]) ? e["issues"].filter(isIssue) : []
      return new LanternError(status, e["code"], e["message"], issues, e)
    }
  }
  const plain = text.trim()
  const message = plain === "" || plain.length > 300 || /<html/i.test(plain) ? statusText || `HTTP ${status}` : plain
  return new LanternError(status, `http_${status}`, message)
}

/** No answer: connection refused, unknown host, reset, aborted. */
export const unreachable = (url: string, cause: unknown): LanternError => {
  const inner = cause instanceof Error && cause.cause !== undefined ? cause.cause : cause
  const reason = inner instanceof Error ? inner.message : String(inner)
  return new LanternError(0, "unreachable", `cannot reach the Lantern API at ${url} (${reason})`, [], {}, { cause })
}
