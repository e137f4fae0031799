// A run's receipt, verified in this browser: the receipt, its journal export and the published keys are fetched
// into editable inputs, and each named check (schema/Receipt.ts's, run with WebCrypto) is shown passed or failed.
import { createMemo, createSignal, For, onCleanup, Show } from "solid-js"
import type { Verdict } from "../../../schema/Receipt.ts"
import type { Client } from "../api.ts"
import { parseJsonl, parseReceipt, verify } from "../receipt.ts"

export const ReceiptPanel = (props: { readonly client: Client; readonly runId: string }) => {
  const [receipt, setReceipt] = createSignal("")
  const [journal, setJournal] = createSignal("")
  const [verdict, setVerdict] = createSignal<Verdict | null>(null)
  const [error, setError] = createSignal<string | null>(null)
  const [busy, setBusy] = createSignal(false)

  /** An object URL of what an input holds, for its download link; released when the input changes or goes. */
  const downloadable = (text: () => string, type: string) =>
    createMemo(() => {
      const url = URL.createObjectURL(new Blob([text()], { type }))
      onCleanup(() => URL.revokeObjectURL(url))
      return url
    })
  const receiptUrl = downloadable(receipt, "application/json")
  const journalUrl = downloadable(journal, "application/x-ndjson")

  const check = async () => {
    setBusy(true)
    setError(null)
    try {
      const { keys } = await props.client.keys()
      setVerdict(await verify(parseReceipt(receipt()), parseJsonl(journal()), keys))
    } catch (e) {
      setVerdict(null)
      setError(e instanceof Error ? e.message : String(e))
    } finally {
      setBusy(false)
    }
  }

  const fetchAndVerify = async () => {
    setBusy(true)
    setError(null)
    try {
      const [r, j] = await Promise.all([props.client.receipt(props.runId), props.client.journal(props.runId)])
      setReceipt(JSON.stringify(r, null, 2))
      setJournal(j)
    } catch (e) {
      setBusy(false)
      setError(e instanceof Error ? e.message : String(e))
      return
    }
    await check()
  }

  return (
    <section class="receipt" aria-labelledby="receipt-title">
      <h2 id="receipt-title">Receipt</h2>
      <div class="actions">
        <button type="button" onClick={() => void fetchAndVerify()} disabled={busy()}>Fetch and verify</button>
        <button type="button" class="quiet" onClick={() => void check()} disabled={busy() || receipt() === ""}>
          Verify the inputs again
        </button>
      </div>
      <Show when={error()}>{(message) => <p role="alert" class="error">{message()}</p>}</Show>
      <Show when={verdict()}>
        {(v) => (
          <div class="verdict" data-valid={String(v().valid)} role="status">
            <p class={v().valid ? "ok" : "failed"}>
              {v().valid ? "Verified in this browser: every check passes." : "Not verified: a check failed."}
            </p>
            <ul class="checks">
              <For each={v().checks}>
                {(c) => (
                  <li data-check={c.name} data-ok={String(c.ok)} class={c.ok ? "ok" : "failed"}>
                    <strong>{c.ok ? "✓" : "✗"} {c.name}</strong> {c.message}
                  </li>
                )}
              </For>
            </ul>
          </div>
        )}
      </Show>
      <Show when={receipt() !== ""}>
        <div class="actions">
          <a href={receiptUrl()} download={`${props.runId}.receipt.json`}>
            Download the receipt
          </a>
          <a href={journalUrl()} download={`${props.runId}.journal.jsonl`}>
            Download the journal
          </a>
        </div>
        <label for="receipt-input">Receipt (JSON)</label>
        <textarea
          id="receipt-input"
          rows="8"
          spellcheck={false}
          value={receipt()}
          onInput={(e) => setReceipt(e.currentTarget.value)}
        />
        <label for="journal-input">Journal export (JSON lines)</label>
        <textarea
          id="journal-input"
          rows="8"
          spellcheck={false}
          value={journal()}
          onInput={(e) => setJournal(e.currentTarget.value)}
        />
      </Show>
    </section>
  )
}
