// The small expression language of graph workflows (ADR 0042): conditions, loops' arrays, ends' outputs and the
// `{{…}}` of templates. Parsed by hand and evaluated over plain data; it never calls eval or Function and reads
// only the own properties of the scope's JSON values, so nothing outside the scope (globals, prototypes) is reachable.

/** A parsed expression. */
export type Expr =
  | { readonly _tag: "Literal"; readonly value: unknown }
  | { readonly _tag: "Path"; readonly root: Root; readonly segments: ReadonlyArray<string | number> }
  | { readonly _tag: "Not"; readonly operand: Expr }
  | { readonly _tag: "Binary"; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }

export type BinaryOp = "==" | "!=" | "<" | ">" | "<=" | ">=" | "contains" | "&&" | "||"

/** The names an expression may start a path with. */
export const ROOTS = ["input", "steps", "loop"] as const
export type Root = typeof ROOTS[number]

/** What a path reads: the run's input, the nodes' outputs by node id, the loop's item and index. */
export type Scope = { readonly [K in Root]?: unknown }

export class ExpressionError extends Error {
  override readonly name = "ExpressionError"
}

/** Property names never read, even as own properties: nothing may reach an object's machinery. */
const FORBIDDEN = new Set(["__proto__", "prototype", "constructor"])

const MAX_LENGTH = 2_000
const MAX_DEPTH = 64

type Token =
  | { readonly kind: "number" | "string"; readonly value: unknown; readonly at: number }
  | { readonly kind: "name" | "op"; readonly value: string; readonly at: number }

const OPS = ["&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", ".", "[", "]"]

const tokenize = (src: string): ReadonlyArray<Token> => {
  const out: Array<Token> = []
  let i = 0
  while (i < src.length) {
    const c = src[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    const number = /^-?\d+(\.\d+)?/.exec(src.slice(i))
    if (number !== null) {
      out.push({ kind: "number", value: Number(number[0]), at: i })
      i += number[0].length
      continue
    }
    if (c === "\"" || c === "'") {
      let j = i + 1
      let text = ""
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\\" && j + 1 < src.length) {
          const e = src[j + 1]!
          text += e === "n" ? "\n" : e === "t" ? "\t" : e
          j += 2
        } else text += src[j++]
      }
      if (j >= src.length) throw new ExpressionError(`unterminated string at position ${i}`)
      out.push({ kind: "string", value: text, at: i })
      i = j + 1
      continue
    }
    const name = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i))
    if (name !== null) {
      out.push({ kind: "name", value: name[0], at: i })
      i += name[0].length
      continue
    }
    const op = OPS.find((o) => src.startsWith(o, i))
    if (op === undefined) throw new ExpressionError(`unexpected character '${c}' at position ${i}`)
    out.push({ kind: "op", value: op, at: i })
    i += op.length
  }
  return out
}

/**
 * Parses `source`: paths (`input.x`, `steps.classify.text`, `loop.item`, `input.items[0]`), literals (numbers,
 * 'strings' or "strings", true, false, null), `== != < > <= >=`, `contains`, `&& || !` and parentheses.
 */
export const parse = (source: string): Expr => {
  if (source.length > MAX_LENGTH) throw new ExpressionError(`longer than ${MAX_LENGTH} characters`)
  const tokens = tokenize(source)
  let i = 0
  let depth = 0
  const peek = () => tokens[i]
  const isOp = (value: string) => peek()?.kind === "op" && peek()!.value === value
  const where = () => (peek() === undefined ? "at the end" : `at position ${peek()!.at}`)
  const expect = (value: string) => {
    if (!isOp(value)) throw new ExpressionError(`expected '${value}' ${where()}`)
    i++
  }
  const nested = <A>(f: () => A): A => {
    if (++depth > MAX_DEPTH) throw new ExpressionError(`nested more than ${MAX_DEPTH} deep`)
    const a = f()
    depth--
    return a
  }

  const primary = (): Expr =>
    nested(() => {
      const t = peek()
      if (t === undefined) throw new ExpressionError("expected a value at the end")
      if (t.kind === "op" && t.value === "!") {
        i++
        return { _tag: "Not", operand: primary() }
      }
      if (t.kind === "op" && t.value === "(") {
        i++
        const e = or()
        expect(")")
        return e
      }
      if (t.kind === "number" || t.kind === "string") {
        i++
        return { _tag: "Literal", value: t.value }
      }
      if (t.kind === "name") {
        i++
        if (t.value === "true" || t.value === "false") return { _tag: "Literal", value: t.value === "true" }
        if (t.value === "null") return { _tag: "Literal", value: null }
        if (!(ROOTS as ReadonlyArray<string>).includes(t.value)) {
          throw new ExpressionError(
            `unknown name '${t.value}' at position ${t.at}: a path starts with ${ROOTS.join(", ")}`
          )
        }
        const segments: Array<string | number> = []
        for (;;) {
          if (isOp(".")) {
            i++
            const s = peek()
            if (s?.kind !== "name") throw new ExpressionError(`expected a field name ${where()}`)
            i++
            segments.push(s.value)
          } else if (isOp("[")) {
            i++
            const s = peek()
            if (s?.kind !== "number" && s?.kind !== "string") {
              throw new ExpressionError(`expected an index or a quoted field ${where()}`)
            }
            i++
            if (s.kind === "number" && (!Number.isInteger(s.value) || (s.value as number) < 0)) {
              throw new ExpressionError(`an index must be a whole number, at position ${s.at}`)
            }
            segments.push(s.value as string | number)
            expect("]")
          } else break
        }
        const bad = segments.find((s) => typeof s === "string" && FORBIDDEN.has(s))
        if (bad !== undefined) throw new ExpressionError(`the field '${String(bad)}' cannot be read`)
        return { _tag: "Path", root: t.value as Root, segments }
      }
      throw new ExpressionError(`unexpected '${String(t.value)}' at position ${t.at}`)
    })

  const comparison = (): Expr => {
    const left = primary()
    const t = peek()
    const op = t?.kind === "op" && ["==", "!=", "<", ">", "<=", ">="].includes(t.value)
      ? t.value as BinaryOp
      : t?.kind === "name" && t.value === "contains"
      ? "contains"
      : null
    if (op === null) return left
    i++
    return { _tag: "Binary", op, left, right: primary() }
  }
  const and = (): Expr => {
    let left = comparison()
    while (isOp("&&")) {
      i++
      left = { _tag: "Binary", op: "&&", left, right: comparison() }
    }
    return left
  }
  const or = (): Expr => {
    let left = and()
    while (isOp("||")) {
      i++
      left = { _tag: "Binary", op: "||", left, right: and() }
    }
    return left
  }

  if (tokens.length === 0) throw new ExpressionError("empty expression")
  const e = or()
  if (i < tokens.length)
    throw new ExpressionError(`unexpected '${String(tokens[i]!.value)}' at position ${tokens[i]!.at}`)
  return e
}

