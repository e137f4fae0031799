// How the CLI shows API answers to a person: agents, runs, event lines, errors and doctor checks as plain
// text. Pure functions from values to strings; `--json` bypasses them and prints the body as it came.
import { Option, Schema } from "effect"
import { Api, Events } from "../../schema/index.ts"
import type { ApiError, BadResponse, BadSetting, Unreachable } from "./Client.ts"

// ---- small pieces ----

/** A value on one line as JSON (strings quoted), cut to `max` characters. */
export const inline = (value: unknown, max = 80): string =>
  short(value === undefined ? "-" : JSON.stringify(value) ?? String(value), max)

/** Text on one line, cut to `max` characters. */
export const short = (text: string, max = 80): string => {
  const flat = text.replace(/\s+/g, " ")
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** A value in full: strings verbatim, anything else as JSON, indented when it does not fit on a line. */
export const block = (value: unknown): string => {
  if (typeof value === "string") return value
  const compact = JSON.stringify(value) ?? String(value)
  return compact.length <= 80 ? compact : JSON.stringify(value, null, 2)
}

export const usd = (n: number): string => `$${n < 0.01 && n > 0 ? n.toFixed(6) : n.toFixed(4)}`

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

const fields = (pairs: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1
  return pairs.map(([k, v]) => (v.includes("\n") ? `${k}:\n${indent(v, 2)}` : `${`${k}:`.padEnd(width)} ${v}`)).join(
    "\n"
  )
}

const indent = (text: string, n: number) => text.split("\n").map((l) => `${" ".repeat(n)}${l}`).join("\n")

// ---- agents ----

export const agent = (a: Api.AgentResponse): string =>
  fields([
    ["name", a.name],
    ["description", a.description === "" ? "-" : a.description],
    ["version", `v${a.latestVersion}`],
    ["digest", a.digest],
    ["model", a.spec.model],
    ["max turns", String(a.spec.maxTurns)],
    ["tools", a.spec.tools.length === 0 ? "-" : a.spec.tools.map((t) => t.name).join(", ")],
    ["created", a.createdAt],
    ["updated", a.updatedAt],
    ["system prompt", a.spec.systemPrompt]
  ])

export const agentList = (items: ReadonlyArray<Api.AgentResponse>): string =>
  items.length === 0
    ? "no agents yet: create one with `lantern agents create --name NAME --spec-file FILE`"
    : table(
      ["NAME", "VERSION", "MODEL", "UPDATED", "DESCRIPTION"],
      items.map((a) => [a.name, `v${a.latestVersion}`, a.spec.model, a.updatedAt, short(a.description, 50)])
    )

export const agentVersions = (items: ReadonlyArray<Api.AgentVersionResponse>): string =>
  table(
    ["VERSION", "DIGEST", "MODEL", "MAX TURNS", "CREATED"],
    items.map((v) => [`v${v.version}`, v.digest.slice(0, 19), v.spec.model, String(v.spec.maxTurns), v.createdAt])
  )

// ---- runs ----

export const TERMINAL_STATUSES: ReadonlySet<Api.RunStatus> = new Set(["succeeded", "failed", "canceled"])

export const run = (r: Api.RunResponse): string =>
  fields([
    ["id", r.id],
    ["status", r.status],
    ["agent", `${r.agentName} v${r.agentVersion}`],
    ["steps", String(r.steps)],
    ["tokens", `${r.tokensIn} in, ${r.tokensOut} out`],
    ["cost", usd(r.costUsd)],
    ["created", r.createdAt],
    ["finished", r.finishedAt ?? "-"],
    ...(r.waiting === null || r.waiting === undefined
      ? []
      : [
        [
          "waiting",
          `${r.waiting.kind} ${r.waiting.stepId}${r.waiting.until === null ? "" : ` until ${r.waiting.until}`}`
        ] as const
      ]),
    ["input", block(r.input)],
    ...(r.status === "succeeded" ? [["output", block(r.output)] as const] : []),
    ...(r.error !== null ? [["error", `${r.error.code}: ${r.error.message}`] as const] : [])
  ])

export const runList = (list: typeof Api.RunListResponse.Type): string => {
  if (list.items.length === 0) return "no runs"
  const rows = list.items.map((
    r
  ) => [r.id, r.status, `${r.agentName}@v${r.agentVersion}`, String(r.steps), usd(r.costUsd), r.createdAt])
  const body = table(["ID", "STATUS", "AGENT", "STEPS", "COST", "CREATED"], rows)
  return list.nextCursor === null ? body : `${body}\nmore: --cursor ${list.nextCursor}`
}

// ---- tenants, API keys, audit ----

export interface KeyView {
  readonly id: string
  readonly name: string
  readonly scopes: ReadonlyArray<string>
  readonly last4: string
  readonly expiresAt: string | null
}

export const NOT_SHOWN_AGAIN =
  "This key will not be shown again: store it now (a lost key is revoked and replaced, never recovered)."

/** A key just made: its value, once, and what it grants. */
export const newKey = (k: KeyView & { readonly key: string }): string =>
  `created API key ${k.id} (${k.name})\n\n${
    fields([["key", k.key], ["id", k.id], ["scopes", k.scopes.join(" ")], ["expires", k.expiresAt ?? "never"]])
  }\n\n${NOT_SHOWN_AGAIN}`

/** The tenant's keys; their values are never shown, only the last 4 characters. */
export const keyList = (items: ReadonlyArray<KeyView>): string =>
  items.length === 0
    ? "no API keys"
    : table(
      ["ID", "NAME", "SCOPES", "EXPIRES", "LAST4"],
      items.map((k) => [k.id, k.name, k.scopes.join(" "), k.expiresAt ?? "never", `…${k.last4}`])
    )

export const newTenant = (
  t: {
    readonly tenant: { readonly id: string; readonly name: string }
    readonly key: KeyView & { readonly key: string }
  }
): string =>
  `created tenant ${t.tenant.id} (${t.tenant.name})\n\n${
    fields([["tenant", t.tenant.id], ["owner key", t.key.key], ["key id", t.key.id], [
      "scopes",
      t.key.scopes.join(" ")
    ]])
  }\n\n${NOT_SHOWN_AGAIN}`

/** `at action outcome by actor on target k=v …`: one line per audit entry. */
export const auditLine = (
  e: {
    readonly at: string
    readonly action: string
    readonly outcome: string
    readonly actor: string
    readonly target: string
    readonly detail: Readonly<Record<string, string>>
  }
): string => {
  const detail = Object.entries(e.detail).map(([k, v]) => `${k}=${inline(v, 60)}`).join(" ")
  return `${e.at} ${e.action} ${e.outcome} by ${e.actor} on ${e.target}${detail === "" ? "" : ` ${detail}`}`
}

export const auditPage = (
  page: { readonly items: ReadonlyArray<Parameters<typeof auditLine>[0]>; readonly nextCursor: string | null }
): string => {
  if (page.items.length === 0) return "no audit entries"
  const body = page.items.map(auditLine).join("\n")
  return page.nextCursor === null ? body : `${body}\nmore: --cursor ${page.nextCursor}`
}

// ---- events ----

const decoders: Record<string, (u: unknown) => Option.Option<Events.Event>> = {}
const decoderOf = (type: string, version: number) => {
  const key = `${type}/${version}`
  const codec = Events.registry[type]?.[version]
  if (codec === undefined) return undefined
  return (decoders[key] ??= Schema.decodeUnknownOption(codec))
}

/** The typed event of an API event, when this code knows its (type, version); payloads lack the `_tag`. */
export const eventOf = (e: Api.EventResponse): Option.Option<Events.Event> => {
  const decode = decoderOf(e.type, e.version)
  const payload = typeof e.payload === "object" && e.payload !== null ? e.payload : {}
  return decode === undefined ? Option.none() : decode({ ...payload, _tag: e.type })
}

const summary = (event: Events.Event): string => {
  switch (event._tag) {
    case "AgentCreated":
    case "AgentVersionPublished":
      return `${event.name} v${event.version} (${event.spec.model})`
    case "RunStarted":
      return `${event.agentName} v${event.agentVersion} input=${inline(event.input, 60)}`
    case "StepStarted":
      switch (event.request._tag) {
        case "model":
          return `${event.stepId} model ${event.request.model} turn ${event.request.turn}${
            event.attempt > 1 ? ` attempt ${event.attempt}` : ""
          }`
        case "sleep":
          return `${event.stepId} sleep ${event.request.seconds} s`
        case "approval":
          return `${event.stepId} awaiting approval of ${event.request.call.name}(${
            inline(event.request.call.arguments, 50)
          })`
        case "agent":
          return `${event.stepId} child run ${event.request.childRunId} of ${event.request.agentName}`
        case "tool":
          return `${event.stepId} tool ${event.request.call.name}(${inline(event.request.call.arguments, 50)})`
        case "code":
          return `${event.stepId} ${event.request.kind}`
        case "timer":
          return `${event.stepId} timer ${Math.round(event.request.ms)} ms`
      }
      return event.stepId
    case "StepCompleted": {
      const cost = `${event.tokensIn}/${event.tokensOut} tokens ${usd(event.costUsd)} ${
        Math.round(event.durationMs)
      } ms`
      if (event.result._tag === "tool") return `${event.stepId} → ${inline(event.result.output, 60)} (${cost})`
      if (event.result._tag === "approval") {
        return `${event.stepId} ${event.result.approved ? "approved" : "rejected"} by ${event.result.by}${
          event.result.reason === "" ? "" : `: ${inline(event.result.reason, 60)}`
        }`
      }
      if (event.result._tag === "code") {
        return `${event.stepId} → ${inline(event.result.value, 60)} (${Math.round(event.durationMs)} ms)`
      }
      const a = event.result.answer
      const said = a.toolCalls.length > 0
        ? `calls ${a.toolCalls.map((c) => c.name).join(", ")}`
        : inline(a.content ?? "", 60)
      return `${event.stepId} ${a.provider}/${a.model} ${said} (${cost})`
    }
    case "StepsCompleted":
      // local steps performed together (ADR 0067): each as its own StepCompleted reads
      return `${event.steps.length} steps: ${Events.completionsOf(event).map(summary).join("; ")}`
    case "StepFailed":
      return `${event.stepId} ${event.error.code}: ${event.error.message}${event.retryable ? " (will retry)" : ""}`
    case "RunSucceeded":
      // with the completion of the step whose answer ended the run, as its StepCompleted reads (ADR 0077)
      return `${Events.completionsOf(event).map((c) => `${summary(c)}; `).join("")}output=${inline(event.output, 70)}`
    case "RunFailed":
      return `${event.error.code}: ${event.error.message}`
    case "RunCanceled":
      return `by ${event.by}${event.reason === "" ? "" : `: ${event.reason}`}`
    case "BudgetSet":
      return `by ${event.by} ${inline(event.limits, 70)}`
    case "BudgetReserved":
      return `${event.reservationId} holds ${usd(event.amountUsd)} (${event.day})`
    case "BudgetSettled":
      return `${event.reservationId} cost ${usd(event.costUsd)} (${event.day})`
    case "BudgetReleased":
      return `${event.reservationId} released: ${event.reason}`
    case "BudgetRunCounted":
      return `${event.runId} (${event.day})`
    case "BudgetAlerted":
      return `${event.cap} ${event.value} > ${event.limit} on ${event.day} (run ${event.runId})`
    case "AuditRecorded":
      return `${event.action} ${event.outcome} by ${event.actor} on ${event.target}`
    case "WorkloadScheduled":
      return `${event.spec.metadata.name} (${event.spec.spec.isolation}) by ${event.by}`
    case "WorkloadPlaced":
      return `on ${event.backend}`
    case "WorkloadSpawned":
      return `on host ${event.host} (harness pid ${event.pid})`
    case "WorkloadIdentityMinted":
      return `key ${event.keyId} until ${event.expiresAt}`
    case "WorkloadSecretVended":
      return event.envName
    case "WorkloadHeartbeat":
      return `cpu ${Math.round(event.cpuMs)} ms`
    case "WorkloadOutput":
      return `${event.stream}: ${inline(event.text, 70)}`
    case "WorkloadEgress":
      return `${event.allowed ? "allowed" : "refused"} ${event.host}:${event.port} (${event.detail})`
    case "WorkloadModelCalled":
      return `${event.model} → ${event.chosen}: ${event.tokensIn} in / ${event.tokensOut} out, $${event.costUsd}`
    case "WorkloadAdopted":
      return `by ${event.host} from ${event.from}`
    case "WorkloadRestarted":
      return `attempt ${event.attempt}: ${event.reason}`
    case "WorkloadExited":
      return `code ${event.code} after ${Math.round(event.usage.wallMs)} ms`
    case "WorkloadTerminated":
      return `by ${event.by}: ${event.reason}`
    case "WorkloadFailed":
      return event.reason
    case "EvalSuiteSaved":
    case "EvalSuiteDeleted":
    case "EvalBaselineSet":
    case "RunFeedbackGiven":
    case "EvalRunStarted":
    case "EvalCaseFinished":
    case "EvalRunFinished":
    // and channels' and sessions' events (ADR 0050)
    default:
      return inline(event, 70)
  }
}

/** `#seq Type summary`: one line per event, for `runs events` and `--follow`. */
export const eventLine = (e: Api.EventResponse): string =>
  Option.match(eventOf(e), {
    onSome: (event) => `#${e.seq} ${e.type} ${summary(event)}`,
    onNone: () => `#${e.seq} ${e.type} ${inline(e.payload, 70)}`
  })

export const isTerminalEvent = (e: Api.EventResponse): boolean => Events.TERMINAL_RUN_EVENTS.has(e.type)

// ---- errors ----

export type Failure = ApiError | Unreachable | BadResponse | BadSetting

export const hintFor401 =
  "hint: set LANTERN_API_TOKEN, or run from the directory where `lantern dev` wrote .lantern/credentials (or set LANTERN_HOME)"

/** The lines printed on stderr for a failed call; never the token. */
export const failure = (e: Failure): string => {
  switch (e._tag) {
    case "ApiError": {
      const lines = [`error: ${e.code}: ${e.message}`, ...e.issues.map((i) => `  ${i.field}: ${i.message}`)]
      if (e.status === 401) lines.push(hintFor401)
      return lines.join("\n")
    }
    case "Unreachable":
      return `error: ${e.message}\n  is \`lantern dev\` running? LANTERN_URL=${e.url}`
    case "BadResponse":
      return `error: ${e.message}`
    case "BadSetting":
      return `error: ${e.message}`
  }
}

// ---- doctor ----

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly ms: number
  readonly detail: string
}

export const check = (c: Check): string =>
  `${c.ok ? "✓" : "✗"} ${c.name.padEnd(9)} ${`${c.ms} ms`.padStart(8)}  ${
    c.detail.split("\n").join("\n" + " ".repeat(22))
  }`
