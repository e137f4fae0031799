// One task of the queue: its facts, attempts (adapter, probes, closing, outcome), events, outcome and artifacts, kept
// current by the queue's stream; retry, requeue and cancel, each confirmed first, with the refusal shown if any.
import { createResource, createSignal, For, Match, onCleanup, Show, Switch } from "solid-js"
import type { TaskDetail as Detail, TaskView } from "../../../schema/Task.ts"
import { ApiError, type Client } from "../api.ts"
import { messageOf } from "../clock.ts"
import { json, usd } from "../format.ts"
import { href } from "../route.ts"
import { createEventStream } from "../sse.ts"
import { CANCELABLE, RETRYABLE } from "../tasks.ts"
import { Loading } from "../Loading.tsx"

type Action = "cancel" | "retry" | "requeue"

const SAYS: Readonly<Record<Action, { readonly label: string; readonly ask: string }>> = {
  cancel: { label: "Cancel task", ask: "Cancel this task? A running attempt is interrupted." },
  retry: { label: "Retry", ask: "Try this task again now (one more attempt if its attempts are spent)?" },
  requeue: { label: "Requeue", ask: "Queue this task afresh, its attempts counted from zero?" }
}

/** An artifact of the task, fetched with the key and offered as a download. */
const Artifact = (props: { readonly client: Client; readonly taskId: string; readonly path: string }) => {
  const [url, setUrl] = createSignal<string | null>(null)
  const [error, setError] = createSignal<string | null>(null)
  let link: HTMLAnchorElement | undefined
  onCleanup(() => {
    const u = url()
    if (u !== null) URL.revokeObjectURL(u)
  })
  const fetchIt = async () => {
    try {
      const blob = await props.client.taskArtifact(props.taskId, props.path)
      setUrl(URL.createObjectURL(blob))
      link?.click()
    } catch (e) {
      setError(messageOf(e))
    }
  }
  return (
    <li data-artifact={props.path}>
      <Show
        when={url()}
        fallback={
          <button type="button" class="quiet" onClick={() => void fetchIt()}>
            Download {props.path}
          </button>
        }
      >
        {(u) => (
          <a ref={link} href={u()} download={props.path.split("/").at(-1)}>
            {props.path}
          </a>
        )}
      </Show>
      <Show when={error()}>{(m) => <span role="alert" class="error">{m()}</span>}</Show>
    </li>
  )
}

