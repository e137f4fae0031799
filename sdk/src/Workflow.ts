// Code-first durable workflows (ADR 0041): `defineWorkflow` marks a function as a workflow that a Lantern host
// started with `--workflows <file>` registers and runs. Every `ctx` operation is journaled once in the run's
// journal: after a crash the run replays from the top and gets journaled results back instead of doing the work
// again. The host runs the code; this module only describes it (no runtime dependency).

import type { Context as WorkflowContext } from "../../schema/Workflow.ts"

export type {
  ApprovalAnswer,
  ChildResult,
  ChildTarget,
  Context as WorkflowContext,
  LlmAnswer,
  LlmRequest,
  Received,
  StepInfo,
  StepOptions
} from "../../schema/Workflow.ts"

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
