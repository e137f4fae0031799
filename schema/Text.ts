// The one rule for text that enters Lantern: every string and every object key must be storable in Postgres
// `text`/`jsonb` and canonicalisable (RFC 8785), so no U+0000 and no lone UTF-16 surrogate; and JSON nests
// at most MAX_DEPTH levels. The edge checks whole request bodies, query strings and headers with it.

/** Deepest nesting of arrays/objects a value may have: deeper JSON is refused before anything walks it. */
export const MAX_DEPTH = 64

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Why `s` cannot be stored, or null when it can. */
export const problem = (s: string): string | null => {
  if (s.includes("\u0000")) return "contains the character U+0000 (NUL), which cannot be stored"
  if (LONE_SURROGATE.test(s))
    return "contains a lone UTF-16 surrogate (not a Unicode character), which cannot be stored"
  return null
}

export const isStorable = (s: string): boolean => problem(s) === null

/** `s` with what cannot be stored shown harmlessly (for naming a bad object key in an error). */
export const displayable = (s: string): string =>
  s.replace(/\u0000/g, "\\u0000").replace(
    new RegExp(LONE_SURROGATE.source, "g"),
    (c) => `\\u${c.charCodeAt(0).toString(16)}`
  )

export interface Issue {
  /** The field, as `a.b[2].c`; "" for the value itself. */
  readonly path: string
  readonly message: string
}

const child = (path: string, key: string | number) =>
  typeof key === "number" ? `${path}[${key}]` : path === "" ? displayable(key) : `${path}.${displayable(key)}`

/**
 * The problems of a parsed JSON value, iteratively (any depth is safe to check): the first value nested deeper
 * than `maxDepth` (named by the field that holds the nesting), else every string or key that cannot be stored,
 * in document order, at most `limit` of them.
 */
export const inspect = (value: unknown, maxDepth = MAX_DEPTH, limit = 20): ReadonlyArray<Issue> => {
  const issues: Array<Issue> = []
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: value, depth: 0, path: "" }]
  while (stack.length > 0 && issues.length < limit) {
    const { v, depth, path } = stack.pop()!
    if (typeof v === "string") {
      const why = problem(v)
      if (why !== null) issues.push({ path, message: why })
      continue
    }
    if (v === null || typeof v !== "object") continue
    if (depth >= maxDepth) {
      // name the field that holds the nesting, not the 64th index inside it
      const field = path.replace(/(\[\d+\])+$/, "").replace(/^(.{200}).+$/, "$1…")
      return [{ path: field, message: `nested deeper than ${maxDepth} levels` }]
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v)
    // pushed in reverse so they pop in document order
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, x] = entries[i]!
      if (typeof k === "string") {
        const why = problem(k)
        if (why !== null) issues.push({ path: child(path, k), message: `its key ${why}` })
      }
      stack.push({ v: x, depth: depth + 1, path: child(path, k) })
    }
  }
  return issues
}
