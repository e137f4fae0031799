// Spend: the tenant's budget today (spent and reserved against its caps, soft-cap alerts), and per agent its cost per
// UTC day as a chart with runs and tokens, and its own budget. Read from `/v1/budget`, `/v1/agents/{name}/budget` and
// `/usage`; it needs the scope budgets:read. Each budget's caps can be set from the page (budgets:write).
import { createResource, createSignal, For, Show } from "solid-js"
import type { BudgetLimits, BudgetResponse, Cap, UsageResponse } from "../../../schema/Budget.ts"
import { ApiError, type Client } from "../api.ts"
import { tokens, usd } from "../format.ts"

const DAYS = 14

/** The last `n` UTC days, oldest first (YYYY-MM-DD), ending today. */
export const lastDays = (n: number, now: number): ReadonlyArray<string> =>
  Array.from({ length: n }, (_, i) => new Date(now - (n - 1 - i) * 86_400_000).toISOString().slice(0, 10))

const message = (e: unknown) =>
  e instanceof ApiError && e.status === 403
    ? "This key lacks the scope budgets:read, which spend and budgets need."
    : e instanceof Error
    ? e.message
    : String(e)

/** The caps as the form names them, and whether each is in US dollars (else a whole count). */
export const CAP_LABELS: Readonly<Record<Cap, { readonly label: string; readonly usd: boolean }>> = {
  maxCostUsdPerRun: { label: "Cost per run (USD)", usd: true },
  maxCostUsdPerDay: { label: "Cost per day (USD)", usd: true },
  maxRunsPerDay: { label: "Runs per day", usd: false },
  maxTokensPerRun: { label: "Tokens per run", usd: false },
  maxToolCallsPerRun: { label: "Tool calls per run", usd: false }
}
/** Every cap, in the order schema/Budget.ts checks them (the cockpit takes that module's types alone). */
const CAPS = Object.keys(CAP_LABELS) as ReadonlyArray<Cap>

/**
 * The caps a form's fields say (an empty field: not enforced), or the first field that is not a cap, named, as the
 * API would refuse it (USD: a number from 0 to 1e9; counts: a whole number from 0 to 1e12).
 */
export const limitsFrom = (
  fields: Readonly<Partial<Record<Cap, string>>>,
  hardFail: boolean
): { readonly limits: BudgetLimits } | { readonly field: Cap; readonly message: string } => {
  const limits: { -readonly [K in keyof BudgetLimits]: BudgetLimits[K] } = { hardFail }
  for (const cap of CAPS) {
    const text = (fields[cap] ?? "").trim()
    if (text === "") continue
    const { label, usd } = CAP_LABELS[cap]
    const n = Number(text)
    if (!Number.isFinite(n) || n < 0 || n > (usd ? 1e9 : 1e12) || (!usd && !Number.isInteger(n)))
      return {
        field: cap,
        message: `${label}: ${usd ? "a number of dollars from 0 to 1e9" : "a whole number from 0 to 1e12"}, or empty`
      }
    limits[cap] = n
  }
  return { limits }
}

/** The form that sets a budget's caps whole; `save` answers the budget as set. */
const BudgetForm = (props: {
  readonly budget: BudgetResponse
  readonly save: (limits: BudgetLimits) => Promise<BudgetResponse>
  readonly saved: (budget: BudgetResponse) => void
}) => {
  const initial = Object.fromEntries(CAPS.map((c) => [c, String(props.budget.limits?.[c] ?? "")]))
  const [fields, setFields] = createSignal<Partial<Record<Cap, string>>>(initial)
  const [hardFail, setHardFail] = createSignal(props.budget.limits?.hardFail ?? true)
  const [error, setError] = createSignal<string | null>(null)
  const [busy, setBusy] = createSignal(false)
  const idOf = (cap: Cap) => `cap-${props.budget.scope.replace(/[^a-zA-Z0-9_-]/g, "-")}-${cap}`
  const submit = async () => {
    const checked = limitsFrom(fields(), hardFail())
    if ("field" in checked) {
      setError(checked.message)
      document.getElementById(idOf(checked.field))?.focus()
      return
    }
    setBusy(true)
    try {
      props.saved(await props.save(checked.limits))
      setError(null)
    } catch (e) {
      setError(
        e instanceof ApiError && e.status === 403
          ? "This key lacks the scope budgets:write, which setting a budget needs."
          : e instanceof Error
          ? e.message
          : String(e)
      )
    } finally {
      setBusy(false)
    }
  }
  return (
    <details class="budget-form">
      <summary>Set caps</summary>
      <form
        aria-label={`Caps of ${props.budget.scope}`}
        onSubmit={(e) => {
          e.preventDefault()
          void submit()
        }}
      >
        <For each={CAPS}>
          {(cap) => (
            <p>
              <label for={idOf(cap)}>{CAP_LABELS[cap].label}</label>{" "}
              <input
                id={idOf(cap)}
                name={cap}
                inputmode="decimal"
                placeholder="not enforced"
                value={fields()[cap] ?? ""}
                onInput={(e) => setFields({ ...fields(), [cap]: e.currentTarget.value })}
              />
            </p>
          )}
        </For>
        <p>
          <label>
            <input type="checkbox" checked={hardFail()} onChange={(e) => setHardFail(e.currentTarget.checked)} />{" "}
            Hard: refuse what would break a cap (HTTP 402); else alert only
          </label>
        </p>
        <Show when={error()}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>
        <button type="submit" class="primary" disabled={busy()}>Save caps</button>
      </form>
    </details>
  )
}

