// The architecture's import rules (DESIGN.md §2), checked over the source tree by tests/boundaries.test.ts:
// each module's imports are read as text, and a forbidden edge or a cycle is reported with the file and the
// import that breaks it.
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"

/**
 * A file's imports: of our own code as paths relative to the root, of packages as `npm:<specifier>` (Node's
 * built-ins keep their `node:` prefix).
 */
export type Graph = ReadonlyMap<string, ReadonlyArray<string>>

export interface Rule {
  readonly name: string
  /** Whether the rule applies to an importing file. */
  readonly from: (file: string) => boolean
  /** Whether that file may import `target`. */
  readonly allows: (target: string) => boolean
}

export interface Violation {
  readonly rule: string
  readonly file: string
  readonly imports: string
}

const top = (file: string) => file.split("/")[0]!
const isTest = (file: string) => /\.test\.tsx?$/.test(file) || file.startsWith("tests/")
const under = (...folders: ReadonlyArray<string>) => (file: string) => folders.includes(top(file))
const production = (...folders: ReadonlyArray<string>) => (file: string) => under(...folders)(file) && !isTest(file)
/** Whether an import is of a package (`npm:…`, `node:…`) rather than of our own code. */
export const isPackage = (target: string) => target.includes(":")
const nats = (target: string) => target.startsWith("npm:@nats-io/")

/**
 * What the client SDK (sdk/) takes from the rest of the repo and bundles: pure modules of schema/ that import nothing
 * but each other and Node's built-ins (the SSE decoder, the receipt and settlement checks and the canonical JSON they hash, the
 * workflow context's types).
 */
export const SDK_SHARED: ReadonlyArray<string> = [
  "schema/Canonical.ts",
  "schema/Completions.ts",
  "schema/Receipt.ts",
  "schema/Settlement.ts",
  "schema/Sse.ts",
  "schema/Workflow.ts"
]

/**
 * What the cockpit (ui/) bundles of schema/ at run time: the SSE decoder, the canonical JSON its receipt checks
 * hash and the step completions its timeline and receipt totals read (ADR 0067), which import nothing. Every other schema/ module it may import only as types (`import type`), erased by the
 * build, so no Effect or Node code reaches the browser.
 */
export const UI_SHARED: ReadonlyArray<string> = ["schema/Canonical.ts", "schema/Completions.ts", "schema/Sse.ts"]

/** The packages ui/ may import: Solid, and Vite with Solid's plugin in its build configuration. */
const UI_PACKAGES: ReadonlyArray<string> = ["npm:solid-js", "npm:vite", "npm:vite-plugin-solid"]

