// Conversations (issue 15): every channel thread and API session, most recently active first; and one session's turns
// (who said what, the run that answered, its answer and delivery), kept live over `GET /v1/sessions/{id}/stream`.
import { createResource, For, onCleanup, Show } from "solid-js"
import { ApiError, type Client } from "../api.ts"
import { createNow, messageOf } from "../clock.ts"
import { age, usd } from "../format.ts"
import { href } from "../route.ts"
import { createEventStream } from "../sse.ts"
import { Loading } from "../Loading.tsx"

/** The list is read again this often while shown (a session's page is live; the list is a summary). */
const RELIST_MS = 5_000

export const Sessions = (props: { readonly client: Client }) => {
  const [list, { refetch }] = createResource(() => props.client.listSessions())
  const timer = setInterval(() => Promise.resolve(refetch()).catch(() => undefined), RELIST_MS)
  onCleanup(() => clearInterval(timer))
  const now = createNow()
  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title">Sessions</h1>
      <Loading value={list.latest} error={list.error ? messageOf(list.error) : null} what="sessions">
        {(l) => (
          <Show
            when={l().items.length > 0}
            fallback={
              <p class="empty">
                No conversations yet. Connect a channel (lantern channels create) or open one with POST /v1/sessions.
              </p>
            }
          >
            <table class="runs" aria-labelledby="sessions-title">
              <thead>
                <tr>
                  <th scope="col">Conversation</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Agent</th>
                  <th scope="col" class="num">Turns</th>
                  <th scope="col" class="num">Cost</th>
                  <th scope="col">Active</th>
                </tr>
              </thead>
              <tbody>
                <For each={l().items}>
                  {(s) => (
                    <tr data-session-id={s.id}>
                      <td>
                        <a href={href({ view: "session", id: s.id })}>{s.thread}</a>
                      </td>
                      <td>{s.kind}</td>
                      <td>{s.agentName}</td>
                      <td class="num">{s.turns.length}</td>
                      <td class="num">{usd(s.costUsd)}</td>
                      <td title={s.updatedAt}>{age(s.updatedAt, now())} ago</td>
                    </tr>
                  )}
                </For>
              </tbody>
            </table>
          </Show>
        )}
      </Loading>
    </section>
  )
}

export const SessionDetail = (props: { readonly client: Client; readonly id: string }) => {
  const [session, { refetch }] = createResource(() => props.client.getSession(props.id))
  let timer: ReturnType<typeof setTimeout> | undefined
  // every event of the session (a turn received, its run, its answer, its delivery) reads it again, coalesced
  const stream = createEventStream(`/v1/sessions/${encodeURIComponent(props.id)}/stream`, {
    token: props.client.token,
    onMessage: () => {
      clearTimeout(timer)
      timer = setTimeout(() => Promise.resolve(refetch()).catch(() => undefined), 100)
    }
  })
  onCleanup(() => clearTimeout(timer))
  const loadError = () => {
    const e = session.error as unknown
    if (e === undefined) return null
    return e instanceof ApiError && e.status === 404 ? `No session ${props.id} in this tenant.` : messageOf(e)
  }
  return (
    <section aria-labelledby="session-title">
      <p>
        <a href={href({ view: "sessions" })}>← Sessions</a>
        <span class={`live ${stream.readyState()}`} role="status">
          {stream.readyState() === "open" ? " live" : " connecting…"}
        </span>
      </p>
      <Loading value={session.latest} error={loadError()} what="the session">
        {(s) => (
          <>
            <h1 id="session-title">Session {s().thread}</h1>
            <dl class="facts">
              <dt>Id</dt>
              <dd>
                <code>{s().id}</code>
              </dd>
              <dt>Kind</dt>
              <dd>{s().kind}{s().channelId === null ? "" : ` (channel ${s().channelId})`}</dd>
              <dt>Agent</dt>
              <dd>{s().agentName}</dd>
              <dt>Cost</dt>
              <dd>{usd(s().costUsd)} over {s().runs.length} runs</dd>
            </dl>
            <h2>Turns</h2>
            <Show when={s().turns.length > 0} fallback={<p class="empty">No turns yet.</p>}>
              <ol class="turns">
                <For each={s().turns}>
                  {(t) => (
                    <li data-turn={t.turn} data-turn-status={t.status}>
                      <p class="said">
                        <strong>{t.from}</strong> <span class="hint">{t.receivedAt}</span>
                      </p>
                      <p class="text">{t.text}</p>
                      <div class="answer">
                        <span class={`status ${t.status}`}>{t.status}</span>
                        <Show when={t.runId}>
                          {(r) => (
                            <>
                              {" "}
                              <a href={href({ view: "run", id: r() })}>{r()}</a>
                            </>
                          )}
                        </Show>
                        <Show when={t.delivery}>{(d) => <span class="hint">delivery {d()}</span>}</Show>
                        <Show when={t.answer} fallback={<p class="empty">No answer yet.</p>}>
                          {(a) => <p class="text">{a()}</p>}
                        </Show>
                      </div>
                    </li>
                  )}
                </For>
              </ol>
            </Show>
          </>
        )}
      </Loading>
    </section>
  )
}
