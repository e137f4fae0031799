// Workloads (ADR 0046): the sandboxed workloads of the tenant, newest first, with their state, tier and backend; and
// one workload with its facts, the egress decisions of its harness, the secrets vended to it (names only), its
// output followed live over `GET /v1/workloads/{id}/logs` until it ends, and a Terminate button while it runs. The
// list, and a workload's facts, are polled while anything runs.
import { createResource, createSignal, For, onCleanup, Show } from "solid-js"
import type { Client, WorkloadView } from "../api.ts"
import { href } from "../route.ts"
import { makeEventStream, type ReadyState } from "../sse.ts"

/** The output kept in the page: the last chunks only, so a chatty workload does not grow the page without end. */
export const MAX_CHUNKS = 5000

export interface Chunk {
  readonly stream: "stdout" | "stderr"
  readonly text: string
}

/** `chunks` with `next` added, the oldest dropped past `max`. */
export const appendChunk = (chunks: ReadonlyArray<Chunk>, next: Chunk, max = MAX_CHUNKS): ReadonlyArray<Chunk> =>
  chunks.length < max ? [...chunks, next] : [...chunks.slice(chunks.length - max + 1), next]

const ENDED = new Set(["exited", "terminated", "failed"])

/** Refetches `refetch` every `ms` while `running()` says so, until the view goes. */
const poll = (running: () => boolean, refetch: () => void, ms: number) => {
  const timer = setInterval(() => {
    if (running()) refetch()
  }, ms)
  onCleanup(() => clearInterval(timer))
}

const State = (props: { readonly w: WorkloadView }) => (
  <span class={`status ${props.w.state}`} data-workload-state={props.w.state}>
    {props.w.state}
    {props.w.exitCode === null ? "" : ` (exit ${props.w.exitCode})`}
  </span>
)

export const Workloads = (props: { readonly client: Client }) => {
  const [list, { refetch }] = createResource(() => props.client.listWorkloads())
  poll(() => (list()?.items ?? []).some((w) => !ENDED.has(w.state)), () => void refetch(), 2000)
  return (
    <section>
      <h1>Workloads</h1>
      <Show when={list.error}>{(e) => <p role="alert" class="error">{String(e().message ?? e())}</p>}</Show>
      <Show when={list()} fallback={<p class="empty">Loading workloads…</p>}>
        {(l) => (
          <Show
            when={l().items.length > 0}
            fallback={
              <p class="empty">No workloads yet. Start one with POST /v1/workloads or lantern run agent.yaml.</p>
            }
          >
            <table class="runs">
              <thead>
                <tr>
                  <th scope="col">Workload</th>
                  <th scope="col">State</th>
                  <th scope="col">Isolation</th>
                  <th scope="col" class="num">Exit</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                <For each={l().items}>
                  {(w) => (
                    <tr data-workload-id={w.id}>
                      <td>
                        <a href={href({ view: "workload", id: w.id })}>{w.name}</a> <code>{w.id}</code>
                      </td>
                      <td>
                        <State w={w} />
                      </td>
                      <td>{w.isolation} on {w.backend ?? "-"}</td>
                      <td class="num">{w.exitCode ?? ""}</td>
                      <td>{w.createdAt ?? ""}</td>
                    </tr>
                  )}
                </For>
              </tbody>
            </table>
          </Show>
        )}
      </Show>
    </section>
  )
}

