// The live operator queue (liveList.ts): `GET /v1/tasks` once `GET /v1/tasks/stream` says where it starts, then each
// frame sets its task's status at once and marks the task to be read again. A dispatch frame (pause, resume) is
// passed on, as every frame is (a claim or a close changes the queue's depth).
import type { TaskStatus, TaskView } from "../../schema/Task.ts"
import type { Client, TaskFilter } from "./api.ts"
import { createLiveList, newestFirst } from "./liveList.ts"

export { STATUSES } from "./taskStatuses.ts"

/** A frame of the queue's stream: a task event, or dispatch paused or resumed (no taskId). */
export type QueueFrame =
  | {
    readonly seq: number
    readonly taskId: string
    readonly type: string
    readonly at: string
    readonly status: TaskStatus | null
    readonly attempt?: number
  }
  | { readonly seq: number; readonly type: "DispatchSet"; readonly at: string; readonly paused: boolean }

/** Statuses an operator may cancel from, and retry or requeue from (actors/task/Decider.ts's). */
export const CANCELABLE: ReadonlySet<TaskStatus> = new Set(["pending", "running", "retryable_failure", "blocked"])
export const RETRYABLE: ReadonlySet<TaskStatus> = new Set([
  "blocked",
  "permanent_failure",
  "canceled",
  "retryable_failure"
])

export const matches = (task: TaskView, filter: TaskFilter): boolean =>
  (filter.status === undefined || task.status === filter.status) &&
  (filter.kind === undefined || filter.kind === "" || task.kind === filter.kind) &&
  (filter.source === undefined || filter.source === "" || task.source === filter.source)

/** Newest first by creation, ties by id descending (ids are time-ordered), as `GET /v1/tasks` lists them. */
export const order = newestFirst

/** The rows to show: the known tasks under the filter, in order. */
export const rowsOf = (known: Iterable<TaskView>, filter: TaskFilter): Array<TaskView> =>
  [...known].filter((t) => matches(t, filter)).sort(order)

/** A task as a frame leaves it before it is read again: its status (if the frame says one) and its last change. */
export const applyFrame = (task: TaskView, frame: QueueFrame): TaskView =>
  "taskId" in frame && frame.status !== null && frame.status !== task.status
    ? { ...task, status: frame.status, updatedAt: frame.at > task.updatedAt ? frame.at : task.updatedAt }
    : task

/** The live queue; `onDispatch` hears of every frame (a claim, a close, a pause changes the queue's depth). */
export const createTaskList = (client: Client, filter: () => TaskFilter, onDispatch: () => void = () => {}) =>
  createLiveList<TaskView, TaskFilter>({
    stream: "/v1/tasks/stream",
    token: client.token,
    list: (f) => client.listTasks(f),
    get: (id) => client.getTask(id),
    matches,
    frame: (data) => {
      const frame = JSON.parse(data) as QueueFrame
      return "taskId" in frame ? { id: frame.taskId, apply: (task) => applyFrame(task, frame) } : null
    },
    onFrame: onDispatch
  }, filter)
