// The operator queue (issue 16): dispatch paused or running (with its reason), the depth per priority, and the live
// list of tasks filtered by status, kind and source, with status, priority, kind, source, attempts and age.
import { createResource, createSignal, For, onCleanup, Show } from "solid-js"
import type { DispatchView, TaskStatus } from "../../../schema/Task.ts"
import type { Client, TaskFilter } from "../api.ts"
import { createNow, messageOf } from "../clock.ts"
import { age } from "../format.ts"
import { href } from "../route.ts"
import { createTaskList, STATUSES } from "../tasks.ts"

/** Reads of the dispatch view wait this long after a frame, so a burst of claims costs one read. */
const DISPATCH_COALESCE_MS = 300

const Dispatch = (props: {
  readonly client: Client
  readonly view: DispatchView | undefined
  readonly onChange: (v: DispatchView) => void
}) => {
  const [reason, setReason] = createSignal("")
  const [error, setError] = createSignal<string | null>(null)
  const [busy, setBusy] = createSignal(false)
  const set = async (paused: boolean) => {
    setBusy(true)
    setError(null)
    try {
      props.onChange(await props.client.setDispatch(paused, reason()))
      setReason("")
    } catch (e) {
      setError(messageOf(e))
    } finally {
      setBusy(false)
    }
  }
  return (
    <section class="dispatch" aria-labelledby="dispatch-title" data-paused={props.view?.paused ? "true" : "false"}>
      <h2 id="dispatch-title">Dispatch</h2>
      <Show when={props.view} fallback={<p class="empty">Loading dispatch…</p>}>
        {(v) => (
          <>
            <p role="status" data-dispatch-state>
              <strong class={v().paused ? "status canceled" : "status succeeded"}>
                {v().paused ? "paused" : "dispatching"}
              </strong>
              {v().reason === null ? "" : `: ${v().reason}`}
              {v().changedBy === null
                ? ""
                : ` (by ${v().changedBy}${v().changedAt === null ? "" : `, ${v().changedAt}`})`}
            </p>
            <div class="depth-scroll" tabindex="0" role="region" aria-label="Queue depth">
              <table class="depth">
                <caption>Claimable tasks per priority (9 is claimed first)</caption>
                <thead>
                  <tr>
                    <For each={[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]}>{(p) => <th scope="col">{p}</th>}</For>
                    <th scope="col">delayed</th>
                    <th scope="col">running</th>
                    <th scope="col">blocked</th>
                    <th scope="col">workers</th>
                  </tr>
                </thead>
                <tbody>
                  <tr>
                    <For each={[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]}>
                      {(p) => <td data-depth={p}>{v().depth[String(p)] ?? 0}</td>}
                    </For>
                    <td>{v().delayed}</td>
                    <td>{v().running}</td>
                    <td>{v().blocked}</td>
                    <td>{v().workers.length}</td>
                  </tr>
                </tbody>
              </table>
            </div>
            <form
              class="start"
              onSubmit={(e) => {
                e.preventDefault()
                void set(!v().paused)
              }}
            >
              <label>
                {v().paused ? "Resume reason" : "Pause reason"}{" "}
                <input
                  name="dispatch-reason"
                  value={reason()}
                  maxLength={500}
                  placeholder={v().paused ? "why resume (optional)" : "why pause (optional)"}
                  onInput={(e) => setReason(e.currentTarget.value)}
                />
              </label>
              <button type="submit" class={v().paused ? "" : "danger"} disabled={busy()}>
                {v().paused ? "Resume dispatch" : "Pause dispatch"}
              </button>
            </form>
          </>
        )}
      </Show>
      <Show when={error()}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>
    </section>
  )
}

export const Queue = (props: { readonly client: Client }) => {
  const [filter, setFilter] = createSignal<TaskFilter>({})
  const [dispatch, { mutate, refetch }] = createResource(() => props.client.dispatch())
  let pending: ReturnType<typeof setTimeout> | undefined
  const dispatchChanged = () => {
    if (pending === undefined) {
      pending = setTimeout(() => {
        pending = undefined
        Promise.resolve(refetch()).catch(() => undefined)
      }, DISPATCH_COALESCE_MS)
    }
  }
  onCleanup(() => clearTimeout(pending))
  const list = createTaskList(props.client, filter, dispatchChanged)
  const now = createNow()
  const change = (next: TaskFilter) => {
    setFilter(next)
    void list.reload()
  }
  const text = (key: "kind" | "source") => (e: Event & { currentTarget: HTMLInputElement }) => {
    const value = e.currentTarget.value.trim()
    if ((filter()[key] ?? "") !== value) change({ ...filter(), [key]: value === "" ? undefined : value })
  }

  return (
    <section aria-labelledby="queue-title">
      <div class="bar">
        <h1 id="queue-title">Queue</h1>
        <span class={`live ${list.live()}`} role="status" aria-live="polite">
          {list.live() === "open" ? "live" : list.live() === "connecting" ? "connecting…" : "offline"}
        </span>
      </div>
      <Show when={dispatch.error}>{(e) => <p role="alert" class="error">{messageOf(e())}</p>}</Show>
      <Dispatch client={props.client} view={dispatch.latest} onChange={mutate} />
      <h2 id="tasks-title">Tasks</h2>
      <form class="bar" aria-label="Filter tasks" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status{" "}
          <select
            name="status"
            onChange={(e) =>
              change({
                ...filter(),
                status: e.currentTarget.value === "" ? undefined : e.currentTarget.value as TaskStatus
              })}
          >
            <option value="">any</option>
            <For each={STATUSES}>{(s) => <option value={s}>{s.replace("_", " ")}</option>}</For>
          </select>
        </label>
        <label>
          Kind <input name="kind" placeholder="any" size={14} onChange={text("kind")} />
        </label>
        <label>
          Source <input name="source" placeholder="any" size={14} onChange={text("source")} />
        </label>
      </form>
      <Show when={list.error()}>{(message) => <p role="alert" class="error">{message()}</p>}</Show>
      <Show
        when={list.rows().length > 0}
        fallback={
          <p class="empty">
            {list.loading()
              ? "Loading tasks…"
              : Object.values(filter()).some((v) => v !== undefined)
              ? "No tasks match these filters."
              : "No tasks yet. Submit one with POST /v1/tasks, a schedule or a sensor."}
          </p>
        }
      >
        <div class="scroller" tabindex="0" role="region" aria-labelledby="tasks-title">
          <table class="runs tasks" aria-labelledby="tasks-title">
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Task</th>
                <th scope="col" class="num">Priority</th>
                <th scope="col">Kind</th>
                <th scope="col">Source</th>
                <th scope="col" class="num">Attempts</th>
                <th scope="col">Age</th>
              </tr>
            </thead>
            <tbody>
              <For each={list.rows()}>
                {(task) => (
                  <tr data-task-id={task.id} data-status={task.status}>
                    <td>
                      <span class={`status ${task.status}`} data-task-status={task.status}>
                        {task.status.replace("_", " ")}
                      </span>
                    </td>
                    <td>
                      <a href={href({ view: "task", id: task.id })}>{task.subject ?? task.id}</a>
                    </td>
                    <td class="num">{task.priority}</td>
                    <td>{task.kind}</td>
                    <td>{task.source}</td>
                    <td class="num">{task.attemptsUsed} / {task.maxAttempts}</td>
                    <td title={task.createdAt}>{age(task.createdAt, now())}</td>
                  </tr>
                )}
              </For>
            </tbody>
          </table>
        </div>
        <p class="hint">{list.rows().length} tasks listed</p>
      </Show>
    </section>
  )
}