export const TaskDetail = (props: { readonly client: Client; readonly id: string }) => {
  const [task, { mutate, refetch }] = createResource(() => props.client.getTask(props.id))
  const [asking, setAsking] = createSignal<Action | null>(null)
  const [reason, setReason] = createSignal("")
  const [busy, setBusy] = createSignal(false)
  const [error, setError] = createSignal<string | null>(null)
  let timer: ReturnType<typeof setTimeout> | undefined
  const stream = createEventStream("/v1/tasks/stream", {
    token: props.client.token,
    onMessage: (m) => {
      if (m.event === "ready" || m.event === "message" || m.event === "error") return
      const frame = JSON.parse(m.data) as { taskId?: string }
      if (frame.taskId !== props.id) return
      clearTimeout(timer)
      timer = setTimeout(() => Promise.resolve(refetch()).catch(() => undefined), 100)
    }
  })
  onCleanup(() => clearTimeout(timer))

  const act = async (action: Action) => {
    setBusy(true)
    setError(null)
    try {
      const view: TaskView = action === "cancel"
        ? await props.client.cancelTask(props.id, reason())
        : action === "retry"
        ? await props.client.retryTask(props.id)
        : await props.client.requeueTask(props.id)
      const had = task()
      if (had !== undefined) mutate({ ...had, ...view } as Detail)
      setAsking(null)
      setReason("")
      Promise.resolve(refetch()).catch(() => undefined)
    } catch (e) {
      setError(messageOf(e))
    } finally {
      setBusy(false)
    }
  }

  const loadError = () => {
    const e = task.error as unknown
    if (e === undefined) return null
    return e instanceof ApiError && e.status === 404 ? `No task ${props.id} in this tenant.` : messageOf(e)
  }

  return (
    <section aria-labelledby="task-title">
      <p>
        <a href={href({ view: "queue" })}>← Queue</a>
        <span class={`live ${stream.readyState()}`} role="status">
          {stream.readyState() === "open" ? " live" : " connecting…"}
        </span>
      </p>
      <Loading value={task.latest} error={loadError()} what="the task">
        {(t) => (
          <>
            <h1 id="task-title">Task {t().subject ?? t().id}</h1>
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{t().id}</code>
              </dd>
              <dt>Status</dt>
              <dd>
                <span class={`status ${t().status}`} data-task-status={t().status}>{t().status.replace("_", " ")}</span>
                {t().reason === null ? "" : ` (${t().reason})`}
              </dd>
              <dt>Kind / source</dt>
              <dd>{t().kind} / {t().source}</dd>
              <dt>Priority</dt>
              <dd>{t().priority}</dd>
              <dt>Attempts</dt>
              <dd>
                {t().attemptsUsed} of {t().maxAttempts}
                {t().hintedReschedules > 0 ? `, ${t().hintedReschedules} rate-limit reschedules` : ""}
              </dd>
              <dt>Adapters</dt>
              <dd>{t().adapters.map((a) => a.type === "agent" ? `agent ${a.agentName}` : a.type).join(" → ")}</dd>
              <dt>Created</dt>
              <dd>{t().createdAt}</dd>
              <dt>Available at</dt>
              <dd>{t().availableAt}</dd>
              <Show when={t().finishedAt}>
                {(f) => (
                  <>
                    <dt>Finished</dt>
                    <dd>{f()}</dd>
                  </>
                )}
              </Show>
              <dt>Cost</dt>
              <dd>{usd(t().costUsd)}</dd>
            </dl>

            <div class="actions">
              <Show when={CANCELABLE.has(t().status)}>
                <button type="button" class="danger" onClick={() => setAsking("cancel")}>Cancel task</button>
              </Show>
              <Show when={RETRYABLE.has(t().status)}>
                <button type="button" onClick={() => setAsking("retry")}>Retry</button>
                <button type="button" class="quiet" onClick={() => setAsking("requeue")}>Requeue</button>
              </Show>
            </div>
            <Show when={asking()}>
              {(a) => (
                <form
                  class="approve-box"
                  aria-label={`Confirm: ${SAYS[a()].label}`}
                  onSubmit={(e) => {
                    e.preventDefault()
                    void act(a())
                  }}
                >
                  <span>{SAYS[a()].ask}</span>
                  <Show when={a() === "cancel"}>
                    <label>
                      Cancel reason{" "}
                      <input
                        name="cancel-reason"
                        maxLength={500}
                        value={reason()}
                        onInput={(e) => setReason(e.currentTarget.value)}
                      />
                    </label>
                  </Show>
                  <button type="submit" class={a() === "cancel" ? "danger" : ""} disabled={busy()}>
                    Confirm {SAYS[a()].label.toLowerCase()}
                  </button>
                  <button type="button" class="quiet" onClick={() => setAsking(null)}>Back</button>
                </form>
              )}
            </Show>
            <Show when={error()}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>

            <Show when={t().outcome}>
              {(o) => (
                <>
                  <h2>Outcome</h2>
                  <dl class="facts" data-outcome={o().status}>
                    <dt>Status</dt>
                    <dd>{o().status} ({o().machineStatus})</dd>
                    <dt>Summary</dt>
                    <dd>{o().operatorSummary}</dd>
                    <Show when={o().fileChanges.length > 0}>
                      <dt>Files</dt>
                      <dd>{o().fileChanges.map((f) => `${f.change} ${f.path}`).join(", ")}</dd>
                    </Show>
                  </dl>
                </>
              )}
            </Show>

            <h2>Artifacts</h2>
            <Show when={t().artifacts.length > 0} fallback={<p class="empty">No artifacts.</p>}>
              <ul class="artifacts">
                <For each={t().artifacts}>{(p) => <Artifact client={props.client} taskId={t().id} path={p} />}</For>
              </ul>
            </Show>

            <h2>Attempts</h2>
            <Show when={t().attempts.length > 0} fallback={<p class="empty">Not claimed yet.</p>}>
              <table class="runs attempts-table">
                <thead>
                  <tr>
                    <th scope="col" class="num">#</th>
                    <th scope="col">Adapter</th>
                    <th scope="col">Probes</th>
                    <th scope="col">Closing</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Links</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={t().attempts}>
                    {(a) => (
                      <tr data-attempt={a.attempt}>
                        <td class="num">{a.attempt}</td>
                        <td>{a.adapter ?? "none"}</td>
                        <td>
                          {a.probes.map((p) => `${p.type} ${p.ok ? "ok" : `failed${p.reason ? `: ${p.reason}` : ""}`}`)
                            .join("; ")}
                        </td>
                        <td>
                          <Switch fallback={<span class="status running">running</span>}>
                            <Match when={a.closing}>
                              {(c) => <span>{c()}{a.counted ? "" : " (not counted)"}</span>}
                            </Match>
                          </Switch>
                        </td>
                        <td>{a.reason ?? ""}</td>
                        <td>
                          <Show when={a.runId}>{(r) => <a href={href({ view: "run", id: r() })}>run</a>}</Show>{" "}
                          <Show when={a.workloadId}>
                            {(w) => <a href={href({ view: "workload", id: w() })}>workload</a>}
                          </Show>
                        </td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </Show>

            <h2>Events</h2>
            <ol class="events">
              <For each={t().events}>
                {(e) => (
                  <li data-event={e.type}>
                    <strong>{e.type}</strong> <span class="hint">{e.at}</span>
                    <details>
                      <summary>payload</summary>
                      <pre>{json(e.payload)}</pre>
                    </details>
                  </li>
                )}
              </For>
            </ol>
            <h2>Payload</h2>
            <pre>{json(t().payload)}</pre>
          </>
        )}
      </Loading>
    </section>
  )
}
