// What a code-first workflow's function receives (ADR 0041), shared by the host that runs it
// (actors/run/Workflow.ts) and the SDK that describes it to authors (sdk/src/Workflow.ts): types only, no code.
// Every durable operation is journaled once in the run's journal, so a run replayed after a crash gets journaled
// results back instead of doing the work again.

/** How a step is retried when its function throws, and how long one attempt may take. */
export interface StepOptions {
  readonly retry?: {
    /** Attempts in all, the first included (default 3). */
    readonly maxAttempts?: number
    readonly initialBackoffMs?: number
    readonly maxBackoffMs?: number
  }
  /** An attempt that takes longer fails (default 60 s). */
  readonly timeoutMs?: number
}

/** What a step's function is told: its idempotency key (`runId:stepId:attempt`) for the effects it performs. */
export interface StepInfo {
  readonly stepId: string
  readonly attempt: number
  readonly key: string
}

/** A model call of a workflow: through the router (an alias such as `auto`, or a model) and the budgets. */
export interface LlmRequest extends StepOptions {
  readonly model?: string
  readonly messages: ReadonlyArray<{ readonly role: "system" | "user" | "assistant"; readonly content: string }>
  readonly tools?: ReadonlyArray<
    { readonly name: string; readonly description?: string; readonly parameters?: Record<string, unknown> }
  >
  readonly maxTokens?: number
  readonly temperature?: number
}

/** What the model answered (the same on a replay, from the journal). */
export interface LlmAnswer {
  readonly content: string | null
  readonly toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly arguments: unknown }>
  readonly finishReason: string
  readonly provider: string
  readonly model: string
}

/** A human's decision (POST /v1/runs/{id}/approvals/approval-<n>), or its expiry. */
export interface ApprovalAnswer {
  readonly approved: boolean
  readonly by: string
  readonly reason: string
  readonly expired: boolean
}

/** What a wait for a signal got: the n-th signal of its name (POST /v1/runs/{id}/signals/{name}), or nothing in time. */
export interface Received {
  readonly received: boolean
  readonly value: unknown
}

/** How a child run ended: what `ctx.run` returns. */
export interface ChildResult {
  readonly runId: string
  readonly status: "succeeded" | "failed" | "canceled"
  readonly output: unknown
  readonly error: { readonly code: string; readonly message: string } | null
}

/** What a child run runs: an agent (its latest version) or a workflow (its current code). */
export type ChildTarget = { readonly agent: string } | { readonly workflow: string }

export interface Context {
  readonly runId: string
  readonly tenant: string
  readonly workflow: string
  /**
   * Runs `fn` once and journals what it returns (JSON; `undefined` becomes null); after a crash the journaled
   * value is returned and `fn` is not called again. Step ids are unique within a run; the order of steps must
   * not change between replays (a run whose code asks for another step than its journal has fails, naming it).
   */
  readonly step: <A>(id: string, fn: (info: StepInfo) => A | Promise<A>, options?: StepOptions) => Promise<A>
  /**
   * A model call through the router, reserved against the run's budgets before it is made (a hard cap refuses it:
   * `StepFailedError` with `budget_exceeded`), journaled with its route, tokens and cost; retried on rate limits,
   * timeouts and unavailable providers. Replays return the journaled answer.
   */
  readonly llm: (request: LlmRequest) => Promise<LlmAnswer>
  /**
   * Waits for a human decision: the step `approval-<n>` is decided with POST /v1/runs/{id}/approvals/approval-<n>;
   * the run parks meanwhile; past `expiresInSeconds` (default a day) it answers `expired`.
   */
  readonly approval: (
    options: { readonly reason: string; readonly expiresInSeconds?: number }
  ) => Promise<ApprovalAnswer>
  /**
   * Waits for the next signal named `name` (POST /v1/runs/{id}/signals/{name} {value}); signals sent before the wait
   * are kept in order. Past `timeoutMs` (default a day) it answers `received: false`.
   */
  readonly waitForEvent: (name: string, options?: { readonly timeoutMs?: number }) => Promise<Received>
  /**
   * Starts a child run and waits for its end (the run parks meanwhile): its cost rolls up into this run's, and
   * canceling this run cancels it. Replays return the journaled end.
   */
  readonly run: (target: ChildTarget, input: unknown) => Promise<ChildResult>
  /** A durable timer: the run parks (no host holds it) and continues when it is due, even after restarts. */
  readonly sleep: (ms: number) => Promise<void>
  readonly sleepUntil: (at: number | Date) => Promise<void>
  /** The time, a random number in [0, 1) and a UUID: drawn once, journaled, the same on every replay. */
  readonly now: () => Promise<number>
  readonly random: () => Promise<number>
  readonly uuid: () => Promise<string>
  /** Logs with the run's tenant and id, once: not again while the code replays what the journal has. */
  readonly log: (message: string, fields?: Record<string, unknown>) => void
}
