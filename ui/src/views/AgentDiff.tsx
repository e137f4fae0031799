// Two versions of an agent side by side: their resolved specs as sorted JSON lines, diffed (ui/src/diff.ts), the
// removed lines on the left and the added on the right, a changed line on both.
import { createMemo, createSignal, For, Show } from "solid-js"
import type { AgentVersionView } from "../../../schema/Agent.ts"
import { diffLines, linesOf, type Row } from "../diff.ts"

const Line = (props: { readonly n: number | undefined; readonly text: string | undefined; readonly cls: string }) => (
  <>
    <td class="ln">{props.n ?? ""}</td>
    <td class={props.cls}>{props.text ?? ""}</td>
  </>
)

const cells = (row: Row) => ({
  left: row.kind === "added" ? undefined : row.left,
  l: row.kind === "added" ? undefined : row.l,
  right: row.kind === "removed" ? undefined : row.right,
  r: row.kind === "removed" ? undefined : row.r
})

export const AgentDiff = (props: { readonly name: string; readonly versions: ReadonlyArray<AgentVersionView> }) => {
  const numbers = () => props.versions.map((v) => v.version).sort((a, b) => a - b)
  const [from, setFrom] = createSignal(numbers().at(-2) ?? numbers()[0] ?? 1)
  const [to, setTo] = createSignal(numbers().at(-1) ?? 1)
  const [onlyChanges, setOnlyChanges] = createSignal(true)
  const spec = (v: number) => {
    const found = props.versions.find((x) => x.version === v)
    return found === undefined ? [] : linesOf({ description: found.description, spec: found.spec })
  }
  const rows = createMemo(() => diffLines(spec(from()), spec(to())))
  const changes = () => rows().filter((r) => r.kind !== "same").length
  const shown = () => (onlyChanges() ? rows().filter((r) => r.kind !== "same") : rows())
  const pick = (label: string, value: () => number, set: (v: number) => void) => (
    <label>
      {label}{" "}
      <select name={label} value={String(value())} onChange={(e) => set(Number(e.currentTarget.value))}>
        <For each={numbers()}>{(n) => <option value={String(n)}>v{n}</option>}</For>
      </select>
    </label>
  )
  return (
    <div class="diff" data-diff={props.name}>
      <div class="bar">
        {pick(`Compare ${props.name} from`, from, setFrom)}
        {pick(`Compare ${props.name} to`, to, setTo)}
        <label>
          <input type="checkbox" checked={onlyChanges()} onChange={(e) => setOnlyChanges(e.currentTarget.checked)} />
          {" "}
          Changed lines only
        </label>
        <span class="hint" role="status" data-changes={changes()}>
          {changes() === 0 ? "no differences" : `${changes()} lines differ`}
        </span>
      </div>
      <Show when={shown().length > 0}>
        <div
          class="diff-scroll"
          tabindex="0"
          role="region"
          aria-label={`Spec of ${props.name}: v${from()} against v${to()}`}
        >
          <table class="diff-table">
            <thead>
              <tr>
                <th scope="col" class="ln">#</th>
                <th scope="col">v{from()}</th>
                <th scope="col" class="ln">#</th>
                <th scope="col">v{to()}</th>
              </tr>
            </thead>
            <tbody>
              <For each={shown()}>
                {(row) => {
                  const c = cells(row)
                  return (
                    <tr data-kind={row.kind}>
                      <Line n={c.l} text={c.left} cls={row.kind === "same" ? "" : "del"} />
                      <Line n={c.r} text={c.right} cls={row.kind === "same" ? "" : "ins"} />
                    </tr>
                  )
                }}
              </For>
            </tbody>
          </table>
        </div>
      </Show>
    </div>
  )
}