const VALUE_IMPORT =
  /(?:^|[\s;])import\s+(?!type\s)[^"'`;]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']/g

/**
 * The imports of a file's text that stay in its build: every `import … from` but `import type`, and side-effect
 * imports (an `import { type A }` still loads its module), as paths relative to the root like `read` gives them.
 */
export const valueImports = (root: string, file: string, text: string): ReadonlyArray<string> =>
  [...text.matchAll(VALUE_IMPORT)].map((m) => m[1] ?? m[2]!).map((s) =>
    s.startsWith(".") ? relative(root, resolve(dirname(join(root, file)), s)) : s.startsWith("node:") ? s : `npm:${s}`
  )

export const RULES: ReadonlyArray<Rule> = [
  {
    name: "schema/ imports nothing of ours but schema/",
    from: production("schema"),
    allows: (t) => isPackage(t) || under("schema")(t)
  },
  {
    name: "bus/ knows no actor, read model or edge",
    from: production("bus"),
    allows: (t) => !under("actors", "projections", "edge", "tests")(t)
  },
  {
    name: "actors/ never import edge/ or projections/",
    from: production("actors"),
    allows: (t) => !under("edge", "projections", "tests")(t)
  },
  {
    name: "actors/ speak in domain shapes (schema/Agent.ts, schema/Run.ts), never in HTTP bodies (schema/Api.ts)",
    from: production("actors"),
    allows: (t) => t !== "schema/Api.ts" && t !== "schema/index.ts"
  },
  {
    name: "projections/ never import actors/ or edge/",
    from: production("projections"),
    allows: (t) => !under("actors", "edge", "tests")(t)
  },
  {
    name: "only bus/ speaks NATS: actors/, projections/, edge/ and schema/ import no @nats-io package",
    from: production("actors", "projections", "edge", "schema"),
    allows: (t) => !nats(t)
  },
  {
    name: "harness/ imports only schema/",
    from: under("harness"),
    allows: (t) => isPackage(t) || under("schema", "harness")(t)
  },
  {
    name:
      "ui/ talks to the edge over HTTP only: of ours it imports schema/ (types, and the pure modules it bundles), " +
      "of packages only Solid and its build",
    from: production("ui"),
    allows: (t) => under("schema", "ui")(t) || UI_PACKAGES.some((p) => t === p || t.startsWith(`${p}/`))
  },
  {
    name: "ui/'s component tests import what the cockpit may, and vitest with Solid's testing library",
    from: (file) => under("ui")(file) && isTest(file),
    allows: (t) =>
      under("schema", "ui")(t) ||
      [...UI_PACKAGES, "npm:vitest", "npm:@solidjs/testing-library"].some((p) => t === p || t.startsWith(`${p}/`))
  },
  {
    name: "sdk/ imports no package but Node's built-ins, and of ours only the pure schema/ modules it shares",
    from: production("sdk"),
    allows: (t) => t.startsWith("node:") || under("sdk")(t) || SDK_SHARED.includes(t)
  },
  {
    name: "bench/ and scripts/ import no test file",
    from: under("bench", "scripts"),
    allows: (t) => !t.endsWith(".test.ts")
  }
]

const SOURCE = /\.(ts|tsx|mts)$/
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^"'`;]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g

/** Every source file under `folders` of `root` (no node_modules, no dot folders), with its relative imports. */
export const read = (root: string, folders: ReadonlyArray<string>): Graph => {
  const graph = new Map<string, ReadonlyArray<string>>()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === "node_modules" || name.startsWith(".")) continue
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (SOURCE.test(name) && !name.endsWith(".d.ts")) {
        const text = readFileSync(path, "utf8")
        const targets = [...text.matchAll(IMPORT)]
          .map((m) => m[1] ?? m[2] ?? m[3]!)
          .map((s) =>
            s.startsWith(".") ? relative(root, resolve(dirname(path), s)) : s.startsWith("node:") ? s : `npm:${s}`
          )
        graph.set(relative(root, path), [...new Set(targets)])
      }
    }
  }
  for (const f of folders) {
    try {
      if (statSync(join(root, f)).isDirectory()) walk(join(root, f))
    } catch {
      // a folder that does not exist yet (harness/, ui/) has nothing to check
    }
  }
  return graph
}

export const violations = (graph: Graph, rules: ReadonlyArray<Rule> = RULES): ReadonlyArray<Violation> =>
  [...graph].flatMap(([file, targets]) =>
    rules.filter((r) => r.from(file)).flatMap((r) =>
      targets.filter((t) => !r.allows(t)).map((t) => ({ rule: r.name, file, imports: t }))
    )
  )

/** The import cycles among `graph`'s files (Tarjan's strongly connected components of two or more files). */
export const cycles = (graph: Graph): ReadonlyArray<ReadonlyArray<string>> => {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const found: Array<ReadonlyArray<string>> = []
  const visit = (v: string) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: Array<string> = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) found.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/** The graph between folders (`actors/run`, `bus`, …), for cycles between modules rather than files. */
export const folders = (
  graph: Graph,
  depth: (file: string) => number = (f) => (f.startsWith("actors/") ? 2 : 1)
): Graph => {
  const of = (f: string) => f.split("/").slice(0, Math.min(depth(f), f.split("/").length - 1)).join("/")
  const out = new Map<string, Set<string>>()
  for (const [file, targets] of graph) {
    if (isTest(file)) continue
    const from = of(file)
    const set = out.get(from) ?? new Set<string>()
    for (const t of targets) if (!isTest(t) && !isPackage(t) && of(t) !== from) set.add(of(t))
    out.set(from, set)
  }
  return new Map([...out].map(([k, v]) => [k, [...v]]))
}
