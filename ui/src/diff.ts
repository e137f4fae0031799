// A line diff for two agent versions side by side: the longest common subsequence of lines, then each run of removed
// and added lines paired row by row (changed), the rest kept (same) or alone (removed, added). Small on purpose: specs
// are hundreds of lines, and O(n·m) over them is a few milliseconds.

export type Row =
  | { readonly kind: "same"; readonly left: string; readonly right: string; readonly l: number; readonly r: number }
  | { readonly kind: "changed"; readonly left: string; readonly right: string; readonly l: number; readonly r: number }
  | { readonly kind: "removed"; readonly left: string; readonly l: number }
  | { readonly kind: "added"; readonly right: string; readonly r: number }

/** Lines of `a` and `b` aligned: same, changed (paired), removed or added; numbers are 1-based line numbers. */
export const diffLines = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): Array<Row> => {
  const n = a.length
  const m = b.length
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..]
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const rows: Array<Row> = []
  let removed: Array<number> = []
  let added: Array<number> = []
  const flush = () => {
    const paired = Math.min(removed.length, added.length)
    for (let k = 0; k < paired; k++) {
      rows.push({ kind: "changed", left: a[removed[k]!]!, right: b[added[k]!]!, l: removed[k]! + 1, r: added[k]! + 1 })
    }
    for (const i of removed.slice(paired)) rows.push({ kind: "removed", left: a[i]!, l: i + 1 })
    for (const j of added.slice(paired)) rows.push({ kind: "added", right: b[j]!, r: j + 1 })
    removed = []
    added = []
  }
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      flush()
      rows.push({ kind: "same", left: a[i]!, right: b[j]!, l: i + 1, r: j + 1 })
      i++
      j++
    } else if (j < m && (i === n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      added.push(j++)
    } else {
      removed.push(i++)
    }
  }
  flush()
  return rows
}

/** A value as stable lines: JSON with its keys sorted at every depth, two spaces to a level. */
export const linesOf = (value: unknown): Array<string> => {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v !== null && typeof v === "object"
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]))
      : v
  return (JSON.stringify(sorted(value), null, 2) ?? "null").split("\n")
}