/** An own property of a JSON value (array index, object field, or the length of an array or string); else undefined. */
const read = (value: unknown, key: string | number): unknown => {
  if (typeof value === "string") return key === "length" ? value.length : undefined
  if (Array.isArray(value)) {
    if (key === "length") return value.length
    return typeof key === "number" && key < value.length ? value[key] : undefined
  }
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const k = String(key)
    return !FORBIDDEN.has(k) && Object.hasOwn(value, k) ? (value as Record<string, unknown>)[k] : undefined
  }
  return undefined
}

const equal = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  return JSON.stringify(a) === JSON.stringify(b)
}

const truthy = (v: unknown) => v !== undefined && v !== null && v !== false && v !== 0 && v !== ""

const compare = (op: "<" | ">" | "<=" | ">=", a: unknown, b: unknown): boolean => {
  const ok = (typeof a === "number" && typeof b === "number") || (typeof a === "string" && typeof b === "string")
  if (!ok) return false
  const x = a as number | string
  const y = b as number | string
  return op === "<" ? x < y : op === ">" ? x > y : op === "<=" ? x <= y : x >= y
}

/** The value of `expr` in `scope`; a path that leads nowhere is null. */
export const evaluate = (expr: Expr, scope: Scope): unknown => {
  switch (expr._tag) {
    case "Literal":
      return expr.value
    case "Path": {
      let v: unknown = Object.hasOwn(scope, expr.root) ? scope[expr.root] : undefined
      for (const s of expr.segments) v = read(v, s)
      return v === undefined ? null : v
    }
    case "Not":
      return !truthy(evaluate(expr.operand, scope))
    case "Binary": {
      if (expr.op === "&&") return truthy(evaluate(expr.left, scope)) && truthy(evaluate(expr.right, scope))
      if (expr.op === "||") return truthy(evaluate(expr.left, scope)) || truthy(evaluate(expr.right, scope))
      const a = evaluate(expr.left, scope)
      const b = evaluate(expr.right, scope)
      switch (expr.op) {
        case "==":
          return equal(a, b)
        case "!=":
          return !equal(a, b)
        case "contains":
          if (typeof a === "string") return typeof b === "string" && a.includes(b)
          return Array.isArray(a) && a.some((x) => equal(x, b))
        default:
          return compare(expr.op, a, b)
      }
    }
  }
}

/** Whether `value` counts as true in a condition. */
export const isTruthy = truthy

const TEMPLATE = /\{\{([^{}]*)\}\}/g

/** The expressions inside a template's `{{…}}`, parsed (throws on the first that does not parse). */
export const parseTemplate = (template: string): ReadonlyArray<Expr> =>
  [...template.matchAll(TEMPLATE)].map((m) => {
    try {
      return parse(m[1]!.trim())
    } catch (e) {
      throw new ExpressionError(`in {{${m[1]}}}: ${(e as Error).message}`)
    }
  })

const text = (v: unknown) => (v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v))

/**
 * Fills a template's `{{…}}` from `scope`. A string that is one `{{…}}` and nothing else takes the value as it is
 * (an array stays an array); otherwise values are written in as text (JSON for objects).
 */
export const render = (template: string, scope: Scope): unknown => {
  const whole = /^\{\{([^{}]*)\}\}$/.exec(template.trim())
  if (whole !== null) return evaluate(parse(whole[1]!.trim()), scope)
  return template.replace(TEMPLATE, (_, inner: string) => text(evaluate(parse(inner.trim()), scope)))
}

/** Renders every string inside a JSON value (tool arguments, a child run's input). */
export const renderDeep = (value: unknown, scope: Scope): unknown => {
  if (typeof value === "string") return render(value, scope)
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, scope))
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, scope)]))
  }
  return value
}

/** The templates inside a JSON value, for checking them all. */
export const stringsOf = (value: unknown): ReadonlyArray<string> =>
  typeof value === "string"
    ? [value]
    : Array.isArray(value)
    ? value.flatMap(stringsOf)
    : typeof value === "object" && value !== null
    ? Object.values(value).flatMap(stringsOf)
    : []