export const WorkloadDetail = (props: { readonly client: Client; readonly id: string }) => {
  const [workload, { refetch, mutate }] = createResource(() => props.client.getWorkload(props.id))
  const [error, setError] = createSignal<string | null>(null)
  const [output, setOutput] = createSignal<ReadonlyArray<Chunk>>([])
  const [following, setFollowing] = createSignal<ReadyState>("connecting")
  const [ended, setEnded] = createSignal(false)
  poll(() => workload() !== undefined && !ENDED.has(workload()!.state) && !ended(), () => void refetch(), 2000)
  // the output from its start, then live until the workload ends (the last frame is the workload as it ended)
  const logs = makeEventStream(`/v1/workloads/${encodeURIComponent(props.id)}/logs`, {
    token: props.client.token,
    isLast: (m) => m.event === "end",
    onState: setFollowing,
    onError: (e) => setError(e.message),
    onMessage: (m) => {
      if (m.event === "output") setOutput((all) => appendChunk(all, JSON.parse(m.data) as Chunk))
      if (m.event === "end") {
        setEnded(true)
        mutate(JSON.parse(m.data) as WorkloadView)
      }
    }
  })
  onCleanup(logs.close)
  const terminate = async () => {
    setError(null)
    try {
      mutate(await props.client.terminateWorkload(props.id))
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e))
    }
  }
  return (
    <section>
      <p>
        <a href={href({ view: "workloads" })}>← Workloads</a>
      </p>
      <Show when={error() ?? (workload.error ? String(workload.error.message ?? workload.error) : null)}>
        {(m) => <p role="alert" class="error">{m()}</p>}
      </Show>
      <Show when={workload()} fallback={<p class="empty">Loading the workload…</p>}>
        {(w) => (
          <>
            <h1>{w().name}</h1>
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{w().id}</code>
              </dd>
              <dt>State</dt>
              <dd>
                <State w={w()} />
              </dd>
              <dt>Exit code</dt>
              <dd data-exit-code>{w().exitCode ?? "-"}</dd>
              <dt>Isolation</dt>
              <dd>{w().isolation} on {w().backend ?? "-"}{w().host === null ? "" : `, host ${w().host}`}</dd>
              <dt>Enforced</dt>
              <dd>{w().enforced.join(", ") || "-"}</dd>
              <dt>Secrets vended</dt>
              <dd data-secrets>{w().secretsVended.join(", ") || "none"}</dd>
              <Show when={w().usage}>
                {(u) => (
                  <>
                    <dt>Usage</dt>
                    <dd>
                      wall {Math.round(u().wallMs)} ms, cpu {Math.round(u().cpuMs)} ms
                      {u().peakRssKb === null ? "" : `, peak ${Math.round(u().peakRssKb! / 1024)} MiB`}
                    </dd>
                  </>
                )}
              </Show>
              <Show when={w().reason}>
                {(r) => (
                  <>
                    <dt>Reason</dt>
                    <dd>{r()}</dd>
                  </>
                )}
              </Show>
            </dl>
            <Show when={!ENDED.has(w().state)}>
              <div class="actions">
                <button type="button" class="danger" onClick={() => void terminate()}>Terminate</button>
              </div>
            </Show>
            <h2>Egress</h2>
            <Show when={w().egress.length > 0} fallback={<p class="empty">No connections asked for.</p>}>
              <table class="runs">
                <thead>
                  <tr>
                    <th scope="col">Host</th>
                    <th scope="col">Decision</th>
                    <th scope="col">Detail</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={w().egress}>
                    {(e) => (
                      <tr data-egress={e.allowed ? "allowed" : "refused"}>
                        <td>
                          <code>{e.host}:{e.port}</code>
                        </td>
                        <td>{e.allowed ? "allowed" : "refused"}</td>
                        <td>{e.detail}</td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </Show>
            <div class="bar">
              <h2 id="output-title">Output</h2>
              <span
                class={`live ${ended() ? "closed" : following()}`}
                role="status"
                data-logs={ended() ? "ended" : following()}
              >
                {ended()
                  ? "ended"
                  : following() === "open"
                  ? "following"
                  : following() === "connecting"
                  ? "connecting…"
                  : "offline"}
              </span>
            </div>
            <Show
              when={output().length > 0}
              fallback={<p class="empty">{ended() ? "No output." : "No output yet."}</p>}
            >
              <pre class="output" data-output aria-labelledby="output-title" tabindex="0">
                <For each={output()}>{(o) => <span class={o.stream}>{o.text}</span>}</For>
              </pre>
            </Show>
          </>
        )}
      </Show>
    </section>
  )
}
