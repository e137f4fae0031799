// Agents: each with its latest version and its versions, and a form that starts a run of it.
import { createResource, createSignal, For, Show } from "solid-js"
import type { AgentView } from "../../../schema/Agent.ts"
import type { Client } from "../api.ts"
import { href } from "../route.ts"

const Start = (props: { readonly client: Client; readonly agent: AgentView }) => {
  const [input, setInput] = createSignal("")
  const [error, setError] = createSignal<string | null>(null)
  const id = `input-${props.agent.name}`
  const start = async () => {
    setError(null)
    // JSON when it parses, else the text as it is
    let value: unknown = input()
    try {
      value = JSON.parse(input())
    } catch {
      // a plain string input
    }
    try {
      const run = await props.client.startRun(props.agent.name, value)
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
      <input id={id} value={input()} onInput={(e) => setInput(e.currentTarget.value)} />
      <button type="submit">Start a run</button>
      <Show when={error()}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>
    </form>
  )
}

const Versions = (props: { readonly client: Client; readonly name: string }) => {
  const [versions] = createResource(() => props.client.versions(props.name))
  return (
    <Show when={versions()} fallback={<p class="empty">Loading versions…</p>}>
      {(v) => (
        <ul class="versions">
          <For each={v().items}>
            {(x) => (
              <li>
                v{x.version} <code>{x.digest.slice(0, 19)}</code> {x.createdAt}
              </li>
            )}
          </For>
        </ul>
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
