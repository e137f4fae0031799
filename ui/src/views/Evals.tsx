// Evals and experiments (ADR 0057, 0058): the tenant's eval suites (run one from here), the baselines they are held to,
// and the A/B experiments with each arm's figures, the lift and the verdict; and one eval run, its cases filling in
// live over `GET /v1/eval-runs/{id}/stream` until it finishes, with its score against its baseline.
import { createMemo, createResource, createSignal, For, onCleanup, Show } from "solid-js"
import type { ExperimentView } from "../../../schema/Experiment.ts"
import { ApiError, type Client } from "../api.ts"
import { messageOf } from "../clock.ts"
import { json, usd } from "../format.ts"
import { href } from "../route.ts"
import { makeEventStream } from "../sse.ts"
import { Loading } from "../Loading.tsx"

const pct = (n: number | null | undefined): string => (n === null || n === undefined ? "-" : `${(n * 100).toFixed(1)}%`)

/** What an experiment came to, in words: its winner and whether that promoted the variant, or that it still runs. */
export const verdictOf = (e: ExperimentView): string =>
  e.status === "running"
    ? "running"
    : `${e.winner ?? "no"} won${e.promoted ? ", variant promoted" : ""}${e.reason === null ? "" : ` (${e.reason})`}`

const Experiment = (props: { readonly client: Client; readonly e: ExperimentView }) => {
  const [open, setOpen] = createSignal(false)
  const [figures] = createResource(() => (open() ? props.e.id : null), (id) => props.client.getExperiment(id))
  return (
    <li data-experiment={props.e.name}>
      <div class="head">
        <strong>{props.e.name}</strong>
        <span>
          {props.e.agentName}: v{props.e.control} against v{props.e.variant}{" "}
          ({props.e.trafficPercent}% to the variant, by {props.e.metric})
        </span>
        <span class={`status ${props.e.status === "running" ? "running" : "succeeded"}`} data-verdict>
          {verdictOf(figures.latest ?? props.e)}
        </span>
        <button
          type="button"
          class="quiet"
          aria-expanded={open()}
          aria-label={`${open() ? "Hide figures" : "Figures"} of ${props.e.name}`}
          onClick={() => setOpen(!open())}
        >
          {open() ? "Hide figures" : "Figures"}
        </button>
      </div>
      <Show when={open()}>
        <Show when={figures.error}>{(e) => <p role="alert" class="error">{messageOf(e())}</p>}</Show>
        <Show when={figures.latest} fallback={<p class="empty">Loading the figures…</p>}>
          {(f) => (
            <>
              <table class="runs arms">
                <caption>Lift (variant minus control): {f().lift === undefined ? "-" : pct(f().lift)}</caption>
                <thead>
                  <tr>
                    <th scope="col">Arm</th>
                    <th scope="col" class="num">Version</th>
                    <th scope="col" class="num">Runs</th>
                    <th scope="col" class="num">Success</th>
                    <th scope="col" class="num">Scored</th>
                    <th scope="col" class="num">Score</th>
                    <th scope="col" class="num">Cost</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={f().results ?? []}>
                    {(a) => (
                      <tr data-arm={a.arm}>
                        <td>{a.arm}</td>
                        <td class="num">{a.version}</td>
                        <td class="num">{a.runs}</td>
                        <td class="num">{pct(a.successRate)}</td>
                        <td class="num">{a.scored}</td>
                        <td class="num">{pct(a.score)}</td>
                        <td class="num">{usd(a.costUsd)}</td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </>
          )}
        </Show>
      </Show>
    </li>
  )
}

export const Evals = (props: { readonly client: Client }) => {
  const [suites] = createResource(() => props.client.listSuites())
  const [experiments] = createResource(() => props.client.listExperiments())
  const agents = createMemo(() => [...new Set((suites.latest?.items ?? []).map((s) => s.agentName))].sort())
  const [baselines] = createResource(
    agents,
    async (names) => (await Promise.all(names.map((n) => props.client.baselines(n)))).flatMap((b) => b.items)
  )
  const [error, setError] = createSignal<string | null>(null)
  const [starting, setStarting] = createSignal<string | null>(null)
  const run = async (suiteId: string) => {
    setStarting(suiteId)
    setError(null)
    try {
      const { id } = await props.client.startEvalRun(suiteId)
      location.hash = href({ view: "evalRun", id })
    } catch (e) {
      setError(messageOf(e))
    } finally {
      setStarting(null)
    }
  }
  const suiteName = (id: string) => suites.latest?.items.find((s) => s.id === id)?.name ?? id
  return (
    <section aria-labelledby="evals-title">
      <h1 id="evals-title">Evals</h1>
      <Show when={error()}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>
      <h2 id="suites-title">Suites</h2>
      <Loading value={suites.latest} error={suites.error ? messageOf(suites.error) : null} what="suites">
        {(l) => (
          <Show
            when={l().items.length > 0}
            fallback={<p class="empty">No eval suites yet. Save one with POST /v1/eval-suites or lantern eval.</p>}
          >
            <table class="runs" aria-labelledby="suites-title">
              <thead>
                <tr>
                  <th scope="col">Suite</th>
                  <th scope="col">Agent</th>
                  <th scope="col" class="num">Version</th>
                  <th scope="col" class="num">Cases</th>
                  <th scope="col" class="num">Tolerance</th>
                  <th scope="col">Run</th>
                </tr>
              </thead>
              <tbody>
                <For each={l().items}>
                  {(s) => (
                    <tr data-suite={s.name}>
                      <td title={s.description}>{s.name}</td>
                      <td>{s.agentName}</td>
                      <td class="num">{s.version}</td>
                      <td class="num">{s.cases.length}</td>
                      <td class="num">{s.tolerance}</td>
                      <td>
                        <button
                          type="button"
                          class="quiet"
                          disabled={starting() !== null}
                          aria-label={`Run the suite ${s.name}`}
                          onClick={() => void run(s.id)}
                        >
                          {starting() === s.id ? "Starting…" : "Run"}
                        </button>
                      </td>
                    </tr>
                  )}
                </For>
              </tbody>
            </table>
          </Show>
        )}
      </Loading>
      <h2 id="baselines-title">Baselines</h2>
      <Show when={baselines.error}>{(e) => <p role="alert" class="error">{messageOf(e())}</p>}</Show>
      <Show
        when={(baselines.latest ?? []).length > 0}
        fallback={
          <p class="empty">
            {baselines.loading ? "Loading baselines…" : "No baselines yet: set one with POST /v1/eval-baselines."}
          </p>
        }
      >
        <table class="runs" aria-labelledby="baselines-title">
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">Suite</th>
              <th scope="col">Branch</th>
              <th scope="col" class="num">Score</th>
              <th scope="col">Eval run</th>
            </tr>
          </thead>
          <tbody>
            <For each={baselines.latest ?? []}>
              {(b) => (
                <tr>
                  <td>{b.agentName}</td>
                  <td>{suiteName(b.suiteId)}</td>
                  <td>{b.branch}</td>
                  <td class="num">{pct(b.score)}</td>
                  <td>
                    <a href={href({ view: "evalRun", id: b.evalRunId })}>{b.evalRunId}</a>
                  </td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </Show>
      <h2>Experiments</h2>
      <Loading
        value={experiments.latest}
        error={experiments.error ? messageOf(experiments.error) : null}
        what="experiments"
      >
        {(l) => (
          <Show
            when={l().items.length > 0}
            fallback={<p class="empty">No experiments yet. Start one with POST /v1/experiments.</p>}
          >
            <ul class="agents experiments">
              <For each={l().items}>{(e) => <Experiment client={props.client} e={e} />}</For>
            </ul>
          </Show>
        )}
      </Loading>
    </section>
  )
}

export const EvalRun = (props: { readonly client: Client; readonly id: string }) => {
  const [run, { refetch }] = createResource(() => props.client.getEvalRun(props.id))
  let timer: ReturnType<typeof setTimeout> | undefined
  const [live, setLive] = createSignal<"connecting" | "open" | "closed">("connecting")
  const stream = makeEventStream(`/v1/eval-runs/${encodeURIComponent(props.id)}/stream`, {
    token: props.client.token,
    onState: setLive,
    isLast: (m) => m.event === "finished",
    onMessage: () => {
      clearTimeout(timer)
      timer = setTimeout(() => Promise.resolve(refetch()).catch(() => undefined), 100)
    }
  })
  onCleanup(() => {
    clearTimeout(timer)
    stream.close()
  })
  const loadError = () => {
    const e = run.error as unknown
    if (e === undefined) return null
    return e instanceof ApiError && e.status === 404 ? `No eval run ${props.id} in this tenant.` : messageOf(e)
  }
  return (
    <section aria-labelledby="eval-run-title">
      <p>
        <a href={href({ view: "evals" })}>← Evals</a>
      </p>
      <Loading value={run.latest} error={loadError()} what="the eval run">
        {(r) => (
          <>
            <div class="bar">
              <h1 id="eval-run-title">Eval run {r().id}</h1>
              <span class={`live ${live()}`} role="status">
                {r().status === "finished" ? "finished" : live() === "open" ? "live" : "connecting…"}
              </span>
            </div>
            <dl class="facts" data-eval-status={r().status}>
              <dt>Agent</dt>
              <dd>{r().agentName}@{r().agentVersion}</dd>
              <dt>Progress</dt>
              <dd>
                <progress max={r().casesTotal} value={r().casesDone} aria-label="Cases done" /> {r().casesDone} of{" "}
                {r().casesTotal} cases, {r().casesPassed} passed
              </dd>
              <dt>Score</dt>
              <dd data-score>{pct(r().score)}</dd>
              <dt>Verdict</dt>
              <dd data-eval-verdict={r().passed === null ? "pending" : r().passed ? "passed" : "failed"}>
                {r().passed === null ? "pending" : r().passed ? "passed" : "failed"}
                {r().regressed ? ", regressed against the baseline" : ""}
              </dd>
              <dt>Baseline</dt>
              <dd>
                {pct(r().baselineScore)}
                <Show when={r().baselineRunId}>
                  {(b) => (
                    <>
                      {" "}
                      <a href={href({ view: "evalRun", id: b() })}>{b()}</a>
                    </>
                  )}
                </Show>
              </dd>
              <dt>Cost</dt>
              <dd>{usd(r().costUsd)}</dd>
            </dl>
            <h2>Cases</h2>
            <Show when={r().cases.length > 0} fallback={<p class="empty">No case finished yet.</p>}>
              <table class="runs cases">
                <thead>
                  <tr>
                    <th scope="col">Case</th>
                    <th scope="col">Result</th>
                    <th scope="col" class="num">Score</th>
                    <th scope="col">Failures and verdicts</th>
                    <th scope="col">Run</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={r().cases}>
                    {(c) => (
                      <tr data-case={c.name} data-passed={String(c.passed)}>
                        <td>{c.name}</td>
                        <td>
                          <span class={`status ${c.passed ? "succeeded" : "failed"}`}>
                            {c.errored ? "errored" : c.passed ? "passed" : "failed"}
                          </span>
                        </td>
                        <td class="num">{pct(c.score)}</td>
                        <td>
                          {[...c.failures, ...c.verdicts.map((v) => `judge ${pct(v.score)}: ${v.reasoning}`)].join(
                            "; "
                          )}
                          <Show when={c.actual !== null && c.actual !== undefined}>
                            <details>
                              <summary>answer</summary>
                              <pre>{json(c.actual)}</pre>
                            </details>
                          </Show>
                        </td>
                        <td>
                          <Show when={c.runId}>{(id) => <a href={href({ view: "run", id: id() })}>run</a>}</Show>
                        </td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </Show>
          </>
        )}
      </Loading>
    </section>
  )
}
