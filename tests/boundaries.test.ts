// The architecture's import rules, enforced by the build (tests/support/Boundaries.ts): schema/ imports nothing
// of ours, bus/ knows no actor or read model, actors/ never reach the edge, the database or the HTTP bodies
// (schema/Api.ts), projections/ never reach an actor, only bus/ imports the NATS client (@nats-io), harness/ sees
// only schema/, ui/ only Solid and schema/ (types, but for the pure modules it bundles), bench/ and scripts/ import no test file, and no two files or modules import each other
// round a cycle; sdk/ imports no package and only the pure schema/ modules it bundles. The checker is shown to catch a
// deliberate forbidden import.
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { describe, expect, it } from "vitest"
import * as Boundaries from "./support/Boundaries.ts"

const ROOT = resolve(import.meta.dirname, "..")
const graph = Boundaries.read(ROOT, [
  "schema",
  "bus",
  "actors",
  "projections",
  "edge",
  "harness",
  "sdk",
  "ui",
  "bench",
  "scripts",
  "tests"
])

describe("import boundaries", () => {
  it("reads the whole tree", () => {
    expect(graph.size).toBeGreaterThan(150)
    expect(graph.get("edge/Stack.ts")).toContain("projections/Projector.ts")
    expect(graph.get("bus/Nats.ts")).toContain("npm:@nats-io/transport-node")
    expect(graph.get("bus/Nats.ts")).toContain("node:path")
  })

  it("no file breaks a rule", () => {
    expect(Boundaries.violations(graph)).toEqual([])
  })

  it("the modules sdk/ shares import nothing but each other and Node's built-ins", () => {
    expect(graph.get("sdk/src/index.ts")).toBeDefined()
    for (const shared of Boundaries.SDK_SHARED) {
      expect(graph.get(shared), shared).toBeDefined()
      const outside = graph.get(shared)!.filter((t) => !t.startsWith("node:") && !Boundaries.SDK_SHARED.includes(t))
      expect(outside, shared).toEqual([])
    }
  })

  it("ui/ bundles of schema/ only the pure modules it shares, and takes every other module's types alone", () => {
    const files = [...graph.keys()].filter((f) => f.startsWith("ui/"))
    expect(files).toContain("ui/src/main.tsx")
    expect(files).toContain("ui/src/receipt.ts")
    const bundled = files.flatMap((f) =>
      Boundaries.valueImports(ROOT, f, readFileSync(resolve(ROOT, f), "utf8"))
        .filter((t) => t.startsWith("schema/") && !Boundaries.UI_SHARED.includes(t))
        .map((t) => `${f} -> ${t}`)
    )
    expect(bundled).toEqual([])
    for (const shared of Boundaries.UI_SHARED) expect(graph.get(shared), shared).toEqual([])
    // the checker tells a type import from one that stays in the build
    const text = [
      `import type { RunView } from "../../schema/Run.ts"`,
      `import { type EventResponse } from "../../schema/Api.ts"`,
      `import * as Sse from "../../schema/Sse.ts"`,
      `import "./style.css"`
    ].join("\n")
    expect(Boundaries.valueImports(ROOT, "ui/src/X.ts", text)).toEqual([
      "schema/Api.ts",
      "schema/Sse.ts",
      "ui/src/style.css"
    ])
  })

  it("no import cycle between files (tests aside) nor between modules", () => {
    const production = new Map([...graph].filter(([f]) => !f.endsWith(".test.ts") && !f.startsWith("tests/")))
    expect(Boundaries.cycles(production)).toEqual([])
    expect(Boundaries.cycles(Boundaries.folders(graph))).toEqual([])
  })

  it("catches a deliberate forbidden import, a cycle between modules and one between files", () => {
    const bad = new Map<string, ReadonlyArray<string>>([
      ...graph,
      ["actors/run/Sneaky.ts", ["projections/Queries.ts", "edge/Http.ts", "schema/Api.ts"]],
      ["schema/Leaky.ts", ["bus/Journal.ts"]],
      ["bench/Peek.ts", ["tests/e2e.test.ts", "npm:@nats-io/jetstream"]],
      ["projections/Raw.ts", ["npm:@nats-io/jetstream", "npm:effect"]],
      ["edge/Raw.ts", ["npm:@nats-io/kv"]],
      ["sdk/src/Leaky.ts", ["edge/Api.ts", "npm:effect", "schema/Api.ts", "schema/Sse.ts", "node:crypto"]],
      ["ui/src/Leaky.tsx", ["edge/Api.ts", "npm:effect", "node:fs", "schema/Run.ts", "npm:solid-js/store"]],
      ["ui/src/Leaky.test.tsx", ["npm:vitest", "npm:@solidjs/testing-library", "npm:playwright-core", "edge/Api.ts"]],
      ["actors/run/Raw.test.ts", ["npm:@nats-io/jetstream"]],
      ["actors/model/Loop.ts", ["actors/run/Loop.ts"]],
      ["actors/run/Loop.ts", ["actors/model/Loop.ts"]]
    ])
    expect(Boundaries.violations(bad).map((v) => `${v.file} -> ${v.imports}`)).toEqual([
      "actors/run/Sneaky.ts -> projections/Queries.ts",
      "actors/run/Sneaky.ts -> edge/Http.ts",
      "actors/run/Sneaky.ts -> schema/Api.ts",
      "schema/Leaky.ts -> bus/Journal.ts",
      "bench/Peek.ts -> tests/e2e.test.ts",
      "projections/Raw.ts -> npm:@nats-io/jetstream",
      "edge/Raw.ts -> npm:@nats-io/kv",
      "sdk/src/Leaky.ts -> edge/Api.ts",
      "sdk/src/Leaky.ts -> npm:effect",
      "sdk/src/Leaky.ts -> schema/Api.ts",
      "ui/src/Leaky.tsx -> edge/Api.ts",
      "ui/src/Leaky.tsx -> npm:effect",
      "ui/src/Leaky.tsx -> node:fs",
      "ui/src/Leaky.test.tsx -> npm:playwright-core",
      "ui/src/Leaky.test.tsx -> edge/Api.ts"
    ])
    expect(Boundaries.cycles(bad)).toContainEqual(["actors/model/Loop.ts", "actors/run/Loop.ts"])
    const modules = Boundaries.cycles(Boundaries.folders(bad))
    expect(modules.some((c) => c.includes("actors/model") && c.includes("actors/run"))).toBe(true)
    expect(modules).toContainEqual(["bus", "schema"])
  })
})
