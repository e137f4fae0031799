// The live list of runs: status and agent filters, and a row per run with its status, agent@version, age, steps,
// tokens and cost, kept current by the tenant stream.
import { createMemo, createResource, createSignal, For, onCleanup, Show } from "solid-js"
import type { RunStatus } from "../../../schema/Run.ts"
import type { Client, RunFilter } from "../api.ts"
import { age, tokens, usd } from "../format.ts"
import { href } from "../route.ts"
import { createRunList } from "../runs.ts"
import { windowOf } from "../window.ts"

const STATUSES: ReadonlyArray<RunStatus> = ["running", "succeeded", "failed", "canceled"]

/** The current time, ticking each second while the view is shown (for the age column). */
const createNow = () => {
  const [now, setNow] = createSignal(Date.now())
  const timer = setInterval(() => setNow(Date.now()), 1000)
  onCleanup(() => clearInterval(timer))
  return now
}

/** Every row's height in pixels (style.css gives it too): the window of rendered rows is computed from it. */
const ROW_HEIGHT = 34

export const Runs = (props: { readonly client: Client }) => {
  const [filter, setFilter] = createSignal<RunFilter>({})
  const list = createRunList(props.client, filter)
  const [agents] = createResource(() => props.client.listAgents().then((a) => a.items.map((x) => x.name)))
  const now = createNow()
  // only the rows in view (and a margin) are in the DOM, so thousands of runs scroll and update smoothly
  let scroller: HTMLDivElement | undefined
  const [scrollTop, setScrollTop] = createSignal(0)
  const [viewport, setViewport] = createSignal(800)
  const [rowHeight, setRowHeight] = createSignal(ROW_HEIGHT)
  const measure = () => {
    setViewport(scroller?.clientHeight ?? 800)
    // the height a row really takes (borders, fonts), so the spacers stay true over thousands of rows
    const row = scroller?.querySelector("tbody tr[data-run-id]")
    if (row) setRowHeight(row.getBoundingClientRect().height || ROW_HEIGHT)
  }
  /** The scroller exists while there are rows: it is measured whenever its size changes. */
  const attach = (el: HTMLDivElement) => {
    scroller = el
    const observer = new ResizeObserver(measure)
    observer.observe(el)
    onCleanup(() => observer.disconnect())
  }
  const shown = createMemo(() =>
    windowOf({
      scrollTop: scrollTop(),
      viewport: viewport(),
      rowHeight: rowHeight(),
      count: list.rows().length,
      overscan: 10
    })
  )
  const visible = createMemo(() => list.rows().slice(shown().start, shown().end))
  const onScroll = () => {
    setScrollTop(scroller?.scrollTop ?? 0)
    if (list.hasMore() && shown().end >= list.rows().length - 20) void list.more()
  }
  const change = (next: RunFilter) => {
    setFilter(next)
    void list.reload()
  }

  return (
    <section aria-labelledby="runs-title">
      <div class="bar">
        <h1 id="runs-title">Runs</h1>
        <span class={`live ${list.live()}`} role="status" aria-live="polite">
          {list.live() === "open" ? "live" : list.live() === "connecting" ? "connecting…" : "offline"}
        </span>
        <label>
          Status{" "}
          <select
            name="status"
            onChange={(e) =>
              change({
                ...filter(),
                status: e.currentTarget.value === "" ? undefined : e.currentTarget.value as RunStatus
              })}
          >
            <option value="">any</option>
            <For each={STATUSES}>{(s) => <option value={s}>{s}</option>}</For>
          </select>
        </label>
        <label>
          Agent{" "}
          <select
            name="agent"
            onChange={(e) =>
              change({ ...filter(), agentName: e.currentTarget.value === "" ? undefined : e.currentTarget.value })}
          >
            <option value="">any</option>
            <For each={agents() ?? []}>{(name) => <option value={name}>{name}</option>}</For>
          </select>
        </label>
        <label>
          Created{" "}
          <select
            name="since"
            onChange={(e) => {
              const ms = Number(e.currentTarget.value)
              setFilter({ ...filter(), since: ms === 0 ? undefined : Date.now() - ms })
              list.refilter()
            }}
          >
            <option value="0">any time</option>
            <option value={String(3600_000)}>in the last hour</option>
            <option value={String(86_400_000)}>in the last 24 hours</option>
            <option value={String(7 * 86_400_000)}>in the last 7 days</option>
          </select>
        </label>
      </div>
      <Show when={list.error()}>{(message) => <p role="alert" class="error">{message()}</p>}</Show>
      <Show
        when={list.rows().length > 0}
        fallback={
          <p class="empty">
            {list.loading()
              ? "Loading runs…"
              : Object.values(filter()).some((v) => v !== undefined)
              ? "No runs match these filters."
              : "No runs yet. Start one from Agents."}
          </p>
        }
      >
        <div class="scroller" ref={attach} onScroll={onScroll}>
          <table class="runs" aria-rowcount={list.rows().length + 1}>
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Run</th>
                <th scope="col">Agent</th>
                <th scope="col">Age</th>
                <th scope="col" class="num">Steps</th>
                <th scope="col" class="num">Tokens in / out</th>
                <th scope="col" class="num">Cost</th>
              </tr>
            </thead>
            <tbody>
              <tr class="spacer" aria-hidden="true">
                <td colSpan={7} style={{ height: `${shown().top}px` }} />
              </tr>
              <For each={visible()}>
                {(run, i) => (
                  <tr data-run-id={run.id} data-status={run.status} aria-rowindex={shown().start + i() + 2}>
                    <td>
                      <span class={`status ${run.status}`}>
                        {run.waiting ? `waiting (${run.waiting.kind})` : run.status}
                      </span>
                    </td>
                    <td>
                      <a href={href({ view: "run", id: run.id })}>{run.id}</a>
                    </td>
                    <td>{run.agentName}@{run.agentVersion}</td>
                    <td title={run.createdAt}>{age(run.createdAt, now())}</td>
                    <td class="num">{run.steps}</td>
                    <td class="num">{tokens(run.tokensIn, run.tokensOut)}</td>
                    <td class="num">{usd(run.costUsd)}</td>
                  </tr>
                )}
              </For>
              <tr class="spacer" aria-hidden="true">
                <td colSpan={7} style={{ height: `${shown().bottom}px` }} />
              </tr>
            </tbody>
          </table>
        </div>
        <p class="hint">
          {list.rows().length} runs listed{list.hasMore() ? "; older ones load as you scroll" : ""}
        </p>
      </Show>
    </section>
  )
}
