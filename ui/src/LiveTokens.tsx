// The live text of a run's model step while it streams (ADR 0061), over GET /v1/runs/{id}/tokens: a preview that
// grows token by token; a reset (the router failed over) or a new step starts it over. The journal, shown in the
// timeline, stays the answer.
import { createSignal, onCleanup, Show } from "solid-js"
import type * as Sse from "../../schema/Sse.ts"
import type { Client } from "./api.ts"
import { makeEventStream } from "./sse.ts"

const TERMINAL = new Set(["RunSucceeded", "RunFailed", "RunCanceled"])

export interface Live {
  /** `stepId` and attempt of the text, or null before any. */
  readonly step: string | null
  readonly stepId: string | null
  readonly text: string
}

export const empty: Live = { step: null, stepId: null, text: "" }

/** The live text after a frame of the tokens stream. */
export const applyFrame = (live: Live, m: Sse.Message): Live => {
  if (m.event !== "token" && m.event !== "reset") return live
  const f = JSON.parse(m.data) as { stepId: string; attempt: number; text?: string }
  const step = `${f.stepId}:${f.attempt}`
  if (m.event === "reset") return step === live.step ? { ...live, text: "" } : live
  return step === live.step
    ? { ...live, text: live.text + (f.text ?? "") }
    : { step, stepId: f.stepId, text: f.text ?? "" }
}

/** Follows the run's tokens while it lives; shows nothing until the first token. */
const Follow = (props: { readonly client: Client; readonly runId: string }) => {
  const [live, setLive] = createSignal<Live>(empty)
  const stream = makeEventStream(`/v1/runs/${encodeURIComponent(props.runId)}/tokens`, {
    token: props.client.token,
    isLast: (m) => TERMINAL.has(m.event),
    onMessage: (m) => setLive((l) => applyFrame(l, m))
  })
  onCleanup(stream.close)
  return (
    <Show when={live().text !== "" ? live() : null}>
      {(l) => (
        <section class="live-tokens" aria-label="Live model output">
          <h2>Live: step {l().stepId}</h2>
          <pre class="output" data-live-tokens={l().step ?? ""} aria-live="polite" aria-busy="true">{l().text}</pre>
        </section>
      )}
    </Show>
  )
}

/** The live text of the model step in progress, while `running`. */
export const LiveTokens = (props: { readonly client: Client; readonly runId: string; readonly running: boolean }) => (
  <Show when={props.running}>
    <Follow client={props.client} runId={props.runId} />
  </Show>
)
