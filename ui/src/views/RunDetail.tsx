// One run: its numbers, its journal as a timeline that grows live over the run's stream, approve or deny a tool call
// that waits for a human, cancel, and the receipt verified in the browser.
import { createSignal, onCleanup, Show } from "solid-js"
import type { EventResponse } from "../../../schema/Api.ts"
import type { RunView } from "../../../schema/Run.ts"
import { ApiError, type Client } from "../api.ts"
import { json, tokens, usd } from "../format.ts"
import { href } from "../route.ts"
import { makeEventStream } from "../sse.ts"
import { build } from "../timeline.ts"
import { LiveTokens } from "../LiveTokens.tsx"
import { ReceiptPanel } from "./ReceiptPanel.tsx"
import { Timeline } from "./Timeline.tsx"
import { Loading } from "../Loading.tsx"

const TERMINAL = new Set(["RunSucceeded", "RunFailed", "RunCanceled"])

export const RunDetail = (props: { readonly client: Client; readonly id: string }) => {
  const [run, setRun] = createSignal<RunView | null>(null)
  const [events, setEvents] = createSignal<ReadonlyArray<EventResponse>>([])
  const [error, setError] = createSignal<string | null>(null)
  const [acting, setActing] = createSignal(false)
  let refresh: ReturnType<typeof setTimeout> | undefined
  let stream: { close: () => void } | null = null

  const reread = () => {
    clearTimeout(refresh)
    refresh = setTimeout(() => {
      props.client.getRun(props.id).then(setRun, () => undefined)
    }, 100)
  }

  const load = async () => {
    try {
      const [r, e] = await Promise.all([props.client.getRun(props.id), props.client.events(props.id)])
      setRun(r)
      setEvents(e.items)
      const last = e.items[e.items.length - 1]
      if (last !== undefined && TERMINAL.has(last.type)) {
        // the two reads ran side by side: a run that ended between them has a journal with its end and a view
        // from before it, read again here (no stream follows to do it)
        if (r.status === "running") reread()
        return
      }
      stream = makeEventStream(`/v1/runs/${encodeURIComponent(props.id)}/stream`, {
        token: props.client.token,
        lastEventId: String(e.items.length),
        isLast: (m) => TERMINAL.has(m.event),
        onMessage: (m) => {
          if (m.event === "message" || m.event === "error") return
          const event = JSON.parse(m.data) as EventResponse
          setEvents((all) => (event.position === undefined || event.position > all.length ? [...all, event] : all))
          reread()
        }
      })
    } catch (e) {
      setError(e instanceof ApiError && e.status === 404 ? `No run ${props.id} in this tenant.` : String(e))
    }
  }
  void load()
  onCleanup(() => {
    clearTimeout(refresh)
    stream?.close()
  })

  const act = async (f: () => Promise<RunView>) => {
    setActing(true)
    setError(null)
    try {
      setRun(await f())
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e))
    } finally {
      setActing(false)
    }
  }

  return (
    <section aria-labelledby="run-title">
      <p>
        <a href={href({ view: "runs" })}>← Runs</a>
      </p>
      <h1 id="run-title">Run {props.id}</h1>
      <Loading value={run()} error={error()} what="the run">
        {(r) => (
          <>
            <dl class="facts">
              <dt>Status</dt>
              <dd>
                <span class={`status ${r().status}`} data-run-status={r().status}>{r().status}</span>
              </dd>
              <dt>Agent</dt>
              <dd>{r().agentName}@{r().agentVersion}</dd>
              <dt>Steps</dt>
              <dd>{r().steps}</dd>
              <dt>Tokens in / out</dt>
              <dd>{tokens(r().tokensIn, r().tokensOut)}</dd>
              <dt>Cost</dt>
              <dd>{usd(r().costUsd)}</dd>
              <dt>Started</dt>
              <dd>{r().createdAt}</dd>
            </dl>
            <div class="actions">
              <Show when={r().waiting?.kind === "approval" ? r().waiting : null}>
                {(w) => (
                  <div class="approve-box" role="group" aria-label="Waiting for approval">
                    <span>Step {w().stepId} waits for your approval.</span>
                    <button
                      type="button"
                      disabled={acting()}
                      onClick={() => void act(() => props.client.approve(props.id, w().stepId, true, "cockpit"))}
                    >
                      Approve
                    </button>
                    <button
                      type="button"
                      class="danger"
                      disabled={acting()}
                      onClick={() => void act(() => props.client.approve(props.id, w().stepId, false, "cockpit"))}
                    >
                      Deny
                    </button>
                  </div>
                )}
              </Show>
              <Show when={r().waiting && r().waiting?.kind !== "approval" ? r().waiting : null}>
                {(w) => <span class="wait">Waiting: {w().kind}{w().until === null ? "" : ` until ${w().until}`}</span>}
              </Show>
              <Show when={r().status === "running"}>
                <button
                  type="button"
                  class="danger"
                  disabled={acting()}
                  onClick={() => void act(() => props.client.cancel(props.id, "canceled in the cockpit"))}
                >
                  Cancel run
                </button>
              </Show>
            </div>
            <Show when={r().output !== null && r().output !== undefined}>
              <h2>Output</h2>
              <pre class="output">{json(r().output)}</pre>
            </Show>
            <Show when={r().error}>{(e) => <p class="error">{e().code}: {e().message}</p>}</Show>
          </>
        )}
      </Loading>
      <LiveTokens client={props.client} runId={props.id} running={run()?.status === "running"} />
      <h2>Timeline</h2>
      <Show when={events().length > 0} fallback={<p class="empty">No events yet.</p>}>
        <Timeline entries={build(events())} />
      </Show>
      <ReceiptPanel client={props.client} runId={props.id} />
    </section>
  )
}
