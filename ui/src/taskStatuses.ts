// The task statuses, as schema/Task.ts declares them: that module is Effect's, and the cockpit takes its types alone
// (tests/cockpit-ui.test.ts checks that the two lists agree).
import type { TaskStatus } from "../../schema/Task.ts"

export const STATUSES: ReadonlyArray<TaskStatus> = [
  "pending",
  "running",
  "completed",
  "retryable_failure",
  "blocked",
  "permanent_failure",
  "canceled"
]
