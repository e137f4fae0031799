// The declarative agent specification: what an agent version pins. Tools are JSON-schema functions answered
// by Lantern's built-in deterministic tools, or by a child run of another agent (`agent`); a tool may require
// a human approval before each call. Retry and timeout policy applies to every step of the agent's runs.
// Numbers are `Schema.Finite` and patterns carry the `u` flag, so the OpenAPI document shows their ranges and
// patterns (a `Schema.Number` is documented as "number or NaN/Infinity" and loses its range).
import { Schema } from "effect"
import { Graph } from "./Graph.ts"

const AgentRef = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}$/u, {
    message: "Expected an agent name: lowercase letters, digits, '-' or '_', 1-63 characters"
  })
)

/** Seconds an approval may wait: from one second to 30 days. */
export const MAX_APPROVAL_SECONDS = 30 * 24 * 3600

export const ToolApproval = Schema.Struct({
  expiresInSeconds: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_APPROVAL_SECONDS }))
})
export type ToolApproval = typeof ToolApproval.Type

/** A `lantern.secret://<name>` reference: resolved only when a call is made, never journaled. */
export const SecretRef = Schema.String.check(
  Schema.isPattern(/^lantern\.secret:\/\/[a-z0-9][a-z0-9_.-]{0,62}$/u, {
    message: "Expected a secret reference lantern.secret://<name>"
  })
)

/** A header name as HTTP allows it. */
const HeaderName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/u, { message: "Expected an HTTP header name" })
)

/**
 * An HTTP API answering a tool call (actors/tools/Http.ts, ADR 0043): `url` and a string `body` are templates over
 * the call's arguments (`{name}`, URL-encoded in the URL); `auth` names a secret; the response (or `responsePath`
 * of its JSON) is the tool's output, cut at `maxResponseBytes`.
 */
export const HttpCall = Schema.Struct({
  method: Schema.Literals(["GET", "POST", "PUT", "PATCH", "DELETE"]),
  url: Schema.String.check(
    Schema.isPattern(/^https?:\/\/[^\s]{1,2048}$/u, { message: "Expected an http(s) URL template" })
  ),
  headers: Schema.optionalKey(Schema.Record(HeaderName, Schema.String.check(Schema.isMaxLength(1024)))),
  /** `json`: the arguments as JSON; `form`: URL-encoded; any other string: a template over the arguments. */
  body: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(16_384))),
  auth: Schema.optionalKey(Schema.Union([
    Schema.Struct({ bearer: SecretRef }),
    Schema.Struct({ header: Schema.Struct({ name: HeaderName, value: SecretRef }) }),
    Schema.Struct({ basic: SecretRef })
  ])),
  timeoutMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 120_000 }))),
  /** A dot path into the JSON response (`data.items.0.name`): only that part is the output. */
  responsePath: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(256))),
  maxResponseBytes: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_048_576 })))
})
export type HttpCall = typeof HttpCall.Type

/** A remote A2A agent answering a tool call (ADR 0045): `message/send` to its JSON-RPC endpoint. */
export const A2aCall = Schema.Struct({
  url: Schema.String.check(
    Schema.isPattern(/^https?:\/\/[^\s{}]{1,2048}$/u, { message: "Expected the agent's http(s) JSON-RPC URL" })
  ),
  auth: Schema.optionalKey(Schema.Union([
    Schema.Struct({ bearer: SecretRef }),
    Schema.Struct({ header: Schema.Struct({ name: HeaderName, value: SecretRef }) }),
    Schema.Struct({ basic: SecretRef })
  ])),
  timeoutMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 120_000 })))
})
export type A2aCall = typeof A2aCall.Type

export const ToolSpec = Schema.Struct({
  name: Schema.String.check(
    Schema.isPattern(/^[a-zA-Z0-9_-]{1,64}$/u, {
      message: "Expected a tool name: letters, digits, '_' or '-', 1-64 characters"
    })
  ),
  description: Schema.String.check(Schema.isMaxLength(1024)),
  parameters: Schema.Record(Schema.String, Schema.Unknown),
  /** Each call waits for `POST /v1/runs/{id}/approvals/{stepId}` before it runs. */
  approval: Schema.optionalKey(ToolApproval),
  /** The call starts a child run of this agent with the call's arguments as input and returns its output. */
  agent: Schema.optionalKey(AgentRef),
  /** The call is answered by this HTTP API. */
  http: Schema.optionalKey(HttpCall),
  /** The call is answered by a remote A2A agent (its `text` argument, or the arguments as JSON, is the message). */
  a2a: Schema.optionalKey(A2aCall),
  /** The call is answered by this tool of a registered MCP server (pinned from `mcp` when the version was made). */
  mcp: Schema.optionalKey(Schema.Struct({ server: Schema.String, tool: Schema.String })),
  /**
   * The call may be repeated: after a crash mid-call it is made again with the same Idempotency-Key. Otherwise a
   * call that may have reached the server is not repeated: the model reads that its effect is unknown.
   */
  idempotent: Schema.optionalKey(Schema.Boolean)
})
export type ToolSpec = typeof ToolSpec.Type

