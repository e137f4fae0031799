// The host's side of a code-first workflow's context (ADR 0041): its shape is schema/Workflow.ts (shared with the
// SDK); here, the errors a workflow's code meets.
export type {
  StepOptions,
  StepInfo,
  LlmRequest,
  LlmAnswer,
  ApprovalAnswer,
  Received,
  ChildResult,
  ChildTarget,
  Context
} from "../../schema/Workflow.ts"

/** The error a step's function threw, after its last attempt: the workflow may catch it. */
export class StepFailedError extends Error {
  override readonly name = "StepFailedError"
  constructor(readonly stepId: string, readonly attempts: number, message: string) {
    super(`step ${stepId} failed after ${attempts} attempt(s): ${message}`)
  }
}

/** The code asked for something its journal does not have where it should: the run fails with it. */
export class NonDeterminismError extends Error {
  override readonly name = "NonDeterminismError"
}
