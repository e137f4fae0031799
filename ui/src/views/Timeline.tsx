// The timeline of a run's journal: its start, each step with its attempts (model and routing, tool call and result,
// failures and retries, waits), and its end.
import { For, Match, Show, Switch } from "solid-js"
import { json, tokens, usd } from "../format.ts"
import { href } from "../route.ts"
import type { Attempt, Entry, Step } from "../timeline.ts"

const record = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : {}

const what = (step: Step): string => {
  const r = step.request
  const call = record(r["call"])
  switch (step.kind) {
    case "model":
      return `model ${String(r["model"])} (turn ${String(r["turn"])})`
    case "tool":
      return `tool ${String(call["name"])}`
    case "sleep":
      return `sleep ${String(r["seconds"])} s`
    case "approval":
      return `approval of ${String(call["name"])}`
    case "agent":
      return `child run of ${String(r["agentName"])}`
    default:
      return step.kind
  }
}

/** The router's attempts that failed before the one it chose (or before it gave up). */
const failedRoutes = (route: Record<string, unknown> | null): ReadonlyArray<Record<string, unknown>> =>
  Array.isArray(route?.["attempts"]) ? (route["attempts"] as ReadonlyArray<unknown>).map(record) : []

/** Steps that wait for something outside the run: a running attempt of one is waiting. */
const WAITS = new Set(["sleep", "approval", "agent"])

const AttemptView = (props: { readonly step: Step; readonly attempt: Attempt }) => {
  const result = () => props.attempt.result ?? {}
  const answer = () => record(result()["answer"])
  return (
    <li class={`attempt ${props.attempt.outcome}`} data-outcome={props.attempt.outcome}>
      <span class="label">
        attempt {props.attempt.attempt}: {props.attempt.outcome === "running" && WAITS.has(props.step.kind)
          ? "waiting"
          : props.attempt.outcome}
      </span>
      <Show when={props.attempt.route}>
        {(route) => (
          <span class="route">
            routed {String(route()["alias"])} → {String(route()["chosen"] ?? "none")}: {String(route()["reason"])}
          </span>
        )}
      </Show>
      <Switch>
        <Match when={result()["_tag"] === "model"}>
          <span class="detail">
            {String(answer()["provider"])}/{String(answer()["model"])},{" "}
            {tokens(props.attempt.tokensIn, props.attempt.tokensOut)} tokens, {usd(props.attempt.costUsd)}
          </span>
          <Show when={typeof answer()["content"] === "string"}>
            <pre class="output">{String(answer()["content"])}</pre>
          </Show>
          <For each={(answer()["toolCalls"] ?? []) as ReadonlyArray<Record<string, unknown>>}>
            {(call) => <pre class="call">→ {String(call["name"])}({json(call["arguments"])})</pre>}
          </For>
        </Match>
        <Match when={result()["_tag"] === "tool"}>
          <pre class="output">{String(result()["output"])}</pre>
        </Match>
        <Match when={result()["_tag"] === "approval"}>
          <span class="detail">
            {result()["approved"] === true ? "approved" : "denied"} by {String(result()["by"])}
            {result()["reason"] ? `: ${String(result()["reason"])}` : ""}
          </span>
        </Match>
      </Switch>
      <For each={failedRoutes(props.attempt.route)}>
        {(a) => (
          <span class="detail route-attempt">
            tried {String(a["provider"])}/{String(a["model"])}: {String(a["code"])} {String(a["message"])}
          </span>
        )}
      </For>
      <Show when={props.attempt.error}>
        {(error) => (
          <span class="error">
            {error().code}: {error().message}
            {props.attempt.retryAt === null ? "" : `; retried at ${new Date(props.attempt.retryAt).toISOString()}`}
          </span>
        )}
      </Show>
    </li>
  )
}

const StepView = (props: { readonly step: Step }) => {
  const call = () => record(props.step.request["call"])
  return (
    <li class={`step ${props.step.kind}`} data-step-id={props.step.stepId} data-kind={props.step.kind}>
      <div class="head">
        <span class="kind">{props.step.kind}</span> <span class="what">{what(props.step)}</span>
        <Show when={props.step.wakeAt}>
          {(at) => <span class="wait">waits until {new Date(at()).toISOString()}</span>}
        </Show>
      </div>
      <Show
        when={typeof props.step.request["childRunId"] === "string" ? String(props.step.request["childRunId"]) : null}
      >
        {(child) => (
          <span class="detail">
            child run <a href={href({ view: "run", id: child() })}>{child()}</a>
          </span>
        )}
      </Show>
      <Show when={props.step.kind !== "model" && props.step.request["call"] !== undefined}>
        <pre class="call">{String(call()["name"])}({json(call()["arguments"])})</pre>
      </Show>
      <ol class="attempts">
        <For each={props.step.attempts}>{(a) => <AttemptView step={props.step} attempt={a} />}</For>
      </ol>
    </li>
  )
}

export const Timeline = (props: { readonly entries: ReadonlyArray<Entry> }) => (
  <ol class="timeline" aria-label="Journal timeline">
    <For each={props.entries}>
      {(entry) => (
        <Switch>
          <Match when={entry._tag === "start" ? entry : null}>
            {(e) => (
              <li class="step start">
                <div class="head">
                  <span class="kind">start</span> {e().agent}@{e().version} at {e().at}
                </div>
                <pre class="output">{json(e().input)}</pre>
              </li>
            )}
          </Match>
          <Match when={entry._tag === "step" ? entry.step : null}>{(s) => <StepView step={s()} />}</Match>
          <Match when={entry._tag === "end" ? entry : null}>
            {(e) => (
              <li class={`step end ${e().type}`} data-end={e().type}>
                <div class="head">
                  <span class="kind">end</span> {e().type} at {e().at}
                </div>
                <pre class="output">{json(e().detail)}</pre>
              </li>
            )}
          </Match>
        </Switch>
      )}
    </For>
  </ol>
)