/** Error codes a step may fail with; `retryOn` picks the ones worth another attempt. */
export const StepErrorCode = Schema.Literals(["rate_limited", "provider_unavailable", "timeout", "provider_error"])
export type StepErrorCode = typeof StepErrorCode.Type

export const RetryPolicy = Schema.Struct({
  maxAttempts: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 20 }))),
  initialBackoffMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3_600_000 }))),
  maxBackoffMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 24 * 3_600_000 }))),
  multiplier: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 1, maximum: 10 }))),
  jitter: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  retryOn: Schema.optionalKey(Schema.Array(StepErrorCode).check(Schema.isMaxLength(8)))
})
export type RetryPolicy = typeof RetryPolicy.Type

/** A model capability alias (`auto`, `fast`, `smart`) or a provider model name. */
export const ModelRef = Schema.String.check(
  Schema.isPattern(/^[a-zA-Z0-9][a-zA-Z0-9._:/-]{0,127}$/u, {
    message: "Expected a model capability alias such as \"auto\""
  })
)

/** How the router picks among an alias's candidate models, and whether deterministic answers may be reused. */
export const Routing = Schema.Struct({
  strategy: Schema.optionalKey(Schema.Literals(["balanced", "cheap", "best", "fast"])),
  /** The exact-match response cache for temperature-0 requests; on unless set to false. */
  cache: Schema.optionalKey(Schema.Boolean),
  /**
   * The tenant's own API key per provider name, as a `lantern.secret://<name>` reference: resolved only when
   * a model call is made, never stored in a journal, log or span.
   */
  credentials: Schema.optionalKey(Schema.Record(
    Schema.String.check(Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,62}$/u, { message: "Expected a provider name" })),
    SecretRef
  ))
})
export type Routing = typeof Routing.Type

export const DEFAULT_MAX_TOKENS = 4096

/** How often a loop agent runs on its own (ADR 0055): `nano` is event-driven (no schedule), the others a cron. */
export const LoopTier = Schema.Literals(["nano", "micro", "meso", "macro", "mega"])
export type LoopTier = typeof LoopTier.Type

/** Each tier's cron (UTC) when the spec names none. */
export const LOOP_CRONS: Readonly<Record<Exclude<LoopTier, "nano">, string>> = {
  micro: "*/5 * * * *",
  meso: "*/45 * * * *",
  macro: "0 8 * * *",
  mega: "0 9 * * 1"
}

/** A loop agent: it gets a schedule of its own, and each of its runs ends with LoopCompleted. */
export const Loop = Schema.Struct({
  tier: LoopTier,
  /** Replaces the tier's cron (read in UTC); not allowed with `nano`. */
  cron: Schema.optionalKey(Schema.String.check(Schema.isBetweenLength(1, 200)))
})
export type Loop = typeof Loop.Type

