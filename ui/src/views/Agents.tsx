// Agents: each with its latest version and its versions (two of them compared side by side), and a form that
// forecasts what a run of an input would cost and starts it.
import { createResource, createSignal, For, Show } from "solid-js"
import type { AgentView } from "../../../schema/Agent.ts"
import type { ForecastResponse } from "../../../schema/Forecast.ts"
import type { Client } from "../api.ts"
import { usd } from "../format.ts"
import { href } from "../route.ts"
import { AgentDiff } from "./AgentDiff.tsx"

/** JSON when it parses, else the text as it is. */
const inputOf = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const Forecast = (props: { readonly f: ForecastResponse }) => (
  <p class="forecast" role="status" data-forecast={props.f.wouldExceedBudget ? "over-budget" : "ok"}>
    Forecast: {usd(props.f.p50)} (80% between {usd(props.f.p10)} and {usd(props.f.p90)}), about{" "}
    {props.f.estimatedTokensIn.toLocaleString()} tokens in and {props.f.estimatedTokensOut.toLocaleString()} out;{" "}
    {props.f.confidenceLabel} confidence, from {props.f.basis.method === "prior"
      ? "the spec and prices alone"
      : `${props.f.basis.runs} runs of v${props.f.basis.agentVersion}`}.
    <Show when={props.f.wouldExceedBudget}>
      <strong class="error">A run costing the p90 would break a hard budget cap: it would be refused.</strong>
    </Show>
  </p>
)

const Start = (props: { readonly client: Client; readonly agent: AgentView }) => {
  const [input, setInput] = createSignal("")
  const [error, setError] = createSignal<string | null>(null)
  const [forecast, setForecast] = createSignal<ForecastResponse | null>(null)
  const id = `input-${props.agent.name}`
  const estimate = async () => {
    setError(null)
    try {
      setForecast(await props.client.forecast(props.agent.name, inputOf(input())))
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e))
    }
  }
  const start = async () => {
    setError(null)
    try {
      const run = await props.client.startRun(props.agent.name, inputOf(input()))
      location.hash = href({ view: "run", id: run.id })
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e))
    }
  }
  return (
    <form
      class="start"
      onSubmit={(e) => {
        e.preventDefault()
        void start()
      }}
    >
      <label for={id}>Input for {props.agent.name}</label>
      <input
        id={id}
        value={input()}
        onInput={(e) => {
          setInput(e.currentTarget.value)
          setForecast(null)
        }}
      />
      <button type="button" class="quiet" onClick={() => void estimate()}>Forecast cost</button>
      <button type="submit">Start a run</button>
      <Show when={forecast()}>{(f) => <Forecast f={f()} />}</Show>
      <Show when={error()}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>
    </form>
  )
}

const Versions = (props: { readonly client: Client; readonly name: string }) => {
  const [versions] = createResource(() => props.client.versions(props.name))
  return (
    <Show
      when={versions()}
      fallback={versions.error
        ? <p role="alert" class="error">{String(versions.error.message ?? versions.error)}</p>
        : <p class="empty">Loading versions…</p>}
    >
      {(v) => (
        <>
          <ul class="versions">
            <For each={v().items}>
              {(x) => (
                <li>
                  v{x.version} <code>{x.digest.slice(0, 19)}</code> {x.createdAt}
                </li>
              )}
            </For>
          </ul>
          <Show when={v().items.length > 1}>
            <AgentDiff name={props.name} versions={v().items} />
          </Show>
        </>
      )}
    </Show>
  )
}

export const Agents = (props: { readonly client: Client }) => {
  const [agents] = createResource(() => props.client.listAgents())
  const [open, setOpen] = createSignal<string | null>(null)
  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents</h1>
      <Show when={agents.error}>{(e) => <p role="alert" class="error">{String(e())}</p>}</Show>
      <Show when={agents()} fallback={<p class="empty">Loading agents…</p>}>
        {(list) => (
          <Show
            when={list().items.length > 0}
            fallback={<p class="empty">No agents yet: create one with the API or the CLI.</p>}
          >
            <ul class="agents">
              <For each={list().items}>
                {(agent) => (
                  <li data-agent={agent.name}>
                    <div class="head">
                      <strong>{agent.name}</strong> v{agent.latestVersion} <span class="hint">{agent.description}</span>
                      <button
                        type="button"
                        class="quiet"
                        aria-expanded={open() === agent.name}
                        onClick={() => setOpen(open() === agent.name ? null : agent.name)}
                      >
                        Versions
                      </button>
                    </div>
                    <Show when={open() === agent.name}>
                      <Versions client={props.client} name={agent.name} />
                    </Show>
                    <Start client={props.client} agent={agent} />
                  </li>
                )}
              </For>
            </ul>
          </Show>
        )}
      </Show>
    </section>
  )
}
