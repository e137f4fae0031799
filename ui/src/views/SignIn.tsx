// Sign-in with an API key, checked against the API before it is kept (in sessionStorage only); on a page loaded from
// this machine a dev stack offers its own token.
import { createResource, createSignal, Show } from "solid-js"
import { check, devToken } from "../api.ts"

export const SignIn = (props: { readonly onSignIn: (key: string) => void }) => {
  const [key, setKey] = createSignal("")
  const [error, setError] = createSignal<string | null>(null)
  const [busy, setBusy] = createSignal(false)
  const [dev] = createResource(devToken)

  const submit = async (candidate: string) => {
    setBusy(true)
    setError(null)
    const refused = await check(candidate.trim())
    setBusy(false)
    if (refused === null) props.onSignIn(candidate.trim())
    else setError(refused.status === 401 ? "This key is not valid (wrong, expired or revoked)." : refused.message)
  }

  return (
    <main class="signin">
      <h1>Lantern cockpit</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void submit(key())
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          required
          value={key()}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        <p class="hint">
          Kept in this tab only (sessionStorage), sent as a bearer token; it needs the scope runs:read.
        </p>
        <button type="submit" disabled={busy() || key().trim() === ""}>Sign in</button>
        <Show when={dev()}>
          {(token) => (
            <button type="button" class="quiet" onClick={() => void submit(token())}>
              Use this machine's dev token
            </button>
          )}
        </Show>
        <Show when={error()}>{(message) => <p role="alert" class="error">{message()}</p>}</Show>
      </form>
    </main>
  )
}
