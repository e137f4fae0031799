// Events the task module's unit tests start from (no bus): a submission with every field set.
import type { TaskEvent } from "../../schema/Task.ts"

export const submitted: Extract<TaskEvent, { _tag: "TaskSubmitted" }> = {
  _tag: "TaskSubmitted",
  taskId: "tsk_x",
  kind: "k",
  source: "s",
  payload: null,
  subject: null,
  description: null,
  priority: 5,
  adapters: [{ type: "agent", agentName: "a" }],
  maxAttempts: 2,
  availableAt: 1_000,
  dedupeKey: null,
  retry: { baseSeconds: 10, maxSeconds: 100, jitter: 0 },
  origin: {},
  artifactRoot: "tasks/t/tsk_x",
  at: 500
}
