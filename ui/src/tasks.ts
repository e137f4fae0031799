// The live operator queue: `GET /v1/tasks` once `GET /v1/tasks/stream` says where it starts, then each frame sets its
// task's status at once and marks the task to be read again (a burst of one task's frames costs one read), so rows
// change in place and keep their identity (createStore + reconcile). A dispatch frame (pause, resume) is passed on.
import { createSignal, onCleanup } from "solid-js"
import { createStore, reconcile } from "solid-js/store"
import type { TaskStatus, TaskView } from "../../schema/Task.ts"
import { ApiError, type Client, type TaskFilter } from "./api.ts"
import { createEventStream } from "./sse.ts"

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
export const order = (a: TaskView, b: TaskView): number =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.createdAt < b.createdAt ? 1 : -1

/** The rows to show: the known tasks under the filter, in order. */
export const rowsOf = (known: Iterable<TaskView>, filter: TaskFilter): Array<TaskView> =>
  [...known].filter((t) => matches(t, filter)).sort(order)

/** A task as a frame leaves it before it is read again: its status (if the frame says one) and its last change. */
export const applyFrame = (task: TaskView, frame: QueueFrame): TaskView =>
  "taskId" in frame && frame.status !== null && frame.status !== task.status
    ? { ...task, status: frame.status, updatedAt: frame.at > task.updatedAt ? frame.at : task.updatedAt }
    : task

/** Re-reads of marked tasks wait this long, so a burst of events of one task costs one read. */
const COALESCE_MS = 120
/** The list again a moment after the stream opened (projections trail the journal), then now and again. */
const CATCH_UP_MS = 2_000
const RELIST_MS = 30_000

export const createTaskList = (client: Client, filter: () => TaskFilter, onDispatch: () => void = () => {}) => {
  const [state, setState] = createStore<{ rows: Array<TaskView> }>({ rows: [] })
  const [loading, setLoading] = createSignal(true)
  const [error, setError] = createSignal<string | null>(null)
  const known = new Map<string, TaskView>()
  const marked = new Set<string>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let started = false
  let generation = 0

  /** Where each listed task is in `state.rows`, as the last publish left them. */
  let index = new Map<string, number>()
  const publish = () => {
    const rows = rowsOf(known.values(), filter())
    index = new Map(rows.map((t, i) => [t.id, i]))
    setState("rows", reconcile(rows, { key: "id" }))
  }
  /** A listed task changed and stays where it is (the order is by creation): its row alone is reconciled. */
  const patch = (task: TaskView) => {
    const i = index.get(task.id)
    if (i === undefined || !matches(task, filter())) return publish()
    setState("rows", i, reconcile(task))
  }
  /** Keeps `task` unless what is known is newer (a read an older read overtook does not win). */
  const keep = (task: TaskView) => {
    const had = known.get(task.id)
    if (had === undefined || had.updatedAt <= task.updatedAt) known.set(task.id, task)
  }

  const load = async () => {
    const mine = ++generation
    setLoading(true)
    try {
      const page = await client.listTasks(filter())
      if (mine !== generation) return
      known.clear()
      for (const t of page.items) known.set(t.id, t)
      setError(null)
    } catch (e) {
      if (mine === generation) setError(e instanceof Error ? e.message : String(e))
    } finally {
      if (mine === generation) {
        setLoading(false)
        publish()
      }
    }
  }

  const relist = async () => {
    const mine = generation
    try {
      const page = await client.listTasks(filter())
      if (mine !== generation) return
      for (const t of page.items) keep(t)
      publish()
    } catch {
      // the stream, or the next relist, will do
    }
  }
  const relists = [setTimeout(relist, CATCH_UP_MS), setInterval(relist, RELIST_MS)]
  onCleanup(() => relists.forEach((t) => clearTimeout(t)))

  const flush = async () => {
    timer = undefined
    const ids = [...marked]
    marked.clear()
    const changed: Array<TaskView> = []
    let added = false
    await Promise.all(ids.map(async (id) => {
      try {
        const task = await client.getTask(id)
        const had = known.get(id)
        keep(task)
        if (had === undefined) added = true
        else if (known.get(id) === task) changed.push(task)
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) marked.add(id)
      }
    }))
    // a new task takes its place in the order: the list is published again; a known one changes in its row
    if (added) publish()
    else for (const task of changed) patch(task)
    if (marked.size > 0 && timer === undefined) timer = setTimeout(flush, 1000)
  }

  const stream = createEventStream("/v1/tasks/stream", {
    token: client.token,
    onMessage: (m) => {
      if (m.event === "ready") {
        if (!started) {
          started = true
          void load()
        }
        return
      }
      if (m.event === "error" || m.event === "message") return
      const frame = JSON.parse(m.data) as QueueFrame
      if (!("taskId" in frame)) return onDispatch()
      const row = known.get(frame.taskId)
      if (row !== undefined) {
        const next = applyFrame(row, frame)
        if (next !== row) {
          known.set(frame.taskId, next)
          patch(next)
        }
      }
      marked.add(frame.taskId)
      if (timer === undefined) timer = setTimeout(flush, COALESCE_MS)
      // a claim or a close changes the queue's depth
      onDispatch()
    }
  })
  onCleanup(() => clearTimeout(timer))

  return {
    rows: () => state.rows,
    loading,
    error: () => error() ?? stream.error()?.message ?? null,
    live: stream.readyState,
    reload: load,
    /** A task as an action answered it, shown at once. */
    put: (task: TaskView) => {
      keep(task)
      publish()
    }
  }
}
