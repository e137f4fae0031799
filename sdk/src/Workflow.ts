// Code-first durable workflows (ADR 0041): `defineWorkflow` marks a function as a workflow that a Lantern host
// started with `--workflows <file>` registers and runs. Every `ctx` operation is journaled once in the run's
// journal: after a crash the run replays from the top and gets journaled results back instead of doing the work
// again. The host runs the code; this module only describes it (no runtime dependency).

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

/** A model call of a workflow: through the router (an alias such as `auto`, or a model) and the run's budgets. */
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

/** What a wait got: the n-th signal of its name (`runs.signal(id, name, value)`), or nothing in time. */
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

export interface WorkflowContext {
  readonly runId: string
  readonly tenant: string
  readonly workflow: string
  /**
   * Runs `fn` once and journals what it returns (JSON; `undefined` becomes null); after a crash the journaled value
   * is returned and `fn` is not called again. Step ids are unique within a run, and the order of steps must not
   * change for runs in flight: a run whose code asks for another step than its journal has fails, naming it.
   * After its last attempt a step's error is thrown to the workflow as a `StepFailedError` (name), which it may
   * catch.
   */
  readonly step: <A>(id: string, fn: (info: StepInfo) => A | Promise<A>, options?: StepOptions) => Promise<A>
  /**
   * A model call through the router, reserved against the run's budgets before it is made (a hard cap refuses it
   * with `budget_exceeded`), journaled with its route, tokens and cost, retried on rate limits, timeouts and
   * unavailable providers; a replay returns the journaled answer.
   */
  readonly llm: (request: LlmRequest) => Promise<LlmAnswer>
  /**
   * Waits for a human decision on the step `approval-<n>` (`runs.approve(id, "approval-1", {approved, by})`); the
   * run parks meanwhile; past `expiresInSeconds` (default a day) it answers `expired: true`.
   */
  readonly approval: (
    options: { readonly reason: string; readonly expiresInSeconds?: number }
  ) => Promise<ApprovalAnswer>
  /**
   * Waits for the next signal named `name` (`runs.signal(id, name, value)`; signals sent earlier are kept in order);
   * past `timeoutMs` (default a day) it answers `received: false`.
   */
  readonly waitForEvent: (name: string, options?: { readonly timeoutMs?: number }) => Promise<Received>
  /**
   * Starts a child run of an agent or a workflow and waits for its end (this run parks meanwhile); its cost rolls
   * up into this run's, and canceling this run cancels it. A child that cannot start throws `StepFailedError`.
   */
  readonly run: (target: ChildTarget, input: unknown) => Promise<ChildResult>
  /** A durable timer: the run parks (no host holds it) and continues when it is due, even across restarts. */
  readonly sleep: (ms: number) => Promise<void>
  readonly sleepUntil: (at: number | Date) => Promise<void>
  /** The time, a random number in [0, 1) and a UUID, drawn once and journaled: the same on every replay. */
  readonly now: () => Promise<number>
  readonly random: () => Promise<number>
  readonly uuid: () => Promise<string>
  /** Logs with the run's tenant and id, once (not again while the code replays what its journal has). */
  readonly log: (message: string, fields?: Record<string, unknown>) => void
}

export interface Workflow<I = unknown, O = unknown> {
  readonly name: string
  readonly run: (ctx: WorkflowContext, input: I) => Promise<O> | O
}

/** The mark a host looks for among a workflows file's exports. */
const MARKER = Symbol.for("lantern.workflow")

/**
 * A workflow named `name` (lowercase letters, digits, `-`, `_`): export it from the file a host registers with
 * `lantern serve --workflows <file>` (or `worker`), then start runs with `runs.create({ workflow: name, input })`.
 */
export const defineWorkflow = <I = unknown, O = unknown>(
  name: string,
  run: (ctx: WorkflowContext, input: I) => Promise<O> | O
): Workflow<I, O> => Object.freeze({ name, run, [MARKER]: true }) as Workflow<I, O>