export const AgentSpec = Schema.Struct({
  systemPrompt: Schema.String.check(Schema.isBetweenLength(1, 32_000)),
  model: Schema.optionalKey(ModelRef),
  maxTurns: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }))),
  tools: Schema.optionalKey(Schema.Array(ToolSpec).check(Schema.isMaxLength(32))),
  retry: Schema.optionalKey(RetryPolicy),
  stepTimeoutMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 24 * 3_600_000 }))),
  /** Output tokens a model call may produce (sent to the provider; a budget reserves for it). */
  maxTokens: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 200_000 }))),
  temperature: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
  routing: Schema.optionalKey(Routing),
  /** A graph workflow (schema/Graph.ts, ADR 0042): a run of the agent runs the graph instead of its turns. */
  workflow: Schema.optionalKey(Graph),
  /**
   * MCP servers of the tenant whose tools the agent may call (all, or `tools`): their tools are pinned into the
   * version as tools of their own, named `<server>__<tool>` (ADR 0044).
   */
  mcp: Schema.optionalKey(
    Schema.Array(Schema.Struct({
      server: Schema.String.check(
        Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,30}$/u, { message: "Expected a server name" })
      ),
      tools: Schema.optionalKey(
        Schema.Array(Schema.String.check(Schema.isMaxLength(128))).check(Schema.isMaxLength(128))
      ),
      /** Tools of the server whose every call waits for a human decision, as a declared tool's `approval` does. */
      approval: Schema.optionalKey(
        Schema.Array(Schema.String.check(Schema.isMaxLength(128))).check(Schema.isMaxLength(128))
      ),
      /** How long such a decision may wait (default a day). */
      approvalExpiresInSeconds: Schema.optionalKey(
        Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_APPROVAL_SECONDS }))
      )
    })).check(Schema.isMaxLength(16))
  ),
  /** A loop agent (ADR 0055): runs on its tier's schedule, each run ending with LoopCompleted. */
  loop: Schema.optionalKey(Loop)
})
export type AgentSpec = typeof AgentSpec.Type

/**
 * A spec with its defaults filled in; this is what is digested, versioned and pinned by runs. Policies added
 * after the first release stay absent unless set (their defaults apply at execution), so specs written
 * before them keep their digests.
 */
export const ResolvedSpec = Schema.Struct({
  systemPrompt: Schema.String,
  model: Schema.String,
  maxTurns: Schema.Int,
  tools: Schema.Array(ToolSpec),
  retry: Schema.optionalKey(RetryPolicy),
  stepTimeoutMs: Schema.optionalKey(Schema.Int),
  maxTokens: Schema.optionalKey(Schema.Int),
  temperature: Schema.optionalKey(Schema.Finite),
  routing: Schema.optionalKey(Routing),
  workflow: Schema.optionalKey(Graph),
  loop: Schema.optionalKey(Loop)
})
export type ResolvedSpec = typeof ResolvedSpec.Type

export const DEFAULT_MODEL = "auto"
export const DEFAULT_MAX_TURNS = 8

export const resolve = (spec: AgentSpec): ResolvedSpec => ({
  systemPrompt: spec.systemPrompt,
  model: spec.model ?? DEFAULT_MODEL,
  maxTurns: spec.maxTurns ?? DEFAULT_MAX_TURNS,
  tools: spec.tools ?? [],
  ...(spec.retry === undefined ? {} : { retry: spec.retry }),
  ...(spec.stepTimeoutMs === undefined ? {} : { stepTimeoutMs: spec.stepTimeoutMs }),
  ...(spec.maxTokens === undefined ? {} : { maxTokens: spec.maxTokens }),
  ...(spec.temperature === undefined ? {} : { temperature: spec.temperature }),
  ...(spec.routing === undefined ? {} : { routing: spec.routing }),
  ...(spec.workflow === undefined ? {} : { workflow: spec.workflow }),
  ...(spec.loop === undefined ? {} : { loop: spec.loop })
})

export interface Policy {
  readonly maxAttempts: number
  readonly initialBackoffMs: number
  readonly maxBackoffMs: number
  readonly multiplier: number
  readonly jitter: number
  readonly retryOn: ReadonlyArray<string>
  readonly stepTimeoutMs: number
}

export const DEFAULT_POLICY: Policy = {
  maxAttempts: 3,
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
  multiplier: 2,
  jitter: 0.2,
  retryOn: ["rate_limited", "provider_unavailable", "timeout"],
  stepTimeoutMs: 120_000
}

/** The step policy a spec declares, with defaults for what it leaves out. */
export const policyOf = (spec: ResolvedSpec): Policy => ({
  maxAttempts: spec.retry?.maxAttempts ?? DEFAULT_POLICY.maxAttempts,
  initialBackoffMs: spec.retry?.initialBackoffMs ?? DEFAULT_POLICY.initialBackoffMs,
  maxBackoffMs: spec.retry?.maxBackoffMs ?? DEFAULT_POLICY.maxBackoffMs,
  multiplier: spec.retry?.multiplier ?? DEFAULT_POLICY.multiplier,
  jitter: spec.retry?.jitter ?? DEFAULT_POLICY.jitter,
  retryOn: spec.retry?.retryOn ?? DEFAULT_POLICY.retryOn,
  stepTimeoutMs: spec.stepTimeoutMs ?? DEFAULT_POLICY.stepTimeoutMs
})