/** Today's spend and reservations against a budget's day cap, and its other caps and alerts. */
const Today = (props: { readonly budget: BudgetResponse }) => {
  const cap = () => props.budget.limits?.maxCostUsdPerDay
  return (
    <div class="budget" data-scope={props.budget.scope}>
      <p>
        Today ({props.budget.today.day}): {usd(props.budget.today.spentUsd)} spent,{" "}
        {usd(props.budget.today.reservedUsd)} reserved, {props.budget.today.runs} runs,{" "}
        {props.budget.today.tokens.toLocaleString()} tokens
      </p>
      <Show
        when={cap()}
        fallback={<p class="hint">{props.budget.limits === null ? "No budget set." : "No daily cost cap."}</p>}
      >
        {(limit) => (
          <label>
            Day cap {usd(limit())} ({props.budget.limits?.hardFail ? "hard" : "soft"}){" "}
            <meter
              min={0}
              max={limit()}
              high={limit() * 0.8}
              value={props.budget.today.spentUsd + props.budget.today.reservedUsd}
            />
          </label>
        )}
      </Show>
      <For each={props.budget.alerts}>{(a) => <p class="error" role="status">Alert: {a}</p>}</For>
    </div>
  )
}

/**
 * Cost per day as bars, or runs per day while nothing cost anything (the offline provider is free); an SVG of
 * attributes only, since the page's policy allows no inline style.
 */
const Chart = (props: { readonly usage: UsageResponse; readonly days: ReadonlyArray<string> }) => {
  const byDay = () => new Map(props.usage.days.map((d) => [d.day, d]))
  const byCost = () => props.usage.days.some((d) => d.costUsd > 0)
  const valueOf = (d: UsageResponse["days"][number]) => (byCost() ? d.costUsd : d.runs)
  const max = () => Math.max(0, ...props.usage.days.map(valueOf))
  const width = 16
  const height = 60
  return (
    <svg
      class="chart"
      width={props.days.length * width}
      height={height}
      role="img"
      data-measure={byCost() ? "cost" : "runs"}
      aria-label={`${
        byCost() ? "Cost" : "Runs"
      } per day of ${props.usage.agentName} over the last ${props.days.length} days`}
    >
      <line x1={0} y1={height - 0.5} x2={props.days.length * width} y2={height - 0.5} />
      <For each={props.days}>
        {(day, i) => {
          const d = () => byDay().get(day)
          const h = () => (max() === 0 || d() === undefined ? 0 : Math.max(1, (valueOf(d()!) / max()) * (height - 2)))
          return (
            <rect x={i() * width + 2} y={height - h()} width={width - 4} height={h()} data-day={day}>
              <title>
                {day}: {usd(d()?.costUsd ?? 0)}, {d()?.runs ?? 0} runs
              </title>
            </rect>
          )
        }}
      </For>
    </svg>
  )
}

const AgentSpend = (
  props: { readonly client: Client; readonly name: string; readonly days: ReadonlyArray<string> }
) => {
  const [usage] = createResource(() => props.client.usage(props.name, DAYS))
  const [budget, { mutate }] = createResource(() => props.client.agentBudget(props.name))
  const total = (u: UsageResponse) =>
    u.days.reduce((t, d) => ({ runs: t.runs + d.runs, tin: t.tin + d.tokensIn, tout: t.tout + d.tokensOut }), {
      runs: 0,
      tin: 0,
      tout: 0
    })
  return (
    <li data-agent-spend={props.name}>
      <h3>{props.name}</h3>
      <Show when={usage.error ?? budget.error}>{(e) => <p role="alert" class="error">{message(e())}</p>}</Show>
      <Show when={usage()} fallback={<p class="empty">Loading usage…</p>}>
        {(u) => (
          <>
            <Chart usage={u()} days={props.days} />
            <p class="detail" data-usage>
              {DAYS} days: {usd(u().totalCostUsd)}, {total(u()).runs} runs, {tokens(total(u()).tin, total(u()).tout)}
              {" "}
              tokens in / out
            </p>
          </>
        )}
      </Show>
      <Show when={budget()}>
        {(b) => (
          <>
            <Today budget={b()} />
            <BudgetForm budget={b()} save={(l) => props.client.setBudget(props.name, l)} saved={mutate} />
          </>
        )}
      </Show>
    </li>
  )
}

export const Spend = (props: { readonly client: Client }) => {
  const [tenant, { mutate }] = createResource(() => props.client.tenantBudget())
  const [agents] = createResource(() => props.client.listAgents())
  const days = lastDays(DAYS, Date.now())
  return (
    <section aria-labelledby="spend-title">
      <h1 id="spend-title">Spend</h1>
      <h2>Tenant</h2>
      <Show when={tenant.error}>{(e) => <p role="alert" class="error">{message(e())}</p>}</Show>
      <Show when={tenant()}>
        {(b) => (
          <>
            <Today budget={b()} />
            <BudgetForm budget={b()} save={(l) => props.client.setBudget(null, l)} saved={mutate} />
          </>
        )}
      </Show>
      <h2>Agents</h2>
      <Show when={agents()} fallback={<p class="empty">Loading agents…</p>}>
        {(list) => (
          <Show when={list().items.length > 0} fallback={<p class="empty">No agents yet.</p>}>
            <ul class="spend">
              <For each={list().items}>{(a) => <AgentSpend client={props.client} name={a.name} days={days} />}</For>
            </ul>
          </Show>
        )}
      </Show>
    </section>
  )
}
