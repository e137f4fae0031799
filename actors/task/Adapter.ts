// The port every task adapter implements (issue 16): `agent`, `script`, `ollama` and `agent-cli` (codex,
// claude-code). The queue's worker probes the task's chain, runs the first adapter whose probe passes, and
// verifies what it reports (actors/task/Evidence.ts) before the task may complete.
import type { Effect } from "effect"
import type { AdapterSpec, Outcome } from "../../schema/Task.ts"

/** What an attempt gives its adapter. */
export interface AttemptContext {
  readonly tenant: string
  readonly taskId: string
  readonly attempt: number
  readonly kind: string
  readonly subject: string | null
  readonly description: string | null
  readonly payload: unknown
  /** A directory on this host, the task's own: the adapter writes its artifacts (and nothing else) under it. */
  readonly artifactRoot: string
  /** Aborted when the task is canceled or the worker is stopping: the adapter stops what it runs. */
  readonly signal: AbortSignal
}

export interface AttemptResult {
  /** The adapter's outcome, normalized but not yet verified. */
  readonly outcome: Outcome
  /** Everything the adapter saw (prompt, command, inputs), in canonical form for the attempt's bundle. */
  readonly seen: unknown
  readonly usage: { readonly costUsd: number; readonly tokens: number }
  /** The Lantern run or workload the attempt started, if any. */
  readonly ref: { readonly runId?: string; readonly workloadId?: string }
}

/** An attempt that did not produce an outcome. */
export interface AttemptFailure {
  readonly _tag: "AttemptFailure"
  readonly message: string
  /** False when trying again cannot help (a bad command, an unknown agent). */
  readonly retryable: boolean
  /** A rate-limit hint (HTTP 429 Retry-After, or "try again in N seconds"): reschedule, not a spent attempt. */
  readonly retryAfterSeconds?: number
  readonly seen: unknown
}

/** An attempt's failure; `retryAfterSeconds` only when the adapter was told when to come back. */
export const attemptFailure = (
  message: string,
  retryable: boolean,
  seen: unknown,
  retryAfterSeconds?: number | null
): AttemptFailure => ({
  _tag: "AttemptFailure",
  message,
  retryable,
  seen,
  ...(retryAfterSeconds === null || retryAfterSeconds === undefined ? {} : { retryAfterSeconds })
})

export interface Adapter {
  readonly type: AdapterSpec["type"]
  /** Whether this adapter can run here now (binary present, model reachable, agent exists); why not if not. */
  readonly probe: (
    tenant: string,
    spec: AdapterSpec
  ) => Effect.Effect<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>
  readonly execute: (spec: AdapterSpec, ctx: AttemptContext) => Effect.Effect<AttemptResult, AttemptFailure>
}
