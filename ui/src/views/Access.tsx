// Access and audit: the tenant's API keys (create with scopes and an optional expiry, the key shown once; revoke),
// and the audit log, newest first, by action and day. Needs keys:read, keys:write and audit:read.
import { createResource, createSignal, For, Show } from "solid-js"
import type { AuditEntryResponse, AuditQuery } from "../../../schema/Audit.ts"
import { ApiError, type Client } from "../api.ts"

/** The scopes a key may hold (README, Tenants and API keys); the server refuses any beyond the caller's own. */
const SCOPES = [
  "runs:read",
  "runs:write",
  "agents:read",
  "agents:write",
  "budgets:read",
  "budgets:write",
  "receipts:read",
  "audit:read",
  "keys:read",
  "keys:write",
  "secrets:read",
  "secrets:write"
] as const

/** Actions to filter the log by; each is one the API accepts (the type checks it). */
const ACTIONS = [
  "auth.failed",
  "scope.denied",
  "api_key.created",
  "api_key.revoked",
  "tenant.created",
  "secret.created",
  "secret.accessed",
  "secret.deleted",
  "receipt.issued"
] as const satisfies ReadonlyArray<NonNullable<AuditQuery["action"]>>

const message = (e: unknown) =>
  e instanceof ApiError && e.status === 403 ? `This key lacks a scope this needs: ${e.message}` : String(
    e instanceof Error ? e.message : e
  )

const Keys = (props: { readonly client: Client }) => {
  const [keys, { refetch }] = createResource(() => props.client.listKeys())
  const [name, setName] = createSignal("")
  const [scopes, setScopes] = createSignal<ReadonlyArray<string>>(["runs:read"])
  const [expires, setExpires] = createSignal("")
  const [shown, setShown] = createSignal<{ readonly name: string; readonly key: string } | null>(null)
  const [error, setError] = createSignal<string | null>(null)

  const create = async () => {
    setError(null)
    try {
      const made = await props.client.createKey({
        name: name().trim(),
        scopes: scopes(),
        ...(expires() === "" ? {} : { expiresAt: new Date(expires()).toISOString() })
      })
      setShown({ name: made.name, key: made.key })
      setName("")
      void refetch()
    } catch (e) {
      setError(message(e))
    }
  }
  const revoke = async (id: string) => {
    setError(null)
    try {
      await props.client.revokeKey(id)
      void refetch()
    } catch (e) {
      setError(message(e))
    }
  }

  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <Show when={error() ?? (keys.error === undefined ? null : message(keys.error))}>
        {(m) => <p role="alert" class="error">{m()}</p>}
      </Show>
      <Show when={shown()}>
        {(s) => (
          <div class="approve-box" role="status">
            <label for="new-key">Key {s().name}, shown this once: copy it now</label>
            <input id="new-key" readOnly value={s().key} size={60} />
            <button type="button" class="quiet" onClick={() => setShown(null)}>Done</button>
          </div>
        )}
      </Show>
      <Show when={keys()}>
        {(list) => (
          <table class="runs keys">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Id</th>
                <th scope="col">Scopes</th>
                <th scope="col">Ends in</th>
                <th scope="col">Expires</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="hint">Revoke</span>
                </th>
              </tr>
            </thead>
            <tbody>
              <For each={list().items}>
                {(k) => (
                  <tr data-key-id={k.id}>
                    <td>{k.name}</td>
                    <td>
                      <code>{k.id}</code>
                    </td>
                    <td>{k.scopes.join(" ")}</td>
                    <td>…{k.last4}</td>
                    <td>{k.expiresAt ?? "never"}</td>
                    <td>{k.createdAt}</td>
                    <td>
                      <button
                        type="button"
                        class="danger"
                        aria-label={`Revoke ${k.name}`}
                        onClick={() => void revoke(k.id)}
                      >
                        Revoke
                      </button>
                    </td>
                  </tr>
                )}
              </For>
            </tbody>
          </table>
        )}
      </Show>
      <form
        class="create-key"
        onSubmit={(e) => {
          e.preventDefault()
          void create()
        }}
      >
        <label for="key-name">Name</label>
        <input id="key-name" required value={name()} onInput={(e) => setName(e.currentTarget.value)} />
        <fieldset>
          <legend>Scopes</legend>
          <For each={SCOPES}>
            {(scope) => (
              <label class="scope">
                <input
                  type="checkbox"
                  checked={scopes().includes(scope)}
                  onChange={(e) =>
                    setScopes(
                      e.currentTarget.checked ? [...scopes(), scope] : scopes().filter((s) => s !== scope)
                    )}
                />{" "}
                {scope}
              </label>
            )}
          </For>
        </fieldset>
        <label for="key-expires">Expires (optional)</label>
        <input
          id="key-expires"
          type="datetime-local"
          value={expires()}
          onInput={(e) => setExpires(e.currentTarget.value)}
        />
        <button type="submit" disabled={name().trim() === "" || scopes().length === 0}>Create key</button>
      </form>
    </section>
  )
}

const AuditLog = (props: { readonly client: Client }) => {
  const [action, setAction] = createSignal<AuditQuery["action"]>(undefined)
  const [since, setSince] = createSignal("")
  const [entries, setEntries] = createSignal<ReadonlyArray<AuditEntryResponse>>([])
  const [cursor, setCursor] = createSignal<string | null>(null)
  const [error, setError] = createSignal<string | null>(null)

  const load = async (more: boolean) => {
    setError(null)
    try {
      const page = await props.client.audit({
        ...(action() === undefined ? {} : { action: action()! }),
        ...(since() === "" ? {} : { since: since() }),
        ...(more && cursor() !== null ? { cursor: cursor()! } : {})
      })
      setEntries(more ? [...entries(), ...page.items] : page.items)
      setCursor(page.nextCursor)
    } catch (e) {
      setError(message(e))
    }
  }
  void load(false)

  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <div class="bar">
        <label>
          Action{" "}
          <select
            name="action"
            onChange={(e) => {
              setAction(e.currentTarget.value === "" ? undefined : e.currentTarget.value as AuditQuery["action"])
              void load(false)
            }}
          >
            <option value="">any</option>
            <For each={ACTIONS}>{(a) => <option value={a}>{a}</option>}</For>
          </select>
        </label>
        <label>
          Since{" "}
          <input
            type="date"
            name="since"
            value={since()}
            onChange={(e) => {
              setSince(e.currentTarget.value)
              void load(false)
            }}
          />
        </label>
        <button type="button" class="quiet" onClick={() => void load(false)}>Refresh</button>
      </div>
      <p class="hint">The log is read from the projections, a moment behind what just happened.</p>
      <Show when={error()}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>
      <Show when={entries().length > 0} fallback={<p class="empty">No audit entries.</p>}>
        <table class="runs audit">
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Actor</th>
              <th scope="col">Target</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            <For each={entries()}>
              {(a) => (
                <tr data-audit-action={a.action}>
                  <td>{a.at}</td>
                  <td>{a.action}</td>
                  <td>{a.outcome}</td>
                  <td>{a.actor}</td>
                  <td>{a.target}</td>
                  <td>{Object.entries(a.detail).map(([k, v]) => `${k}=${v}`).join(" ")}</td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
        <Show when={cursor() !== null}>
          <button type="button" class="quiet" onClick={() => void load(true)}>Older entries</button>
        </Show>
      </Show>
    </section>
  )
}

export const Access = (props: { readonly client: Client }) => (
  <section aria-labelledby="access-title">
    <h1 id="access-title">Access</h1>
    <Keys client={props.client} />
    <AuditLog client={props.client} />
  </section>
)
